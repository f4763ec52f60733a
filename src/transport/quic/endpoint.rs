//! A shard's QUIC endpoint: routes datagrams to connections by connection id, accepts new
//! connections, forwards misrouted packets to their owning shard, and runs one driver task
//! per connection.

use super::alarm::Alarm;
use super::app::App;
use super::cid::{self, CID_LEN};
use super::connection::Connection;
use crate::session::SessionEnv;
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Where the endpoint's outgoing datagrams go (the shard's UDP fast path).
pub trait PacketOut {
    /// Sends `data`, split into datagrams of `segment_size` bytes (the last may be
    /// shorter), to `to`.
    fn send(&self, to: SocketAddr, data: &[u8], segment_size: usize);
    /// How many segments one send may carry (1 without GSO).
    fn max_segments(&self) -> usize;
}

/// Largest UDP payload we send (quiche's path MTU discovery decides below it).
const MAX_DATAGRAM: usize = super::config::MAX_UDP_PAYLOAD;

/// A shard's QUIC endpoint.
pub struct Endpoint {
    env: Rc<SessionEnv>,
    config: RefCell<quiche::Config>,
    conns: RefCell<HashMap<Vec<u8>, Rc<Connection>>>,
    out: Rc<dyn PacketOut>,
    send_buf: RefCell<Vec<u8>>,
    max_connections: usize,
    keep_alive: Duration,
    live: Cell<usize>,
    forwarded: Cell<u64>,
}

impl Endpoint {
    pub fn new(
        env: Rc<SessionEnv>,
        config: quiche::Config,
        out: Rc<dyn PacketOut>,
        max_connections: usize,
        keep_alive: Duration,
    ) -> Rc<Self> {
        let segments = out.max_segments().max(1);
        Rc::new(Self {
            env,
            config: RefCell::new(config),
            conns: RefCell::new(HashMap::new()),
            out,
            send_buf: RefCell::new(vec![0; segments * MAX_DATAGRAM]),
            max_connections,
            keep_alive,
            live: Cell::new(0),
            forwarded: Cell::new(0),
        })
    }

    /// Packets this shard handed to another shard.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.get()
    }

    /// Connections alive on this shard.
    pub fn connections(&self) -> usize {
        self.live.get()
    }

    /// Handles one received datagram. `forwarded` is set for packets another shard sent us.
    pub fn on_datagram(
        self: &Rc<Self>,
        from: SocketAddr,
        local: SocketAddr,
        data: &mut [u8],
        forwarded: bool,
    ) {
        let header = match quiche::Header::from_slice(data, CID_LEN) {
            Ok(header) => header,
            Err(_) => return,
        };
        let known = self.conns.borrow().get(header.dcid.as_ref()).cloned();
        if let Some(conn) = known {
            let info = quiche::RecvInfo { from, to: local };
            let _ = conn.quiche.borrow_mut().recv(data, info);
            conn.notify.notify();
            return;
        }
        let shard = &self.env.shard;
        if header.ty != quiche::Type::Initial {
            match cid::owner(&header.dcid, shard.count) {
                Some(owner) if owner != shard.id && !forwarded => {
                    let forwarded = self.forwarded.get() + 1;
                    self.forwarded.set(forwarded);
                    if forwarded.is_power_of_two() {
                        tracing::info!(from = %from, shard = shard.id, to_shard = owner, forwarded, "forwarding misrouted packets to their connection's shard");
                    }
                    shard.forward_packet(owner, from, local, Bytes::copy_from_slice(data));
                }
                _ => tracing::trace!(from = %from, "packet for an unknown connection dropped"),
            }
            return;
        }
        if !quiche::version_is_supported(header.version) {
            let mut out = [0u8; MAX_DATAGRAM];
            if let Ok(len) = quiche::negotiate_version(&header.scid, &header.dcid, &mut out) {
                self.out.send(from, &out[..len], len);
            }
            return;
        }
        if self.live.get() >= self.max_connections {
            tracing::warn!(from = %from, "connection limit reached; Initial dropped");
            return;
        }
        let scid = cid::generate(shard.id);
        let quiche_conn = {
            let mut config = self.config.borrow_mut();
            let scid = quiche::ConnectionId::from_ref(&scid);
            match quiche::accept_with_buf_factory(&scid, None, local, from, &mut config) {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::debug!(from = %from, error = %e, "accept failed");
                    return;
                }
            }
        };
        let conn = Connection::new(quiche_conn, true);
        let client_dcid = header.dcid.to_vec();
        self.register(&conn, scid.to_vec());
        self.register(&conn, client_dcid);
        self.live.set(self.live.get() + 1);
        let _ = conn
            .quiche
            .borrow_mut()
            .recv(data, quiche::RecvInfo { from, to: local });
        tracing::debug!(from = %from, shard = shard.id, "connection accepted");
        let endpoint = self.clone();
        glommio::spawn_local(async move { endpoint.drive(conn).await }).detach();
    }

    /// Closes every connection (clean close) so peers learn at once that we are going.
    pub fn shutdown(&self) {
        let conns: Vec<_> = self.conns.borrow().values().cloned().collect();
        for conn in conns {
            let _ = conn
                .quiche
                .borrow_mut()
                .close(true, 0x0, b"relay shutting down");
            conn.notify.notify();
        }
    }

    /// Handles a packet another shard forwarded to us.
    pub fn on_forwarded(self: &Rc<Self>, from: SocketAddr, local: SocketAddr, payload: Bytes) {
        let mut data = payload.to_vec();
        self.on_datagram(from, local, &mut data, true);
    }

    fn register(&self, conn: &Rc<Connection>, cid: Vec<u8>) {
        conn.cids.borrow_mut().push(cid.clone());
        self.conns.borrow_mut().insert(cid, conn.clone());
    }

    /// Issues spare connection ids (all naming this shard) so the peer can migrate, and
    /// forgets the ones it retired.
    fn issue_cids(&self, conn: &Rc<Connection>) {
        loop {
            let retired = conn.quiche.borrow_mut().retired_scid_next();
            let Some(retired) = retired else { break };
            let retired = retired.to_vec();
            conn.cids.borrow_mut().retain(|c| *c != retired);
            self.conns.borrow_mut().remove(&retired);
        }
        loop {
            let fresh = {
                let mut q = conn.quiche.borrow_mut();
                if q.scids_left() == 0 {
                    return;
                }
                let fresh = cid::generate(self.env.shard.id);
                let token = rand::random::<u128>();
                if q.new_scid(&quiche::ConnectionId::from_ref(&fresh), token, false)
                    .is_err()
                {
                    return;
                }
                fresh
            };
            self.register(conn, fresh.to_vec());
        }
    }

    async fn drive(self: Rc<Self>, conn: Rc<Connection>) {
        let mut app: Option<App> = None;
        let mut last_send = Instant::now();
        let mut alarm = Alarm::default();
        loop {
            let established = conn.quiche.borrow().is_established();
            if established && app.is_none() {
                let Some(started) = App::start(&self.env, &conn, &conn.notify) else {
                    let _ = conn
                        .quiche
                        .borrow_mut()
                        .close(true, 0x15, b"unsupported protocol");
                    break;
                };
                self.issue_cids(&conn);
                let peer = conn
                    .quiche
                    .borrow()
                    .path_stats()
                    .next()
                    .map(|p| p.peer_addr);
                let alpn = String::from_utf8_lossy(&conn.alpn()).into_owned();
                match started {
                    App::Moq(_) => {
                        tracing::info!(peer = ?peer, shard = self.env.shard.id, version = %alpn, "session started (raw QUIC)")
                    }
                    App::WebTransport { .. } => {
                        tracing::debug!(peer = ?peer, shard = self.env.shard.id, "HTTP/3 connection established")
                    }
                }
                app = Some(started);
            }
            if let Some(app) = app.as_mut() {
                app.poll(&self.env, &conn, &conn.notify);
                self.issue_cids(&conn);
            }
            conn.drain_path_events();
            if self.flush(&conn) {
                last_send = Instant::now();
            }
            if conn.quiche.borrow().is_closed() {
                break;
            }
            let now = Instant::now();
            // A closing or draining connection sends nothing more, PINGs included.
            let ping_at = app
                .as_ref()
                .filter(|_| !conn.quiche.borrow().is_draining())
                .map(|_| last_send + self.keep_alive);
            if ping_at.is_some_and(|at| at <= now) {
                // Quiet for a while: a PING keeps viewers that only wait for announces alive.
                // The next one is due a keep-alive from now even if quiche sends nothing.
                let _ = conn.quiche.borrow_mut().send_ack_eliciting();
                last_send = now;
                continue;
            }
            let quic_deadline = conn.quiche.borrow().timeout_instant();
            let session_deadline = app.as_ref().and_then(|a| a.deadline());
            let deadline = [quic_deadline, session_deadline, ping_at]
                .into_iter()
                .flatten()
                .min();
            if deadline.is_none_or(|deadline| deadline > now) {
                alarm.wait(&conn.notify, deadline).await;
            } else {
                // Due at once: still give the shard's other tasks their turn when the
                // executor asks, so no connection can hold its shard, whatever is due.
                glommio::yield_if_needed().await;
            }
            // quiche's deadline as of this turn: if packets since moved it earlier, the next
            // turn sees that and does not wait; if they moved it later, on_timeout finds
            // nothing due.
            if quic_deadline.is_some_and(|t| t <= Instant::now()) {
                conn.quiche.borrow_mut().on_timeout();
            }
        }
        {
            let q = conn.quiche.borrow();
            if let Some(err) = q.peer_error() {
                tracing::info!(code = err.error_code, reason = %String::from_utf8_lossy(&err.reason), "peer closed the connection");
            } else if let Some(err) = q.local_error() {
                tracing::info!(code = err.error_code, reason = %String::from_utf8_lossy(&err.reason), "connection closed");
            } else if q.is_timed_out() {
                tracing::info!("connection timed out");
            }
            let stats = q.stats();
            let path = q.path_stats().next();
            tracing::debug!(
                sent = stats.sent,
                received = stats.recv,
                lost = stats.lost,
                retransmitted = stats.retrans,
                sent_bytes = stats.sent_bytes,
                received_bytes = stats.recv_bytes,
                pmtu = path.as_ref().map_or(0, |p| p.pmtu),
                rtt_us = path.as_ref().map_or(0, |p| p.rtt.as_micros() as u64),
                "connection stats (packets)"
            );
        }
        drop(app);
        let mut conns = self.conns.borrow_mut();
        for cid in conn.cids.borrow().iter() {
            conns.remove(cid);
        }
        self.live.set(self.live.get() - 1);
    }

    /// Sends every packet quiche has ready, batched into GSO sends per destination;
    /// returns whether anything was sent.
    fn flush(&self, conn: &Connection) -> bool {
        let mut sent_any = false;
        let mut q = conn.quiche.borrow_mut();
        let mut buf = self.send_buf.borrow_mut();
        let capacity = buf.len();
        let mut filled = 0;
        let mut segment = 0;
        let mut batch_to: Option<SocketAddr> = None;
        loop {
            let room = (capacity - filled).min(MAX_DATAGRAM);
            let sent = if room < MAX_DATAGRAM {
                Err(quiche::Error::BufferTooShort)
            } else {
                q.send(&mut buf[filled..filled + room])
            };
            match sent {
                Ok((len, info)) => {
                    sent_any = true;
                    let same_batch = batch_to == Some(info.to) && len <= segment;
                    if filled > 0 && !same_batch {
                        // Flush what we have and move this packet to the front.
                        let to = batch_to.unwrap();
                        self.out.send(to, &buf[..filled], segment);
                        buf.copy_within(filled..filled + len, 0);
                        filled = 0;
                    }
                    if filled == 0 {
                        segment = len;
                        batch_to = Some(info.to);
                    }
                    filled += len;
                    if len < segment {
                        // A short packet ends a GSO batch.
                        self.out.send(info.to, &buf[..filled], segment);
                        filled = 0;
                    }
                }
                Err(quiche::Error::BufferTooShort) => {
                    if let Some(to) = batch_to.filter(|_| filled > 0) {
                        self.out.send(to, &buf[..filled], segment);
                    }
                    filled = 0;
                }
                Err(quiche::Error::Done) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "send failed; closing");
                    let _ = q.close(false, 0x1, b"internal");
                    break;
                }
            }
        }
        if filled > 0 {
            if let Some(to) = batch_to {
                self.out.send(to, &buf[..filled], segment);
            }
        }
        sent_any
    }
}
