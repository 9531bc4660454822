//! A counting global allocator for the benchmarks: live heap bytes, and live allocations by
//! requested size, so a figure per idle session can be split into what holds it (a 4,096-byte
//! buffer per session shows up as ~1 live allocation of 4,096 bytes per session). RSS says how
//! much; this says where.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};

/// Sizes counted one by one; larger allocations share the last slot.
const EXACT: usize = 1 << 16;

pub struct Census {
    live_bytes: AtomicI64,
    by_size: [AtomicI64; EXACT + 1],
}

impl Census {
    pub const fn new() -> Self {
        Census {
            live_bytes: AtomicI64::new(0),
            by_size: [const { AtomicI64::new(0) }; EXACT + 1],
        }
    }

    fn note(&self, size: usize, delta: i64) {
        self.live_bytes
            .fetch_add(delta * size as i64, Ordering::Relaxed);
        self.by_size[size.min(EXACT)].fetch_add(delta, Ordering::Relaxed);
    }

    /// The live heap now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            live_bytes: self.live_bytes.load(Ordering::Relaxed),
            by_size: self
                .by_size
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
        }
    }
}

impl Default for Census {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every call goes to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Census {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            self.note(layout.size(), 1);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            self.note(layout.size(), 1);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        self.note(layout.size(), -1);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            self.note(layout.size(), -1);
            self.note(new_size, 1);
        }
        p
    }
}

/// Live heap at one moment.
pub struct Snapshot {
    live_bytes: i64,
    by_size: Vec<i64>,
}

impl Snapshot {
    /// What `after` holds beyond `self`, per each of `n` sessions: bytes, then the sizes held
    /// by at least one in ten sessions, largest share first.
    pub fn report(&self, after: &Snapshot, n: usize) -> String {
        let n = n.max(1) as i64;
        // `self`'s own table was allocated after it read the live bytes.
        let own = (self.by_size.len() * std::mem::size_of::<i64>()) as i64;
        let bytes = after.live_bytes - self.live_bytes - own;
        let mut lines = format!(
            "  live heap +{:.1} MiB -> {:.2} KiB per session; live allocations per session by size:\n",
            bytes as f64 / (1 << 20) as f64,
            bytes as f64 / 1024.0 / n as f64
        );
        let mut sizes: Vec<(usize, i64)> = (0..=EXACT)
            .map(|size| (size, after.by_size[size] - self.by_size[size]))
            .filter(|(_, count)| *count * 10 >= n)
            .collect();
        sizes.sort_by_key(|(size, count)| -(*size as i64 * count));
        let mut listed = 0;
        for (size, count) in sizes {
            let label = if size == EXACT {
                format!(">= {EXACT} B")
            } else {
                format!("{size} B")
            };
            lines.push_str(&format!(
                "    {label:>10} x {:.2} = {:.2} KiB\n",
                count as f64 / n as f64,
                (size as i64 * count) as f64 / 1024.0 / n as f64
            ));
            listed += size as i64 * count;
        }
        lines.push_str(&format!(
            "    (smaller shares: {:.2} KiB)",
            (bytes - listed) as f64 / 1024.0 / n as f64
        ));
        lines
    }
}
