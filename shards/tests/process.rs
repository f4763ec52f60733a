//! Cases with process-wide effects, run one after the other without libtest's harness:
//!
//! * SIGTERM and SIGINT stop a running runtime cleanly, twice in one process. The signals are
//!   sent to the whole process, so every thread must have them blocked, which `run` arranges
//!   for the thread calling it and everything it (and the `on_ready` hook) spawns; a libtest
//!   worker thread would not.
//! * An executor that cannot be created (here: `RLIMIT_MEMLOCK` below glommio's minimum) makes
//!   `run` fail promptly with a message naming the shard and the cause.

use shards::{Runtime, RuntimeConfig, Shard};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn run_until_signal(signal: libc::c_int) {
    let stopped = Arc::new(AtomicUsize::new(0));
    let s = stopped.clone();
    let config = RuntimeConfig {
        shards: Some(2),
        pin: false,
        handle_signals: true,
        udp_bind: vec!["127.0.0.1:0".parse().unwrap()],
        ..RuntimeConfig::default()
    };
    let started = Instant::now();
    Runtime::new(config)
        .on_ready(move |info| {
            assert_eq!(info.shards, 2);
            // Spawned from the calling thread after the mask was set: it inherits it.
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                // SAFETY: plain libc calls.
                unsafe { libc::kill(libc::getpid(), signal) };
            });
        })
        .run(move |shard: Shard<(), ()>| {
            let s = s.clone();
            async move {
                shard.stopped().await;
                s.fetch_add(1, Ordering::SeqCst);
            }
        })
        .expect("run ends cleanly on a stop signal");
    assert_eq!(
        stopped.load(Ordering::SeqCst),
        2,
        "both shards saw the stop"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

fn executor_failure_is_reported_promptly() {
    // SAFETY: plain libc calls on a local rlimit.
    let mut saved: libc::rlimit = unsafe { std::mem::zeroed() };
    unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut saved) };
    let lowered = libc::rlimit {
        rlim_cur: 64 * 1024,
        rlim_max: saved.rlim_max,
    };
    assert_eq!(
        unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lowered) },
        0
    );
    let config = RuntimeConfig {
        shards: Some(2),
        pin: false,
        handle_signals: true,
        ..RuntimeConfig::default()
    };
    let started = Instant::now();
    let result = shards::run(config, |shard: Shard<(), ()>| async move {
        shard.stopped().await
    });
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &saved) };
    let err = result.expect_err("executors cannot start under a 64 KiB memlock limit");
    let message = err.to_string();
    assert!(
        matches!(err, shards::RuntimeError::Executor { .. }),
        "{message}"
    );
    assert!(message.contains("shard"), "{message}");
    assert!(
        message.to_lowercase().contains("memlock") || message.contains("lock"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "run must fail promptly"
    );
}

fn main() {
    executor_failure_is_reported_promptly();
    println!("test executor_failure_is_reported_promptly ... ok");
    run_until_signal(libc::SIGTERM);
    println!("test sigterm_stops_the_runtime ... ok");
    run_until_signal(libc::SIGINT);
    println!("test sigint_stops_a_second_runtime ... ok");
    // The mask is restored: the signals are deliverable again in this thread.
    // SAFETY: querying the current mask.
    let blocked = unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
        libc::sigismember(&mask, libc::SIGINT) == 1 || libc::sigismember(&mask, libc::SIGTERM) == 1
    };
    assert!(!blocked, "run must restore the signal mask");
    println!("test signal_mask_is_restored ... ok");
    println!("\ntest result: ok. 4 passed; 0 failed");
}
