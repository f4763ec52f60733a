//! Start-up and per-shard wiring: TLS material, the shards runtime, and on every shard the
//! relay state, the mesh receivers and flushers, and the QUIC endpoint on its UDP socket.

use crate::auth::{Auth, Verifier};
use crate::config::{Config, TlsConfig};
use crate::model::CacheLimits;
use crate::relay::{Control, Data, RelayConfig, RelayShard};
use crate::server::quic::QuicHandler;
use crate::session::SessionEnv;
use crate::transport::quic::{self, Endpoint, PacketOut, QuicSettings, ShardPlace};
use crate::transport::tls;
use crate::web::{self, WebEnv};
use shards::udp::{RecvBatch, Transmit, UdpSocket};
use shards::Shard;
use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why the relay could not start or stopped with an error.
#[derive(Debug)]
pub struct StartError(pub String);

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// Most connections one shard accepts.
const MAX_CONNECTIONS_PER_SHARD: usize = 100_000;

/// What every shard needs, shared read-only across threads.
struct ShardSettings {
    relay: RelayConfig,
    quic: QuicSettings,
    cert: tls::Certificate,
    fingerprint: String,
    public: Vec<String>,
    verifier: Option<Arc<Verifier>>,
}

/// Where the relay is listening, reported once every shard is up.
#[derive(Clone, Debug)]
pub struct Listening {
    pub quic: Vec<SocketAddr>,
    pub http: Vec<SocketAddr>,
    pub shards: usize,
    pub fingerprint: String,
}

/// How the `moq-relay` binary's readiness line starts. It prints the line on stdout exactly
/// once, when every shard listens ([`Listening::ready_line`]); tests and scripts wait for it
/// rather than for log wording, which may change.
pub const READY: &str = "moq-relay ready";

impl Listening {
    /// `moq-relay ready quic=<addr>[,<addr>...] http=[<addr>[,<addr>...]]`.
    pub fn ready_line(&self) -> String {
        let list = |addrs: &[SocketAddr]| {
            addrs
                .iter()
                .map(SocketAddr::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "{READY} quic={} http={}",
            list(&self.quic),
            list(&self.http)
        )
    }
}

/// Runs the relay until SIGINT/SIGTERM. `on_ready` is called once every shard is up.
pub fn run(
    config: &Config,
    on_ready: impl FnOnce(&Listening) + Send + 'static,
) -> Result<(), StartError> {
    let cert = match &config.server.tls {
        TlsConfig::Generate { names } => tls::generate(names),
        TlsConfig::Files { cert, key } => tls::load(cert, key),
    }
    .map_err(|e| StartError(e.to_string()))?;
    let quic_settings = QuicSettings {
        idle_timeout: config.quic.idle_timeout,
        keep_alive: config.quic.keep_alive,
        max_streams: config.quic.max_streams,
        ..QuicSettings::default()
    };
    // Fail here, with a clear message, rather than on every shard.
    quic::server_config(&quic_settings, &cert)
        .map_err(|e| StartError(format!("TLS certificate or key refused by QUIC: {e}")))?;
    let hop = config
        .cluster
        .id
        .unwrap_or_else(crate::config::ClusterConfig::random_id);
    let verifier = match &config.auth.jwk {
        Some(jwk) => Some(Arc::new(
            Verifier::new(jwk.clone())
                .map_err(|e| StartError(format!("auth.key: {e}")))?
                .requiring_exp(config.auth.require_exp),
        )),
        None => None,
    };
    if let Some(verifier) = &verifier {
        let key = verifier.key();
        tracing::info!(alg = %key.alg, kid = ?key.kid, scoped = key.scope.is_some(), "tokens are verified with the configured key");
    }
    let settings = Arc::new(ShardSettings {
        relay: RelayConfig {
            linger: config.relay.linger,
            cache: CacheLimits {
                max_age: config.relay.cache_duration,
                max_group_bytes: config.relay.max_group_bytes,
                ..CacheLimits::default()
            },
            max_frame_bytes: config.relay.max_frame_bytes,
            hop,
            data_backlog: config.limits.mesh_data_backlog,
            control_backlog: config.limits.mesh_control_backlog,
        },
        quic: quic_settings,
        fingerprint: cert.fingerprint_sha256.clone(),
        cert,
        public: config.auth.public.clone(),
        verifier,
    });
    let runtime = shards::RuntimeConfig {
        shards: Some(config.server.shards),
        pin: config.server.pin,
        udp_bind: vec![config.server.listen],
        tcp_bind: config.web.http.iter().map(|h| h.listen).collect(),
        control_capacity: config.limits.mesh_control_lane,
        data_capacity: config.limits.mesh_data_lane,
        ..shards::RuntimeConfig::default()
    };
    let fingerprint = settings.fingerprint.clone();
    let result = shards::Runtime::new(runtime)
        .on_ready(move |ready: &shards::ReadyInfo| {
            on_ready(&Listening {
                quic: ready.udp_addrs.clone(),
                http: ready.tcp_addrs.clone(),
                shards: ready.shards,
                fingerprint,
            })
        })
        .run(move |shard: Shard<Control, Data>| {
            let settings = settings.clone();
            async move { shard_main(shard, settings).await }
        });
    result.map_err(|e| {
        // Name the configuration key behind a socket that could not be bound.
        let key = match &e {
            shards::RuntimeError::Bind {
                kind: shards::SocketKind::Udp,
                ..
            } => Some("server.listen"),
            shards::RuntimeError::Bind {
                kind: shards::SocketKind::Tcp,
                ..
            } => Some("web.http.listen"),
            _ => None,
        };
        match (key, &config.file) {
            (Some(key), Some(file)) => StartError(format!("{}: {key}: {e}", file.display())),
            (Some(key), None) => StartError(format!("{key}: {e}")),
            _ => StartError(e.to_string()),
        }
    })
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

async fn shard_main(mut shard: Shard<Control, Data>, settings: Arc<ShardSettings>) {
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
    let env = Rc::new(SessionEnv {
        shard: relay.clone(),
        auth: Auth {
            public: settings.public.clone(),
            verifier: settings.verifier.clone(),
        },
    });
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
        settings.quic.keep_alive,
    );
    {
        let endpoint = endpoint.clone();
        relay.set_packet_sink(move |from, to, payload| endpoint.on_forwarded(from, to, payload));
    }
    for listener in listeners {
        let web = WebEnv::new(env.clone(), settings.fingerprint.clone());
        glommio::spawn_local(web::serve(listener, web)).detach();
    }
    tracing::debug!(shard = id, %local, gro = udp.gro_enabled(), gso = udp.max_gso_segments(), "shard up");
    let receive = async {
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
                    tracing::warn!(shard = id, error = %e, "UDP receive failed");
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    };
    futures_lite::future::or(receive, shard.stopped()).await;
    endpoint.shutdown();
    glommio::timer::sleep(Duration::from_millis(50)).await;
    let (udp, mesh) = (udp.stats(), relay.mesh_drops());
    tracing::info!(
        shard = id,
        udp_sent = udp.datagrams_sent,
        udp_send_dropped = udp.send_dropped,
        udp_receive_dropped = udp.receive_dropped,
        mesh_frames_shed = mesh.data.frames,
        mesh_groups_reset = mesh.data.groups_reset,
        mesh_groups_skipped = mesh.data.groups_skipped,
        mesh_packets_dropped = mesh.data.packets,
        mesh_requests_refused = mesh.requests_refused,
        "shard stopped"
    );
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
