//! Helpers shared by the integration tests: start a runtime on a background thread and get its
//! `ReadyInfo` back.

#![allow(dead_code)]

use shards::{ReadyInfo, Runtime, RuntimeConfig, RuntimeError, Shard};
use std::future::Future;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A config for tests: `n` unpinned shards, no signal thread, small lanes.
pub fn config(n: usize) -> RuntimeConfig {
    RuntimeConfig {
        shards: Some(n),
        pin: false,
        handle_signals: false,
        control_capacity: 64,
        data_capacity: 64,
        udp_recv_buffer: 1 << 20,
        udp_send_buffer: 1 << 20,
        ..RuntimeConfig::default()
    }
}

/// A runtime running on a background thread.
pub struct Started {
    pub info: ReadyInfo,
    pub thread: JoinHandle<Result<(), RuntimeError>>,
}

impl Started {
    /// Stops the runtime and returns what `run` returned.
    pub fn stop(self) -> Result<(), RuntimeError> {
        self.info.handle().stop();
        self.join()
    }

    /// Waits (bounded) for `run` to return.
    pub fn join(self) -> Result<(), RuntimeError> {
        join_within(self.thread, Duration::from_secs(10))
    }
}

/// Joins `thread`, failing the test if it takes longer than `limit`.
pub fn join_within<T>(thread: JoinHandle<T>, limit: Duration) -> T {
    let start = std::time::Instant::now();
    while !thread.is_finished() {
        assert!(
            start.elapsed() < limit,
            "run did not return within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    thread.join().expect("run thread panicked")
}

/// Starts a runtime on a background thread and waits until it is ready.
pub fn start<C, D, F, Fut>(config: RuntimeConfig, shard_main: F) -> Started
where
    C: Send + 'static,
    D: Send + 'static,
    F: Fn(Shard<C, D>) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        Runtime::new(config)
            .on_ready(move |info| {
                let _ = tx.send(info.clone());
            })
            .run(shard_main)
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(info) => Started { info, thread },
        Err(_) => {
            let result = join_within(thread, Duration::from_secs(5));
            panic!("runtime did not become ready: {result:?}");
        }
    }
}
