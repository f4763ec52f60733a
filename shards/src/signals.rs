//! SIGINT/SIGTERM handling: a dedicated thread turns the first signal into a graceful stop.
//!
//! [`crate::run`] blocks SIGINT and SIGTERM in the calling thread (`pthread_sigmask`) before it
//! spawns anything, so every shard thread inherits the mask and no executor is ever interrupted
//! by them. A dedicated thread then `sigwait`s for them: the first one calls
//! [`crate::RuntimeHandle::stop`]; a second one while the shards are still stopping exits the
//! process at once with status `128 + signal` (the usual "press Ctrl-C twice").
//!
//! When `run` returns it stops the thread (flag + `pthread_kill`, the signal being blocked it
//! is consumed by the thread's `sigwait`) and restores the calling thread's previous mask, so a
//! later `run` in the same process starts from a clean state.

use crate::stop::RuntimeHandle;
use std::io;
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The running signal thread and the mask to restore; dropping it undoes everything.
pub(crate) struct SignalThread {
    thread: Option<JoinHandle<()>>,
    exit: Arc<AtomicBool>,
    old_mask: libc::sigset_t,
}

fn stop_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise a local sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        set
    }
}

impl SignalThread {
    /// Blocks SIGINT/SIGTERM in the calling thread and starts the signal thread.
    pub(crate) fn install(handle: RuntimeHandle) -> io::Result<SignalThread> {
        let set = stop_signals();
        // SAFETY: valid sigset pointers.
        let mut old_mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old_mask) };
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        let exit = Arc::new(AtomicBool::new(false));
        let thread_exit = exit.clone();
        let spawned = std::thread::Builder::new()
            .name("shards-signals".into())
            .spawn(move || wait_for_signals(set, &thread_exit, &handle));
        match spawned {
            Ok(thread) => Ok(SignalThread {
                thread: Some(thread),
                exit,
                old_mask,
            }),
            Err(e) => {
                // SAFETY: restoring the mask saved above.
                unsafe {
                    libc::pthread_sigmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut())
                };
                Err(e)
            }
        }
    }
}

fn wait_for_signals(set: libc::sigset_t, exit: &AtomicBool, handle: &RuntimeHandle) {
    let mut stopping = false;
    loop {
        let mut signal: libc::c_int = 0;
        // SAFETY: valid pointers; the signals are blocked in this thread (inherited mask).
        let r = unsafe { libc::sigwait(&set, &mut signal) };
        if exit.load(Ordering::SeqCst) {
            return;
        }
        if r != 0 {
            continue;
        }
        if !stopping {
            stopping = true;
            tracing::info!(signal, "stop signal received, stopping all shards");
            handle.stop();
        } else {
            tracing::warn!(signal, "second stop signal received, exiting immediately");
            std::process::exit(128 + signal);
        }
    }
}

impl Drop for SignalThread {
    fn drop(&mut self) {
        self.exit.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            // SAFETY: the thread is alive until joined (it only returns once `exit` is set,
            // which happens right here), so its pthread_t is valid.
            unsafe { libc::pthread_kill(thread.as_pthread_t(), libc::SIGTERM) };
            let _ = thread.join();
        }
        // SAFETY: restoring the mask saved by `install`, on the same thread.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old_mask, std::ptr::null_mut()) };
    }
}
