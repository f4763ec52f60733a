//! Shared helpers for the integration tests: start the real relay binary on loopback with a
//! fresh port and real TLS (ready once it prints its readiness line), and read its log once
//! it has exited.

#![allow(dead_code)]

pub mod http;
pub mod reference;
pub mod udp_proxy;

use moq_bench::client::{Event, MoqClient};
use moq_relay::wire::Version;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the relay may take to print its readiness line.
const START: Duration = Duration::from_secs(20);

/// A running relay process, killed on drop.
pub struct Relay {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// The HTTP listener (TCP).
    pub http: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Relay {
    /// Starts `moq-relay --shards 2` with `extra` TOML appended to a minimal config.
    pub fn start(extra: &str) -> Relay {
        Self::start_with(extra, &[])
    }

    /// Like [`Relay::start`], with extra command-line flags.
    pub fn start_with(extra: &str, flags: &[&str]) -> Relay {
        Self::try_start_with(extra, flags)
            .unwrap_or_else(|log| panic!("relay did not start:\n{log}"))
    }

    /// Starts a relay whose QUIC (UDP) and HTTP (TCP) listeners share one port, as the
    /// certificate-hash bootstrap of browsers and moq clients expects. Ports are probed and
    /// retried, since another test may take a port between the probe and the bind.
    pub fn start_on_one_port(extra: &str) -> Relay {
        let mut last = String::new();
        for _ in 0..10 {
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = udp.local_addr().unwrap().port();
            let Ok(tcp) = std::net::TcpListener::bind(("127.0.0.1", port)) else {
                continue;
            };
            drop((udp, tcp));
            let shared = format!("127.0.0.1:{port}");
            match Self::try_start_with(extra, &["--listen", &shared, "--web-http-listen", &shared])
            {
                Ok(relay) => return relay,
                Err(log) => last = log,
            }
        }
        panic!("no port free for both UDP and TCP:\n{last}");
    }

    /// Starts the relay and waits for its readiness line ([`moq_relay::runtime::READY`]), or
    /// returns its output if it exited (or hung) without printing it.
    pub fn try_start_with(extra: &str, flags: &[&str]) -> Result<Relay, String> {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("relay.toml");
        let level = std::env::var("RELAY_LEVEL").unwrap_or_else(|_| "info".into());
        let text = format!(
            "[log]\nlevel = \"{level}\"\n[server]\nlisten = \"127.0.0.1:0\"\n[server.tls]\ngenerate = [\"localhost\"]\n[web.http]\nlisten = \"127.0.0.1:0\"\n[auth]\npublic = \"anon\"\n{extra}\n"
        );
        std::fs::write(&config, text).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_moq-relay"))
            .arg("--shards")
            .arg("2")
            .args(flags)
            .arg(&config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("relay binary starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut readers = Vec::new();
        for (stream, ready) in [
            (
                Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
                Some(ready_tx),
            ),
            (Box::new(child.stderr.take().unwrap()), None),
        ] {
            let log = log.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if std::env::var_os("RELAY_LOG").is_some() {
                        eprintln!("relay: {line}");
                    }
                    if let Some(ready) = ready.as_ref().filter(|_| is_ready(&line)) {
                        let _ = ready.send(line.clone());
                    }
                    log.lock().unwrap().push(line);
                }
                // `ready` drops here: a relay that exits unready ends the wait at once.
            }));
        }
        let mut relay = Relay {
            child: Some(child),
            addr: "127.0.0.1:0".parse().unwrap(),
            http: "127.0.0.1:0".parse().unwrap(),
            log,
            readers,
            _dir: dir,
        };
        let Ok(line) = ready_rx.recv_timeout(START) else {
            return Err(relay.stop());
        };
        relay.addr = first_addr(&line, "quic=").expect("the readiness line names a QUIC address");
        if let Some(http) = first_addr(&line, "http=") {
            relay.http = http;
        }
        Ok(relay)
    }

    /// The relay's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("relay running").id()
    }

    /// Every log line so far, for failure messages. Assertions on the log use [`Self::stop`].
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Kills the relay and returns everything it printed (stdout and stderr, each in order).
    /// For the few facts only the log shows (which shard or transport a session used, the
    /// reason a token was refused), read once the process is gone, so nothing is still on its
    /// way through the pipes.
    pub fn stop(mut self) -> String {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.collect()
    }

    /// Sends SIGTERM and waits up to `timeout` for the relay to exit: its exit status (`None`
    /// if it had to be killed) and everything it printed.
    pub fn terminate(mut self, timeout: Duration) -> (Option<ExitStatus>, String) {
        let mut child = self.child.take().expect("relay running");
        // SAFETY: plain kill(2) on our own child, which has not been reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let status = wait_timeout(&mut child, timeout);
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        (status, self.collect())
    }

    /// Joins the log readers (the process is gone, so they reach the end of its output).
    fn collect(&mut self) -> String {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        self.log_text()
    }
}

/// Whether `line` is the relay's readiness line.
pub fn is_ready(line: &str) -> bool {
    line.starts_with(moq_relay::runtime::READY)
}

/// The first address of the readiness line's `key=` list.
fn first_addr(line: &str, key: &str) -> Option<SocketAddr> {
    line.split_whitespace()
        .find_map(|field| field.strip_prefix(key))?
        .split(',')
        .next()?
        .parse()
        .ok()
}

/// Waits up to `timeout` for `child` to exit: its status, or `None` if it is still running
/// (the caller decides what to do with it). Blocks in waitid(2) on a helper thread, which
/// does not reap the child, so `child` stays usable either way.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let pid = child.id() as libc::id_t;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || loop {
        // SAFETY: waitid(2) with a zeroed siginfo_t it fills in; WNOWAIT leaves the child
        // for `Child::wait` to reap.
        let exited = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT)
        };
        if exited == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
        {
            let _ = tx.send(());
            return;
        }
    });
    rx.recv_timeout(timeout).ok()?;
    child.wait().ok()
}

/// Connects a `version` viewer at `path` (raw QUIC) and waits until the relay announces `suffix` to it: the
/// broadcast is live and routable. Returns the viewer, or its events if `suffix` did not show
/// within `timeout`.
pub fn await_announced(
    relay: &Relay,
    version: Version,
    path: &str,
    suffix: &str,
    timeout: Duration,
) -> Result<MoqClient, String> {
    let mut viewer = MoqClient::connect(relay.addr, version, path)
        .map_err(|e| format!("viewer at {path}: {e}"))?;
    viewer.request_announces("");
    let announced = |events: &[Event]| {
        events
            .iter()
            .any(|e| matches!(e, Event::Announced { suffix: s, active: true, .. } if s == suffix))
    };
    if viewer.wait_for(timeout, announced) {
        Ok(viewer)
    } else {
        Err(format!(
            "{suffix} not announced at {path}: {:?}",
            viewer.events
        ))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The sum over the shards of counter `field` on the relay's "shard stopped" lines (one line per
/// area and shard), read from its log after it stopped. The field is matched whole, so
/// `early_streams_refused` does not also count `wt_early_streams_refused`.
pub fn shard_counter(log: &str, field: &str) -> u64 {
    let key = format!(" {field}=");
    log.lines()
        .filter(|l| l.contains("shard stopped"))
        .filter_map(|l| l.split(key.as_str()).nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The groups a viewer received whole, in the order they completed.
pub fn groups_done(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::GroupDone { group, .. } => Some(*group),
            _ => None,
        })
        .collect()
}
