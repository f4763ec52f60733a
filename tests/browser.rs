//! Headless Chromium running @moq/net 0.3.4 (tests/browser): one connection publishes a
//! broadcast through the relay (`--shards 2`), a second one subscribes and must receive every
//! frame, once over WebTransport (with the certificate pinned from /certificate.sha256) and
//! once forced onto the WebSocket fallback. `scripts/test` installs Chromium and the npm
//! packages and sets `MOQ_BROWSER_TEST`; without it the test says so and passes vacuously.

mod common;

use common::Relay;
use std::process::Command;

fn run_page(mode: &str) {
    let Some(dir) = std::env::var_os("MOQ_BROWSER_TEST") else {
        eprintln!("MOQ_BROWSER_TEST is not set: run scripts/test to include the browser test");
        return;
    };
    // QUIC and HTTP on one port: the client fetches http://host:port/certificate.sha256,
    // then connects to https://host:port with that hash.
    let relay = Relay::start_on_one_port("");
    let port = relay.addr.port();
    let output = Command::new("node")
        .arg(std::path::Path::new(&dir).join("run.mjs"))
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(mode)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the page received every frame over {mode}:\n{stdout}\n{}\nrelay log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        relay.log_text()
    );
    assert!(
        stdout.contains(&format!("\"transport\":\"{mode}\"")),
        "{stdout}"
    );
    assert!(stdout.contains("\"version\":\"moq-lite-05\""), "{stdout}");
    let marker = match mode {
        "webtransport" => "session started (WebTransport)",
        _ => "qmux-01.moq-lite-05",
    };
    // Which transport each session came over only the relay's log says (the page reports its
    // own side above); read it once the relay has exited.
    let log = relay.stop();
    assert!(
        log.lines().filter(|l| l.contains(marker)).count() >= 2,
        "{log}"
    );
}

#[test]
fn chromium_publishes_and_subscribes_over_webtransport() {
    run_page("webtransport");
}

#[test]
fn chromium_publishes_and_subscribes_over_websocket() {
    run_page("websocket");
}
