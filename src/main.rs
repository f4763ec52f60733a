//! The `moq-relay` binary: parse flags and config, start logging, run the shards, and tell
//! systemd when the relay is ready.

use clap::Parser;
use moq_relay::config::{self, init_logging, Cli};
use moq_relay::runtime;
use std::io::Write;
use std::process::ExitCode;

/// The process's allocator: jemalloc, because it gives memory back once a flood is over.
///
/// With glibc's malloc, what a flood made the relay allocate stayed with the process after its
/// connections closed (100 publishers of 1 KiB frames, release build: 10 -> 132 MB, and 129 MB
/// still resident 10 s after they left): `free` gives memory back only from the top of an
/// arena, and a flood's survivors are scattered through it. Measured on that flood
/// (bench/README.md, "Memory after a flood"), with what stays 10 s after its connections
/// closed:
///
/// - glibc tuned (`trim_threshold`, `mmap_threshold` 128 KiB; `arena_max` 2): 75-96 % kept;
/// - glibc with `malloc_trim(0)`: 4-6 % kept, but it walks every arena under its lock, stalling
///   the shards that allocate there, and needs a trigger that knows how much is free;
/// - mimalloc 2.0: 43 % kept (15 % purging at once, a system call on the free path);
/// - jemalloc with a background thread and a 1 s decay: 5-9 % kept, purged off the shards
///   with no call on the hot path, and 7-13 % less relay CPU per GB than glibc
///   (fanout-1m-500, chat-1000), for 2-6 % more resident memory in steady state and a
///   higher peak under the flood.
///
/// Only Rust's allocations go here; BoringSSL's (about 4 KiB per connection) stay with glibc.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read once at start-up (`_RJEM_MALLOC_CONF` in the environment
/// overrides them): a background thread purges freed pages (`background_thread`); pages freed
/// about a second ago go back to the system (`dirty_decay_ms:1000`) with `MADV_DONTNEED`, so
/// the resident set shows it, rather than through the lazy `MADV_FREE` step, which the kernel
/// reclaims only under pressure (`muzzy_decay_ms:0`).
#[export_name = "_rjem_malloc_conf"]
pub static JEMALLOC_CONF: &u8 =
    &b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0"[0];

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match config::load(&cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("moq-relay: {e}");
            return ExitCode::from(2);
        }
    };
    let logging = match init_logging(&config.log.level) {
        Ok(logging) => logging,
        Err(e) => {
            eprintln!("moq-relay: cannot start logging: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime::run(&config, |listening| {
        for addr in &listening.quic {
            tracing::info!(%addr, shards = listening.shards, "listening for QUIC");
        }
        for addr in &listening.http {
            tracing::info!(%addr, "listening for HTTP");
        }
        tracing::info!(fingerprint = %listening.fingerprint, "certificate");
        // The readiness line (runtime::READY), once, on stdout whatever the log level; a
        // closed stdout must not stop the relay.
        let _ = writeln!(std::io::stdout(), "{}", listening.ready_line());
        notify_systemd();
    });
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("moq-relay: {e}");
            ExitCode::FAILURE
        }
    };
    tracing::info!(
        log_lines_dropped = logging.dropped(),
        log_lines_suppressed = logging.suppressed(),
        "stopped"
    );
    logging.finish();
    code
}

/// Sends `READY=1` to systemd when started as a `Type=notify` service.
fn notify_systemd() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let socket = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(socket) => socket,
        Err(_) => return,
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)
            .and_then(|addr| socket.send_to_addr(b"READY=1", &addr))
    } else {
        socket.send_to(b"READY=1", &path)
    };
    if let Err(e) = sent {
        tracing::warn!(error = %e, "systemd notification failed");
    }
}
