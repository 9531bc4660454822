//! The Lua scripts of the operations that must be atomic, compiled once. Lease scores use the
//! Redis server's clock (`TIME`), so gateways with skewed clocks still agree.

use redis::Script;

/// The server's clock in ms, inside a script.
const NOW_MS: &str = "local t = redis.call('TIME')\n\
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n";

/// KEYS: device set, user set. ARGV: session id, lease ms, device limit, user limit (-1 = none).
/// Returns {0, 0} when admitted, {1, n} over the device limit, {2, n} over the user limit.
const ADMIT: &str = "
local member = ARGV[1]
local lease = tonumber(ARGV[2])
local limits = { tonumber(ARGV[3]), tonumber(ARGV[4]) }
for i = 1, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
end
for i = 1, 2 do
  if limits[i] >= 0 and not redis.call('ZSCORE', KEYS[i], member) then
    local n = redis.call('ZCARD', KEYS[i])
    if n >= limits[i] then return { i, n } end
  end
end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], now + lease, member)
  if redis.call('PTTL', KEYS[i]) < lease then redis.call('PEXPIRE', KEYS[i], lease) end
end
return { 0, 0 }
";

/// KEYS: pairs of (device set, user set). ARGV: lease ms, then one session id per pair.
const RENEW: &str = "
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do
  local d, u = KEYS[2 * i - 3], KEYS[2 * i - 2]
  for _, k in ipairs({ d, u }) do
    redis.call('ZADD', k, now + lease, ARGV[i])
    if redis.call('PTTL', k) < lease then redis.call('PEXPIRE', k, lease) end
  end
end
return #ARGV - 1
";

/// KEYS: device set, user set. Returns the live count of each.
const LIVE: &str = "
return { redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf'), redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf') }
";

/// KEYS: user set. Returns the session ids whose leases have not ended.
const LIVE_IDS: &str = "
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
";

/// KEYS: counter. ARGV: floor, delta, ttl ms. A missing counter starts at `floor`.
/// Lua numbers are doubles: exact up to 2^53 bytes (8 PiB) per period.
const ADD_USAGE: &str = "
local cur = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
cur = cur + tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%d', cur), 'PX', ARGV[3])
return cur
";

/// Scripts compiled once (their SHA is computed here; Redis loads them on first use).
#[derive(Debug)]
pub(super) struct Scripts {
    pub admit: Script,
    pub renew: Script,
    pub live: Script,
    pub live_ids: Script,
    pub add_usage: Script,
}

impl Scripts {
    pub fn new() -> Self {
        let timed = |body: &str| Script::new(&format!("{NOW_MS}{body}"));
        Scripts {
            admit: timed(ADMIT),
            renew: timed(RENEW),
            live: timed(LIVE),
            live_ids: timed(LIVE_IDS),
            add_usage: Script::new(ADD_USAGE),
        }
    }
}
