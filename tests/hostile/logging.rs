//! Attacks through the log: a stalled stdout reader, packet-driven log lines.

use crate::common::{http, is_ready};
use moq_bench::client::{Event, MoqClient};
use moq_relay::wire::Version;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

/// A relay (`--shards 2`, `/anon` public, info log) whose stdout is a one-page pipe that the
/// test stops reading right after the readiness line, until [`Self::resume_reading`].
struct StalledStdout {
    child: Child,
    addr: SocketAddr,
    http: SocketAddr,
    /// The read end of the stdout pipe, to see how full it is.
    pipe: i32,
    resume: mpsc::Sender<()>,
    stdout: JoinHandle<Vec<String>>,
    stderr: JoinHandle<Vec<String>>,
    _dir: tempfile::TempDir,
}

impl StalledStdout {
    fn start() -> StalledStdout {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("relay.toml");
        std::fs::write(
            &config,
            "[log]\nlevel = \"info\"\n[server]\nlisten = \"127.0.0.1:0\"\n[server.tls]\n\
             generate = [\"localhost\"]\n[web.http]\nlisten = \"127.0.0.1:0\"\n\
             [auth]\npublic = \"anon\"\n",
        )
        .unwrap();
        let mut fds = [0; 2];
        // SAFETY: pipe2(2) fills the two descriptors, which we own from here on.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        let (read, write) = unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // The smallest pipe Linux makes (one page), so a few dozen lines fill it.
        // SAFETY: fcntl(2) on a descriptor we own.
        let size = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
        assert_eq!(size, 4096, "F_SETPIPE_SZ");
        let pipe = read.as_raw_fd();
        let mut child = Command::new(env!("CARGO_BIN_EXE_moq-relay"))
            .args(["--shards", "2"])
            .arg(&config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::from(write))
            .stderr(Stdio::piped())
            .spawn()
            .expect("relay binary starts");
        let err = child.stderr.take().unwrap();
        let stderr =
            std::thread::spawn(move || BufReader::new(err).lines().map_while(Result::ok).collect());
        let (ready_tx, ready_rx) = mpsc::channel();
        let (resume, resumed) = mpsc::channel::<()>();
        let stdout = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut out = BufReader::new(read);
            let mut line = String::new();
            while out.read_line(&mut line).is_ok_and(|n| n > 0) {
                let ready = is_ready(&line);
                lines.push(std::mem::take(&mut line));
                if ready {
                    let _ = ready_tx.send(lines.last().unwrap().clone());
                    // Stop reading until told; the relay's writes fill the pipe meanwhile.
                    let _ = resumed.recv();
                }
            }
            lines
        });
        let ready = ready_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the readiness line");
        let addr = |key: &str| -> SocketAddr {
            let list = ready.split_whitespace().find_map(|f| f.strip_prefix(key));
            list.and_then(|l| l.split(',').next()?.parse().ok())
                .unwrap_or_else(|| panic!("{key} in {ready:?}"))
        };
        StalledStdout {
            addr: addr("quic="),
            http: addr("http="),
            child,
            pipe,
            resume,
            stdout,
            stderr,
            _dir: dir,
        }
    }

    /// Bytes written to stdout that nobody has read.
    fn unread(&self) -> usize {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD on the pipe's read end, which the reader thread keeps open.
        unsafe { libc::ioctl(self.pipe, libc::FIONREAD, &mut n) };
        n as usize
    }

    fn resume_reading(&self) {
        let _ = self.resume.send(());
    }

    /// SIGTERM, then everything the relay printed: stdout and stderr, once it has exited.
    fn terminate(mut self) -> (Option<ExitStatus>, Vec<String>, Vec<String>) {
        self.resume_reading();
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let status = crate::common::wait_timeout(&mut self.child, WAIT);
        let _ = self.child.kill();
        let _ = self.child.wait();
        (
            status,
            self.stdout.join().unwrap(),
            self.stderr.join().unwrap(),
        )
    }
}

/// What a well-behaved viewer saw while a publisher sent a group every 50 ms.
struct Watched {
    groups: usize,
    longest_gap: Duration,
}

/// A publisher and a viewer of `anon/clock` on their own thread until `stop` is set: a group
/// every 50 ms, and the longest time the viewer went without a new one. `up` is told once the
/// viewer has its first group.
fn watch(relay: SocketAddr, stop: Arc<AtomicBool>, up: mpsc::Sender<()>) -> JoinHandle<Watched> {
    std::thread::spawn(move || {
        let mut publisher = MoqClient::connect(relay, Version::Lite05, "/anon").unwrap();
        publisher.publish("clock");
        let mut viewer = MoqClient::connect(relay, Version::Lite05, "/anon").unwrap();
        viewer.request_announces("");
        let announced = |e: &Event| matches!(e, Event::Announced { suffix, active: true, .. } if suffix == "clock");
        let deadline = Instant::now() + WAIT;
        while !viewer.events.iter().any(announced) && Instant::now() < deadline {
            let _ = publisher.poll(Duration::from_millis(1));
            let _ = viewer.poll(Duration::from_millis(5));
        }
        viewer.subscribe("clock", "seconds");
        let done = |e: &[Event]| {
            e.iter()
                .filter(|e| matches!(e, Event::GroupDone { .. }))
                .count()
        };
        let (mut seq, mut next, mut last_seen, mut seen) = (0, Instant::now(), None, 0);
        let mut longest_gap = Duration::ZERO;
        while !stop.load(Ordering::Relaxed) {
            if Instant::now() >= next {
                publisher.send_group("clock", "seconds", seq, &[b"tick"]);
                seq += 1;
                next += Duration::from_millis(50);
            }
            let _ = publisher.poll(Duration::from_millis(1));
            let _ = viewer.poll(Duration::from_millis(1));
            let now = Instant::now();
            if done(&viewer.events) > seen {
                if seen == 0 {
                    let _ = up.send(());
                }
                seen = done(&viewer.events);
                last_seen = Some(now);
            }
            if let Some(at) = last_seen {
                longest_gap = longest_gap.max(now - at);
            }
        }
        Watched {
            groups: seen,
            longest_gap,
        }
    })
}

/// A 60-byte long-header packet of QUIC v1 with garbage after the header: the junk Initials of
/// the attack.
fn junk_initial(n: u32) -> Vec<u8> {
    let mut packet = vec![0xc0, 0, 0, 0, 1, 8];
    packet.extend_from_slice(&n.to_be_bytes());
    packet.extend_from_slice(&n.to_le_bytes());
    packet.push(8);
    packet.extend_from_slice(&[0xee; 8]);
    packet.resize(60, 0x5a);
    packet
}

/// The count `field=N` on the relay's last line, "stopped".
fn stopped_count(stdout: &[String], field: &str) -> Option<u64> {
    let line = stdout.iter().find(|l| l.contains("moq_relay: stopped"))?;
    let value = line.split(&format!("{field}=")).nth(1)?;
    value.split_whitespace().next()?.parse().ok()
}

#[test]
fn a_stdout_reader_that_stops_reading_does_not_freeze_the_relay() {
    let _alone = crate::one_attack_at_a_time();
    let relay = StalledStdout::start();
    let stop = Arc::new(AtomicBool::new(false));
    let (up_tx, up) = mpsc::channel();
    let watcher = watch(relay.addr, stop.clone(), up_tx);
    up.recv_timeout(WAIT).expect("the viewer receives groups");

    // The attack, with nobody reading stdout: junk Initials, sessions coming and going (each
    // logs at info as it starts, is authorized or refused, and closes), refused HTTP requests.
    let junk = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sessions = 40;
    let (mut http_served, mut served) = (0, 0);
    for round in 0..sessions {
        for n in 0..75 {
            let _ = junk.send_to(&junk_initial(round * 75 + n), relay.addr);
        }
        // HTTP is answered, and a new client connects and is served (it sees the live
        // broadcast); a relay frozen on its log does neither, so stop at the first failure.
        if http::get(relay.http, "/announced/private").0 == 401 {
            http_served += 1;
        }
        if await_announced_at(relay.addr, "clock").is_ok() {
            served += 1;
        }
        if (http_served, served) != (round + 1, round + 1) {
            break;
        }
        // And one the relay refuses, closing its session with Unauthorized.
        let refused = MoqClient::connect(relay.addr, Version::Lite05, "/private");
        drop(refused);
    }
    let unread = relay.unread();
    stop.store(true, Ordering::Relaxed);
    let watched = watcher.join().unwrap();

    eprintln!(
        "viewer: {} groups, longest gap {:?}; {unread} bytes unread on stdout; \
         {http_served} HTTP requests and {served} of {sessions} new sessions served",
        watched.groups, watched.longest_gap
    );
    let (status, stdout, stderr) = relay.terminate();
    let last = &stdout[stdout.len().saturating_sub(5)..];
    assert!(
        status.is_some_and(|s| s.success()),
        "a clean stop: {status:?} {stderr:?} {last:?}"
    );
    // The pipe was full: a relay that wrote its log from the shards would have blocked.
    assert!(unread > 4096 - 512, "stdout held {unread} unread bytes");
    assert_eq!(http_served, sessions, "every HTTP request was answered");
    assert_eq!(served, sessions, "every new client was served");
    assert!(
        watched.longest_gap < Duration::from_secs(2),
        "the viewer went {:?} without a group ({} groups)",
        watched.longest_gap,
        watched.groups
    );
    // What was logged during the stall is written once stdout is read again: nothing was
    // dropped (the queue holds thousands of lines) and every session's start is there.
    let dropped = stopped_count(&stdout, "log_lines_dropped");
    assert_eq!(dropped, Some(0), "{last:?}");
    let started = stdout
        .iter()
        .filter(|l| l.contains("session started"))
        .count();
    let expected = 2 * sessions as usize + 2;
    assert!(started >= expected, "{started} session starts logged");
}

/// A viewer at `/anon` that saw `suffix` announced, or why not.
fn await_announced_at(relay: SocketAddr, suffix: &str) -> Result<MoqClient, String> {
    let mut viewer =
        MoqClient::connect(relay, Version::Lite05, "/anon").map_err(|e| format!("viewer: {e}"))?;
    viewer.request_announces("");
    let announced = |events: &[Event]| {
        events
            .iter()
            .any(|e| matches!(e, Event::Announced { suffix: s, active: true, .. } if s == suffix))
    };
    if viewer.wait_for(WAIT, announced) {
        Ok(viewer)
    } else {
        Err(format!("{suffix} not announced: {:?}", viewer.events))
    }
}

#[test]
fn a_flood_of_refused_requests_logs_within_its_budget_and_counts_the_rest() {
    let _alone = crate::one_attack_at_a_time();
    let relay = crate::common::Relay::start("");
    // Each refused request logs one line at info ("announced: refused"); a peer repeating it
    // gets at most the call site's budget per shard: 200 at once, then 20 per second.
    let requests = 1500;
    let started = Instant::now();
    for _ in 0..requests {
        assert_eq!(http::get(relay.http, "/announced/private").0, 401);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (status, log) = relay.terminate(WAIT);
    assert!(status.is_some_and(|s| s.success()), "a clean stop");
    let lines: Vec<String> = log.lines().map(String::from).collect();
    let logged = lines
        .iter()
        .filter(|l| l.contains("announced: refused"))
        .count() as u64;
    let bound = 2 * (200 + (20.0 * elapsed).ceil() as u64 + 1);
    assert!(
        logged <= bound,
        "{logged} lines in {elapsed:.1} s, bound {bound}"
    );
    assert!(logged >= 200, "the burst is logged: {logged}");
    // Nothing lost silently: every refusal is either a line or counted as suppressed.
    let suppressed = stopped_count(&lines, "log_lines_suppressed");
    assert_eq!(suppressed, Some(requests - logged), "{:?}", lines.last());
    eprintln!("{requests} refusals in {elapsed:.1} s: {logged} logged, the rest suppressed");
}
