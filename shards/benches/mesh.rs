//! Throughput of the cross-shard mesh (data lane), std only.
//!
//! Run with `cargo bench -p shards --bench mesh` (`MESH_BENCH_PIN=0` to run unpinned).
//!
//! A 2-shard runtime (pinned to two CPUs when the machine allows it, unpinned otherwise;
//! default lane capacities, so the data lane holds 4096 messages). Shard 0 sends
//! `Some(Bytes)` messages to shard 1 on the data lane as fast as the lane takes them: a
//! `try_send_data` loop that falls back to awaiting `send_data` when the lane is full. Every
//! payload is a refcounted clone of one buffer, as the relay forwards a frame, so nothing is
//! copied: GB/s is payload bytes *referenced* per second. Shard 1 drops each message after
//! reading its length.
//!
//! One run lasts [`RUN_TIME`] per payload size; it ends with a `None` on the data lane, and
//! shard 1 acknowledges on the control lane with its count and the instant it saw the end, so
//! the time covers delivery, not just queueing. [`RUNS`] runs per size; the median is
//! reported. Every wait on the mesh is guarded by a 1 ms timer ([`GUARD`]; see there why), and
//! a watchdog stops the runtime if the whole benchmark exceeds [`DEADLINE`].

use bytes::Bytes;
use futures_lite::future;
use shards::{MeshSendError, Runtime, RuntimeConfig, RuntimeError, Shard};
use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Payload sizes, in bytes.
const SIZES: [usize; 3] = [64, 1 << 10, 16 << 10];
/// Runs per size; the median is reported.
const RUNS: usize = 3;
/// How long shard 0 sends in one run.
const RUN_TIME: Duration = Duration::from_secs(1);
/// How often (in messages) the sender looks at the clock.
const CLOCK_EVERY: u64 = 256;
/// The watchdog stops the runtime after this long.
const DEADLINE: Duration = Duration::from_secs(60);

/// Data lane: a payload, or `None` for the end of a run.
type Data = Option<Bytes>;
/// Control lane, shard 1 to shard 0: messages received in the run, the receiver's stalls, and
/// when the run's end arrived.
type Ack = (u64, u64, Instant);
/// How long a wait on the mesh may last before the benchmark wakes itself and retries.
///
/// Written when the mesh ran on glommio's shared channels, which lost wake-ups: a pinned run
/// sat with the lane full and both shards asleep until the deadline. The mesh's own lanes and
/// the executor fix in `third_party/glommio` no longer lose any (see the mesh's module doc);
/// the guard stays so that a regression shows here as `stalls` above zero, not as a hang.
const GUARD: Duration = Duration::from_millis(1);

/// One run as seen by shard 0.
struct RunResult {
    size: usize,
    messages: u64,
    elapsed: Duration,
    /// Times the lane was full and the sender had to wait.
    full: u64,
    /// Waits (either side) that [`GUARD`] ended: no wake from the channel within 1 ms.
    stalls: u64,
}

/// Receives from `recv` unless the runtime stops first (then `None`).
async fn or_stopped<T>(
    shard: &Shard<Ack, Data>,
    recv: impl std::future::Future<Output = T>,
) -> Option<T> {
    future::or(async { Some(recv.await) }, async {
        shard.stopped().await;
        None
    })
    .await
}

/// Runs `wait` for at most [`GUARD`]; `None` if the guard ended it (`wait` is dropped, which
/// for a mesh send or receive means nothing was queued or taken).
async fn guarded<T>(wait: impl std::future::Future<Output = T>) -> Option<T> {
    future::or(async { Some(wait.await) }, async {
        glommio::timer::sleep(GUARD).await;
        None
    })
    .await
}

async fn sender(mut shard: Shard<Ack, Data>, results: mpsc::Sender<RunResult>) {
    let acks = shard.take_control_receivers().remove(0);
    for size in SIZES {
        for _ in 0..RUNS {
            let buffer = Bytes::from(vec![0x5a; size]);
            let mut full = 0u64;
            let mut stalls = 0u64;
            let mut sent = 0u64;
            let start = Instant::now();
            'run: loop {
                for _ in 0..CLOCK_EVERY {
                    match shard.try_send_data(1, Some(buffer.clone())) {
                        Ok(()) => {}
                        Err(MeshSendError::Full(msg)) => {
                            full += 1;
                            let mut msg = msg;
                            loop {
                                match or_stopped(&shard, guarded(shard.send_data(1, msg))).await {
                                    Some(Some(Ok(()))) => break,
                                    // Woken by the guard, not the channel: retry with a
                                    // fresh clone (the dropped send had not queued its own).
                                    Some(None) => {
                                        stalls += 1;
                                        msg = Some(buffer.clone());
                                    }
                                    _ => return,
                                }
                            }
                        }
                        Err(_) => return,
                    }
                    sent += 1;
                }
                if start.elapsed() >= RUN_TIME {
                    break 'run;
                }
            }
            if !matches!(
                or_stopped(&shard, shard.send_data(1, None)).await,
                Some(Ok(()))
            ) {
                return;
            }
            let Some(Some((received, receiver_stalls, end))) =
                or_stopped(&shard, acks.recv()).await
            else {
                return;
            };
            assert_eq!(received, sent, "every message arrived");
            stalls += receiver_stalls;
            let _ = results.send(RunResult {
                size,
                messages: received,
                elapsed: end - start,
                full,
                stalls,
            });
        }
    }
}

async fn receiver(mut shard: Shard<Ack, Data>) {
    let data = shard.take_data_receivers().remove(0);
    loop {
        let mut count = 0u64;
        let mut stalls = 0u64;
        loop {
            match or_stopped(&shard, guarded(data.recv())).await {
                Some(Some(Some(Some(payload)))) => {
                    black_box(payload.len());
                    count += 1;
                }
                Some(Some(Some(None))) => break,
                Some(None) => stalls += 1,
                // Shard 0 finished (lane closed) or the runtime is stopping.
                _ => return,
            }
        }
        let end = Instant::now();
        if !matches!(
            or_stopped(&shard, shard.send_control(0, (count, stalls, end))).await,
            Some(Ok(()))
        ) {
            return;
        }
    }
}

/// Runs the whole benchmark on one runtime; returns the runs in order.
fn bench(pin: bool) -> (Result<(), RuntimeError>, Vec<RunResult>, Vec<Option<usize>>) {
    let config = RuntimeConfig {
        shards: Some(2),
        pin,
        handle_signals: false,
        ..RuntimeConfig::default()
    };
    let (results_tx, results_rx) = mpsc::channel();
    let (cpus_tx, cpus_rx) = mpsc::channel();
    let runtime = Runtime::new(config).on_ready(move |info| {
        let _ = cpus_tx.send(info.cpus.clone());
    });

    // Watchdog: stops the runtime at the deadline; ends as soon as `run` returns.
    let handle = runtime.handle();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(DEADLINE) == Err(mpsc::RecvTimeoutError::Timeout) {
            eprintln!("mesh bench: deadline of {DEADLINE:?} reached, stopping");
            handle.stop();
        }
    });

    let result = runtime.run(move |shard: Shard<Ack, Data>| {
        let results = results_tx.clone();
        async move {
            match shard.id() {
                0 => sender(shard, results).await,
                _ => receiver(shard).await,
            }
        }
    });
    drop(done_tx);
    watchdog.join().expect("watchdog thread");
    let cpus = cpus_rx.try_recv().unwrap_or_default();
    (result, results_rx.try_iter().collect(), cpus)
}

fn main() {
    let start = Instant::now();
    // `MESH_BENCH_PIN=0` skips the pinned attempt.
    let pin = std::env::var("MESH_BENCH_PIN").map_or(true, |v| v != "0");
    let (mut result, mut runs, mut cpus) = bench(pin);
    if runs.is_empty() {
        if let Err(e) = &result {
            println!("pinned runtime failed ({e}); running unpinned");
        }
        (result, runs, cpus) = bench(false);
    }
    if let Err(e) = &result {
        eprintln!("mesh bench: runtime error: {e}");
    }

    let placement: Vec<String> = cpus
        .iter()
        .map(|cpu| cpu.map_or("unpinned".to_string(), |c| format!("cpu {c}")))
        .collect();
    println!(
        "shards mesh, data lane shard 0 -> shard 1 ({}), capacity {}: Bytes payloads \
         (refcounted clones, not copied)",
        placement.join(", "),
        RuntimeConfig::default().data_capacity,
    );
    println!(
        "median of {RUNS} runs of ~{} ms each; msgs/s = messages delivered per second; \
         ns/msg = nanoseconds per message;",
        RUN_TIME.as_millis()
    );
    println!(
        "GB/s = payload bytes referenced per second (10^9); full = sends that found the lane full;"
    );
    println!(
        "stalls = waits (either side) with no wake-up from the channel within {} ms",
        GUARD.as_millis()
    );
    println!();
    println!(
        "{:>9} {:>14} {:>9} {:>9} {:>12} {:>10} {:>7}",
        "payload", "msgs/s", "ns/msg", "GB/s", "messages", "full", "stalls"
    );
    for size in SIZES {
        let mut of_size: Vec<&RunResult> = runs.iter().filter(|r| r.size == size).collect();
        if of_size.is_empty() {
            println!("{:>9} {:>14}", label(size), "no result");
            continue;
        }
        let rate = |r: &RunResult| r.messages as f64 / r.elapsed.as_secs_f64();
        of_size.sort_by(|a, b| rate(a).total_cmp(&rate(b)));
        let median = of_size[of_size.len() / 2];
        let msgs = rate(median);
        println!(
            "{:>9} {:>14.0} {:>9.1} {:>9.2} {:>12} {:>10} {:>7}",
            label(size),
            msgs,
            1e9 / msgs,
            msgs * size as f64 / 1e9,
            median.messages,
            median.full,
            median.stalls,
        );
    }
    println!();
    println!("total: {:.1} s", start.elapsed().as_secs_f64());
    if result.is_err() || runs.len() != SIZES.len() * RUNS {
        std::process::exit(1);
    }
}

fn label(size: usize) -> String {
    match size {
        s if s >= 1 << 10 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}
