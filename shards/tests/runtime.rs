//! Start-up, sockets, errors and stopping of the runtime, with real executors and real sockets
//! on loopback.

mod common;

use common::{config, join_within, start};
use shards::udp::RecvBatch;
use shards::{Runtime, RuntimeConfig, RuntimeError, Shard};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Counts datagrams per shard until stopped.
async fn count_datagrams(mut shard: Shard<(), ()>, counters: Arc<Vec<AtomicUsize>>) {
    let socket = shard.take_udp_sockets().remove(0);
    let mut batch = RecvBatch::for_socket(&socket);
    loop {
        let received =
            futures_lite::future::or(async { Some(socket.recv_batch(&mut batch).await) }, async {
                shard.stopped().await;
                None
            })
            .await;
        match received {
            None => return,
            Some(Ok(_)) => {
                let n = batch.segments().count();
                counters[shard.id()].fetch_add(n, Ordering::SeqCst);
            }
            Some(Err(e)) => panic!("recv failed: {e}"),
        }
    }
}

#[test]
fn two_shards_share_one_reuseport_port() {
    let counters: Arc<Vec<AtomicUsize>> = Arc::new((0..2).map(|_| AtomicUsize::new(0)).collect());
    let c = counters.clone();
    let cfg = RuntimeConfig {
        udp_bind: vec![loopback()],
        ..config(2)
    };
    let rt = start(cfg, move |shard| count_datagrams(shard, c.clone()));
    let addr = rt.info.udp_addrs[0];
    assert_ne!(addr.port(), 0, "port 0 must be resolved");

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = 0usize;
    while counters.iter().any(|c| c.load(Ordering::SeqCst) == 0) {
        assert!(
            Instant::now() < deadline,
            "both shards should see traffic: {counters:?}"
        );
        // A new source port each round: the reuseport hash picks a socket per flow.
        let client = UdpSocket::bind(loopback()).unwrap();
        for i in 0..10u8 {
            client.send_to(&[i; 32], addr).unwrap();
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // Everything sent arrives somewhere (loopback does not drop at this rate).
    let deadline = Instant::now() + Duration::from_secs(5);
    while counters
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .sum::<usize>()
        < sent
    {
        assert!(
            Instant::now() < deadline,
            "lost datagrams: {counters:?} of {sent}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    rt.stop().unwrap();
}

#[test]
fn pinned_shards_run_on_their_cpus() {
    let cpus = shards::allowed_cpus();
    if cpus.len() < 2 {
        eprintln!("skipped: fewer than 2 CPUs");
        return;
    }
    let seen: Arc<Vec<AtomicUsize>> =
        Arc::new((0..2).map(|_| AtomicUsize::new(usize::MAX)).collect());
    let s = seen.clone();
    let cfg = RuntimeConfig {
        pin: true,
        ..config(2)
    };
    let rt = start(cfg, move |shard: Shard<(), ()>| {
        let s = s.clone();
        async move {
            // SAFETY: plain libc call.
            let cpu = unsafe { libc::sched_getcpu() };
            s[shard.id()].store(cpu as usize, Ordering::SeqCst);
            shard.stopped().await;
        }
    });
    assert_eq!(rt.info.cpus, vec![Some(cpus[0]), Some(cpus[1])]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.iter().any(|c| c.load(Ordering::SeqCst) == usize::MAX) {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(seen[0].load(Ordering::SeqCst), cpus[0]);
    assert_eq!(seen[1].load(Ordering::SeqCst), cpus[1]);
    rt.stop().unwrap();
}

#[test]
fn tcp_listeners_accept_on_every_shard() {
    let accepted = Arc::new(AtomicUsize::new(0));
    let a = accepted.clone();
    let cfg = RuntimeConfig {
        tcp_bind: vec![loopback()],
        ..config(2)
    };
    let rt = start(cfg, move |mut shard: Shard<(), ()>| {
        let a = a.clone();
        async move {
            let listener = shard.take_tcp_listeners().remove(0);
            loop {
                let accepted =
                    futures_lite::future::or(async { Some(listener.accept().await) }, async {
                        shard.stopped().await;
                        None
                    })
                    .await;
                match accepted {
                    Some(Ok(_stream)) => {
                        a.fetch_add(1, Ordering::SeqCst);
                    }
                    Some(Err(e)) => panic!("accept failed: {e}"),
                    None => return,
                }
            }
        }
    });
    let addr = rt.info.tcp_addrs[0];
    assert_ne!(addr.port(), 0);
    let clients: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while accepted.load(Ordering::SeqCst) < clients.len() {
        assert!(Instant::now() < deadline, "accepted {accepted:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    rt.stop().unwrap();
}

#[test]
fn udp_port_in_use_is_an_error_naming_the_address() {
    let taken = UdpSocket::bind(loopback()).unwrap();
    let addr = taken.local_addr().unwrap();
    let cfg = RuntimeConfig {
        udp_bind: vec![addr],
        ..config(2)
    };
    let started = Instant::now();
    let err = shards::run(cfg, |_shard: Shard<(), ()>| async {}).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "run must fail promptly"
    );
    let message = err.to_string();
    assert!(matches!(err, RuntimeError::Bind { .. }), "{message}");
    assert!(message.contains(&addr.to_string()), "{message}");
    assert!(message.contains("UDP"), "{message}");
    assert!(message.to_lowercase().contains("in use"), "{message}");
}

#[test]
fn tcp_port_in_use_is_an_error_naming_the_address() {
    let taken = TcpListener::bind(loopback()).unwrap();
    let addr = taken.local_addr().unwrap();
    let cfg = RuntimeConfig {
        tcp_bind: vec![addr],
        ..config(1)
    };
    let err = shards::run(cfg, |_shard: Shard<(), ()>| async {}).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&addr.to_string()) && message.contains("TCP"),
        "{message}"
    );
}

#[test]
fn too_many_shards_is_an_error() {
    let cpus = shards::allowed_cpus().len();
    let pinned = RuntimeConfig {
        pin: true,
        ..config(cpus + 1)
    };
    let err = shards::run(pinned, |_shard: Shard<(), ()>| async {}).unwrap_err();
    assert!(
        matches!(err, RuntimeError::TooManyShards { requested, limit, .. } if requested == cpus + 1 && limit == cpus),
        "{err}"
    );
    let err = shards::run(config(257), |_shard: Shard<(), ()>| async {}).unwrap_err();
    assert!(
        matches!(err, RuntimeError::TooManyShards { limit: 256, .. }),
        "{err}"
    );
    let err = shards::run(config(0), |_shard: Shard<(), ()>| async {}).unwrap_err();
    assert!(matches!(err, RuntimeError::InvalidConfig(_)), "{err}");
    let zero_lane = RuntimeConfig {
        data_capacity: 0,
        ..config(1)
    };
    let err = shards::run(zero_lane, |_shard: Shard<(), ()>| async {}).unwrap_err();
    assert!(err.to_string().contains("data_capacity"), "{err}");
}

#[test]
fn programmatic_stop_ends_run() {
    let stopped = Arc::new(AtomicUsize::new(0));
    let s = stopped.clone();
    let rt = start(config(2), move |shard: Shard<(), ()>| {
        let s = s.clone();
        async move {
            // Several waiters on the same shard.
            let a = shard.stopped();
            let b = shard.stopped();
            futures_lite::future::zip(a, b).await;
            assert!(shard.is_stopping());
            s.fetch_add(1, Ordering::SeqCst);
        }
    });
    assert_eq!(rt.info.shards, 2);
    let begun = Instant::now();
    rt.stop().unwrap();
    assert!(begun.elapsed() < Duration::from_secs(2));
    assert_eq!(stopped.load(Ordering::SeqCst), 2);
}

#[test]
fn stop_before_run_and_a_second_run_both_work() {
    for _ in 0..2 {
        let runtime = Runtime::new(RuntimeConfig {
            handle_signals: true,
            ..config(2)
        });
        let handle = runtime.handle();
        handle.stop();
        let thread = std::thread::spawn(move || {
            runtime.run(|shard: Shard<(), ()>| async move { shard.stopped().await })
        });
        join_within(thread, Duration::from_secs(5)).unwrap();
    }
    // The calling thread's signal mask is restored by `run`.
    let thread = std::thread::spawn(|| {
        let runtime = Runtime::new(RuntimeConfig {
            handle_signals: true,
            ..config(1)
        });
        runtime.handle().stop();
        runtime
            .run(|shard: Shard<(), ()>| async move { shard.stopped().await })
            .unwrap();
        // SAFETY: querying the current mask.
        unsafe {
            let mut mask: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
            libc::sigismember(&mask, libc::SIGINT) == 1
                || libc::sigismember(&mask, libc::SIGTERM) == 1
        }
    });
    assert!(
        !join_within(thread, Duration::from_secs(5)),
        "signals left blocked"
    );
}

#[test]
fn a_panicking_shard_stops_the_others_and_is_reported() {
    let rt = start(config(2), |shard: Shard<(), ()>| async move {
        if shard.id() == 1 {
            glommio::timer::sleep(Duration::from_millis(50)).await;
            panic!("shard one gives up");
        }
        shard.stopped().await;
    });
    let err = rt.join().unwrap_err();
    assert!(
        matches!(&err, RuntimeError::ShardPanicked { shard: 1, message } if message.contains("gives up")),
        "{err}"
    );
}
