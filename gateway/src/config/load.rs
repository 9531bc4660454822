//! Where the settings come from: flags over the environment over the TOML file over the
//! defaults; the control-plane token from the environment, a token file or the file only.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{CommandFactory, Parser};

use super::{GatewayConfig, TOKEN_ENV};
use crate::control_plane::Secret;
use crate::GatewayError;

impl Default for GatewayConfig {
    /// The documented defaults, ignoring the environment.
    fn default() -> Self {
        let mut config = GatewayConfig::parse_from(["httvps-gateway"]);
        // parse_from still reads HTTVPS_GATEWAY_* variables; Default is for tests and
        // embedding, so keep it independent of the environment where it matters most.
        config.tls_cert = None;
        config.tls_key = None;
        config.control_plane_url = None;
        config.control_plane_token = None;
        config.control_plane_token_file = None;
        config.config_file = None;
        config.redis_url = None;
        config.gateway_id = None;
        config.usage_spool = None;
        config.dev_direct_upstream = false;
        config.dev_allow_direct_with_control_plane = false;
        config.decoy_dir = None;
        config.fallback = None;
        config.fallback_raw = None;
        config.subprotocol = None;
        config.dev_allow_weak_path = false;
        config.proxy_protocol = false;
        config.acme_domain = Vec::new();
        config.acme_contact = Vec::new();
        config.acme_directory_ca = None;
        config
    }
}

impl GatewayConfig {
    /// Reads the configuration of the process: its arguments, the environment, and the file
    /// named by `--config` / `HTTVPS_GATEWAY_CONFIG`. Exits on `--help`/`--version` and on
    /// malformed flags, like any clap program.
    pub fn load() -> Result<Self, GatewayError> {
        Self::load_from(std::env::args_os())
    }

    /// [`Self::load`] with explicit arguments (the first is the program name).
    pub fn load_from<I, T>(args: I) -> Result<Self, GatewayError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let command = Self::command();
        let matches = command.clone().get_matches_from(args.clone());
        let mut file_token = None;
        if let Some(path) = matches.get_one::<PathBuf>("config_file") {
            let text = std::fs::read_to_string(path)
                .map_err(|e| GatewayError::Config(format!("reading {}: {e}", path.display())))?;
            let table: toml::Table = text
                .parse()
                .map_err(|e| GatewayError::Config(format!("parsing {}: {e}", path.display())))?;
            for (key, value) in table {
                let id = key.replace('-', "_");
                if id == "control_plane_token" {
                    file_token = Some(scalar(&key, &value)?);
                    continue;
                }
                let arg = command
                    .get_arguments()
                    .find(|a| {
                        id != "config_file"
                            && (a.get_id().as_str() == id
                                || a.get_long().is_some_and(|l| l.replace('-', "_") == id))
                    })
                    .ok_or_else(|| {
                        GatewayError::Config(format!("{}: unknown setting {key:?}", path.display()))
                    })?;
                let arg_id = arg.get_id().as_str().to_owned();
                let explicit = matches!(
                    matches.value_source(&arg_id),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                );
                if explicit {
                    continue;
                }
                let Some(long) = arg.get_long() else {
                    continue;
                };
                match &value {
                    toml::Value::Boolean(true) => args.push(format!("--{long}").into()),
                    toml::Value::Boolean(false) => {}
                    toml::Value::Array(items) => {
                        let items: Result<Vec<String>, _> =
                            items.iter().map(|v| scalar(&key, v)).collect();
                        args.push(format!("--{long}={}", items?.join(",")).into());
                    }
                    other => args.push(format!("--{long}={}", scalar(&key, other)?).into()),
                }
            }
        }
        let mut config =
            Self::try_parse_from(args).map_err(|e| GatewayError::Config(e.to_string()))?;
        config.control_plane_token = match std::env::var(TOKEN_ENV) {
            Ok(t) if !t.trim().is_empty() => Some(Secret::new(t.trim())),
            _ => match &config.control_plane_token_file {
                Some(path) => {
                    let t = std::fs::read_to_string(path).map_err(|e| {
                        GatewayError::Config(format!("reading {}: {e}", path.display()))
                    })?;
                    Some(Secret::new(t.trim()))
                }
                None => file_token.map(Secret::new),
            },
        };
        Ok(config)
    }
}

/// A TOML scalar as the text a flag would carry.
fn scalar(key: &str, value: &toml::Value) -> Result<String, GatewayError> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        _ => Err(GatewayError::Config(format!(
            "{key}: expected a string, number or boolean"
        ))),
    }
}
