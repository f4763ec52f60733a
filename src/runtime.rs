//! Start-up and per-shard wiring: TLS material, the shards runtime, and on every shard the
//! relay state, the mesh receivers and flushers, and the QUIC endpoint on its UDP socket.

use crate::auth::Verifier;
use crate::config::{Config, TlsConfig};
use crate::model::CacheLimits;
use crate::relay::{Control, Data, RelayConfig};
use crate::server::shard::{self, ShardSettings};
use crate::session::SessionLimits;
use crate::transport::quic::{self, QuicSettings};
use crate::transport::tls;
use shards::Shard;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// Why the relay could not start or stopped with an error.
#[derive(Debug)]
pub struct StartError(pub String);

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

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
        handshake_timeout: config.quic.handshake_timeout,
        handshakes: quic::HandshakeLimits {
            retry: config.quic.retry,
            unvalidated: config.limits.unvalidated_handshakes,
            per_ip: config.limits.handshakes_per_ip,
            proven_per_ip: config.limits.proven_handshakes_per_ip,
        },
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
        peers: config.cluster.peers.clone(),
        session: SessionLimits {
            setup_timeout: config.limits.setup_timeout,
            ..SessionLimits::default()
        },
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
            async move { shard::run(shard, settings).await }
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
