//! Command-line arguments of `moq-bench`, with per-workload defaults resolved into [`Args`].

use clap::{CommandFactory, Parser, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The load shapes the generator can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// One publisher, one broadcast, one track, `--subscribers` viewers.
    Fanout,
    /// `--broadcasts` publishers, each with `--subscribers` viewers.
    Broadcasts,
    /// `--users` connections, each publishing one-frame groups and subscribing to a partner.
    Chat,
    /// `--connections` connections that complete SETUP and then stay idle.
    Idle,
}

/// What carries the moq-lite sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// Raw QUIC, ALPN `moq-lite-05`; the path travels in SETUP.
    Quic,
    /// WebTransport over HTTP/3, ALPN `h3`; the path travels in the CONNECT.
    Webtransport,
}

/// How the generator's QUIC connections behave towards the relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    /// Like a published moq-native (quinn) client: an ACK every second packet or after
    /// 25 ms, 1024 streams each way, 1.25 MB per stream.
    Quinn,
    /// This generator before it copied quinn: an ACK after every wake-up with packets,
    /// 10,000 streams, 16 MiB per stream and 64 MiB per connection. Kept to show what the
    /// difference costs a relay.
    Eager,
}

/// A moq-lite-05 load generator over raw QUIC or WebTransport.
#[derive(Parser, Debug, Clone)]
#[command(name = "moq-bench", version, args_override_self = true)]
pub struct Cli {
    /// The relay's UDP address.
    #[arg(long, default_value = "127.0.0.1:4443")]
    pub relay: SocketAddr,
    /// The path sent in SETUP (the session root).
    #[arg(long, default_value = "/anon")]
    pub path: String,
    /// TLS server name.
    #[arg(long, default_value = "localhost")]
    pub server_name: String,
    #[arg(long, value_enum, default_value = "fanout")]
    pub workload: Workload,
    /// Raw QUIC or WebTransport.
    #[arg(long, value_enum, default_value = "quic")]
    pub transport: TransportKind,
    /// Whose QUIC behaviour to copy (acknowledgement schedule and credit).
    #[arg(long, value_enum, default_value = "quinn")]
    pub client: ClientKind,
    /// Worker threads, each an event loop owning a share of the connections.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Subscribers per broadcast (fanout, broadcasts).
    #[arg(long, default_value_t = 10)]
    pub subscribers: usize,
    /// Publishers (broadcasts workload).
    #[arg(long, default_value_t = 10)]
    pub broadcasts: usize,
    /// Users (chat workload).
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Connections (idle workload).
    #[arg(long, default_value_t = 100)]
    pub connections: usize,
    /// Frames (chat: messages) per second per track. Default 30, chat 10.
    #[arg(long)]
    pub fps: Option<f64>,
    /// Bytes per frame, at least 16. Default 4096, chat 200.
    #[arg(long)]
    pub frame_bytes: Option<usize>,
    /// Seconds per group (chat always uses one-frame groups).
    #[arg(long, default_value_t = 2.0)]
    pub group_secs: f64,
    /// While the measured window runs, flood the relay with fake client Initials from this
    /// many UDP sockets (as fast as one thread can send; 0: no flood). The report's
    /// longest gap is what the flood did to the viewers.
    #[arg(long, default_value_t = 0)]
    pub flood_ports: usize,
    /// What the flood sends: random bytes behind a valid Initial header, or real client
    /// Initials (a few hundred, in turn).
    #[arg(long, value_enum, default_value = "encrypted")]
    pub flood_kind: crate::flood::FloodKind,
    /// Time before the measured window, e.g. `3s`.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Length of the measured window, e.g. `20s`.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,
    /// New connections per second, across all threads.
    #[arg(long, default_value_t = 200.0)]
    pub ramp: f64,
    /// Handshake (and SETUP) timeout per connection.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Verify the relay's certificate (off by default: dev relays are self-signed).
    #[arg(long)]
    pub verify: bool,
    /// Start from a named workload (see `--list-presets`); other flags given override it.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// Print the named workloads and exit.
    #[arg(long)]
    pub list_presets: bool,
    /// The relay's process id, when it runs on this host: its CPU time over the measured
    /// window and its RSS are reported beside the load's figures.
    #[arg(long, value_name = "PID")]
    pub relay_pid: Option<u32>,
}

/// Parses `20s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {text:?}"))?;
    if !(0.0..=86_400.0).contains(&(value * scale)) {
        return Err(format!("duration out of range: {text:?}"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

/// The arguments with every per-workload default filled in.
#[derive(Debug, Clone)]
pub struct Args {
    pub cli: Cli,
    pub fps: f64,
    pub frame_bytes: usize,
}

impl Args {
    /// Parses `argv` (presets expanded) and validates it.
    pub fn parse_from(argv: Vec<String>) -> Result<Self, clap::Error> {
        let argv = crate::presets::expand(argv)
            .map_err(|e| Cli::command().error(clap::error::ErrorKind::InvalidValue, e))?;
        let cli = Cli::try_parse_from(argv)?;
        Self::from_cli(cli)
            .map_err(|e| Cli::command().error(clap::error::ErrorKind::InvalidValue, e))
    }

    /// Resolves defaults and checks ranges.
    pub fn from_cli(cli: Cli) -> Result<Self, String> {
        let chat = cli.workload == Workload::Chat;
        let fps = cli.fps.unwrap_or(if chat { 10.0 } else { 30.0 });
        let frame_bytes = cli.frame_bytes.unwrap_or(if chat { 200 } else { 4096 });
        if !(0.01..=10_000.0).contains(&fps) {
            return Err("--fps must be between 0.01 and 10000".into());
        }
        if !(16..=16 << 20).contains(&frame_bytes) {
            return Err("--frame-bytes must be between 16 and 16 MiB".into());
        }
        if cli.threads == 0 || cli.threads > 256 {
            return Err("--threads must be between 1 and 256".into());
        }
        if cli.group_secs <= 0.0 {
            return Err("--group-secs must be positive".into());
        }
        if cli.ramp <= 0.0 {
            return Err("--ramp must be positive".into());
        }
        if cli.flood_ports > 1024 {
            return Err("--flood-ports must be at most 1024".into());
        }
        if cli.duration.is_zero() {
            return Err("--duration must be positive".into());
        }
        Ok(Self {
            cli,
            fps,
            frame_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("x").is_err());
    }
}
