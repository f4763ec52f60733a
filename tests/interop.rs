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

/// moq-clock in `role` at `url`. An `http://` URL makes it pin the certificate from
/// `/certificate.sha256`; every other URL skips certificate verification.
fn clock(bin: &PathBuf, url: &str, broadcast: &str, role: &str) -> Proc {
    let mut command = Command::new(bin);
    command.args(["--url", url]);
    if !url.starts_with("http://") {
        command.arg("--tls-disable-verify");
    }
    let child = command
        .args(["--broadcast", broadcast, role])
        // Only the WebSocket tests may race a WebSocket next to QUIC.
        .env(
            "MOQ_CLIENT_WEBSOCKET_ENABLED",
            if url.starts_with("ws") {
                "true"
            } else {
                "false"
            },
        )
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
    clock_round_trip(&bin, &relay, &url, "anon/clock");
}

#[test]
fn moq_clock_publishes_and_subscribes_over_websocket() {
    let Some(bin) = reference_bin("moq-clock") else {
        return;
    };
    let relay = Relay::start("");
    let url = format!("ws://127.0.0.1:{}/anon", relay.http.port());
    clock_round_trip(&bin, &relay, &url, "clock");
    assert!(
        relay.count_log(
            |l| l.contains("session started (WebSocket)") && l.contains("qmux-00.moq-lite-04")
        ) >= 2,
        "both clocks came over QMux:\n{}",
        relay.log_text()
    );
}

#[test]
fn moq_clock_publishes_and_subscribes_over_webtransport() {
    let Some(bin) = reference_bin("moq-clock") else {
        return;
    };
    let relay = Relay::start("");
    let url = format!("https://127.0.0.1:{}/anon", relay.addr.port());
    clock_round_trip(&bin, &relay, &url, "clock");
    assert!(
        relay.count_log(
            |l| l.contains("session started (WebTransport)") && l.contains("moq-lite-04")
        ) >= 2,
        "both clocks came over WebTransport:\n{}",
        relay.log_text()
    );
}

#[test]
fn moq_clock_pins_the_certificate_from_its_fingerprint() {
    let Some(bin) = reference_bin("moq-clock") else {
        return;
    };
    // QUIC and HTTP on one port, as the bootstrap expects: http://host:port/certificate.sha256,
    // then WebTransport to https://host:port with that hash and no insecure flag.
    let relay = Relay::start_on_one_port("");
    let port = relay.addr.port();
    let url = format!("http://127.0.0.1:{port}/anon");
    clock_round_trip(&bin, &relay, &url, "clock");
    assert!(relay.count_log(|l| l.contains("session started (WebTransport)")) >= 2);
}

/// moq-clock publishes `broadcast` at `url` and another moq-clock prints at least three
/// consecutive live seconds of it.
fn clock_round_trip(bin: &PathBuf, relay: &Relay, url: &str, broadcast: &str) {
    let url = url.to_string();
    let _publisher = clock(bin, &url, broadcast, "publish");
    relay
        .wait_log(Duration::from_secs(20), |l| {
            l.contains("publisher announced")
        })
        .expect("moq-clock announces its broadcast");
    let mut subscriber = clock(bin, &url, broadcast, "subscribe");
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

/// ffprobe's count of decodable video frames in `file`, with the stream's codec and size.
fn probe_video(file: &std::path::Path) -> Option<(String, u32, u32, u64)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.trim().split(',');
    let codec = fields.next()?.to_string();
    let width = fields.next()?.parse().ok()?;
    let height = fields.next()?.parse().ok()?;
    let frames = fields.next()?.parse().ok()?;
    Some((codec, width, height, frames))
}

#[test]
fn moq_cli_carries_an_ffmpeg_stream_over_raw_quic_lite05() {
    let Some(moq) = reference_bin("moq") else {
        return;
    };
    let relay = Relay::start("");
    let url = format!("moqt://127.0.0.1:{}/anon", relay.addr.port());
    let flags = [
        "--connect-tls-insecure",
        "--connect-version",
        "moq-lite-05",
        "--connect-websocket-enabled=false",
    ];
    cli_round_trip(&moq, &relay, &url, &flags);
}

#[test]
fn moq_cli_carries_an_ffmpeg_stream_over_websocket() {
    let Some(moq) = reference_bin("moq") else {
        return;
    };
    let relay = Relay::start("");
    let url = format!("ws://127.0.0.1:{}/anon", relay.http.port());
    cli_round_trip(&moq, &relay, &url, &[]);
    assert!(
        relay.count_log(
            |l| l.contains("session started (WebSocket)") && l.contains("qmux-01.moq-lite-05")
        ) >= 2,
        "both moq-cli sessions came over QMux:\n{}",
        relay.log_text()
    );
}

#[test]
fn moq_cli_carries_an_ffmpeg_stream_over_webtransport() {
    let Some(moq) = reference_bin("moq") else {
        return;
    };
    let relay = Relay::start("");
    let url = format!("https://127.0.0.1:{}/anon", relay.addr.port());
    let flags = [
        "--connect-tls-insecure",
        "--connect-websocket-enabled=false",
    ];
    cli_round_trip(&moq, &relay, &url, &flags);
    assert!(
        relay.count_log(
            |l| l.contains("session started (WebTransport)") && l.contains("moq-lite-05")
        ) >= 2,
        "both moq-cli sessions came over WebTransport:\n{}",
        relay.log_text()
    );
}

/// ffmpeg's test pattern published by moq-cli at `url`, exported by another moq-cli, and
/// checked with ffprobe.
fn cli_round_trip(moq: &PathBuf, relay: &Relay, url: &str, flags: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out.mp4");
    let moq_args = |args: &[&str]| {
        let mut cmd = Command::new(moq);
        cmd.args(["--connect", url])
            .args(flags)
            .args(["--broadcast", "test.hang"])
            .args(args)
            .env_remove("RUST_LOG");
        cmd
    };
    // Eight seconds of a 30 fps test pattern, one group (GOP) per second, paced in real time.
    let mut ffmpeg = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x360:rate=30",
        ])
        .args([
            "-t",
            "8",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-g",
            "30",
        ])
        .args([
            "-f",
            "mp4",
            "-movflags",
            "cmaf+separate_moof+delay_moov+skip_trailer+frag_every_frame",
            "-",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ffmpeg runs");
    let publisher = moq_args(&["import", "fmp4"])
        .stdin(ffmpeg.stdout.take().unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moq publishes");
    let (_ffmpeg, _publisher) = (Proc(ffmpeg), Proc(publisher));
    relay
        .wait_log(Duration::from_secs(20), |l| {
            l.contains("publisher announced") && l.contains("anon/test.hang")
        })
        .unwrap_or_else(|| panic!("moq-cli announces test.hang:\n{}", relay.log_text()));
    let file = std::fs::File::create(&out_path).unwrap();
    let log_path = dir.path().join("subscriber.log");
    let subscriber = moq_args(&["export", "fmp4"])
        .stdout(file)
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("moq subscribes");
    let mut subscriber = Proc(subscriber);
    std::thread::sleep(Duration::from_secs(5));
    // SIGTERM (not SIGKILL) so the exporter flushes what it buffered.
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(subscriber.0.id() as libc::pid_t, libc::SIGTERM) };
    let _ = subscriber.0.wait();
    assert!(
        relay.count_log(|l| l.contains("session authorized") && l.contains("moq-lite-05")) >= 2,
        "both moq-cli sessions ran moq-lite-05:\n{}",
        relay.log_text()
    );
    let (codec, width, height, frames) = probe_video(&out_path).unwrap_or_else(|| {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let size = std::fs::metadata(&out_path).map_or(0, |m| m.len());
        let _ = std::fs::copy(&out_path, "/tmp/interop-out.mp4");
        panic!(
            "ffprobe reads {} ({size} bytes); subscriber said:\n{log}",
            out_path.display()
        )
    });
    assert_eq!((codec.as_str(), width, height), ("h264", 640, 360));
    assert!(
        frames >= 60,
        "at least two seconds of video came out, got {frames} frames"
    );
}
