//! This gateway's live streams per node, published as its share of the global load that the
//! control plane's least-connections assignment reads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use httvps_shared_state::NodeLoads;

/// Live streams per node on this gateway.
#[derive(Debug, Default)]
pub struct NodeLoadCounter {
    streams: Mutex<HashMap<Arc<str>, u64>>,
}

impl NodeLoadCounter {
    /// Counts one stream through `node` until the guard is dropped.
    pub fn track(self: &Arc<Self>, node: Arc<str>) -> StreamLoadGuard {
        *self.lock().entry(node.clone()).or_default() += 1;
        StreamLoadGuard {
            counter: self.clone(),
            node,
        }
    }

    /// The current counts (nodes without streams left out).
    pub fn snapshot(&self) -> NodeLoads {
        self.lock()
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(node, n)| (node.to_string(), *n))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, u64>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One live stream's share of its node's load.
#[derive(Debug)]
pub struct StreamLoadGuard {
    counter: Arc<NodeLoadCounter>,
    node: Arc<str>,
}

impl Drop for StreamLoadGuard {
    fn drop(&mut self) {
        let mut streams = self.counter.lock();
        if let Some(n) = streams.get_mut(&self.node) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                streams.remove(&self.node);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_streams_per_node() {
        let counter = Arc::new(NodeLoadCounter::default());
        let a: Arc<str> = Arc::from("n1");
        let g1 = counter.track(a.clone());
        let g2 = counter.track(a);
        let g3 = counter.track(Arc::from("n2"));
        assert_eq!(counter.snapshot().get("n1"), Some(&2));
        drop(g1);
        drop(g3);
        assert_eq!(counter.snapshot(), NodeLoads::from([("n1".to_owned(), 1)]));
        drop(g2);
        assert!(counter.snapshot().is_empty());
    }
}
