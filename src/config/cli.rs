//! The command line, `moq-relay [OPTIONS] [CONFIG]` (clap derive). Every flag overrides one key
//! of the TOML file and may also come from a `MOQ_RELAY_*` environment variable; values are
//! checked by the same parsers as the file's (`parse.rs`), so a bad flag fails in clap with the
//! flag's name.

use super::peer::PeerUrl;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser};

use super::parse;
use super::parse::HostPort;
use crate::transport::quic::RetryMode;

/// A thread-per-core Media-over-QUIC (moq-lite) relay.
///
/// Reads CONFIG (TOML; see config/relay.toml for every key and its default), then applies the
/// flags, which override the file key by key. Without CONFIG the built-in defaults and the
/// flags are used; TLS and auth must be configured one way or the other.
#[derive(Debug, Clone, Default, PartialEq, Eq, Parser)]
#[command(name = "moq-relay", version, max_term_width = 100)]
#[command(after_help = "Example: moq-relay --shards 4 dev/relay.toml")]
pub struct Cli {
    /// The TOML configuration file.
    #[arg(value_name = "CONFIG", env = "MOQ_RELAY_CONFIG")]
    pub config: Option<PathBuf>,

    /// Shards (pinned executors) to run, 1-256 [server.shards; default: available cores].
    #[arg(long, value_name = "N", env = "MOQ_RELAY_SHARDS", value_parser = parse::parse_shards,
          help_heading = "Server")]
    pub shards: Option<usize>,

    /// Do not pin shards to cores [server.pin = false].
    #[arg(long, env = "MOQ_RELAY_NO_PIN", help_heading = "Server")]
    pub no_pin: bool,

    /// UDP address for QUIC (raw moq-lite and WebTransport).
    #[arg(long, value_name = "ADDR", env = "MOQ_RELAY_LISTEN",
          help = "UDP address for QUIC, raw moq-lite and WebTransport [server.listen; default: [::]:4443]",
          value_parser = parse::parse_socket_addr, help_heading = "Server")]
    pub listen: Option<SocketAddr>,

    /// PEM certificate chain [server.tls.cert].
    #[arg(
        long,
        value_name = "FILE",
        env = "MOQ_RELAY_TLS_CERT",
        help_heading = "TLS"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key: PKCS#8, SEC1 or RSA [server.tls.key].
    #[arg(
        long,
        value_name = "FILE",
        env = "MOQ_RELAY_TLS_KEY",
        help_heading = "TLS"
    )]
    pub tls_key: Option<PathBuf>,

    /// Generate a self-signed certificate (ECDSA P-256, 14 days) for NAME; repeatable
    /// [server.tls.generate].
    #[arg(long, value_name = "NAME", env = "MOQ_RELAY_TLS_GENERATE", action = ArgAction::Append,
          value_delimiter = ',', value_parser = parse::parse_tls_name,
          conflicts_with_all = ["tls_cert", "tls_key"], help_heading = "TLS")]
    pub tls_generate: Vec<String>,

    /// TCP address for HTTP and WebSocket [web.http.listen; default: off].
    #[arg(long, value_name = "ADDR", env = "MOQ_RELAY_WEB_HTTP_LISTEN",
          value_parser = parse::parse_socket_addr, help_heading = "Web")]
    pub web_http_listen: Option<SocketAddr>,

    /// A path prefix anyone may use without a token ("anon"; "" = everything); repeatable
    /// [auth.public].
    #[arg(long, value_name = "PREFIX", env = "MOQ_RELAY_AUTH_PUBLIC", action = ArgAction::Append,
          value_delimiter = ',', value_parser = parse::normalize_public_prefix,
          help_heading = "Auth")]
    pub auth_public: Vec<String>,

    /// JWK file with the key that verifies tokens [auth.key].
    #[arg(
        long,
        value_name = "FILE",
        env = "MOQ_RELAY_AUTH_KEY",
        help_heading = "Auth"
    )]
    pub auth_key: Option<PathBuf>,

    /// Refuse tokens without an expiry (exp); by default exp is checked only when present
    /// [auth.require_exp = true].
    #[arg(long, env = "MOQ_RELAY_AUTH_REQUIRE_EXP", help_heading = "Auth")]
    pub auth_require_exp: bool,

    /// Log level or filter, e.g. "debug" or "info,moq_relay=debug"; RUST_LOG overrides it
    /// [log.level; default: info].
    #[arg(long, value_name = "LEVEL", env = "MOQ_RELAY_LOG_LEVEL",
          value_parser = parse::parse_log_level, help_heading = "Logging")]
    pub log_level: Option<String>,

    /// How long a broadcast stays announced after its publisher vanished [relay.linger; default: 5s].
    #[arg(long, value_name = "DUR", env = "MOQ_RELAY_LINGER",
          value_parser = parse::parse_any_duration, help_heading = "Relay")]
    pub linger: Option<Duration>,

    /// Cap on how long non-latest groups are cached [relay.cache_duration; default: 30s].
    #[arg(long, value_name = "DUR", env = "MOQ_RELAY_CACHE_DURATION",
          value_parser = parse::parse_nonzero_duration, help_heading = "Relay")]
    pub cache_duration: Option<Duration>,

    /// Per-group cache cap in bytes [relay.max_group_bytes; default: 33554432].
    #[arg(long, value_name = "BYTES", env = "MOQ_RELAY_MAX_GROUP_BYTES",
          value_parser = parse::parse_positive, help_heading = "Relay")]
    pub max_group_bytes: Option<u64>,

    /// Largest frame accepted, in bytes [relay.max_frame_bytes; default: 33554432].
    #[arg(long, value_name = "BYTES", env = "MOQ_RELAY_MAX_FRAME_BYTES",
          value_parser = parse::parse_positive, help_heading = "Relay")]
    pub max_frame_bytes: Option<u64>,

    /// Close QUIC connections idle this long [quic.idle_timeout; default: 30s].
    #[arg(long, value_name = "DUR", env = "MOQ_RELAY_IDLE_TIMEOUT",
          value_parser = parse::parse_nonzero_duration, help_heading = "QUIC")]
    pub idle_timeout: Option<Duration>,

    /// PING quiet QUIC connections this often [quic.keep_alive; default: 5s].
    #[arg(long, value_name = "DUR", env = "MOQ_RELAY_KEEP_ALIVE",
          value_parser = parse::parse_nonzero_duration, help_heading = "QUIC")]
    pub keep_alive: Option<Duration>,

    /// Initial bidi and uni stream credit per connection [quic.max_streams; default: 10000].
    #[arg(long, value_name = "N", env = "MOQ_RELAY_MAX_STREAMS",
          value_parser = parse::parse_positive, help_heading = "QUIC")]
    pub max_streams: Option<u64>,

    /// Close connections whose handshake has not completed this long after their first
    /// packet [quic.handshake_timeout; default: 10s].
    #[arg(long, value_name = "DUR", env = "MOQ_RELAY_HANDSHAKE_TIMEOUT",
          value_parser = parse::parse_nonzero_duration, help_heading = "QUIC")]
    pub handshake_timeout: Option<Duration>,

    /// When new clients must answer a stateless Retry first: auto (when a shard or an IP has
    /// many unproven handshakes), always, never [quic.retry; default: auto].
    #[arg(long, value_name = "MODE", env = "MOQ_RELAY_RETRY",
          value_parser = parse::parse_retry, help_heading = "QUIC")]
    pub retry: Option<RetryMode>,

    /// Unproven handshakes in flight (or begun within a second) on a shard before clients
    /// must answer a Retry [limits.unvalidated_handshakes; default: 64].
    #[arg(long, value_name = "N", env = "MOQ_RELAY_UNVALIDATED_HANDSHAKES",
          value_parser = parse::parse_positive, help_heading = "Limits")]
    pub unvalidated_handshakes: Option<u64>,

    /// Unproven handshakes in flight from one IP on a shard; beyond it a new client must
    /// answer a Retry [limits.handshakes_per_ip; default: 32].
    #[arg(long, value_name = "N", env = "MOQ_RELAY_HANDSHAKES_PER_IP",
          value_parser = parse::parse_positive, help_heading = "Limits")]
    pub handshakes_per_ip: Option<u64>,

    /// Proven handshakes (the client answered a Retry) in flight from one IP on a shard;
    /// beyond it a proven Initial is dropped [limits.proven_handshakes_per_ip; default: 256].
    #[arg(long, value_name = "N", env = "MOQ_RELAY_PROVEN_HANDSHAKES_PER_IP",
          value_parser = parse::parse_positive, help_heading = "Limits")]
    pub proven_handshakes_per_ip: Option<u64>,

    /// Messages each control lane between two shards holds [limits.mesh_control_lane; default: 1024].
    #[arg(long, value_name = "N", env = "MOQ_RELAY_MESH_CONTROL_LANE",
          value_parser = parse::parse_positive, help_heading = "Limits")]
    pub mesh_control_lane: Option<u64>,

    /// Messages each data lane between two shards holds [limits.mesh_data_lane; default: 4096].
    #[arg(long, value_name = "N", env = "MOQ_RELAY_MESH_DATA_LANE",
          value_parser = parse::parse_positive, help_heading = "Limits")]
    pub mesh_data_lane: Option<u64>,

    /// Control messages queued behind a full lane before new subscriptions and announcements
    /// are refused [limits.mesh_control_backlog; default: 65536].
    #[arg(long, value_name = "N", env = "MOQ_RELAY_MESH_CONTROL_BACKLOG",
          value_parser = parse::parse_positive, help_heading = "Limits")]
    pub mesh_control_backlog: Option<u64>,

    /// Media messages queued behind a full lane before groups are reset for the shard behind
    /// [limits.mesh_data_backlog; default: 16384].
    #[arg(long, value_name = "N", env = "MOQ_RELAY_MESH_DATA_BACKLOG",
          value_parser = parse::parse_positive, help_heading = "Limits")]
    pub mesh_data_backlog: Option<u64>,

    /// Close connections whose session (SETUP, WebTransport CONNECT, QMux parameters) has not
    /// started this long after the handshake [limits.setup_timeout; default: 10s].
    #[arg(long, value_name = "DUR", env = "MOQ_RELAY_SETUP_TIMEOUT",
          value_parser = parse::parse_nonzero_duration, help_heading = "Limits")]
    pub setup_timeout: Option<Duration>,

    /// The cluster root's host:port; unset (or equal to --cluster-node) = this relay is the root
    /// [cluster.root].
    #[arg(long, value_name = "ADDR", env = "MOQ_RELAY_CLUSTER_ROOT",
          value_parser = parse::parse_host_port, help_heading = "Cluster")]
    pub cluster_root: Option<HostPort>,

    /// This relay's host:port as other relays dial it [cluster.node].
    #[arg(long, value_name = "ADDR", env = "MOQ_RELAY_CLUSTER_NODE",
          value_parser = parse::parse_host_port, help_heading = "Cluster")]
    pub cluster_node: Option<HostPort>,

    /// Stable hop id, 1 to 2^53-1; random if unset [cluster.id].
    #[arg(long, value_name = "N", env = "MOQ_RELAY_CLUSTER_ID",
          value_parser = parse::parse_cluster_id, help_heading = "Cluster")]
    pub cluster_id: Option<u64>,

    /// A relay to dial and peer with, moqt://host:port[/?jwt=…][&fingerprint=<sha256>];
    /// repeatable [cluster.peers].
    #[arg(long, value_name = "URL", help_heading = "Cluster")]
    pub cluster_peer: Vec<PeerUrl>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    #[test]
    fn command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_every_flag() {
        let cli = Cli::try_parse_from([
            "moq-relay",
            "--shards",
            "4",
            "--no-pin",
            "--listen",
            "[::]:443",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--web-http-listen",
            "0.0.0.0:80",
            "--auth-public",
            "anon/**",
            "--auth-public",
            "/demo/",
            "--auth-key",
            "root.jwk",
            "--log-level",
            "debug",
            "--linger",
            "0s",
            "--cache-duration",
            "1m",
            "--max-group-bytes",
            "1000",
            "--max-frame-bytes",
            "100",
            "--idle-timeout",
            "10s",
            "--keep-alive",
            "2s",
            "--max-streams",
            "100",
            "--cluster-root",
            "root.example.com:4443",
            "--cluster-node",
            "[::1]:4443",
            "--cluster-id",
            "123",
            "relay.toml",
        ])
        .unwrap();
        assert_eq!(cli.config, Some(PathBuf::from("relay.toml")));
        assert_eq!(cli.shards, Some(4));
        assert!(cli.no_pin);
        assert_eq!(cli.listen, Some("[::]:443".parse().unwrap()));
        assert_eq!(cli.auth_public, ["anon", "demo"]);
        assert_eq!(cli.linger, Some(Duration::ZERO));
        assert_eq!(cli.cache_duration, Some(Duration::from_secs(60)));
        assert_eq!(cli.cluster_node.unwrap().to_string(), "[::1]:4443");
        assert_eq!(cli.cluster_id, Some(123));
    }

    #[test]
    fn repeatable_generate() {
        let cli = Cli::try_parse_from([
            "moq-relay",
            "--tls-generate",
            "localhost",
            "--tls-generate",
            "Relay.Example.com,127.0.0.1",
        ])
        .unwrap();
        assert_eq!(
            cli.tls_generate,
            ["localhost", "relay.example.com", "127.0.0.1"]
        );
        assert_eq!(cli.config, None);
    }

    #[test]
    fn bad_values_fail_in_clap() {
        for args in [
            &["--shards", "0"][..],
            &["--shards", "257"],
            &["--listen", "foo"],
            &["--linger", "5"],
            &["--idle-timeout", "0s"],
            &["--cluster-id", "0"],
            &["--cluster-root", "nohost"],
            &["--auth-public", "a/*"],
            &["--log-level", "loud"],
            &["--tls-generate", "a b"],
        ] {
            let e = Cli::try_parse_from(std::iter::once("moq-relay").chain(args.iter().copied()))
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ValueValidation, "{args:?}: {e}");
        }
        let e = Cli::try_parse_from(["moq-relay", "--tls-generate", "x", "--tls-cert", "c"])
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ArgumentConflict);
        let e = Cli::try_parse_from(["moq-relay", "--bogus"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownArgument);
    }

    #[test]
    fn version_and_help() {
        let e = Cli::try_parse_from(["moq-relay", "--version"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DisplayVersion);
        let e = Cli::try_parse_from(["moq-relay", "--help"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DisplayHelp);
        let help = e.to_string();
        for flag in [
            "--shards",
            "--tls-generate",
            "--auth-public",
            "--no-pin",
            "[CONFIG]",
        ] {
            assert!(help.contains(flag), "{flag} missing from help:\n{help}");
        }
    }
}
