//! Shared helpers for the integration tests: start the real relay binary on loopback with a
//! fresh port and real TLS, and read its log.

#![allow(dead_code)]

pub mod http;
pub mod reference;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running relay process, killed on drop.
pub struct Relay {
    child: Child,
    pub addr: SocketAddr,
    /// The HTTP listener (TCP).
    pub http: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
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

    /// Starts the relay, or returns its log if it did not come up.
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
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if std::env::var_os("RELAY_LOG").is_some() {
                        eprintln!("relay: {line}");
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let mut relay = Relay {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            http: "127.0.0.1:0".parse().unwrap(),
            log,
            _dir: dir,
        };
        let started = relay.wait_log(Duration::from_secs(20), |l| {
            l.contains("listening for QUIC") || l.starts_with("moq-relay: ")
        });
        let Some(line) = started.filter(|l| l.contains("listening for QUIC")) else {
            return Err(relay.log_text());
        };
        relay.addr = addr_in(&line);
        if let Some(line) =
            relay.wait_log(Duration::from_secs(1), |l| l.contains("listening for HTTP"))
        {
            relay.http = addr_in(&line);
        }
        Ok(relay)
    }

    /// Waits for a log line matching `pred`.
    pub fn wait_log(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| pred(l)) {
                return Some(line.clone());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The relay's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every log line so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// How many log lines match `pred`.
    pub fn count_log(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.log.lock().unwrap().iter().filter(|l| pred(l)).count()
    }
}

fn addr_in(line: &str) -> SocketAddr {
    let addr = line
        .split("addr=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    addr.parse().unwrap()
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
