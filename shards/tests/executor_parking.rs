//! The executor under every shard never goes to sleep while a task is ready to run.
//!
//! glommio 0.9.0 could: when its preemption signal was already raised as the executor loop
//! came to run its task queues (the preempt timer expired while the thread was off the CPU,
//! or any completion landed on the latency ring), it ran nothing, reported "nothing ran", and
//! parked. Parking consumed the signal, and the woken task waited in its queue until some
//! unrelated event woke the executor, forever if none came. We build glommio with a fix
//! (`third_party/glommio/PATCHES.md`); these tests fail on the unpatched crate.
//!
//! A preempt timer of one nanosecond makes the signal raised nearly every time the loop comes
//! round, so what was a rare race under CPU contention happens on every iteration here.

use std::future::Future;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::Duration;

use futures_lite::AsyncReadExt;

/// Long enough for a loaded machine; a parked executor with ready work never gets there.
const HANG: Duration = Duration::from_secs(60);

/// Runs `rounds` futures made by `make` to completion on one executor with a 1 ns preempt
/// timer, on a thread of its own; fails if they do not all finish within [`HANG`].
fn run_with_instant_preemption<F, Fut>(rounds: usize, make: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let executor = glommio::LocalExecutorBuilder::default()
            .preempt_timer(Duration::from_nanos(1))
            .make()
            .expect("an executor");
        for round in 0..rounds {
            executor.run(make());
            let _ = done.send(round);
        }
    });
    let mut completed = 0;
    while completed < rounds {
        match finished.recv_timeout(HANG) {
            Ok(_) => completed += 1,
            Err(e) => panic!(
                "the executor stopped with work ready to run after {completed} of {rounds} \
                 rounds ({e})"
            ),
        }
    }
}

#[test]
fn a_spawned_task_runs_even_when_preemption_is_signalled_before_it() {
    run_with_instant_preemption(1_000, || async {});
}

#[test]
fn a_task_woken_by_a_completed_read_runs_even_when_preemption_is_signalled() {
    // Another thread writes one byte; the task waits for it through io_uring. The read's
    // completion wakes the task from inside the executor's sleep, as a mesh doorbell does.
    run_with_instant_preemption(300, || async {
        let (mut writer, reader) = UnixStream::pair().expect("a socketpair");
        // SAFETY: we own the descriptor and hand its ownership to glommio.
        let mut reader = unsafe { glommio::net::UnixStream::from_raw_fd(reader.into_raw_fd()) };
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1));
            std::io::Write::write_all(&mut writer, &[1]).expect("a write");
        });
        let mut byte = [0u8; 1];
        assert_eq!(reader.read(&mut byte).await.expect("a read"), 1);
    });
}
