//! `httvps-control-plane`: the REST service (`serve`), its migrations (`migrate`) and the operator
//! commands that set up a working service without writing JSON by hand.

use clap::Parser;
use httvps_control_plane::cli::{Cli, Command};
use httvps_telemetry::{LogSettings, LogTarget, ServiceInfo};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let serving = matches!(&cli.command, None | Some(Command::Serve(_)));
    let json_logs = matches!(&cli.command, Some(Command::Serve(c)) if c.log_json);
    let service = ServiceInfo {
        name: "httvps-control-plane",
        version: env!("CARGO_PKG_VERSION"),
        instance_id: None,
    };
    let logs = LogSettings {
        default_filter: "info,sqlx=warn,tower_http=info".into(),
        json: json_logs,
        target: LogTarget::Stderr,
    };
    // Only the service exports traces; an operator command is not worth a trace pipeline.
    let telemetry = if serving {
        httvps_telemetry::init(service, logs)?
    } else {
        httvps_telemetry::init_with(service, logs, |_| None)?
    };
    if telemetry.exporting() {
        let endpoint = telemetry.endpoint().unwrap_or("the default endpoint");
        tracing::info!(endpoint, "exporting traces over OTLP");
    }
    let result = httvps_control_plane::cli::run(cli).await;
    telemetry.shutdown().await;
    result
}
