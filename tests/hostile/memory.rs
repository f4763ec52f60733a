//! Memory after a flood: what a flood of sessions made the relay allocate goes back to the
//! system once those sessions are gone, instead of staying with the process.

use crate::common::{http, Relay};
use moq_bench::Args;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The relay's resident set, in KiB (VmRSS of /proc/<pid>/status).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// The broadcasts announced under `anon` now, from the HTTP endpoint.
fn announced(relay: &Relay) -> Vec<String> {
    let (status, body) = http::get(relay.http, "/announced/anon");
    assert_eq!(status, 200);
    body.lines().map(String::from).collect()
}

/// Samples the relay's resident set every 20 ms on a thread until dropped: the highest seen.
struct PeakRss {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakRss {
    fn start(pid: u32) -> PeakRss {
        let peak = Arc::new(AtomicU64::new(rss_kib(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (peak, stop) = (peak.clone(), stop.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        PeakRss {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling: the peak, in KiB.
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

#[test]
fn a_flood_of_cached_media_is_given_back_after_its_connections_close() {
    let _alone = crate::one_attack_at_a_time();
    // Groups older than the latest are cached for a minute, so the flood's media stays with
    // the relay until its broadcasts end, a second after their publishers leave. A publisher
    // whose close the relay missed would still be gone after the 10 s idle timeout.
    let relay = Relay::start_with(
        "",
        &[
            "--linger",
            "1s",
            "--cache-duration",
            "60s",
            "--idle-timeout",
            "10s",
        ],
    );
    let pid = relay.pid();
    let baseline = rss_kib(pid);

    // The flood: 50 publishers, each sending a hundred 1 KiB frames a second for about four
    // seconds (small pieces, the allocation pattern that scatters survivors through an
    // allocator's arenas), each with one viewer, so the relay takes it in and caches it.
    // moq-bench closes every connection when the run ends.
    let addr = relay.addr.to_string();
    let argv = [
        "moq-bench",
        "--relay",
        &addr,
        "--workload",
        "broadcasts",
        "--broadcasts",
        "50",
        "--subscribers",
        "1",
        "--fps",
        "100",
        "--frame-bytes",
        "1024",
        "--group-secs",
        "1",
        "--warmup",
        "1s",
        "--duration",
        "3s",
    ];
    let args = Args::parse_from(argv.iter().map(|s| s.to_string()).collect()).unwrap();
    let sampler = PeakRss::start(pid);
    let outcome = moq_bench::run(&args).expect("the flood runs");
    let peak = sampler.finish();
    let report = outcome.report;
    assert!(
        peak > baseline + 32 * 1024,
        "the flood made the relay hold its media: {baseline} -> {peak} KiB ({report:?})"
    );

    // The flood's connections are closed; its broadcasts end a second later, and with them
    // the cached media.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !announced(&relay).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        announced(&relay),
        Vec::<String>::new(),
        "the flood's broadcasts ended"
    );
    let ended = Instant::now();

    // The allocator gives memory back on its own schedule (jemalloc purges what was freed a
    // second ago): wait for the resident set to come down, up to a generous limit. It must
    // give back at least three quarters of what the flood added (glibc's malloc kept all of it).
    let kept_bound = baseline + (peak - baseline) / 4;
    let deadline = ended + Duration::from_secs(15);
    let mut after = rss_kib(pid);
    while after > kept_bound && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        after = rss_kib(pid);
    }
    eprintln!(
        "relay RSS: {baseline} KiB at start, {peak} KiB with the flood, {after} KiB {:.1} s after \
         its broadcasts ended ({} frames delivered)",
        ended.elapsed().as_secs_f64(),
        report.frames_delivered
    );
    assert!(
        after <= kept_bound,
        "the relay still holds {after} KiB {:?} after the flood ended (started at {baseline} KiB, \
         peaked at {peak} KiB; the bound is {kept_bound} KiB)",
        ended.elapsed()
    );
}
