//! The UDP fast path on real loopback sockets: GSO send, GRO receive, dual-stack addressing,
//! source addresses and nonblocking behaviour.

use shards::udp::{RecvBatch, Transmit, UdpSocket, MAX_GSO_SEGMENTS};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

fn on_executor<T: Send + 'static>(
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(128 << 10)
            .make()
            .expect("executor");
        ex.run(f())
    })
    .join()
    .expect("executor thread panicked")
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// `count` segments of `size` bytes (the last `last` bytes long), each filled with a pattern
/// that identifies it.
fn segments(count: usize, size: usize, last: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..count {
        let len = if i + 1 == count { last } else { size };
        out.extend((0..len).map(|j| (i * 31 + j) as u8));
    }
    out
}

#[test]
fn gso_batch_arrives_as_separate_datagrams() {
    let receiver = std::net::UdpSocket::bind(loopback()).unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let dst = receiver.local_addr().unwrap();
    // 100 segments: more than one GSO call can carry, with a short last segment.
    let count = 100;
    let payload = segments(count, 1200, 500);
    let sent = payload.clone();
    let stats = on_executor(move || {
        Box::pin(async move {
            let socket = UdpSocket::bind(loopback()).unwrap();
            let max = socket.max_gso_segments();
            let t = Transmit::segmented(dst, &sent, 1200);
            assert_eq!(t.datagrams(), count);
            socket.send(&[t]).await.unwrap();
            (max, socket.stats())
        })
    });
    let (max_gso, stats) = stats;
    eprintln!("max_gso_segments = {max_gso}, stats = {stats:?}");
    assert!(max_gso == MAX_GSO_SEGMENTS || max_gso == 1);
    assert_eq!(stats.datagrams_sent, count as u64);
    assert_eq!(stats.gso_fallbacks, 0, "loopback supports GSO");
    let mut buf = [0u8; 2048];
    for (i, expected) in payload.chunks(1200).enumerate() {
        let (n, _) = receiver.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], expected, "datagram {i}");
    }
}

#[test]
fn gro_receive_splits_coalesced_segments() {
    let count = 40;
    let payload = segments(count, 1000, 1000);
    let expected = payload.clone();
    let (coalesced, gro) = on_executor(move || {
        Box::pin(async move {
            let receiver = UdpSocket::bind(loopback()).unwrap();
            let sender = UdpSocket::bind(loopback()).unwrap();
            let dst = receiver.local_addr();
            sender
                .send(&[Transmit::segmented(dst, &payload, 1000)])
                .await
                .unwrap();
            let mut batch = RecvBatch::for_socket(&receiver);
            let mut got: Vec<Vec<u8>> = Vec::new();
            let mut coalesced = false;
            while got.len() < count {
                let filled = glommio::timer::timeout(Duration::from_secs(5), async {
                    Ok(receiver.recv_batch(&mut batch).await.unwrap())
                })
                .await
                .expect("datagrams should arrive");
                assert!(filled > 0);
                for meta in batch.meta() {
                    assert_eq!(meta.src, sender.local_addr());
                    assert_eq!(meta.dst_ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
                    coalesced |= meta.datagrams() > 1;
                }
                got.extend(batch.segments().map(|(_, s)| s.to_vec()));
            }
            for (i, (got, want)) in got.iter().zip(expected.chunks(1000)).enumerate() {
                assert_eq!(got.as_slice(), want, "datagram {i}");
            }
            assert_eq!(got.len(), count);
            assert_eq!(receiver.stats().datagrams_received, count as u64);
            (coalesced, receiver.gro_enabled())
        })
    });
    eprintln!("GRO enabled: {gro}, kernel coalesced on loopback: {coalesced}");
}

#[test]
fn segments_mut_allows_in_place_processing() {
    on_executor(|| {
        Box::pin(async {
            let receiver = UdpSocket::bind(loopback()).unwrap();
            let client = std::net::UdpSocket::bind(loopback()).unwrap();
            for i in 0..5u8 {
                client.send_to(&[i; 10], receiver.local_addr()).unwrap();
            }
            let mut batch = RecvBatch::new(8, 65_535);
            let mut seen = 0;
            while seen < 5 {
                receiver.recv_batch(&mut batch).await.unwrap();
                for (meta, segment) in batch.segments_mut() {
                    assert_eq!(meta.src, client.local_addr().unwrap());
                    segment.iter_mut().for_each(|b| *b = b.wrapping_add(1));
                    assert_eq!(segment, &[seen as u8 + 1; 10]);
                    seen += 1;
                }
            }
        })
    });
}

#[test]
fn try_recv_would_block_when_nothing_is_queued() {
    on_executor(|| {
        Box::pin(async {
            let socket = UdpSocket::bind(loopback()).unwrap();
            let mut batch = RecvBatch::for_socket(&socket);
            let err = socket.try_recv_batch(&mut batch).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
            assert!(batch.is_empty());
            // A GRO socket refuses buffers that could truncate a coalesced run.
            if socket.gro_enabled() {
                let mut small = RecvBatch::new(4, 1500);
                let err = socket.try_recv_batch(&mut small).unwrap_err();
                assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
            }
        })
    });
}

#[test]
fn recv_waits_for_late_datagrams() {
    on_executor(|| {
        Box::pin(async {
            let socket = UdpSocket::bind(loopback()).unwrap();
            let dst = socket.local_addr();
            let sender = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(150));
                let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                client.send_to(b"late", dst).unwrap();
            });
            let mut batch = RecvBatch::for_socket(&socket);
            let started = std::time::Instant::now();
            socket.recv_batch(&mut batch).await.unwrap();
            assert!(started.elapsed() >= Duration::from_millis(100));
            assert_eq!(batch.segments().next().unwrap().1, b"late");
            sender.join().unwrap();
        })
    });
}

#[test]
fn dual_stack_socket_serves_ipv4_with_ipv4_addresses() {
    let Ok(probe) = std::net::UdpSocket::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 on this host");
        return;
    };
    drop(probe);
    on_executor(|| {
        Box::pin(async {
            let socket = UdpSocket::bind("[::]:0".parse().unwrap()).unwrap();
            let port = socket.local_addr().port();
            let client = std::net::UdpSocket::bind(loopback()).unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            client.send_to(b"hello v4", ("127.0.0.1", port)).unwrap();
            let mut batch = RecvBatch::for_socket(&socket);
            socket.recv_batch(&mut batch).await.unwrap();
            let (meta, data) = batch.segments().next().unwrap();
            assert_eq!(data, b"hello v4");
            assert_eq!(
                meta.src,
                client.local_addr().unwrap(),
                "v4-mapped source is unmapped"
            );
            assert_eq!(meta.dst_ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
            // Reply to the IPv4 address, from the address the client used.
            let reply = Transmit {
                src_ip: meta.dst_ip,
                ..Transmit::single(meta.src, b"hello back")
            };
            socket.send(&[reply]).await.unwrap();
            let mut buf = [0u8; 64];
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"hello back");
            assert_eq!(from, SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port));
        })
    });
}

#[test]
fn refused_transmits_are_dropped_without_affecting_the_batch() {
    let receiver = std::net::UdpSocket::bind(loopback()).unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let dst = receiver.local_addr().unwrap();
    let stats = on_executor(move || {
        Box::pin(async move {
            let socket = UdpSocket::bind(loopback()).unwrap();
            let too_big = vec![0u8; 70_000];
            let v6_dst: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
            let result = socket
                .send(&[
                    Transmit::single(dst, b"first"),
                    Transmit::single(dst, &too_big),
                    Transmit::single(v6_dst, b"wrong family"),
                    Transmit::single(dst, b"last"),
                ])
                .await;
            assert!(result.is_err(), "the last refusal is reported");
            socket.try_send(&Transmit::single(dst, b"try")).unwrap();
            socket.stats()
        })
    });
    assert_eq!(stats.send_dropped, 2);
    assert_eq!(stats.datagrams_sent, 3);
    let mut buf = [0u8; 64];
    for want in [&b"first"[..], b"last", b"try"] {
        let (n, _) = receiver.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], want);
    }
}

#[test]
fn a_flood_leaves_the_executor_s_other_tasks_their_turn() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, OnceLock};
    let stop = Arc::new(AtomicBool::new(false));
    let target = Arc::new(OnceLock::<SocketAddr>::new());
    // Several senders keep the socket's queue from ever running dry while the receiver
    // spends time on each batch, as a relay does on a flood of packets.
    let senders: Vec<_> = (0..3)
        .map(|_| {
            let (stop, target) = (stop.clone(), target.clone());
            std::thread::spawn(move || {
                let socket = std::net::UdpSocket::bind(loopback()).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    match target.get() {
                        Some(dst) => drop(socket.send_to(&[7u8; 200], dst)),
                        None => std::thread::yield_now(),
                    }
                }
            })
        })
        .collect();
    let receiving = target.clone();
    let done = std::thread::spawn(move || {
        on_executor(move || {
            Box::pin(async move {
                let receiver = UdpSocket::bind(loopback()).unwrap();
                receiving.set(receiver.local_addr()).unwrap();
                let reading = glommio::spawn_local(async move {
                    let mut batch = RecvBatch::for_socket(&receiver);
                    loop {
                        receiver.recv_batch(&mut batch).await.unwrap();
                        let started = std::time::Instant::now();
                        while started.elapsed() < Duration::from_micros(200) {}
                    }
                })
                .detach();
                // Another task on the same executor still gets its turns.
                for _ in 0..3 {
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
                reading.cancel();
            })
        })
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !done.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.join().unwrap();
    }
    assert!(
        done.is_finished(),
        "the receive loop held the executor through the flood"
    );
    done.join().unwrap();
}
