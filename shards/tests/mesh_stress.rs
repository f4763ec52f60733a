//! The mesh never loses a wake-up: millions of messages both ways through lanes so small that
//! every few messages a sender finds its lane full and parks, a receiver finds its lane empty
//! and parks, and whole executors go to sleep waiting for each other.
//!
//! Nothing else runs on the shards (no timers, no sockets), so a lost wake-up is not rescued
//! by some other event: the shard that missed it sleeps for good, and the test fails once
//! nothing has moved for [`STALL`], naming how far each lane got. Run it with busy loops on
//! every core (`for i in 1 2 3; do yes >/dev/null & done`) to make the executors lose the CPU
//! at awkward moments: that is how the executor's own lost wake-up was found (see the mesh's
//! module doc). A slow
//! or busy machine only makes the exchange take longer: it fails on a stall, not on a total
//! time (a first version did, and failed once on a machine busy with a benchmark).
//!
//! `MESH_STRESS_MESSAGES` overrides the message count per lane (default 1 000 000).

mod common;

use common::{config, join_within};
use shards::{Runtime, RuntimeConfig, Shard};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long no message may move before the mesh counts as hung. Messages normally move
/// tens of thousands of times a second, so a pause this long is a shard asleep for good.
const STALL: Duration = Duration::from_secs(20);

fn messages() -> u64 {
    std::env::var("MESH_STRESS_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// Progress counters, readable from the test thread while the shards run: per shard, messages
/// sent and received on each lane.
#[derive(Default)]
struct Progress {
    sent_control: [AtomicU64; 2],
    sent_data: [AtomicU64; 2],
    received_control: [AtomicU64; 2],
    received_data: [AtomicU64; 2],
}

impl Progress {
    fn report(&self) -> String {
        let get = |a: &[AtomicU64; 2], i: usize| a[i].load(Ordering::Relaxed);
        (0..2)
            .map(|i| {
                format!(
                    "shard {i}: sent control {} data {}, received control {} data {}",
                    get(&self.sent_control, i),
                    get(&self.sent_data, i),
                    get(&self.received_control, i),
                    get(&self.received_data, i),
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Every counter summed: it grows while anything moves.
    fn total(&self) -> u64 {
        [
            &self.sent_control,
            &self.sent_data,
            &self.received_control,
            &self.received_data,
        ]
        .iter()
        .flat_map(|a| a.iter())
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }

    fn done(&self, n: u64) -> bool {
        (0..2).all(|i| {
            self.received_control[i].load(Ordering::Relaxed) == n
                && self.received_data[i].load(Ordering::Relaxed) == n
        })
    }
}

#[test]
fn full_lanes_both_ways_with_parking_executors_never_hang() {
    let n = messages();
    let progress = Arc::new(Progress::default());
    let cfg = RuntimeConfig {
        // Tiny lanes: senders fill them within a few messages and must park.
        control_capacity: 2,
        data_capacity: 4,
        ..config(2)
    };
    let shard_progress = progress.clone();
    let thread = std::thread::spawn(move || {
        Runtime::new(cfg).run(move |mut shard: Shard<u64, u64>| {
            let progress = shard_progress.clone();
            async move {
                let id = shard.id();
                let peer = 1 - id;
                let control_rx = shard.take_control_receivers().remove(0);
                let data_rx = shard.take_data_receivers().remove(0);
                let shard = Rc::new(shard);
                let mut tasks = Vec::new();
                // Receivers check order: a lost or duplicated message is a failure too.
                let p = progress.clone();
                tasks.push(glommio::spawn_local(async move {
                    for seq in 0..n {
                        match control_rx.recv().await {
                            Some(got) if got == seq => {}
                            other => return Err(format!("control {seq}: got {other:?}")),
                        }
                        p.received_control[id].fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                }));
                let p = progress.clone();
                tasks.push(glommio::spawn_local(async move {
                    for seq in 0..n {
                        match data_rx.recv().await {
                            Some(got) if got == seq => {}
                            other => return Err(format!("data {seq}: got {other:?}")),
                        }
                        p.received_data[id].fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                }));
                // The control sender awaits room for every message; the data sender tries
                // first and awaits only when the lane is full, as the relay's outbox does.
                let (s, p) = (shard.clone(), progress.clone());
                tasks.push(glommio::spawn_local(async move {
                    for seq in 0..n {
                        s.send_control(peer, seq)
                            .await
                            .map_err(|e| format!("control send {seq}: {e}"))?;
                        p.sent_control[id].fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                }));
                let (s, p) = (shard.clone(), progress.clone());
                tasks.push(glommio::spawn_local(async move {
                    for seq in 0..n {
                        match s.try_send_data(peer, seq) {
                            Ok(()) => {}
                            Err(e) if e.is_full() => s
                                .send_data(peer, e.into_inner())
                                .await
                                .map_err(|e| format!("data send {seq}: {e}"))?,
                            Err(e) => return Err(format!("data send {seq}: {e}")),
                        }
                        p.sent_data[id].fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                }));
                for task in tasks {
                    if let Err(e) = task.await {
                        panic!("shard {id}: {e}");
                    }
                }
            }
        })
    });
    let start = Instant::now();
    let (mut seen, mut moved_at) = (progress.total(), Instant::now());
    while !progress.done(n) && !thread.is_finished() {
        let now = progress.total();
        if now != seen {
            (seen, moved_at) = (now, Instant::now());
        } else if moved_at.elapsed() > STALL {
            panic!(
                "the mesh hung: nothing moved for {:?} ({:?} into the run): {}",
                moved_at.elapsed(),
                start.elapsed(),
                progress.report()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "mesh stress: {n} messages per lane in {:?}",
        start.elapsed()
    );
    let result = join_within(thread, Duration::from_secs(10));
    assert!(result.is_ok(), "runtime failed: {result:?}");
    assert!(progress.done(n), "incomplete: {}", progress.report());
}
