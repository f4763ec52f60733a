//! Starting, supervising and ending the runtime: [`run`], the [`Runtime`] builder and
//! [`ReadyInfo`].
//!
//! `run` validates the configuration, binds every shard's sockets ([`crate::bind`]), creates the
//! mesh's lanes and doorbells ([`crate::mesh`]) and the stop socketpairs (see [`RuntimeHandle`]), installs
//! the signal thread (see [`RuntimeConfig::handle_signals`]), then starts one thread per shard,
//! each running its own glommio `LocalExecutor` (pinned with `Placement::Fixed` when
//! configured). Validation covers the shard count (at most [`crate::MAX_SHARDS`], and at most
//! the allowed CPUs when pinning) before anything starts. Each shard adopts
//! its sockets, starts its ends of the mesh and reports *ready* (or a failure) to the calling
//! thread over a crossbeam channel, then runs `shard_main`.
//!
//! The calling thread supervises start-up. Once every shard is ready it calls the `on_ready`
//! hook (print the addresses, tell systemd `READY=1`), then blocks until every shard's main
//! future has returned and joins the threads.
//!
//! **Failure during start-up** (an executor cannot be created, a shard fails or panics, the
//! start-up timeout expires): `run` asks every shard to stop (a failed peer's dropped lane ends
//! read as closed to the others), waits at most
//! [`ABANDON_AFTER`] for the shard threads to end, joins those that did, and returns the error.
//! Threads that have not ended by then are left detached rather than joined, so `run` never
//! hangs; a program that gets the error is expected to exit.
//!
//! **A shard panicking later** makes the other shards stop too (fail fast: the mesh is no longer
//! whole); `run` returns [`RuntimeError::ShardPanicked`] once they all have finished. A shard
//! whose main future simply returns early just ends: its peers see its lanes closed
//! ([`crate::MeshSendError::Closed`], `recv()` returning `None`) and `run` returns once every
//! shard has ended.

use crate::bind::{self, ShardSockets};
use crate::config::{RuntimeConfig, MAX_CHANNEL_CAPACITY};
use crate::error::RuntimeError;
use crate::mesh::{self, MeshEnds};
use crate::placement::ShardPlacement;
use crate::shard::Shard;
use crate::signals::SignalThread;
use crate::stop::{self, LocalStop, RuntimeHandle};
use crate::udp::UdpSocket;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// After a start-up failure, how long `run` waits for the shard threads to end before it
/// returns anyway, leaving the stragglers detached.
pub const ABANDON_AFTER: Duration = Duration::from_secs(2);

/// What the runtime looks like once every shard is ready; given to the `on_ready` hook.
#[derive(Clone, Debug)]
pub struct ReadyInfo {
    /// Number of shards.
    pub shards: usize,
    /// The CPU of each shard (`None` = not pinned).
    pub cpus: Vec<Option<usize>>,
    /// The bound address of each `udp_bind` entry, in order (port 0 resolved).
    pub udp_addrs: Vec<SocketAddr>,
    /// The bound address of each `tcp_bind` entry, in order (port 0 resolved).
    pub tcp_addrs: Vec<SocketAddr>,
    handle: RuntimeHandle,
}

impl ReadyInfo {
    /// A handle to stop the runtime from any thread.
    pub fn handle(&self) -> RuntimeHandle {
        self.handle.clone()
    }
}

/// The `on_ready` hook, boxed.
type ReadyHook = Box<dyn FnOnce(&ReadyInfo) + Send>;

/// A runtime to be started: configuration plus an optional `on_ready` hook.
///
/// ```no_run
/// use shards::{Runtime, RuntimeConfig, Shard};
///
/// let config = RuntimeConfig {
///     udp_bind: vec!["[::]:4443".parse().unwrap()],
///     ..RuntimeConfig::default()
/// };
/// Runtime::new(config)
///     .on_ready(|info| println!("listening on {:?}", info.udp_addrs))
///     .run(|shard: Shard<(), ()>| async move { shard.stopped().await })
///     .unwrap();
/// ```
pub struct Runtime {
    config: RuntimeConfig,
    handle: RuntimeHandle,
    on_ready: Option<ReadyHook>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Starts the runtime with `config` and runs `shard_main` on every shard until all of them have
/// returned. See [`Runtime`] for the `on_ready` hook and a stop handle.
pub fn run<C, D, F, Fut>(config: RuntimeConfig, shard_main: F) -> Result<(), RuntimeError>
where
    C: Send + 'static,
    D: Send + 'static,
    F: Fn(Shard<C, D>) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    Runtime::new(config).run(shard_main)
}

enum Event {
    Ready(usize),
    Failed(RuntimeError),
    /// The shard thread ended; the panic message if it panicked.
    Exited(usize, Option<String>),
}

/// Sends `Exited` when the shard thread ends, however it ends.
struct ExitGuard {
    id: usize,
    events: Sender<Event>,
    panic: Option<String>,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let panic = self.panic.take().or_else(|| {
            std::thread::panicking().then(|| "panicked while shutting down".to_string())
        });
        let _ = self.events.send(Event::Exited(self.id, panic));
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Stops the shards if `run` unwinds or returns early.
struct StopOnDrop(RuntimeHandle);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
        self.0.detach();
    }
}

/// Everything one shard thread starts with.
struct ShardStart<C: Send + 'static, D: Send + 'static> {
    id: usize,
    count: usize,
    cpu: Option<usize>,
    sockets: ShardSockets,
    mesh: MeshEnds<C, D>,
    stop_fd: OwnedFd,
    handle: RuntimeHandle,
    events: Sender<Event>,
    io_memory: usize,
    ring_depth: usize,
    preempt_timer: Duration,
}

fn validate(config: &RuntimeConfig) -> Result<(), RuntimeError> {
    let lane = |name: &str, value: usize| {
        if value == 0 || value > MAX_CHANNEL_CAPACITY {
            Err(RuntimeError::InvalidConfig(format!(
                "{name} must be in 1..={MAX_CHANNEL_CAPACITY}, got {value}"
            )))
        } else {
            Ok(())
        }
    };
    lane("control_capacity", config.control_capacity)?;
    lane("data_capacity", config.data_capacity)?;
    if config.preempt_timer.is_zero() {
        return Err(RuntimeError::InvalidConfig(
            "preempt_timer must be above zero".into(),
        ));
    }
    if config.ring_depth == 0 || config.ring_depth > 32_768 {
        return Err(RuntimeError::InvalidConfig(format!(
            "ring_depth must be in 1..=32768, got {}",
            config.ring_depth
        )));
    }
    Ok(())
}

impl Runtime {
    /// A runtime with `config`, not started yet.
    pub fn new(config: RuntimeConfig) -> Runtime {
        Runtime {
            config,
            handle: RuntimeHandle::new(),
            on_ready: None,
        }
    }

    /// A handle to stop this runtime from any thread (before, during or after `run`).
    pub fn handle(&self) -> RuntimeHandle {
        self.handle.clone()
    }

    /// Calls `hook` on the calling thread once every shard is ready, before `run` starts
    /// waiting for the shards to finish. Not called if start-up fails or is stopped.
    pub fn on_ready(mut self, hook: impl FnOnce(&ReadyInfo) + Send + 'static) -> Runtime {
        self.on_ready = Some(Box::new(hook));
        self
    }

    /// Starts the shards and runs `shard_main` on each (see the module documentation).
    pub fn run<C, D, F, Fut>(self, shard_main: F) -> Result<(), RuntimeError>
    where
        C: Send + 'static,
        D: Send + 'static,
        F: Fn(Shard<C, D>) -> Fut + Send + Sync + Clone + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let Runtime {
            config,
            handle,
            on_ready,
        } = self;
        validate(&config)?;
        let placement = ShardPlacement::from_config(&config)?;
        let n = placement.count();
        let sockets = bind::bind_all(&config, n)?;
        let ends = mesh::build::<C, D>(n, config.control_capacity, config.data_capacity).map_err(
            |source| RuntimeError::Io {
                what: "creating the mesh doorbells",
                source,
            },
        )?;
        let (notifiers, stop_fds) = stop::pairs(n).map_err(|source| RuntimeError::Io {
            what: "creating the stop socketpairs",
            source,
        })?;
        handle.attach(notifiers);
        let _stop_on_drop = StopOnDrop(handle.clone());
        // Blocks SIGINT/SIGTERM in this thread before any shard thread exists (they inherit
        // the mask); restores the mask when dropped, after the shard threads are gone.
        let _signals = if config.handle_signals {
            Some(SignalThread::install(handle.clone()).map_err(RuntimeError::Signals)?)
        } else {
            None
        };

        let (events_tx, events) = crossbeam_channel::bounded(2 * n + 1);
        let mut threads: Vec<Option<JoinHandle<()>>> = Vec::with_capacity(n);
        let mut spawn_error = None;
        let starts = sockets
            .per_shard
            .into_iter()
            .zip(ends)
            .zip(stop_fds)
            .enumerate();
        for (id, ((sockets, mesh), stop_fd)) in starts {
            let start = ShardStart {
                id,
                count: n,
                cpu: placement.cpus[id],
                sockets,
                mesh,
                stop_fd,
                handle: handle.clone(),
                events: events_tx.clone(),
                io_memory: config.io_memory,
                ring_depth: config.ring_depth,
                preempt_timer: config.preempt_timer,
            };
            let main = shard_main.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("shard-{id}"))
                .spawn(move || shard_thread(start, main));
            match spawned {
                Ok(t) => threads.push(Some(t)),
                Err(source) => {
                    spawn_error = Some(RuntimeError::Io {
                        what: "spawning a shard thread",
                        source,
                    });
                    break;
                }
            }
        }
        drop(events_tx);

        let mut supervisor = Supervisor {
            events,
            threads,
            ready: vec![false; n],
            exited: vec![false; n],
            handle: handle.clone(),
        };
        if let Some(error) = spawn_error {
            return Err(supervisor.abandon(error));
        }
        match supervisor.start_up(config.startup_timeout) {
            Err(error) => return Err(supervisor.abandon(error)),
            Ok(true) => {
                if let Some(hook) = on_ready {
                    hook(&ReadyInfo {
                        shards: n,
                        cpus: placement.cpus.clone(),
                        udp_addrs: sockets.udp_addrs,
                        tcp_addrs: sockets.tcp_addrs,
                        handle: handle.clone(),
                    });
                }
            }
            // Stopped during start-up: no ready hook, just wait for the shards to end.
            Ok(false) => {}
        }
        supervisor.wait_all()
    }
}

struct Supervisor {
    events: Receiver<Event>,
    threads: Vec<Option<JoinHandle<()>>>,
    ready: Vec<bool>,
    exited: Vec<bool>,
    handle: RuntimeHandle,
}

impl Supervisor {
    fn on_exit(&mut self, id: usize) {
        if let Some(slot) = self.exited.get_mut(id) {
            *slot = true;
        }
        if let Some(thread) = self.threads.get_mut(id).and_then(Option::take) {
            let _ = thread.join();
        }
    }

    /// Waits until every shard is ready (`Ok(true)`), or every shard that is not ready has
    /// ended because of a stop request (`Ok(false)`), or something failed.
    fn start_up(&mut self, timeout: Duration) -> Result<bool, RuntimeError> {
        let deadline = Instant::now() + timeout;
        let n = self.ready.len();
        loop {
            if (0..n).all(|i| self.ready[i]) {
                return Ok(true);
            }
            if (0..n).all(|i| self.ready[i] || self.exited[i]) {
                return Ok(false);
            }
            match self.events.recv_deadline(deadline) {
                Ok(Event::Ready(id)) => self.ready[id] = true,
                Ok(Event::Failed(error)) => return Err(error),
                Ok(Event::Exited(id, Some(message))) => {
                    self.on_exit(id);
                    return Err(RuntimeError::ShardPanicked { shard: id, message });
                }
                Ok(Event::Exited(id, None)) => {
                    self.on_exit(id);
                    if !self.ready[id] && !self.handle.is_stop_requested() {
                        return Err(RuntimeError::ShardStart {
                            shard: id,
                            message: "the shard ended before it was ready".into(),
                        });
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(RuntimeError::StartupTimeout {
                        timeout,
                        pending: (0..n).filter(|&i| !self.ready[i]).collect(),
                    })
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(RuntimeError::ShardStart {
                        shard: (0..n).find(|&i| !self.ready[i]).unwrap_or(0),
                        message: "the shard threads ended during start-up".into(),
                    })
                }
            }
        }
    }

    /// After a start-up failure: stops everything, waits a bounded time for the threads, and
    /// returns `error`.
    fn abandon(mut self, error: RuntimeError) -> RuntimeError {
        tracing::error!(%error, "runtime start-up failed, stopping the shards");
        self.handle.stop();
        self.handle.detach();
        let deadline = Instant::now() + ABANDON_AFTER;
        while self.threads.iter().any(Option::is_some) {
            match self.events.recv_deadline(deadline) {
                Ok(Event::Exited(id, _)) => self.on_exit(id),
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    // Every thread has dropped its sender: all are ending.
                    for thread in self.threads.iter_mut().filter_map(Option::take) {
                        let _ = thread.join();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let stuck: Vec<usize> = (0..self.threads.len())
                        .filter(|&i| self.threads[i].is_some())
                        .collect();
                    tracing::warn!(
                        ?stuck,
                        "shard threads did not end in time; leaving them detached"
                    );
                    break;
                }
            }
        }
        error
    }

    /// Waits for every shard to end; a panic in one stops the others.
    fn wait_all(mut self) -> Result<(), RuntimeError> {
        let mut first_panic = None;
        while self.threads.iter().any(Option::is_some) {
            match self.events.recv() {
                Ok(Event::Exited(id, panic)) => {
                    self.on_exit(id);
                    if let Some(message) = panic {
                        tracing::error!(shard = id, %message, "shard panicked, stopping the others");
                        self.handle.stop();
                        first_panic
                            .get_or_insert(RuntimeError::ShardPanicked { shard: id, message });
                    }
                }
                Ok(_) => {}
                Err(_) => {
                    for thread in self.threads.iter_mut().filter_map(Option::take) {
                        let _ = thread.join();
                    }
                }
            }
        }
        self.handle.detach();
        first_panic.map_or(Ok(()), Err)
    }
}

fn shard_thread<C, D, F, Fut>(start: ShardStart<C, D>, shard_main: F)
where
    C: Send + 'static,
    D: Send + 'static,
    F: Fn(Shard<C, D>) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let mut guard = ExitGuard {
        id: start.id,
        events: start.events.clone(),
        panic: None,
    };
    let placement = match start.cpu {
        Some(cpu) => glommio::Placement::Fixed(cpu),
        None => glommio::Placement::Unbound,
    };
    let executor = glommio::LocalExecutorBuilder::new(placement)
        .name(&format!("shard-{}", start.id))
        .io_memory(start.io_memory)
        .ring_depth(start.ring_depth)
        .preempt_timer(start.preempt_timer)
        .make();
    let executor = match executor {
        Ok(executor) => executor,
        Err(e) => {
            let mut message = e.to_string();
            if message.contains("MemLockLimit") {
                message.push_str(
                    " (RLIMIT_MEMLOCK is below the 512 KiB glommio needs per executor: raise it \
                     with `ulimit -l` or systemd's `LimitMEMLOCK=`)",
                );
            }
            let _ = start.events.send(Event::Failed(RuntimeError::Executor {
                shard: start.id,
                cpu: start.cpu,
                message,
            }));
            return;
        }
    };
    let result = catch_unwind(AssertUnwindSafe(|| {
        executor.run(shard_body(start, shard_main))
    }));
    if let Err(payload) = result {
        guard.panic = Some(panic_message(payload.as_ref()));
    }
    drop(executor);
}

async fn shard_body<C, D, F, Fut>(start: ShardStart<C, D>, shard_main: F)
where
    C: Send + 'static,
    D: Send + 'static,
    F: Fn(Shard<C, D>) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let ShardStart {
        id,
        count,
        cpu,
        sockets,
        mesh,
        stop_fd,
        handle,
        events,
        ..
    } = start;
    let stop = LocalStop::start(stop_fd, handle);

    let mut udp = Vec::with_capacity(sockets.udp.len());
    for socket in sockets.udp {
        match UdpSocket::from_socket2(socket) {
            Ok(socket) => udp.push(socket),
            Err(e) => {
                let _ = events.send(Event::Failed(RuntimeError::ShardStart {
                    shard: id,
                    message: format!("cannot adopt its UDP socket: {e}"),
                }));
                return;
            }
        }
    }
    let tcp = sockets
        .tcp
        .into_iter()
        // SAFETY: we own the listening socket and hand its descriptor to glommio.
        .map(|s| unsafe { glommio::net::TcpListener::from_raw_fd(s.into_raw_fd()) })
        .collect();

    if stop.is_stopping() {
        return;
    }
    let mesh = mesh.start();
    let _ = events.send(Event::Ready(id));
    drop(events);
    shard_main(Shard::new(id, count, cpu, mesh, udp, tcp, stop)).await;
}
