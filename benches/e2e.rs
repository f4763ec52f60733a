//! End-to-end benchmark: starts the relay (`--shards 1`, pinned to core 0) for each named
//! workload of `moq-bench` and runs that workload against it from this process (pinned to
//! core 1), then prints one table: relay CPU per delivered GB, delivery, frame latency,
//! lost groups, relay memory, and the load generator's own CPU.
//!
//! ```text
//! cargo bench --bench e2e                                  # every preset, 5 s windows
//! cargo bench --bench e2e -- fanout-1m-500 chat-1000 --secs 10 --warmup 3
//! cargo bench --bench e2e -- fanout-1m-500 --transport webtransport
//! ```
//!
//! With no workload named, every preset runs over raw QUIC and one more row runs
//! `fanout-1m-500` over WebTransport (`/wt`).
//!
//! The side-by-side comparison with moq-relay 0.17.10 is `scripts/bench-compare`.

use moq_bench::presets::{self, PRESETS};
use moq_bench::{Args, Report};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The WebTransport row of a default run.
const DEFAULT_WEBTRANSPORT: &str = "fanout-1m-500";

/// What the command line asked for.
struct Options {
    /// Each preset with the transport it runs over (`quic` or `webtransport`).
    presets: Vec<(&'static str, &'static str)>,
    secs: u64,
    warmup: u64,
}

fn options() -> Result<Options, String> {
    let mut names = Vec::new();
    let mut secs = 5;
    let mut warmup = 2;
    let mut transport = "quic";
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |flag: &str| -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .filter(|&v: &u64| v > 0)
                .ok_or_else(|| format!("{flag} needs a positive number of seconds"))
        };
        match arg.as_str() {
            // `cargo bench` passes --bench to every bench target.
            "--bench" => {}
            "--secs" => secs = number("--secs")?,
            "--warmup" => warmup = number("--warmup")?,
            "--transport" => {
                transport = match args.next().as_deref() {
                    Some("quic") => "quic",
                    Some("webtransport") => "webtransport",
                    _ => return Err("--transport needs quic or webtransport".into()),
                }
            }
            flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
            name => {
                let preset = presets::find(name).ok_or_else(|| {
                    format!("unknown workload {name:?}; known: {}", names_of_all())
                })?;
                names.push(preset.name);
            }
        }
    }
    let presets = if names.is_empty() {
        let mut all: Vec<_> = PRESETS.iter().map(|p| (p.name, "quic")).collect();
        all.push((DEFAULT_WEBTRANSPORT, "webtransport"));
        all
    } else {
        names.into_iter().map(|n| (n, transport)).collect()
    };
    Ok(Options {
        presets,
        secs,
        warmup,
    })
}

fn names_of_all() -> String {
    PRESETS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Restricts the calling thread (and what it spawns or execs afterwards) to one CPU.
fn pin_to(cpu: usize) -> std::io::Result<()> {
    // SAFETY: `set` is a plain bitmask living on the stack; CPU_SET stays inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A port free for both UDP (QUIC) and TCP (HTTP) on loopback.
fn free_port() -> Result<u16, String> {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = udp.local_addr().map_err(|e| e.to_string())?.port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free port on 127.0.0.1".into())
}

/// A relay process for one run; killed when dropped.
struct Relay {
    child: Child,
    addr: SocketAddr,
}

impl Relay {
    fn start(pinned: bool) -> Result<Self, String> {
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_moq-relay"));
        command
            .current_dir(root)
            .args(["--shards", "1", "--log-level", "warn"])
            .args(["--listen", &addr.to_string()])
            .args(["--web-http-listen", &addr.to_string()])
            .arg("dev/relay.toml")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if pinned {
            // SAFETY: the closure only calls sched_setaffinity, which is async-signal-safe.
            unsafe { command.pre_exec(|| pin_to(0)) };
        }
        let child = command
            .spawn()
            .map_err(|e| format!("starting the relay: {e}"))?;
        let mut relay = Self { child, addr };
        relay.wait_ready()?;
        Ok(relay)
    }

    /// Waits until the HTTP listener answers (the UDP socket is bound before it).
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the relay exited at start-up: {status}"));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                // Let its memory settle before the baseline RSS is read.
                std::thread::sleep(Duration::from_millis(500));
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("the relay did not start listening within 15 s".into())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_one(name: &str, transport: &str, options: &Options, pinned: bool) -> Result<Report, String> {
    let relay = Relay::start(pinned)?;
    let argv = [
        "moq-bench",
        "--preset",
        name,
        "--relay",
        &relay.addr.to_string(),
        "--relay-pid",
        &relay.child.id().to_string(),
        "--duration",
        &format!("{}s", options.secs),
        "--warmup",
        &format!("{}s", options.warmup),
        "--transport",
        transport,
    ];
    let args = Args::parse_from(argv.iter().map(|s| s.to_string()).collect())
        .map_err(|e| e.to_string())?;
    let outcome = moq_bench::run(&args)?;
    if let Some(note) = outcome.first_error {
        eprintln!("e2e: {name}: note: {note}");
    }
    Ok(outcome.report)
}

fn opt(v: Option<f64>, precision: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.precision$}"))
}

fn row(name: &str, r: &Report) -> String {
    let cost = r.relay_process.as_ref();
    let frames = r.frames_expected > 0;
    format!(
        "{name:<17} {:>6} {:>9} {:>7} {:>7} {:>7} {:>7} {:>5} {:>8} {:>8} {:>8.1}",
        opt(cost.map(|c| c.cpu_pct()), 1),
        opt(r.relay_cpu_s_per_gb, 2),
        opt(frames.then_some(r.delivery_pct), 2),
        opt(frames.then_some(r.latency_p50_ms), 2),
        opt(frames.then_some(r.latency_p99_ms), 2),
        opt(frames.then_some(r.latency_max_ms), 1),
        r.groups_lost,
        opt(cost.map(|c| c.rss_peak_bytes as f64 / 1048576.0), 1),
        opt(r.relay_rss_per_connection_bytes.map(|b| b / 1024.0), 1),
        r.cpu_pct_of_core,
    )
}

fn main() {
    let options = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("e2e: {e}");
            std::process::exit(2);
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = cores >= 2 && pin_to(1).is_ok();
    eprintln!(
        "e2e: {} workload(s), {} s measured after {} s warmup each; relay {}",
        options.presets.len(),
        options.secs,
        options.warmup,
        if pinned {
            "on core 0, load generator on core 1"
        } else {
            "and load generator unpinned (fewer than 2 cores)"
        }
    );
    let mut results = Vec::new();
    for &(name, transport) in &options.presets {
        let label = match transport {
            "webtransport" => format!("{name}/wt"),
            _ => name.to_string(),
        };
        eprintln!("e2e: running {name} over {transport}");
        match run_one(name, transport, &options, pinned) {
            Ok(report) => results.push((label, report)),
            Err(e) => eprintln!("e2e: {label} failed: {e}"),
        }
    }
    let header = format!(
        "{:<17} {:>6} {:>9} {:>7} {:>7} {:>7} {:>7} {:>5} {:>8} {:>8} {:>8}",
        "workload",
        "CPU%",
        "CPU s/GB",
        "deliv%",
        "p50 ms",
        "p99 ms",
        "max ms",
        "lost",
        "RSS MiB",
        "KiB/conn",
        "gen CPU%"
    );
    println!(
        "\nmoq-relay --shards 1, one run per workload ({} s windows):",
        options.secs
    );
    println!("{header}\n{}", "-".repeat(header.len()));
    for (name, report) in &results {
        println!("{}", row(name, report));
    }
    if results.len() < options.presets.len() {
        eprintln!(
            "e2e: {} of {} workloads failed",
            options.presets.len() - results.len(),
            options.presets.len()
        );
        std::process::exit(1);
    }
}
