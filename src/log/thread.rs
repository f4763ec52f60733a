//! The log's own threads (the writer, the loss reporter): named, and with SIGINT and SIGTERM
//! blocked, since they start before the shards runtime blocks those signals for the threads it
//! makes; a stop signal delivered to one of them would otherwise kill the process instead of
//! stopping it cleanly.

use std::io;
use std::thread::JoinHandle;

/// Spawns `f` on a thread named `name` that never receives SIGINT or SIGTERM.
pub fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            block_stop_signals();
            f()
        })
}

fn block_stop_signals() {
    // SAFETY: an empty sigset_t filled with sigemptyset/sigaddset, then pthread_sigmask(3) on
    // the calling thread only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}
