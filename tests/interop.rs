//! Interoperability with moq-dev's published clients (moq-clock 0.10.21, moq-cli 0.14.10),
//! run against the real relay with two shards. `scripts/test` installs the clients and sets
//! `MOQ_REF_BIN`; without it these tests say so and pass vacuously (plain `cargo test`).

mod common;

use common::Relay;
use moq_relay::wire::Version;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn reference_bin(name: &str) -> Option<PathBuf> {
    common::reference::installed("MOQ_REF_BIN", name)
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
    lines_of(child.stdout.take().unwrap())
}

/// Lines of a child's stderr, as they come (moq-clock's log: what it saw of the relay).
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    lines_of(child.stderr.take().unwrap())
}

fn lines_of(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits until `n` of `lines` contain `needle`, for at most `timeout`.
fn saw(lines: &mpsc::Receiver<String>, needle: &str, n: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut seen = 0;
    while seen < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => seen += 1,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    true
}

/// Lines of `log` containing every one of `needles`.
fn count(log: &str, needles: &[&str]) -> usize {
    log.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

/// The raw-QUIC viewer that tells when a broadcast is live: its version, connect path, and the
/// broadcast's name as announced to it. A moq-lite-04 viewer (no path) on the anonymous
/// relays, so its own session is not counted with the published clients' moq-lite-05 ones.
type Watch<'a> = (Version, &'a str, &'a str);

/// Waits until `watch` sees its broadcast announced, then closes the viewer.
fn await_announced(relay: &Relay, (version, path, suffix): Watch) {
    let mut viewer = common::await_announced(relay, version, path, suffix, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}\nrelay log:\n{}", relay.log_text()));
    let _ = viewer.quic.conn.close(true, 0, b"seen");
    let _ = viewer.quic.flush();
}

/// moq-clock in `role` at `url`. An `http://` URL makes it pin the certificate from
/// `/certificate.sha256`; every other URL skips certificate verification.
fn clock(bin: &PathBuf, url: &str, broadcast: &str, role: &str) -> Proc {
    clock_with(bin, url, broadcast, role, Stdio::null())
}

/// Like [`clock`], with moq-clock's log (stderr) going to `stderr`.
fn clock_with(bin: &PathBuf, url: &str, broadcast: &str, role: &str, stderr: Stdio) -> Proc {
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
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(stderr)
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
    // The transport and version each session used only the relay's log says: read it after
    // exit.
    let log = relay.stop();
    assert!(
        count(
            &log,
            &["session started (WebSocket)", "qmux-00.moq-lite-04"]
        ) >= 2,
        "both clocks came over QMux:\n{log}"
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
    let log = relay.stop();
    assert!(
        count(&log, &["session started (WebTransport)", "moq-lite-04"]) >= 2,
        "both clocks came over WebTransport:\n{log}"
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
    let log = relay.stop();
    assert!(
        count(&log, &["session started (WebTransport)"]) >= 2,
        "{log}"
    );
}

/// moq-clock publishes `broadcast` (on the anonymous relay) at `url` and another moq-clock
/// prints at least three consecutive live seconds of it.
fn clock_round_trip(bin: &PathBuf, relay: &Relay, url: &str, broadcast: &str) {
    // Its absolute name, under the public `anon` root whatever the URL's path.
    let absolute = if broadcast.starts_with("anon/") {
        broadcast.to_string()
    } else {
        format!("anon/{broadcast}")
    };
    let watch = (Version::Lite04, "", absolute.as_str());
    clock_round_trip_between(bin, relay, url, url, broadcast, watch);
}

/// Like [`clock_round_trip`], with the publisher at `publish_url` and the subscriber at
/// `subscribe_url` (which may carry different tokens), and `watch` telling when the
/// publisher's broadcast is live.
fn clock_round_trip_between(
    bin: &PathBuf,
    relay: &Relay,
    publish_url: &str,
    subscribe_url: &str,
    broadcast: &str,
    watch: Watch,
) {
    let _publisher = clock(bin, publish_url, broadcast, "publish");
    await_announced(relay, watch);
    let mut subscriber = clock(bin, subscribe_url, broadcast, "subscribe");
    let lines = stdout_lines(&mut subscriber.0);
    let (live, seen) = live_seconds(&lines, Duration::from_secs(30));
    assert!(
        live >= 3,
        "three consecutive live seconds from moq-clock, got {seen:?}"
    );
}

/// Reads moq-clock's lines until three consecutive seconds arrived live or `timeout`
/// passed: the count of live consecutive seconds, and every second seen.
fn live_seconds(lines: &mpsc::Receiver<String>, timeout: Duration) -> (usize, Vec<u32>) {
    let deadline = Instant::now() + timeout;
    // The join burst (this minute's seconds so far) arrives at once; then one line per
    // second. Count consecutive seconds that arrived live, about a second apart.
    let mut seen: Vec<u32> = Vec::new();
    let mut last_arrival = Instant::now();
    let mut live = 0;
    while Instant::now() < deadline && live < 3 {
        let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) else {
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
    (live, seen)
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
    cli_round_trip(&moq, relay, &url, &flags);
}

#[test]
fn moq_cli_carries_an_ffmpeg_stream_over_websocket() {
    let Some(moq) = reference_bin("moq") else {
        return;
    };
    let relay = Relay::start("");
    let url = format!("ws://127.0.0.1:{}/anon", relay.http.port());
    let log = cli_round_trip(&moq, relay, &url, &[]);
    assert!(
        count(
            &log,
            &["session started (WebSocket)", "qmux-01.moq-lite-05"]
        ) >= 2,
        "both moq-cli sessions came over QMux:\n{log}"
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
    let log = cli_round_trip(&moq, relay, &url, &flags);
    assert!(
        count(&log, &["session started (WebTransport)", "moq-lite-05"]) >= 2,
        "both moq-cli sessions came over WebTransport:\n{log}"
    );
}

/// ffmpeg's test pattern published by moq-cli at `url`, exported by another moq-cli, and
/// checked with ffprobe. Returns the relay's log, read after it exited.
fn cli_round_trip(moq: &PathBuf, relay: Relay, url: &str, flags: &[&str]) -> String {
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
    let (mut ffmpeg, _publisher) = (Proc(ffmpeg), Proc(publisher));
    await_announced(&relay, (Version::Lite04, "", "anon/test.hang"));
    let file = std::fs::File::create(&out_path).unwrap();
    let log_path = dir.path().join("subscriber.log");
    let subscriber = moq_args(&["export", "fmp4"])
        .stdout(file)
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("moq subscribes");
    let mut subscriber = Proc(subscriber);
    // The whole stream has been published once ffmpeg has produced its eight paced seconds
    // and exited; the exporter has had all but the last moments of it by then.
    let produced = common::wait_timeout(&mut ffmpeg.0, Duration::from_secs(30));
    assert!(
        produced.is_some_and(|s| s.success()),
        "ffmpeg produced its stream: {produced:?}"
    );
    // SIGTERM (not SIGKILL) so the exporter flushes what it buffered.
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(subscriber.0.id() as libc::pid_t, libc::SIGTERM) };
    let exported = common::wait_timeout(&mut subscriber.0, Duration::from_secs(10));
    assert!(exported.is_some(), "the exporter stops on SIGTERM");
    let log = relay.stop();
    assert!(
        count(&log, &["session authorized", "moq-lite-05"]) >= 2,
        "both moq-cli sessions ran moq-lite-05:\n{log}"
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
    log
}

/// moq-token-cli 0.5.48 (`$MOQ_TOKEN_REF_BIN/moq-token`), which `scripts/setup` installs into
/// a root of its own because our binary has the same name.
fn token_reference_bin() -> Option<PathBuf> {
    common::reference::installed("MOQ_TOKEN_REF_BIN", "moq-token")
}

/// Runs the reference moq-token with `args` and returns its stdout, trimmed.
fn reference_token(bin: &PathBuf, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .output()
        .expect("moq-token runs");
    assert!(
        out.status.success(),
        "moq-token {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A relay verifying with a key moq-token-cli generated for `alg`, and tokens it signed.
struct TokenRelay {
    relay: Relay,
    /// root `demo`, publish `clock` only.
    publish: String,
    /// root `demo`, subscribe everything only.
    subscribe: String,
    /// root `elsewhere`, everything.
    elsewhere: String,
    _dir: tempfile::TempDir,
}

fn token_relay(bin: &PathBuf, alg: &str) -> TokenRelay {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("private.jwk");
    let public = dir.path().join("public.jwk");
    let private_s = private.to_str().unwrap();
    let mut generate = vec!["generate", "--algorithm", alg, "--out", private_s];
    let verify_key = if alg.starts_with("HS") {
        private_s.to_string()
    } else {
        generate.extend(["--public", public.to_str().unwrap()]);
        public.to_str().unwrap().to_string()
    };
    reference_token(bin, &generate);
    let expires = (std::time::SystemTime::now() + Duration::from_secs(3600))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let sign = |grants: &[&str]| {
        let mut args = vec!["sign", "--key", private_s, "--expires", &expires];
        args.extend_from_slice(grants);
        reference_token(bin, &args)
    };
    let publish = sign(&["--root", "demo", "--publish", "clock"]);
    let subscribe = sign(&["--root", "demo", "--subscribe", ""]);
    let elsewhere = sign(&["--root", "elsewhere", "--publish", "", "--subscribe", ""]);
    let relay = Relay::start(&format!("key = {verify_key:?}"));
    TokenRelay {
        relay,
        publish,
        subscribe,
        elsewhere,
        _dir: dir,
    }
}

/// With a key and tokens from moq-token-cli for `alg`, moq-clock publishes with a
/// publish-only token and subscribes with a subscribe-only one over WebTransport; the
/// publish-only token sees nothing, and a token for another root is refused at CONNECT.
fn moq_clock_within_its_grants(alg: &str) {
    let (Some(clock_bin), Some(token_bin)) = (reference_bin("moq-clock"), token_reference_bin())
    else {
        return;
    };
    let t = token_relay(&token_bin, alg);
    let base = format!("https://127.0.0.1:{}/demo", t.relay.addr.port());
    let publish_url = format!("{base}?jwt={}", t.publish);
    let subscribe_url = format!("{base}?jwt={}", t.subscribe);
    // A publish-only token may not watch: it gets no seconds while the real viewer does.
    let mut peeker = clock(&clock_bin, &publish_url, "clock", "subscribe");
    let peeked = stdout_lines(&mut peeker.0);
    let watch_path = format!("/demo?jwt={}", t.subscribe);
    let watch = (Version::Lite05, watch_path.as_str(), "clock");
    clock_round_trip_between(
        &clock_bin,
        &t.relay,
        &publish_url,
        &subscribe_url,
        "clock",
        watch,
    );
    assert!(
        peeked.try_recv().is_err(),
        "{alg}: a publish-only token received the clock"
    );
    // A token for another root: the CONNECT is answered 401 (moq-clock keeps retrying).
    let refused_url = format!("{base}?jwt={}", t.elsewhere);
    let mut refused = clock_with(
        &clock_bin,
        &refused_url,
        "clock",
        "subscribe",
        Stdio::piped(),
    );
    let refused_lines = stdout_lines(&mut refused.0);
    let refused_log = stderr_lines(&mut refused.0);
    // moq-clock reports the 401 it read, and retries a second later on a new connection: by
    // its second 401 it has long ended the first connection.
    assert!(
        saw(&refused_log, "got: Some(401)", 2, Duration::from_secs(15)),
        "{alg}: moq-clock was answered 401 twice:\n{}",
        t.relay.log_text()
    );
    assert!(
        refused_lines.try_recv().is_err(),
        "{alg}: a token for another root received the clock"
    );
    drop((refused, peeker));
    // Why the relay refused, and who closed the connection, only its log says.
    let log = t.relay.stop();
    let refused_at = log
        .lines()
        .position(|l| {
            l.contains("WebTransport CONNECT refused") && l.contains("does not cover path")
        })
        .unwrap_or_else(|| panic!("{alg}: the relay refused the CONNECT:\n{log}"));
    // moq-clock read the 401 and closed the connection itself; had the relay closed it first,
    // the refusal would have been lost with the unsent stream data.
    let first_close = log
        .lines()
        .skip(refused_at)
        .find(|l| l.contains("closed the connection") || l.contains("connection closed"));
    assert!(
        first_close.is_some_and(|l| l.contains("peer closed the connection")),
        "{alg}: the client did not end the refused connection:\n{log}"
    );
}

#[test]
fn moq_token_cli_hs256_tokens_scope_moq_clock() {
    moq_clock_within_its_grants("HS256");
}

/// The same tokens on the WebSocket URL; a bad one is refused at the upgrade.
#[test]
fn moq_clock_over_websocket_carries_its_token() {
    let (Some(clock_bin), Some(token_bin)) = (reference_bin("moq-clock"), token_reference_bin())
    else {
        return;
    };
    let t = token_relay(&token_bin, "HS256");
    let base = format!("ws://127.0.0.1:{}/demo", t.relay.http.port());
    let publish_url = format!("{base}?jwt={}", t.publish);
    let subscribe_url = format!("{base}?jwt={}", t.subscribe);
    let watch_path = format!("/demo?jwt={}", t.subscribe);
    let watch = (Version::Lite05, watch_path.as_str(), "clock");
    clock_round_trip_between(
        &clock_bin,
        &t.relay,
        &publish_url,
        &subscribe_url,
        "clock",
        watch,
    );
    let mut refused = clock_with(
        &clock_bin,
        &format!("{base}?jwt=x.y.z"),
        "clock",
        "subscribe",
        Stdio::piped(),
    );
    // moq-clock's WebSocket attempt fails once the relay has answered the upgrade (which it
    // logs before answering).
    let refused_log = stderr_lines(&mut refused.0);
    assert!(
        saw(
            &refused_log,
            "WebSocket connection failed",
            1,
            Duration::from_secs(15)
        ),
        "moq-clock's upgrade was refused:\n{}",
        t.relay.log_text()
    );
    drop(refused);
    let log = t.relay.stop();
    assert!(
        count(&log, &["WebSocket upgrade refused", "token refused"]) >= 1,
        "{log}"
    );
}

#[test]
fn moq_token_cli_es256_tokens_scope_moq_clock() {
    moq_clock_within_its_grants("ES256");
}

#[test]
fn moq_token_cli_rs256_tokens_scope_moq_clock() {
    moq_clock_within_its_grants("RS256");
}

#[test]
fn moq_token_cli_ps256_tokens_scope_moq_clock() {
    moq_clock_within_its_grants("PS256");
}

#[test]
fn moq_token_cli_eddsa_tokens_scope_moq_clock() {
    moq_clock_within_its_grants("EdDSA");
}

/// Publishing outside the grants: a publish token for `demo/clock` used to publish
/// `demo/other`, and a subscribe-only token used to publish, announce nothing, so a viewer
/// with full subscribe rights gets nothing from either.
#[test]
fn moq_clock_cannot_publish_outside_its_grants() {
    let (Some(clock_bin), Some(token_bin)) = (reference_bin("moq-clock"), token_reference_bin())
    else {
        return;
    };
    let t = token_relay(&token_bin, "HS256");
    let base = format!("https://127.0.0.1:{}/demo", t.relay.addr.port());
    let _outside = clock(
        &clock_bin,
        &format!("{base}?jwt={}", t.publish),
        "other",
        "publish",
    );
    let _viewer_token = clock(
        &clock_bin,
        &format!("{base}?jwt={}", t.subscribe),
        "clock",
        "publish",
    );
    let mut viewer = clock(
        &clock_bin,
        &format!("{base}?jwt={}", t.subscribe),
        "other",
        "subscribe",
    );
    let mut viewer2 = clock(
        &clock_bin,
        &format!("{base}?jwt={}", t.subscribe),
        "clock",
        "subscribe",
    );
    let (lines, lines2) = (stdout_lines(&mut viewer.0), stdout_lines(&mut viewer2.0));
    // Intentional: proving nothing arrives takes a window (four clock ticks).
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        lines.try_recv().is_err(),
        "demo/other was published outside the grant"
    );
    assert!(
        lines2.try_recv().is_err(),
        "a subscribe-only token published demo/clock"
    );
    let log = t.relay.stop();
    assert_eq!(count(&log, &["publisher announced"]), 0, "{log}");
    // Not because the sessions were refused: all four were let in.
    assert!(count(&log, &["session authorized"]) >= 4, "{log}");
}
