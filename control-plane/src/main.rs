//! `httvps-control-plane`: the REST service (`serve`), its migrations (`migrate`) and the operator
//! commands that set up a working service without writing JSON by hand.

use clap::Parser;
use httvps_control_plane::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let json_logs = matches!(&cli.command, Some(Command::Serve(c)) if c.log_json);
    init_tracing(json_logs);
    httvps_control_plane::cli::run(cli).await
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
