//! One shard's wiring: its relay state and the mesh tasks that feed it messages and time,
//! its QUIC endpoint on the shard's UDP socket with the handler that picks each connection's
//! application, the links to peer relays this shard holds, and its HTTP listeners with the
//! WebSocket handler. Everything here moves
//! bytes, messages and time into the sans-IO parts; none of it decides anything.

use crate::auth::{Auth, Verifier};
use crate::cluster::peers::{self, LinkEnv};
use crate::config::PeerUrl;
use crate::relay::{Control, Data, RelayConfig, RelayShard};
use crate::server::quic::QuicHandler;
use crate::server::websocket::WebSocketHandler;
use crate::session::{SessionEnv, SessionLimits};
use crate::transport::quic::{self, Endpoint, PacketOut, QuicSettings, ShardPlace};
use crate::transport::tls::Certificate;
use crate::web::{self, WebEnv};
use shards::udp::{RecvBatch, Transmit, UdpSocket};
use shards::Shard;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most connections one shard accepts.
const MAX_CONNECTIONS_PER_SHARD: usize = 100_000;

/// What every shard needs, shared read-only across threads.
pub struct ShardSettings {
    pub relay: RelayConfig,
    pub quic: QuicSettings,
    pub cert: Certificate,
    pub fingerprint: String,
    pub public: Vec<String>,
    pub verifier: Option<Arc<Verifier>>,
    /// Peer relays to dial (each by the shard its URL hashes to).
    pub peers: Vec<PeerUrl>,
    /// What one peer may make a session hold.
    pub session: SessionLimits,
}

/// The mesh as the relay state sees it.
struct MeshPort(Rc<Shard<Control, Data>>);

impl crate::relay::MeshPort for MeshPort {
    fn try_send_control(&self, to: usize, msg: Control) -> Result<(), Control> {
        self.0.try_send_control(to, msg).map_err(|e| e.into_inner())
    }

    fn try_send_data(&self, to: usize, msg: Data) -> Result<(), Data> {
        self.0.try_send_data(to, msg).map_err(|e| e.into_inner())
    }
}

/// The endpoint's packets onto the shard's UDP socket.
struct UdpOut(Rc<UdpSocket>);

impl PacketOut for UdpOut {
    fn send(&self, to: SocketAddr, data: &[u8], segment_size: usize) {
        let transmit = Transmit::segmented(to, data, segment_size);
        // quiche counts the packet as sent either way: a full socket buffer is a loss that
        // QUIC recovers, counted here like every other send drop.
        match self.0.try_send(&transmit) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.0.give_up_send(),
            Err(e) => tracing::trace!(%to, error = %e, "UDP send dropped"),
        }
    }

    fn max_segments(&self) -> usize {
        self.0.max_gso_segments()
    }
}

/// Runs one shard until the runtime stops it.
pub async fn run(mut shard: Shard<Control, Data>, settings: Arc<ShardSettings>) {
    let id = shard.id();
    let mut sockets = shard.take_udp_sockets();
    let listeners = shard.take_tcp_listeners();
    let control_rx = shard.take_control_receivers();
    let data_rx = shard.take_data_receivers();
    let shard = Rc::new(shard);
    let relay = RelayShard::new(
        id,
        shard.count(),
        settings.relay.clone(),
        Box::new(MeshPort(shard.clone())),
        Instant::now(),
    );
    spawn_mesh_tasks(&shard, &relay, control_rx, data_rx);
    let config = match quic::server_config(&settings.quic, &settings.cert) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(shard = id, error = %e, "QUIC configuration failed");
            return;
        }
    };
    let udp = Rc::new(sockets.remove(0));
    let local = udp.local_addr();
    let auth = Auth {
        public: settings.public.clone(),
        verifier: settings.verifier.clone(),
    };
    let env = Rc::new(SessionEnv::new(
        relay.clone(),
        auth,
        settings.session.clone(),
    ));
    let place = ShardPlace {
        id,
        count: shard.count(),
        forward: {
            let relay = relay.clone();
            Box::new(move |to, from, local, payload| relay.forward_packet(to, from, local, payload))
        },
    };
    let handler = Rc::new(QuicHandler { env: env.clone() });
    let endpoint = Endpoint::new(
        place,
        handler,
        config,
        Rc::new(UdpOut(udp.clone())),
        MAX_CONNECTIONS_PER_SHARD,
        &settings.quic,
    );
    {
        let endpoint = endpoint.clone();
        relay.set_packet_sink(move |from, to, payload| endpoint.on_forwarded(from, to, payload));
    }
    let links = Rc::new(LinkEnv {
        endpoint: endpoint.clone(),
        session: env.clone(),
        local,
        quic: settings.quic.clone(),
    });
    peers::start(&settings.peers, id, shard.count(), &links);
    let http_slots = Rc::new(web::Slots::new(web::SlotLimits::default()));
    for listener in listeners {
        let upgrade = Rc::new(WebSocketHandler { env: env.clone() });
        let web = WebEnv::new(
            env.clone(),
            settings.fingerprint.clone(),
            upgrade,
            http_slots.clone(),
        );
        glommio::spawn_local(web::serve(listener, web)).detach();
    }
    tracing::debug!(shard = id, %local, gro = udp.gro_enabled(), gso = udp.max_gso_segments(), "shard up");
    let receive = glommio::spawn_local_into(
        receive_datagrams(id, udp.clone(), endpoint.clone()),
        socket_queue(),
    )
    .expect("a task queue made on this executor takes tasks");
    futures_lite::future::or(receive, shard.stopped()).await;
    endpoint.shutdown();
    glommio::timer::sleep(Duration::from_millis(50)).await;
    let (udp, mesh, quic) = (udp.stats(), relay.mesh_drops(), endpoint.stats());
    let http = http_slots.stats();
    let (wt, ws) = (
        crate::transport::webtransport::refusals::refusals(),
        crate::transport::qmux::refusals::refusals(),
    );
    let sessions = &env.counters;
    let cache = relay.cache_drops();
    // One line per area (tracing takes at most 32 fields a line); tests and operators read
    // the counters from every line that says "shard stopped".
    tracing::info!(
        shard = id,
        udp_received = udp.datagrams_received,
        udp_sent = udp.datagrams_sent,
        udp_send_dropped = udp.send_dropped,
        udp_receive_dropped = udp.receive_dropped,
        udp_receive_yields = udp.receive_yields,
        mesh_frames_shed = mesh.data.frames,
        mesh_groups_reset = mesh.data.groups_reset,
        mesh_groups_skipped = mesh.data.groups_skipped,
        mesh_packets_dropped = mesh.data.packets,
        mesh_requests_refused = mesh.requests_refused,
        cache_groups_evicted = cache.groups_evicted,
        cache_groups_too_large = cache.groups_too_large,
        cache_bytes_discarded = cache.bytes_discarded,
        "shard stopped"
    );
    tracing::info!(
        shard = id,
        connections_accepted = quic.accepted,
        packets_forwarded = quic.forwarded,
        short_initials_dropped = quic.short_initials,
        undecodable_dropped = quic.undecodable,
        unknown_connection_dropped = quic.unknown_connection,
        forged_initials_dropped = quic.forged_initials,
        version_negotiations = quic.version_negotiations,
        retries_sent = quic.retries,
        stateless_replies_shed = quic.stateless_replies_shed,
        tokens_invalid = quic.tokens_invalid,
        tokens_expired = quic.tokens_expired,
        connection_limit_refused = quic.connection_limit,
        handshakes_refused = quic.handshakes_refused,
        accept_failed = quic.accept_failed,
        handshakes_timed_out = quic.handshakes_timed_out,
        amplification_limited = quic.amplification_limited,
        "shard stopped: QUIC endpoint"
    );
    tracing::info!(
        shard = id,
        setup_timeouts = sessions.setup_timeouts.get(),
        connect_timeouts = sessions.connect_timeouts.get(),
        pre_auth_overflows = sessions.pre_auth_overflows.get(),
        budget_closes = sessions.budget_closes.get(),
        early_streams_refused = sessions.early_streams_refused.get(),
        announce_requests_refused = sessions.announce_requests_refused.get(),
        datagrams_dropped = sessions.datagrams_dropped.get(),
        "shard stopped: sessions"
    );
    tracing::info!(
        shard = id,
        http_refused_shard_full = http.refused_shard_full,
        http_refused_per_address = http.refused_per_address,
        http_head_timeouts = http.head_timeouts,
        wt_early_streams_refused = wt.early_streams,
        wt_early_bytes_refused = wt.early_bytes,
        wt_pending_headers_refused = wt.pending_headers,
        wt_qpack_streams_refused = wt.qpack_streams,
        wt_oversized_refused = wt.oversized,
        ws_oversized_before_session = ws.oversized_before_session,
        ws_oversized = ws.oversized,
        "shard stopped: HTTP, WebTransport and QMux"
    );
}

/// How the shard's time is split, when both want it, between receiving datagrams and
/// everything else (connections, sessions, the mesh, timers, HTTP): 3 to 1.
///
/// Receiving runs in its own task queue. Under a flood it yields after
/// [`shards::udp`]'s time budget so the rest of the shard keeps turning; in a queue of its
/// own that yield lets the other queue run for its share (a few milliseconds) and then comes
/// back, instead of waiting behind every connection task that is ready, which under an
/// ordinary overload left the socket unread long enough to overflow: with both relays of a
/// paired `chat-1000` run on one core, 44 000 datagrams dropped by the kernel and a p99 of
/// 1.4 s, against none and 0.39 s with this queue. The larger share keeps ACKs and media
/// read first when the shard is short of time, which is what lets senders slow down
/// instead of losing packets. Everything else runs in the executor's default queue, which
/// glommio gives `Shares::default()`, 1000.
const SOCKET_SHARES: usize = 3000;

/// The task queue the receive loop runs in (see [`SOCKET_SHARES`]). The shard's main task,
/// and every task it spawns (the endpoint's connection tasks too, see [`Endpoint::new`]),
/// stay in the default queue.
fn socket_queue() -> glommio::TaskQueueHandle {
    glommio::executor().create_task_queue(
        glommio::Shares::Static(SOCKET_SHARES),
        glommio::Latency::NotImportant,
        "udp-receive",
    )
}

/// Reads the shard's socket forever, handing each datagram to the endpoint.
async fn receive_datagrams(shard: usize, udp: Rc<UdpSocket>, endpoint: Rc<Endpoint>) {
    let local = udp.local_addr();
    let mut batch = RecvBatch::for_socket(&udp);
    loop {
        match udp.recv_batch(&mut batch).await {
            Ok(_) => {
                for (meta, data) in batch.segments_mut() {
                    let to = meta
                        .dst_ip
                        .map_or(local, |ip| SocketAddr::new(ip, local.port()));
                    endpoint.on_datagram(meta.src, to, data, false);
                }
            }
            Err(e) => {
                tracing::warn!(shard, error = %e, "UDP receive failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Receivers for both lanes from every peer, flushers for every outbox, and the task that
/// delivers messages a shard sends itself.
fn spawn_mesh_tasks(
    shard: &Rc<Shard<Control, Data>>,
    relay: &Rc<RelayShard>,
    control_rx: Vec<shards::MeshReceiver<Control>>,
    data_rx: Vec<shards::MeshReceiver<Data>>,
) {
    for rx in control_rx {
        let relay = relay.clone();
        glommio::spawn_local(async move {
            while let Some(msg) = rx.recv().await {
                relay.handle_control(msg, Instant::now());
            }
        })
        .detach();
    }
    for rx in data_rx {
        let relay = relay.clone();
        glommio::spawn_local(async move {
            while let Some(msg) = rx.recv().await {
                relay.handle_data(msg, Instant::now());
            }
        })
        .detach();
    }
    for to in (0..shard.count()).filter(|&to| to != shard.id()) {
        let (relay_c, shard_c) = (relay.clone(), shard.clone());
        glommio::spawn_local(async move {
            let wake = relay_c.mesh().control_outbox().wake(to);
            loop {
                wake.notified().await;
                while let Some(msg) = relay_c.mesh().control_outbox().take(to) {
                    let sent = shard_c.send_control(to, msg).await;
                    relay_c.mesh().control_outbox().sent(to);
                    if sent.is_err() {
                        return;
                    }
                }
            }
        })
        .detach();
        let (relay_d, shard_d) = (relay.clone(), shard.clone());
        glommio::spawn_local(async move {
            let wake = relay_d.mesh().data_outbox().wake(to);
            loop {
                wake.notified().await;
                while let Some(msg) = relay_d.mesh().data_outbox().take(to) {
                    let sent = shard_d.send_data(to, msg).await;
                    relay_d.mesh().data_outbox().sent(to);
                    if sent.is_err() {
                        return;
                    }
                }
            }
        })
        .detach();
    }
    let local = relay.clone();
    glommio::spawn_local(async move {
        let wake = local.local_wake();
        loop {
            wake.notified().await;
            local.drain_local_control(Instant::now());
        }
    })
    .detach();
    let relay = relay.clone();
    glommio::spawn_local(async move { drive_timers(&relay).await }).detach();
}

/// Runs the relay's deadlines: sleeps until the earliest (or until an earlier one is
/// scheduled) and hands the time in.
async fn drive_timers(relay: &RelayShard) {
    let wake = relay.timer_wake();
    loop {
        match relay.poll_timeout() {
            Some(at) => {
                let sleep = glommio::timer::sleep(at.saturating_duration_since(Instant::now()));
                futures_lite::future::or(sleep, wake.notified()).await;
            }
            None => wake.notified().await,
        }
        relay.on_timeout(Instant::now());
    }
}
