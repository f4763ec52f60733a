//! The `moq-relay` binary: parse flags and config, start logging, run the shards, and tell
//! systemd when the relay is ready.

use clap::Parser;
use moq_relay::config::{self, init_logging, Cli};
use moq_relay::runtime;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match config::load(&cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("moq-relay: {e}");
            return ExitCode::from(2);
        }
    };
    let logging = match init_logging(&config.log.level) {
        Ok(logging) => logging,
        Err(e) => {
            eprintln!("moq-relay: cannot start logging: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime::run(&config, |listening| {
        for addr in &listening.quic {
            tracing::info!(%addr, shards = listening.shards, "listening for QUIC");
        }
        for addr in &listening.http {
            tracing::info!(%addr, "listening for HTTP");
        }
        tracing::info!(fingerprint = %listening.fingerprint, "certificate");
        // The readiness line (runtime::READY), once, on stdout whatever the log level; a
        // closed stdout must not stop the relay.
        let _ = writeln!(std::io::stdout(), "{}", listening.ready_line());
        notify_systemd();
    });
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("moq-relay: {e}");
            ExitCode::FAILURE
        }
    };
    tracing::info!(
        log_lines_dropped = logging.dropped(),
        log_lines_suppressed = logging.suppressed(),
        "stopped"
    );
    logging.finish();
    code
}

/// Sends `READY=1` to systemd when started as a `Type=notify` service.
fn notify_systemd() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let socket = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(socket) => socket,
        Err(_) => return,
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)
            .and_then(|addr| socket.send_to_addr(b"READY=1", &addr))
    } else {
        socket.send_to(b"READY=1", &path)
    };
    if let Err(e) = sent {
        tracing::warn!(error = %e, "systemd notification failed");
    }
}
