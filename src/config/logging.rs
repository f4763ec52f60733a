//! Logging set-up: `tracing-subscriber`'s fmt layer, filtered by `log.level` (or
//! `--log-level`) unless `RUST_LOG` is set, with colours only on a terminal. Lines pass a
//! budget per call site ([`PerCallsiteLimit`]) and leave through a bounded queue written by a
//! thread of its own (`log::queue`), so a shard never blocks on stdout; lines dropped or
//! suppressed are reported every [`REPORT_EVERY`] (when there were any) and at exit.

use std::io::IsTerminal;
use std::time::Duration;

use crate::log::{self, queue, suppressed_total, PerCallsiteLimit, QueueDrain};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Lines the queue to stdout holds; beyond that they are dropped and counted. About 1 MB of
/// typical lines: minutes of a busy relay's info log, seconds of a debug log.
const QUEUE_LINES: usize = 4096;
/// Line buffers kept for reuse.
const POOLED_LINES: usize = 512;
/// Each call site logs this many lines at once on each thread, then [`CALLSITE_PER_SECOND`].
const CALLSITE_BURST: u32 = 200;
const CALLSITE_PER_SECOND: u32 = 20;
/// How often dropped and suppressed lines are reported, when there were any.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);
/// How long the exit waits for the queued lines to reach stdout.
const EXIT_FLUSH: Duration = Duration::from_secs(2);

/// The running log: its counters, and the flush at exit.
pub struct Logging {
    drain: QueueDrain,
}

impl Logging {
    /// Lines dropped because stdout did not keep up (the queue was full), since the start.
    pub fn dropped(&self) -> u64 {
        self.drain.dropped()
    }

    /// Lines held back by a call site's budget, since the start.
    pub fn suppressed(&self) -> u64 {
        suppressed_total()
    }

    /// Writes out what is queued, waiting at most a couple of seconds; if stdout is stalled,
    /// says on stderr how many lines were lost, so the process can exit anyway.
    pub fn finish(self) {
        if let Err(left) = self.drain.flush(EXIT_FLUSH) {
            eprintln!("moq-relay: stdout is not being read; {left} queued log lines lost at exit");
        }
    }
}

/// Installs the global tracing subscriber and starts the log's writer and reporter threads.
/// `level` is a level or an `EnvFilter` directive list (`info`, `info,moq_relay=debug`); a
/// non-empty `RUST_LOG` overrides it. ANSI colours are used only when stdout is a terminal and
/// `NO_COLOR` is unset. If a subscriber is already installed it stays (the returned
/// [`Logging`] then counts nothing). Fails only if a thread cannot be started.
pub fn init_logging(level: &str) -> std::io::Result<Logging> {
    let (filter, ignored) = filter(level, std::env::var("RUST_LOG").ok().as_deref());
    let ansi = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let (lines, drain) = queue::spawn(std::io::stdout(), QUEUE_LINES, POOLED_LINES)?;
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(PerCallsiteLimit::new(CALLSITE_PER_SECOND, CALLSITE_BURST))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(lines)
                .with_ansi(ansi),
        )
        .try_init()
        .is_ok();
    if let (true, Some((what, value, err))) = (installed, ignored) {
        tracing::warn!("ignoring invalid {what} {value:?}: {err}");
    }
    let reported = drain.clone();
    log::thread::spawn("log-report", move || report_losses(&reported))?;
    Ok(Logging { drain })
}

/// Every [`REPORT_EVERY`], a warning with the lines dropped and suppressed since the last one,
/// if any. The warning goes the same way as every line: if it is dropped too, it is counted
/// and the next one reports it.
fn report_losses(drain: &QueueDrain) {
    let (mut dropped, mut suppressed) = (0, 0);
    loop {
        std::thread::sleep(REPORT_EVERY);
        let (now_dropped, now_suppressed) = (drain.dropped(), suppressed_total());
        if (now_dropped, now_suppressed) != (dropped, suppressed) {
            tracing::warn!(
                dropped = now_dropped - dropped,
                suppressed = now_suppressed - suppressed,
                dropped_total = now_dropped,
                suppressed_total = now_suppressed,
                "log lines lost: dropped while stdout was not keeping up, or suppressed by their call site's budget"
            );
            (dropped, suppressed) = (now_dropped, now_suppressed);
        }
    }
}

/// The filter to use, and what was ignored because it did not parse.
fn filter(
    level: &str,
    rust_log: Option<&str>,
) -> (EnvFilter, Option<(&'static str, String, String)>) {
    let mut ignored = None;
    if let Some(env) = rust_log.filter(|v| !v.trim().is_empty()) {
        match EnvFilter::builder().parse(env) {
            Ok(f) => return (f, None),
            Err(e) => ignored = Some(("RUST_LOG", env.to_string(), e.to_string())),
        }
    }
    match EnvFilter::builder().parse(level) {
        Ok(f) => (f, ignored),
        Err(e) => (
            EnvFilter::new("info"),
            ignored.or(Some(("log level", level.to_string(), e.to_string()))),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_overrides_the_level() {
        let (f, ignored) = filter("info", Some("moq_relay=trace"));
        assert!(ignored.is_none());
        assert_eq!(f.to_string(), "moq_relay=trace");
        let (f, _) = filter("debug", Some("  "));
        assert_eq!(f.to_string(), "debug");
        let (f, _) = filter("warn", None);
        assert_eq!(f.to_string(), "warn");
    }

    #[test]
    fn bad_filters_fall_back() {
        let (f, ignored) = filter("info", Some("x=loud"));
        assert_eq!(f.to_string(), "info");
        assert_eq!(ignored.unwrap().0, "RUST_LOG");
        let (f, ignored) = filter("x=loud", None);
        assert_eq!(f.to_string(), "info");
        assert_eq!(ignored.unwrap().0, "log level");
    }
}
