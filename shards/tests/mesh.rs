//! The mesh between shards: order, zero-copy `Bytes`, backpressure, closed peers, and sends
//! that are not to a peer.

mod common;

use bytes::Bytes;
use common::{config, start};
use shards::{MeshSendError, RuntimeConfig, Shard};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

const N: u64 = 2000;

/// Control messages carry (sequence, address of the data payload sent with that sequence).
type Control = (u64, usize);

#[test]
fn control_and_data_arrive_in_order_without_copies() {
    let (report, results) = mpsc::channel::<Result<usize, String>>();
    // Lanes much smaller than N: senders must wait for room (backpressure) and still deliver.
    let cfg = RuntimeConfig {
        control_capacity: 16,
        data_capacity: 16,
        ..config(2)
    };
    let rt = start(cfg, move |mut shard: Shard<Control, Bytes>| {
        let report = report.clone();
        async move {
            let control_rx = shard.take_control_receivers();
            let data_rx = shard.take_data_receivers();
            let shard = Rc::new(shard);
            let peer = 1 - shard.id();
            assert_eq!(control_rx.len(), 1);
            assert_eq!(control_rx[0].from(), peer);
            assert_eq!(data_rx[0].from(), peer);

            let receiving = glommio::spawn_local(async move {
                let control = &control_rx[0];
                let data = &data_rx[0];
                for seq in 0..N {
                    let (got_seq, ptr) = control.recv().await.ok_or("control lane closed")?;
                    if got_seq != seq {
                        return Err(format!("control {got_seq} arrived when {seq} was due"));
                    }
                    let payload = data.recv().await.ok_or("data lane closed")?;
                    if payload.as_ptr() as usize != ptr {
                        return Err(format!("payload {seq} was copied"));
                    }
                    if payload[..8] != seq.to_be_bytes() {
                        return Err(format!("payload {seq} has the wrong contents"));
                    }
                }
                Ok::<usize, String>(N as usize)
            });

            for seq in 0..N {
                let mut payload = vec![0u8; 64 + (seq as usize % 7) * 100];
                payload[..8].copy_from_slice(&seq.to_be_bytes());
                let payload = Bytes::from(payload);
                let ptr = payload.as_ptr() as usize;
                shard.send_data(peer, payload).await.expect("data send");
                shard
                    .send_control(peer, (seq, ptr))
                    .await
                    .expect("control send");
            }
            let _ = report.send(receiving.await);
        }
    });
    for _ in 0..2 {
        let result = results
            .recv_timeout(Duration::from_secs(20))
            .expect("a shard reported");
        assert_eq!(result, Ok(N as usize));
    }
    rt.join().unwrap();
}

#[test]
fn full_lanes_closed_peers_and_self_sends_are_errors() {
    let (report, results) = mpsc::channel::<String>();
    let cfg = RuntimeConfig {
        control_capacity: 4,
        ..config(2)
    };
    let rt = start(cfg, move |shard: Shard<u32, u32>| {
        let report = report.clone();
        async move {
            if shard.id() == 1 {
                // Never reads; ends (dropping its receivers) once shard 0 says so.
                let _ = glommio::timer::sleep(Duration::from_millis(200)).await;
                return;
            }
            let mut queued = 0;
            let full = loop {
                match shard.try_send_control(1, queued) {
                    Ok(()) => queued += 1,
                    Err(e) => break e,
                }
                if queued > 100 {
                    break MeshSendError::Closed(0);
                }
            };
            let _ = report.send(format!("queued {queued} then {full:?}"));
            let _ = report.send(format!("self {:?}", shard.try_send_data(0, 1)));
            let _ = report.send(format!("beyond {:?}", shard.try_send_data(7, 1)));
            let _ = report.send(format!(
                "async self {:?}",
                shard
                    .send_control(0, 1)
                    .await
                    .map_err(MeshSendError::into_inner)
            ));
            // Once shard 1 is gone its lanes are closed.
            let mut closed = None;
            for _ in 0..500 {
                if let Err(MeshSendError::Closed(v)) = shard.try_send_data(1, 9) {
                    closed = Some(v);
                    break;
                }
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
            let _ = report.send(format!("closed {closed:?}"));
        }
    });
    let got: Vec<String> = (0..5)
        .map(|_| results.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    assert_eq!(
        got,
        vec![
            "queued 4 then Full(..)".to_string(),
            "self Err(NotAPeer(..))".to_string(),
            "beyond Err(NotAPeer(..))".to_string(),
            "async self Err(1)".to_string(),
            "closed Some(9)".to_string(),
        ]
    );
    rt.join().unwrap();
}

#[test]
fn a_single_shard_has_no_lanes() {
    let (report, results) = mpsc::channel();
    let rt = start(config(1), move |mut shard: Shard<(), ()>| {
        let report = report.clone();
        async move {
            let _ = report.send((
                shard.count(),
                shard.take_control_receivers().len(),
                shard.try_send_control(0, ()).is_err(),
            ));
        }
    });
    assert_eq!(
        results.recv_timeout(Duration::from_secs(5)).unwrap(),
        (1, 0, true)
    );
    rt.join().unwrap();
}
