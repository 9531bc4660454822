//! Gateway settings: every limit and timeout is a named flag with an environment variable
//! (`HTTVPS_GATEWAY_*`), a key in the optional TOML file (`--config`, keys named like the flags
//! with `-` or `_`) and a documented default. Flags win over the environment, the environment
//! over the file, the file over the defaults. The control-plane token is never a flag (flags are
//! visible to every local user): environment, token file or config file only.
//!
//! `settings.rs` holds the settings themselves (one field per flag), `load.rs` where they come
//! from, `validate.rs` the checks clap cannot make, `derived.rs` what other parts need of them,
//! `values.rs` the value types and parsers.

mod derived;
mod load;
mod settings;
mod validate;
mod values;

pub use self::settings::GatewayConfig;
pub use self::values::{
    parse_duration, parse_optional_addr, FallbackAddr, ListenAddr, OptionalAddr, RedisDownPolicy,
};

/// Environment variable of the control-plane token.
pub const TOKEN_ENV: &str = "HTTVPS_GATEWAY_CONTROL_PLANE_TOKEN";

#[cfg(test)]
mod tests;
