//! Tests of loading, merging and validating the configuration.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use super::*;
use crate::transport::quic::RetryMode;

const DEV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/dev/relay.toml");
const PROD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/relay.toml");
const DEV_KEY: &str = include_str!("../../dev/root.jwk");

fn cli(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("moq-relay").chain(args.iter().copied())).unwrap()
}

/// Parses `text` as `relay.toml` with the given flags.
fn parse(text: &str, args: &[&str]) -> Result<Config, ConfigError> {
    from_toml(text, Some(Path::new("relay.toml")), &cli(args))
}

fn err(text: &str, args: &[&str]) -> ConfigError {
    parse(text, args).unwrap_err()
}

const MINIMAL: &str = "[server.tls]\ngenerate = [\"localhost\"]\n[auth]\npublic = \"anon\"\n";

#[test]
fn dev_config_parses() {
    let config = load(&cli(&[DEV])).unwrap();
    assert_eq!(config.file.as_deref(), Some(Path::new(DEV)));
    assert_eq!(config.log.level, "info");
    assert_eq!(config.server.listen, "[::]:4443".parse().unwrap());
    assert_eq!(
        config.server.tls,
        TlsConfig::Generate {
            names: vec!["localhost".into()]
        }
    );
    assert_eq!(
        config.web.http,
        Some(HttpConfig {
            listen: "[::]:4443".parse().unwrap()
        })
    );
    assert_eq!(config.auth.public, ["anon"]);
    assert_eq!(config.auth.key, Some(PathBuf::from("dev/root.jwk")));
    let dev_key = config.auth.jwk.as_ref().unwrap();
    assert_eq!(
        dev_key.kid.as_deref(),
        Some("DEVELOPMENT-ONLY-not-a-secret")
    );
    assert_eq!(config.server.shards, default_shards());
    assert!(config.server.pin);
    assert_eq!(config.relay, RelayConfig::default());
    assert_eq!(config.quic, QuicConfig::default());
    assert_eq!(config.cluster, ClusterConfig::default());
    assert!(config.cluster.is_root());
}

#[test]
fn production_example_uses_only_known_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, jwk) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("root.jwk"),
    );
    std::fs::write(&jwk, DEV_KEY).unwrap();
    for f in [&cert, &key] {
        std::fs::write(f, "x").unwrap();
    }
    let text = std::fs::read_to_string(PROD).unwrap();
    let config = parse(
        &text,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--auth-key",
            jwk.to_str().unwrap(),
        ],
    )
    .unwrap();
    assert_eq!(config.server.tls, TlsConfig::Files { cert, key });
    assert_eq!(config.auth.public, Vec::<String>::new());
    assert_eq!(config.auth.key, Some(jwk.clone()));
    // The example documents the defaults.
    assert_eq!(config.relay, RelayConfig::default());
    assert_eq!(config.quic, QuicConfig::default());
    assert_eq!(config.limits, LimitsConfig::default());
    assert_eq!(config.log, LogConfig::default());
    assert_eq!(config.server.listen, DEFAULT_LISTEN);

    // And its files are checked when not overridden.
    let e = parse(&text, &["--auth-key", jwk.to_str().unwrap()]).unwrap_err();
    assert_eq!(e.key(), Some("server.tls.cert"));
    assert!(e.to_string().contains("/etc/moq-relay/cert.pem"), "{e}");
}

#[test]
fn defaults_without_a_file() {
    let config = load(&cli(&[
        "--tls-generate",
        "localhost",
        "--auth-public",
        "anon",
    ]))
    .unwrap();
    assert_eq!(config.file, None);
    assert_eq!(config.server.listen, DEFAULT_LISTEN);
    assert_eq!(config.web.http, None);
    assert_eq!(config.relay.linger, Duration::from_secs(5));
    assert_eq!(config.relay.cache_duration, Duration::from_secs(30));
    assert_eq!(config.relay.max_group_bytes, 33_554_432);
    assert_eq!(config.relay.max_frame_bytes, 33_554_432);
    assert_eq!(config.quic.idle_timeout, Duration::from_secs(30));
    assert_eq!(config.quic.keep_alive, Duration::from_secs(5));
    assert_eq!(config.quic.max_streams, 10_000);
    let mut expected = Config::default();
    expected.auth.public = vec!["anon".into()];
    assert_eq!(config, expected);
}

#[test]
fn unknown_key_is_named() {
    let e = err("[server]\nlisen = \"[::]:4443\"\n", &[]);
    assert_eq!(e.kind(), ErrorKind::UnknownKey);
    assert_eq!(e.key(), Some("server.lisen"));
    let msg = e.to_string();
    assert!(
        msg.starts_with("relay.toml: unknown key `server.lisen` (expected one of `listen`"),
        "{msg}"
    );
    assert!(msg.ends_with("at line 2, column 1"), "{msg}");

    let e = err("[relay]\nlinger = \"1s\"\ncache = \"1s\"\n", &[]);
    assert!(e.to_string().contains("unknown key `relay.cache`"), "{e}");
    let e = err("[clusters]\nid = 1\n", &[]);
    assert!(e.to_string().contains("unknown key `clusters`"), "{e}");
}

#[test]
fn bad_address_names_server_listen() {
    let e = err(&format!("{MINIMAL}[server]\nlisten = \"foo\"\n"), &[]);
    assert_eq!(e.key(), Some("server.listen"));
    let msg = e.to_string();
    assert!(
        msg.starts_with(r#"relay.toml: server.listen: invalid socket address "foo""#),
        "{msg}"
    );
    assert!(msg.ends_with("at line 6, column 10"), "{msg}");

    let e = err(&format!("{MINIMAL}[web.http]\nlisten = \"[::]\"\n"), &[]);
    assert_eq!(e.key(), Some("web.http.listen"));
    let e = err(&format!("{MINIMAL}[server]\nlisten = 4443\n"), &[]);
    assert_eq!(e.key(), Some("server.listen"));
    assert!(e.to_string().contains("expected a string"), "{e}");
}

#[test]
fn missing_file_is_named() {
    let e = load(&cli(&["/nonexistent/relay.toml"])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert_eq!(e.file(), Some(Path::new("/nonexistent/relay.toml")));
    let msg = e.to_string();
    assert!(msg.starts_with("/nonexistent/relay.toml: "), "{msg}");
    assert!(msg.contains("No such file"), "{msg}");

    let dir = tempfile::tempdir().unwrap();
    let e = load(&cli(&[dir.path().to_str().unwrap()])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
}

#[test]
fn syntax_error_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(&file, "[server]\nlisten = [::]:4443\n").unwrap();
    let e = load(&cli(&[file.to_str().unwrap()])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Syntax);
    assert_eq!(e.file(), Some(file.as_path()));
    let msg = e.to_string();
    assert!(msg.contains("broken.toml: TOML syntax error: "), "{msg}");
    assert!(msg.contains("at line 2, column"), "{msg}");
}

#[test]
fn cli_overrides_the_file() {
    let file = r#"
        [log]
        level = "warn"
        [server]
        listen = "127.0.0.1:1000"
        shards = 3
        [server.tls]
        generate = ["file.example.com"]
        [web.http]
        listen = "127.0.0.1:1001"
        [auth]
        public = ["file"]
        [relay]
        linger = "1s"
        cache_duration = "2s"
        [quic]
        idle_timeout = "20s"
        [cluster]
        root = "root.example.com:1"
        node = "file.example.com:1"
        id = 1
    "#;
    let config = parse(file, &[]).unwrap();
    assert_eq!(config.server.shards, 3);
    assert_eq!(config.auth.public, ["file"]);
    assert!(!config.cluster.is_root());

    let config = parse(
        file,
        &[
            "--log-level",
            "debug",
            "--listen",
            "127.0.0.1:2000",
            "--shards",
            "5",
            "--no-pin",
            "--tls-generate",
            "cli.example.com",
            "--web-http-listen",
            "127.0.0.1:2001",
            "--auth-public",
            "cli",
            "--linger",
            "0s",
            "--cache-duration",
            "3s",
            "--idle-timeout",
            "40s",
            "--cluster-root",
            "cli.example.com:2",
            "--cluster-node",
            "cli.example.com:2",
            "--cluster-id",
            "2",
        ],
    )
    .unwrap();
    assert_eq!(config.log.level, "debug");
    assert_eq!(config.server.listen, "127.0.0.1:2000".parse().unwrap());
    assert_eq!(config.server.shards, 5);
    assert!(!config.server.pin);
    assert_eq!(
        config.server.tls,
        TlsConfig::Generate {
            names: vec!["cli.example.com".into()]
        }
    );
    assert_eq!(
        config.web.http.unwrap().listen,
        "127.0.0.1:2001".parse().unwrap()
    );
    assert_eq!(config.auth.public, ["cli"]);
    assert_eq!(config.relay.linger, Duration::ZERO);
    assert_eq!(config.relay.cache_duration, Duration::from_secs(3));
    assert_eq!(config.quic.idle_timeout, Duration::from_secs(40));
    assert_eq!(config.cluster.id, Some(2));
    assert!(config.cluster.is_root());
}

#[test]
fn tls_flags_replace_the_files_other_mode() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert, "x").unwrap();
    std::fs::write(&key, "x").unwrap();
    // File says generate; flags say files.
    let config = parse(
        MINIMAL,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    )
    .unwrap();
    assert_eq!(
        config.server.tls,
        TlsConfig::Files {
            cert: cert.clone(),
            key: key.clone()
        }
    );
    // File says files; the flag says generate.
    let text = format!(
        "[server.tls]\ncert = {:?}\nkey = {:?}\n[auth]\npublic = \"\"\n",
        cert.to_str().unwrap(),
        key.to_str().unwrap()
    );
    let config = parse(&text, &[]).unwrap();
    assert!(matches!(config.server.tls, TlsConfig::Files { .. }));
    let config = parse(&text, &["--tls-generate", "localhost"]).unwrap();
    assert_eq!(config.server.tls, TlsConfig::default());
    // One flag overrides one key.
    let other = dir.path().join("other.pem");
    std::fs::write(&other, "x").unwrap();
    let config = parse(&text, &["--tls-key", other.to_str().unwrap()]).unwrap();
    assert_eq!(config.server.tls, TlsConfig::Files { cert, key: other });
}

#[test]
fn durations_parse() {
    let text = format!(
        "{MINIMAL}[relay]\nlinger = \"0s\"\ncache_duration = \"1m30s\"\n[quic]\nidle_timeout = \"1.5s\"\nkeep_alive = \"250ms\"\n"
    );
    let config = parse(&text, &[]).unwrap();
    assert_eq!(config.relay.linger, Duration::ZERO);
    assert_eq!(config.relay.cache_duration, Duration::from_secs(90));
    assert_eq!(config.quic.idle_timeout, Duration::from_millis(1500));
    assert_eq!(config.quic.keep_alive, Duration::from_millis(250));

    let e = err(&format!("{MINIMAL}[relay]\nlinger = \"5 parsecs\"\n"), &[]);
    assert_eq!(e.key(), Some("relay.linger"));
    assert!(e.to_string().contains(r#"unknown unit "parsecs""#), "{e}");
    let e = err(&format!("{MINIMAL}[relay]\nlinger = 5\n"), &[]);
    assert_eq!(e.key(), Some("relay.linger"));
    assert!(e.to_string().contains("expected a duration string"), "{e}");
}

#[test]
fn zero_durations_are_refused_where_meaningless() {
    for key in [
        "[relay]\ncache_duration",
        "[quic]\nidle_timeout",
        "[quic]\nkeep_alive",
    ] {
        let e = err(&format!("{MINIMAL}{key} = \"0s\"\n"), &[]);
        assert!(e.reason().contains("greater than zero"), "{e}");
    }
    let e = err(&format!("{MINIMAL}[relay]\nlinger = \"400d\"\n"), &[]);
    assert!(e.reason().contains("too long"), "{e}");
}

#[test]
fn keep_alive_must_be_shorter_than_idle_timeout() {
    let e = err(&format!("{MINIMAL}[quic]\nkeep_alive = \"30s\"\n"), &[]);
    assert_eq!(e.key(), Some("quic.keep_alive"));
    assert!(
        e.to_string()
            .contains("30s must be shorter than quic.idle_timeout (30s)"),
        "{e}"
    );
    let e = err(&format!("{MINIMAL}[quic]\nidle_timeout = \"2s\"\n"), &[]);
    assert_eq!(e.key(), Some("quic.idle_timeout"));
    assert!(
        e.to_string()
            .contains("2s must be longer than quic.keep_alive (5s)"),
        "{e}"
    );
    let e = err(MINIMAL, &["--idle-timeout", "1s"]);
    assert_eq!(e.flag(), Some("--idle-timeout"));
    assert!(
        e.to_string()
            .starts_with("quic.idle_timeout (--idle-timeout): "),
        "{e}"
    );
}

#[test]
fn sizes_are_validated() {
    let e = err(&format!("{MINIMAL}[relay]\nmax_group_bytes = 0\n"), &[]);
    assert_eq!(e.key(), Some("relay.max_group_bytes"));
    let e = err(&format!("{MINIMAL}[relay]\nmax_group_bytes = 1000\n"), &[]);
    assert_eq!(e.key(), Some("relay.max_frame_bytes"));
    let config = parse(
        &format!("{MINIMAL}[relay]\nmax_group_bytes = 1000\nmax_frame_bytes = 1000\n"),
        &[],
    )
    .unwrap();
    assert_eq!(config.relay.max_group_bytes, 1000);
    let e = err(&format!("{MINIMAL}[quic]\nmax_streams = 0\n"), &[]);
    assert_eq!(e.key(), Some("quic.max_streams"));
    let e = err(
        &format!("{MINIMAL}[quic]\nmax_streams = {}\n", (1u64 << 60) + 1),
        &[],
    );
    assert_eq!(e.key(), Some("quic.max_streams"));
}

#[test]
fn tls_validation() {
    let auth = "[auth]\npublic = \"anon\"\n";
    let e = err(auth, &[]);
    assert_eq!(e.key(), Some("server.tls"));
    assert!(e.reason().contains("no certificate configured"), "{e}");

    let e = err(&format!("{auth}[server.tls]\ngenerate = []\n"), &[]);
    assert_eq!(e.key(), Some("server.tls.generate"));

    let e = err(&format!("{auth}[server.tls]\ncert = \"c.pem\"\n"), &[]);
    assert_eq!(e.key(), Some("server.tls"));
    assert!(e.reason().contains("cert is set but key is not"), "{e}");

    let e = err(&format!("{auth}[server.tls]\nkey = \"k.pem\"\n"), &[]);
    assert!(e.reason().contains("key is set but cert is not"), "{e}");

    let e = err(
        &format!(
            "{auth}[server.tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\ngenerate = [\"localhost\"]\n"
        ),
        &[],
    );
    assert!(e.reason().contains("not both"), "{e}");
    assert_eq!(e.position().map(|p| p.line), Some(6));

    let e = err(
        &format!("{auth}[server.tls]\ngenerate = [\"ok\", \"not ok\"]\n"),
        &[],
    );
    assert_eq!(e.key(), Some("server.tls.generate[1]"));

    let e = err(
        &format!(
            "{auth}[server.tls]\ncert = \"/nonexistent/c.pem\"\nkey = \"/nonexistent/k.pem\"\n"
        ),
        &[],
    );
    assert_eq!(e.key(), Some("server.tls.cert"));
    let msg = e.to_string();
    assert!(
        msg.starts_with(r#"relay.toml: server.tls.cert: cannot read "/nonexistent/c.pem""#),
        "{msg}"
    );
    let e = err(
        auth,
        &[
            "--tls-cert",
            "/nonexistent/c.pem",
            "--tls-key",
            "/nonexistent/k.pem",
        ],
    );
    assert!(
        e.to_string()
            .starts_with("server.tls.cert (--tls-cert): cannot read"),
        "{e}"
    );

    let config = parse(
        &format!("{auth}[server.tls]\ngenerate = [\"LOCALHOST\", \"localhost\", \"[::1]\"]\n"),
        &[],
    )
    .unwrap();
    assert_eq!(
        config.server.tls,
        TlsConfig::Generate {
            names: vec!["localhost".into(), "::1".into()]
        }
    );
}

#[test]
fn auth_validation() {
    let tls = "[server.tls]\ngenerate = [\"localhost\"]\n";
    let e = err(tls, &[]);
    assert_eq!(e.key(), Some("auth"));
    let msg = e.to_string();
    assert!(msg.contains("no authentication configured"), "{msg}");
    assert!(
        msg.contains("auth.public") && msg.contains("auth.key"),
        "{msg}"
    );
    let e = err(&format!("{tls}[auth]\npublic = []\n"), &[]);
    assert_eq!(e.key(), Some("auth"));

    let e = err(
        &format!("{tls}[auth]\nkey = \"/nonexistent/root.jwk\"\n"),
        &[],
    );
    assert_eq!(e.key(), Some("auth.key"));
    assert!(e.to_string().contains("/nonexistent/root.jwk"), "{e}");

    let e = err(&format!("{tls}[auth]\npublic = \"a/*/b\"\n"), &[]);
    assert_eq!(e.key(), Some("auth.public"));

    let dir = tempfile::tempdir().unwrap();
    let jwk = dir.path().join("root.jwk");
    std::fs::write(&jwk, DEV_KEY).unwrap();
    let config = parse(
        &format!("{tls}[auth]\nkey = {:?}\n", jwk.to_str().unwrap()),
        &[],
    )
    .unwrap();
    assert_eq!(config.auth.key, Some(jwk.clone()));
    assert!(config.auth.public.is_empty());
    assert!(
        !config.auth.require_exp,
        "exp is checked only when present by default"
    );
    let key_line = format!("{tls}[auth]\nkey = {:?}\n", jwk.to_str().unwrap());
    let required = parse(&format!("{key_line}require_exp = true\n"), &[]).unwrap();
    assert!(required.auth.require_exp);
    assert!(
        parse(&key_line, &["--auth-require-exp"])
            .unwrap()
            .auth
            .require_exp
    );
    let e = err(&format!("{key_line}require_exp = \"yes\"\n"), &[]);
    assert_eq!(e.key(), Some("auth.require_exp"), "{e}");

    // A key that cannot be parsed or used stops start-up naming the file and the reason.
    for (content, reason) in [
        ("{}", "missing \"alg\""),
        ("not a key", "not a JWK"),
        (r#"{"alg":"HS256","k":"c2hvcnQ"}"#, "at least 32"),
        (
            r#"{"alg":"HS256","k":"ivHWmtyy5C_r882OyKhHR6Zl73r9BiDeyhIJkRa0WIw","key_ops":["sign"]}"#,
            "verify",
        ),
    ] {
        std::fs::write(&jwk, content).unwrap();
        let e = parse(
            &format!("{tls}[auth]\nkey = {:?}\n", jwk.to_str().unwrap()),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.key(), Some("auth.key"), "{e}");
        let shown = e.to_string();
        assert!(
            shown.contains("root.jwk") && shown.contains(reason),
            "{shown}"
        );
    }

    let config = parse(
        &format!("{tls}[auth]\npublic = [\"/anon/\", \"anon/**\", \"demo//live\", \"**\"]\n"),
        &[],
    )
    .unwrap();
    assert_eq!(config.auth.public, ["anon", "demo/live", ""]);
}

#[test]
fn cluster_validation() {
    let e = err(&format!("{MINIMAL}[cluster]\nid = 0\n"), &[]);
    assert_eq!(e.key(), Some("cluster.id"));
    assert!(e.reason().contains("non-zero"), "{e}");
    let e = err(&format!("{MINIMAL}[cluster]\nid = {}\n", 1u64 << 53), &[]);
    assert_eq!(e.key(), Some("cluster.id"));
    let e = err(&format!("{MINIMAL}[cluster]\nid = -5\n"), &[]);
    assert_eq!(e.key(), Some("cluster.id"));
    let config = parse(&format!("{MINIMAL}[cluster]\nid = {}\n", MAX_HOP_ID), &[]).unwrap();
    assert_eq!(config.cluster.id, Some(MAX_HOP_ID));

    let e = err(&format!("{MINIMAL}[cluster]\nroot = \"root\"\n"), &[]);
    assert_eq!(e.key(), Some("cluster.root"));
    let e = err(&format!("{MINIMAL}[cluster]\nroot = \"root:1\"\n"), &[]);
    assert_eq!(e.key(), Some("cluster.node"));
    let config = parse(&format!("{MINIMAL}[cluster]\nnode = \"[::1]:4443\"\n"), &[]).unwrap();
    assert!(config.cluster.is_root());
    assert_eq!(config.cluster.node.unwrap().to_string(), "[::1]:4443");

    for _ in 0..100 {
        let id = ClusterConfig::random_id();
        assert!((1..=MAX_HOP_ID).contains(&id));
    }
}

#[test]
fn shards_validation() {
    for bad in ["0", "257", "-1"] {
        let e = err(&format!("{MINIMAL}[server]\nshards = {bad}\n"), &[]);
        assert_eq!(e.key(), Some("server.shards"));
        assert!(e.reason().contains("between 1 and 256"), "{e}");
    }
    let config = parse(
        &format!("{MINIMAL}[server]\nshards = 256\npin = false\n"),
        &[],
    )
    .unwrap();
    assert_eq!(config.server.shards, 256);
    assert!(!config.server.pin);
    let config = parse(
        &format!("{MINIMAL}[server]\nshards = 256\n"),
        &["--shards", "1"],
    )
    .unwrap();
    assert_eq!(config.server.shards, 1);
}

#[test]
fn web_http_defaults_to_the_quic_address() {
    let config = parse(
        &format!("{MINIMAL}[server]\nlisten = \"127.0.0.1:9\"\n[web.http]\n"),
        &[],
    )
    .unwrap();
    assert_eq!(
        config.web.http.unwrap().listen,
        "127.0.0.1:9".parse().unwrap()
    );
    let config = parse(
        &format!("{MINIMAL}[web.http]\n"),
        &["--listen", "127.0.0.1:7"],
    )
    .unwrap();
    assert_eq!(
        config.web.http.unwrap().listen,
        "127.0.0.1:7".parse().unwrap()
    );
    let config = parse(MINIMAL, &[]).unwrap();
    assert_eq!(config.web.http, None);
}

#[test]
fn log_level_is_validated() {
    let e = err(&format!("{MINIMAL}[log]\nlevel = \"loud\"\n"), &[]);
    assert_eq!(e.key(), Some("log.level"));
    let config = parse(
        &format!("{MINIMAL}[log]\nlevel = \"info,moq_relay=trace\"\n"),
        &[],
    )
    .unwrap();
    assert_eq!(config.log.level, "info,moq_relay=trace");
}

#[test]
fn empty_paths_are_refused() {
    let e = err(
        "[server.tls]\ncert = \"\"\nkey = \"k\"\n[auth]\npublic = \"\"\n",
        &[],
    );
    assert_eq!(e.key(), Some("server.tls.cert"));
    assert!(e.reason().contains("must not be empty"), "{e}");
}

#[test]
fn config_path_stays_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("relay.toml");
    std::fs::write(&file, MINIMAL).unwrap();
    let config = load(&cli(&[file.to_str().unwrap()])).unwrap();
    assert_eq!(config.file, Some(file));
}

#[test]
fn mesh_limits_default_override_and_refuse_out_of_range_values() {
    let config = parse(MINIMAL, &[]).unwrap();
    assert_eq!(config.limits, LimitsConfig::default());
    assert_eq!(config.limits.mesh_data_backlog, DEFAULT_MESH_DATA_BACKLOG);
    let config = parse(
        &format!("{MINIMAL}[limits]\nmesh_data_lane = 8\nmesh_control_backlog = 100\n"),
        &["--mesh-data-backlog", "5", "--mesh-control-lane", "2"],
    )
    .unwrap();
    assert_eq!(
        config.limits,
        LimitsConfig {
            mesh_control_lane: 2,
            mesh_data_lane: 8,
            mesh_control_backlog: 100,
            mesh_data_backlog: 5,
            ..LimitsConfig::default()
        }
    );
    let e = err(&format!("{MINIMAL}[limits]\nmesh_data_lane = 0\n"), &[]);
    assert_eq!(e.key(), Some("limits.mesh_data_lane"), "{e}");
    let e = err(
        &format!("{MINIMAL}[limits]\nmesh_control_lane = 2000000\n"),
        &[],
    );
    assert_eq!(e.key(), Some("limits.mesh_control_lane"), "{e}");
    assert!(e.to_string().contains("at most"), "{e}");
    let e = err(MINIMAL, &["--mesh-data-backlog", "99999999999"]);
    assert_eq!(e.flag(), Some("--mesh-data-backlog"), "{e}");
    let e = err(&format!("{MINIMAL}[limits]\nmesh_lane = 3\n"), &[]);
    assert!(e.to_string().contains("mesh_lane"), "{e}");
}

#[test]
fn setup_timeout_defaults_overrides_and_refuses_zero() {
    let config = parse(MINIMAL, &[]).unwrap();
    assert_eq!(config.limits.setup_timeout, Duration::from_secs(10));
    let config = parse(&format!("{MINIMAL}[limits]\nsetup_timeout = \"2s\"\n"), &[]).unwrap();
    assert_eq!(config.limits.setup_timeout, Duration::from_secs(2));
    let config = parse(
        &format!("{MINIMAL}[limits]\nsetup_timeout = \"2s\"\n"),
        &["--setup-timeout", "500ms"],
    )
    .unwrap();
    assert_eq!(config.limits.setup_timeout, Duration::from_millis(500));
    let e = err(&format!("{MINIMAL}[limits]\nsetup_timeout = \"0s\"\n"), &[]);
    assert_eq!(e.key(), Some("limits.setup_timeout"), "{e}");
}

#[test]
fn handshake_keys_default_override_and_refuse_bad_values() {
    let config = parse(MINIMAL, &[]).unwrap();
    assert_eq!(config.quic.retry, RetryMode::Auto);
    assert_eq!(config.quic.handshake_timeout, Duration::from_secs(10));
    assert_eq!(config.limits.unvalidated_handshakes, 64);
    assert_eq!(config.limits.handshakes_per_ip, 32);
    assert_eq!(config.limits.proven_handshakes_per_ip, 256);
    let config = parse(
        &format!(
            "{MINIMAL}[quic]\nretry = \"always\"\nhandshake_timeout = \"2s\"\n[limits]\nunvalidated_handshakes = 10\nhandshakes_per_ip = 3\nproven_handshakes_per_ip = 7\n"
        ),
        &["--retry", "never", "--handshakes-per-ip", "4"],
    )
    .unwrap();
    assert_eq!(config.limits.proven_handshakes_per_ip, 7);
    assert_eq!(config.quic.retry, RetryMode::Never, "the flag wins");
    assert_eq!(config.quic.handshake_timeout, Duration::from_secs(2));
    assert_eq!(config.limits.unvalidated_handshakes, 10);
    assert_eq!(config.limits.handshakes_per_ip, 4);

    let e = err(&format!("{MINIMAL}[quic]\nretry = \"sometimes\"\n"), &[]);
    assert_eq!(e.key(), Some("quic.retry"), "{e}");
    assert!(e.to_string().contains(r#"unknown mode "sometimes""#), "{e}");
    let e = err(
        &format!("{MINIMAL}[quic]\nhandshake_timeout = \"0s\"\n"),
        &[],
    );
    assert_eq!(e.key(), Some("quic.handshake_timeout"), "{e}");
    let e = err(&format!("{MINIMAL}[limits]\nhandshakes_per_ip = 0\n"), &[]);
    assert_eq!(e.key(), Some("limits.handshakes_per_ip"), "{e}");
    let e = err(
        &format!("{MINIMAL}[limits]\nproven_handshakes_per_ip = 0\n"),
        &[],
    );
    assert_eq!(e.key(), Some("limits.proven_handshakes_per_ip"), "{e}");
    let e = err(MINIMAL, &["--proven-handshakes-per-ip", "100001"]);
    assert_eq!(e.flag(), Some("--proven-handshakes-per-ip"), "{e}");
    let e = err(MINIMAL, &["--unvalidated-handshakes", "100001"]);
    assert_eq!(e.flag(), Some("--unvalidated-handshakes"), "{e}");
    let e = Cli::try_parse_from(["moq-relay", "--retry", "maybe"]).unwrap_err();
    assert!(e.to_string().contains("unknown mode"), "{e}");
}
