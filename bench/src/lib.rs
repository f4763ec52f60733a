//! `moq-bench`: a thread-per-core moq-lite-05 load generator over raw QUIC. It builds a plan
//! (fanout, broadcasts, chat or idle), splits the connections across `--threads` workers,
//! runs them along one timeline (ramp, warmup, measured window, drain), then merges what
//! they counted into a [`Report`]. The binary prints it; `cargo bench --bench e2e` of the
//! relay calls [`run`] directly. With `--flood-ports` a [`flood`] of fake Initials runs
//! through the measured window.

pub mod args;
mod carrier;
pub mod client;
mod clock;
mod conn;
pub mod flood;
mod group;
pub mod presets;
mod publish;
pub mod relay_process;
mod session;
pub mod stats;
mod watched;
mod worker;
mod workload;

pub use args::Args;
pub use stats::Report;

use relay_process::Watcher;
use stats::{RunInfo, Stats};
use std::sync::Arc;
use workload::{Plan, Timeline, CLOSE, DRAIN};

/// A finished run: the report, and the first connection error seen, if any.
pub struct Outcome {
    pub report: Report,
    pub first_error: Option<String>,
}

/// Runs the workload of `args` to the end. `Err` when the arguments make no plan, a worker
/// could not start, or not one connection completed its handshake.
pub fn run(args: &Args) -> Result<Outcome, String> {
    raise_fd_limit();
    let cli = &args.cli;
    let tag = format!("{:08x}", rand::random::<u32>());
    let plan = Arc::new(Plan::new(args, &tag));
    if plan.conns.is_empty() {
        return Err("the plan has no connections".into());
    }
    let timeline = Timeline::new(args, &plan);
    let lead = timeline.measure_start - timeline.start;
    if lead > cli.warmup {
        eprintln!(
            "moq-bench: ramping {} connections takes {:.1} s; the window starts after {:.1} s instead of the {:.1} s warmup",
            plan.conns.len(),
            plan.ramp_time().as_secs_f64(),
            lead.as_secs_f64(),
            cli.warmup.as_secs_f64()
        );
    }
    eprintln!(
        "moq-bench: {:?} over {:?} as a {:?} client against {} ({} connections, {} threads, tag {tag}); measuring {:.1}s after {:.1}s, ending by {:.1}s",
        plan.workload,
        cli.transport,
        cli.client,
        cli.relay,
        plan.conns.len(),
        cli.threads,
        cli.duration.as_secs_f64(),
        lead.as_secs_f64(),
        (lead + cli.duration + DRAIN + CLOSE).as_secs_f64()
    );
    let watcher = cli
        .relay_pid
        .map(|pid| {
            Watcher::start(
                pid,
                cli.relay.port(),
                timeline.measure_start,
                timeline.measure_end,
            )
        })
        .transpose()?;
    let cpu_before = clock::cpu_seconds();
    let flooder = (cli.flood_ports > 0)
        .then(|| {
            flood::flood(
                cli.relay,
                cli.flood_ports,
                cli.flood_kind,
                flood::Until::Window(timeline.measure_start, timeline.measure_end),
            )
            .map_err(|e| format!("starting the flood: {e}"))
        })
        .transpose()?;

    let mut handles = Vec::new();
    for t in 0..cli.threads {
        let conns: Vec<usize> = (t..plan.conns.len()).step_by(cli.threads).collect();
        let input = worker::WorkerInput {
            plan: plan.clone(),
            conns,
            timeline,
            relay: cli.relay,
            server_name: cli.server_name.clone(),
            path: cli.path.clone(),
            transport: cli.transport,
            client: cli.client,
            connect_timeout: cli.connect_timeout,
            verify: cli.verify,
        };
        let handle = std::thread::Builder::new()
            .name(format!("bench-{t}"))
            .spawn(move || worker::run(input))
            .map_err(|e| format!("spawning a worker: {e}"))?;
        handles.push(handle);
    }
    let mut total = Stats::new();
    let mut first_error = None;
    let mut failed = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok(out)) => {
                total.merge(&out.stats);
                if first_error.is_none() {
                    first_error = out.first_error;
                }
            }
            Ok(Err(e)) => failed = failed.or(Some(e)),
            Err(_) => failed = failed.or(Some("a worker thread panicked".to_string())),
        }
    }
    if let Some(flooder) = flooder {
        total.flood_datagrams = flooder
            .join()
            .map_err(|_| "the flood thread panicked".to_string())?;
    }
    let relay_process = watcher
        .map(|w| w.finish(failed.is_some() || total.connected == 0))
        .transpose()?;
    if let Some(e) = failed {
        return Err(e);
    }
    let cpu_after = clock::cpu_seconds();
    let wall = timeline.start.elapsed().as_secs_f64();
    let report = Report::new(
        RunInfo {
            workload: plan.workload,
            transport: cli.transport,
            relay: cli.relay.to_string(),
            threads: cli.threads,
            connections: plan.conns.len() as u64,
            fps: args.fps,
            frame_bytes: args.frame_bytes,
            measured_secs: cli.duration.as_secs_f64(),
            window_unix_ms: (timeline.measure_start_unix_ms, timeline.measure_end_unix_ms),
            cpu: (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1),
            wall_secs: wall,
            relay_process,
        },
        &total,
    );
    if total.connected == 0 {
        return Err(format!(
            "could not connect to the relay at {}: none of {} connections completed the handshake ({})",
            cli.relay,
            plan.conns.len(),
            first_error.unwrap_or_else(|| "no reason recorded".into())
        ));
    }
    Ok(Outcome {
        report,
        first_error,
    })
}

/// Raises the open-file soft limit to the hard limit: one socket per connection.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
