//! Explicit peers (`cluster.peers`, `--cluster-peer`): each peer relay is dialed over raw
//! QUIC (moq-lite-05) and the link is kept up, redialed with jittered backoff (1 s doubling
//! to 10 s) whenever it ends or cannot be made.
//!
//! **Which shard holds a link**: the shard the peer's URL hashes to, with the same hash that
//! places broadcasts. So each peer has exactly one link per relay, whatever the shard count,
//! and every shard agrees on where it is without talking. The link's session is an ordinary
//! session on that shard: broadcasts it announces are routed through their owning shards like
//! any publisher's, so a track is pulled from the peer at most once per relay and a group
//! crosses each core boundary at most once.
//!
//! The peer is trusted with everything once its SETUP arrives (we chose to dial it); it
//! authorizes us by the path and query of its URL (a `jwt=` token, say). Hop ids in
//! announcements keep routes from looping back to the peer they came from.

use crate::config::PeerUrl;
use crate::session::{Session, SessionEnv};
use crate::transport::quic::{
    dial_config, Connection, ConnectionApp, DialedApp, Endpoint, QuicSettings,
};
use crate::transport::tls::{client_context, PeerTrust};
use crate::wire::Version;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The first wait before redialing, doubled after each failure.
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait before redialing; a link that stayed up this long resets the backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What a shard needs to hold its links.
pub struct LinkEnv {
    pub endpoint: Rc<Endpoint>,
    pub session: Rc<SessionEnv>,
    /// The address the shard's UDP socket is bound to.
    pub local: SocketAddr,
    pub quic: QuicSettings,
}

/// Starts a link task for every peer that belongs to shard `shard` of `shards`.
pub fn start(peers: &[PeerUrl], shard: usize, shards: usize, env: &Rc<LinkEnv>) {
    for peer in peers {
        if shards::owner_of(peer.to_string().as_bytes(), shards) != shard {
            continue;
        }
        let (peer, env) = (peer.clone(), env.clone());
        glommio::spawn_local(async move { keep_linked(&peer, &env).await }).detach();
    }
}

/// Dials `peer` and redials whenever the link ends, forever.
async fn keep_linked(peer: &PeerUrl, env: &LinkEnv) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let started = Instant::now();
        match dial(peer, env).await {
            Ok(conn) => {
                tracing::info!(peer = %peer, shard = env.session.shard.id, "dialing peer");
                conn.ended.notified().await;
                tracing::info!(peer = %peer, "peer link ended");
            }
            Err(e) => tracing::warn!(peer = %peer, error = %e, "cannot dial peer"),
        }
        if started.elapsed() >= MAX_BACKOFF {
            backoff = MIN_BACKOFF;
        }
        glommio::timer::sleep(jittered(backoff)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Between 75% and 125% of `wait`, so peers that lost each other do not redial in step.
fn jittered(wait: Duration) -> Duration {
    wait.mul_f64(rand::random_range(0.75..1.25))
}

async fn dial(peer: &PeerUrl, env: &LinkEnv) -> Result<Rc<Connection>, String> {
    let authority = peer.authority();
    let resolved = glommio::executor()
        .spawn_blocking(move || authority.to_socket_addrs().map(|a| a.collect::<Vec<_>>()))
        .await
        .map_err(|e| format!("cannot resolve: {e}"))?;
    let remote = resolved
        .into_iter()
        .find(|a| a.is_ipv4() == env.local.is_ipv4())
        .ok_or("no address of the listening socket's family")?;
    let local = source_address(env.local, remote)?;
    let trust = match peer.fingerprint {
        Some(pin) => PeerTrust::Pinned(pin),
        None => PeerTrust::SystemRoots,
    };
    let tls = client_context(&trust).map_err(|e| format!("TLS setup: {e}"))?;
    let version = Version::Lite05;
    let mut config =
        dial_config(&env.quic, &[version.alpn()], tls).map_err(|e| format!("QUIC setup: {e}"))?;
    let (session_env, path) = (env.session.clone(), peer.path.clone());
    let app: DialedApp = Box::new(move |conn: &Rc<Connection>| {
        let negotiated = Version::from_alpn(&conn.alpn())?;
        let session = Session::dialed(session_env, negotiated, conn.notify.clone(), path);
        Some(Box::new(PeerApp { session }) as Box<dyn ConnectionApp>)
    });
    env.endpoint
        .connect(local, remote, peer.server_name(), &mut config, app)
        .map_err(|e| format!("QUIC connect: {e}"))
}

/// The address our packets to `remote` leave from: the socket's own when it is bound to
/// one, else the one the kernel routes `remote` from, on the socket's port.
fn source_address(bound: SocketAddr, remote: SocketAddr) -> Result<SocketAddr, String> {
    if !bound.ip().is_unspecified() {
        return Ok(bound);
    }
    let probe = UdpSocket::bind(SocketAddr::new(bound.ip(), 0))
        .and_then(|s| s.connect(remote).map(|()| s))
        .and_then(|s| s.local_addr())
        .map_err(|e| format!("no route to {remote}: {e}"))?;
    Ok(SocketAddr::new(probe.ip(), bound.port()))
}

/// The session on a link we dialed.
struct PeerApp {
    session: Session,
}

impl ConnectionApp for PeerApp {
    fn poll(&mut self, conn: &Rc<Connection>) {
        conn.with_streams(|streams| self.session.poll(streams, Instant::now()));
    }

    fn deadline(&self) -> Option<Instant> {
        self.session.deadline()
    }
}
