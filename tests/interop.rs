//! Interoperability with moq-dev's published clients (moq-clock 0.10.21, moq-cli 0.14.10),
//! run against the real relay with two shards. `scripts/test` installs the clients and sets
//! `MOQ_REF_BIN`; without it these tests say so and pass vacuously (plain `cargo test`).

mod common;

use common::Relay;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn reference_bin(name: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("MOQ_REF_BIN") else {
        eprintln!("MOQ_REF_BIN is not set: run scripts/test to include the published clients");
        return None;
    };
    let path = PathBuf::from(dir).join(name);
    assert!(
        path.exists(),
        "{} is missing: scripts/setup installs it",
        path.display()
    );
    Some(path)
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines of a child's stdout, as they come.
fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn clock(bin: &PathBuf, url: &str, broadcast: &str, role: &str) -> Proc {
    let child = Command::new(bin)
        .args([
            "--url",
            url,
            "--tls-disable-verify",
            "--broadcast",
            broadcast,
            role,
        ])
        .env("MOQ_CLIENT_WEBSOCKET_ENABLED", "false")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("moq-clock starts");
    Proc(child)
}

/// Seconds of a `YYYY-MM-DD HH:MM:SS` line, as seconds of the day.
fn clock_seconds(line: &str) -> Option<u32> {
    let time = line.trim().split(' ').nth(1)?;
    let mut parts = time.split(':').map(|p| p.parse::<u32>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    Some(h * 3600 + m * 60 + s)
}

#[test]
fn moq_clock_publishes_and_subscribes_over_raw_quic() {
    let Some(bin) = reference_bin("moq-clock") else {
        return;
    };
    let relay = Relay::start("");
    let url = format!("moqt://127.0.0.1:{}", relay.addr.port());
    let _publisher = clock(&bin, &url, "anon/clock", "publish");
    relay
        .wait_log(Duration::from_secs(20), |l| {
            l.contains("publisher announced")
        })
        .expect("moq-clock announces its broadcast");
    let mut subscriber = clock(&bin, &url, "anon/clock", "subscribe");
    let lines = stdout_lines(&mut subscriber.0);
    let deadline = Instant::now() + Duration::from_secs(30);
    // The join burst (this minute's seconds so far) arrives at once; then one line per
    // second. Count consecutive seconds that arrived live, about a second apart.
    let mut seen: Vec<u32> = Vec::new();
    let mut last_arrival = Instant::now();
    let mut live = 0;
    while Instant::now() < deadline && live < 3 {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        let Some(seconds) = clock_seconds(&line) else {
            continue;
        };
        let paced = last_arrival.elapsed() > Duration::from_millis(500);
        last_arrival = Instant::now();
        match seen.last() {
            Some(&last) if seconds == last + 1 && paced => live += 1,
            Some(&last) if seconds == last + 1 => {}
            _ => live = 0,
        }
        seen.push(seconds);
    }
    assert!(
        live >= 3,
        "three consecutive live seconds from moq-clock, got {seen:?}"
    );
}
