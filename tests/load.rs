//! The load generator of `bench/` against the real relay (two shards, loopback, real TLS), over
//! both of its transports: a small fan-out and a chat deliver every frame, and a CONNECT the
//! relay refuses is reported with its status. These check correctness only; the figures of
//! a run (latency, CPU) are for `cargo bench` and `scripts/bench-compare`.

mod common;

use common::Relay;
use moq_bench::{Args, Report};

fn run(relay: &Relay, flags: &[&str]) -> Result<(Report, Option<String>), String> {
    let addr = relay.addr.to_string();
    let mut argv: Vec<String> = [
        "moq-bench",
        "--relay",
        &addr,
        "--warmup",
        "1s",
        "--duration",
        "2s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.extend(flags.iter().map(|s| s.to_string()));
    let args = Args::parse_from(argv).map_err(|e| e.to_string())?;
    moq_bench::run(&args).map(|o| (o.report, o.first_error))
}

/// Every connection up, every subscription started, every measured frame delivered.
fn assert_complete(report: &Report, transport: &str) {
    assert_eq!(report.connect_failed, 0, "{transport}: {report:?}");
    assert_eq!(report.connected, report.connections, "{transport}");
    assert_eq!(report.setup_done, report.connections, "{transport}");
    assert_eq!(report.closed_early, 0, "{transport}");
    assert!(report.frames_expected > 0, "{transport}: nothing measured");
    assert_eq!(
        report.frames_delivered, report.frames_expected,
        "{transport}: {report:?}"
    );
    assert_eq!(
        (report.groups_reset, report.groups_lost),
        (0, 0),
        "{transport}"
    );
}

#[test]
fn fanout_over_quic_and_webtransport() {
    let relay = Relay::start("");
    for transport in ["quic", "webtransport"] {
        let (report, note) = run(&relay, &["--transport", transport, "--subscribers", "12"])
            .unwrap_or_else(|e| panic!("{transport}: {e}"));
        assert_eq!(note, None, "{transport}");
        assert_complete(&report, transport);
        assert_eq!(report.subscriptions_started, 12, "{transport}");
    }
}

#[test]
fn chat_over_webtransport() {
    let relay = Relay::start("");
    let (report, note) = run(
        &relay,
        &[
            "--transport",
            "webtransport",
            "--workload",
            "chat",
            "--users",
            "20",
        ],
    )
    .unwrap();
    assert_eq!(note, None);
    assert_complete(&report, "webtransport");
    assert_eq!(report.subscriptions_started, 20);
}

#[test]
fn refused_connect_is_reported_with_its_status() {
    let relay = Relay::start("");
    // Only /anon is public and no key is configured: a session at /private is unauthorized.
    let err = run(
        &relay,
        &[
            "--transport",
            "webtransport",
            "--path",
            "/private",
            "--subscribers",
            "1",
        ],
    )
    .unwrap_err();
    assert!(
        err.contains("refused the WebTransport CONNECT with status 401"),
        "{err}"
    );
}
