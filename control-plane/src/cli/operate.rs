//! Running an operator command: each change through its domain function, each refusal turned
//! into a message once ([`refusal`]). The commands of each group live in `catalog.rs`,
//! `people.rs` and `pool.rs`.

use std::io::Write;

use anyhow::{anyhow, Context};

use super::output::say;
use super::{catalog, output, people, pool, Cli, Command};
use crate::app::AppState;
use crate::config::ServeConfig;
use crate::domain::DomainError;
use crate::store::{Store, StoreError, StoreOptions};

/// The audit actor of every operator command.
pub(super) const ACTOR: &str = "cli";

/// What an operator command gives back.
pub(super) type CliResult = Result<(), CliError>;

/// Why an operator command failed: a refusal of the domain, or anything else (bad arguments,
/// I/O).
#[derive(Debug, thiserror::Error)]
pub(super) enum CliError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        CliError::Domain(e.into())
    }
}

/// The operator's message for a refusal (the CLI's counterpart of the problem document).
pub fn refusal(e: DomainError) -> anyhow::Error {
    match e {
        DomainError::Invalid(msg) => anyhow!("invalid input: {msg}"),
        DomainError::NotFound(what) => anyhow!("{what} not found"),
        DomainError::Conflict(c) => anyhow!("refused: {c}"),
        DomainError::Forbidden(msg) => anyhow!("forbidden: {msg}"),
        e @ DomainError::SessionKilled => anyhow!("refused: {e}"),
        DomainError::Internal(msg) => anyhow!("internal error: {msg}"),
        DomainError::Store(e) => anyhow!(e).context("the database failed"),
    }
}

/// Runs the parsed command line. Operator commands announce what ends sessions (revocations,
/// kills) on the shared state `REDIS_URL` names, as the service does.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => serve(ServeConfig::for_database(&cli.database_url)).await,
        Some(Command::Serve(config)) => serve(*config).await,
        Some(command) => {
            let store = Store::connect(&cli.database_url, &StoreOptions::default())
                .await
                .context("opening the database")?;
            store.migrate().await.context("migrating the database")?;
            let state =
                AppState::for_operator(ServeConfig::for_database(&cli.database_url), store)?;
            let result = operate(&state, command, cli.json)
                .await
                .map_err(|e| match e {
                    CliError::Domain(e) => refusal(e),
                    CliError::Other(e) => e,
                });
            state.store.close().await;
            result
        }
    }
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let running = crate::app::start(config, true).await?;
    tracing::info!(addr = %running.addr, "serving; Ctrl-C or SIGTERM to stop");
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

pub(super) fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("HTTVPS_ADMIN_PASSWORD") {
        return Ok(p);
    }
    eprint!("password: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn operate(state: &AppState, command: Command, json: bool) -> CliResult {
    match command {
        Command::Serve(_) => Err(anyhow!("serve is handled before the store is opened").into()),
        Command::Migrate => {
            let backend = format!("{:?}", state.store.backend());
            if json {
                output::json(&serde_json::json!({ "migrated": true, "backend": backend }))?;
            } else {
                say!("migrations applied ({backend})");
            }
            Ok(())
        }
        Command::Admin(cmd) => catalog::admin(state, cmd, json).await,
        Command::Region(cmd) => catalog::region(state, cmd, json).await,
        Command::Plan(cmd) => catalog::plan(state, cmd, json).await,
        Command::Usage(args) => catalog::usage(state, args, json).await,
        Command::User(cmd) => people::user(state, cmd, json).await,
        Command::Device(cmd) => people::device(state, cmd, json).await,
        Command::Subscription(cmd) => people::subscription(state, cmd, json).await,
        Command::Session(cmd) => people::session(state, cmd, json).await,
        Command::Node(cmd) => pool::node(state, cmd, json).await,
        Command::NodeGroup(cmd) => pool::node_group(state, cmd, json).await,
        Command::Gateway(cmd) => pool::gateway(state, cmd, json).await,
    }
}
