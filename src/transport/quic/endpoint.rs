//! A shard's QUIC endpoint: routes datagrams to connections by connection id, accepts new
//! connections, dials out, forwards misrouted packets to their owning shard, and runs one
//! driver task per connection with the application a [`ConnectionHandler`] (or the dialer)
//! chose for it.
//!
//! Connections we dial use the shard's own socket: their connection ids name the shard like
//! every other, so a reply the kernel hands to another shard is forwarded here. That holds
//! for the server's Initial too, whose destination id is the one we chose: an Initial whose
//! id names another shard goes to that shard, which either knows it (a dialed connection) or
//! accepts it (a client that happened to pick such an id).

use super::alarm::Alarm;
use super::cid::{self, CID_LEN};
use super::connection::Connection;
use super::handler::{ConnectionApp, ConnectionHandler, DialedApp};
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

/// The smallest datagram that may carry a client's Initial (RFC 9000 §14.1).
const MIN_INITIAL_DATAGRAM: usize = 1200;

/// Hands a datagram to the shard owning its connection: (shard, from, local, payload).
pub type Forward = Box<dyn Fn(usize, SocketAddr, SocketAddr, Bytes)>;

/// Which shard of how many an endpoint runs on, and how it reaches the others.
pub struct ShardPlace {
    pub id: usize,
    pub count: usize,
    pub forward: Forward,
}

/// How a connection's application is chosen once its handshake completes.
enum Start {
    Accepted,
    Dialed(DialedApp),
}

/// A shard's QUIC endpoint.
pub struct Endpoint {
    place: ShardPlace,
    handler: Rc<dyn ConnectionHandler>,
    config: RefCell<quiche::Config>,
    conns: RefCell<HashMap<Vec<u8>, Rc<Connection>>>,
    out: Rc<dyn PacketOut>,
    send_buf: RefCell<Vec<u8>>,
    max_connections: usize,
    keep_alive: Duration,
    live: Cell<usize>,
    forwarded: Cell<u64>,
    short_initials: Cell<u64>,
    undecodable: Cell<u64>,
    unknown: Cell<u64>,
}

impl Endpoint {
    /// An endpoint on `place` accepting with `config` (a server configuration) and running
    /// what `handler` picks on each accepted connection.
    pub fn new(
        place: ShardPlace,
        handler: Rc<dyn ConnectionHandler>,
        config: quiche::Config,
        out: Rc<dyn PacketOut>,
        max_connections: usize,
        keep_alive: Duration,
    ) -> Rc<Self> {
        let segments = out.max_segments().max(1);
        Rc::new(Self {
            place,
            handler,
            config: RefCell::new(config),
            conns: RefCell::new(HashMap::new()),
            out,
            send_buf: RefCell::new(vec![0; segments * MAX_DATAGRAM]),
            max_connections,
            keep_alive,
            live: Cell::new(0),
            forwarded: Cell::new(0),
            short_initials: Cell::new(0),
            undecodable: Cell::new(0),
            unknown: Cell::new(0),
        })
    }

    /// Packets this shard handed to another shard.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.get()
    }

    /// Datagrams that would have started a connection but were under 1200 bytes, dropped.
    pub fn short_initials_dropped(&self) -> u64 {
        self.short_initials.get()
    }

    /// Datagrams without a QUIC header we could read, dropped.
    pub fn undecodable_dropped(&self) -> u64 {
        self.undecodable.get()
    }

    /// Packets other than Initials for a connection neither this shard nor the shard its id
    /// names knows (closed, or from before a restart), dropped.
    pub fn unknown_connection_dropped(&self) -> u64 {
        self.unknown.get()
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
            Err(_) => {
                self.undecodable.set(self.undecodable.get() + 1);
                return;
            }
        };
        let known = self.conns.borrow().get(header.dcid.as_ref()).cloned();
        if let Some(conn) = known {
            let info = quiche::RecvInfo { from, to: local };
            let _ = conn.quiche.borrow_mut().recv(data, info);
            conn.notify.notify();
            return;
        }
        let shard = &self.place;
        let owner = cid::owner(&header.dcid, shard.count).filter(|&o| o != shard.id);
        if let Some(owner) = owner.filter(|_| !forwarded) {
            let count = self.forwarded.get() + 1;
            self.forwarded.set(count);
            if count.is_power_of_two() {
                tracing::info!(from = %from, shard = shard.id, to_shard = owner, forwarded = count, "forwarding misrouted packets to their connection's shard");
            }
            (shard.forward)(owner, from, local, Bytes::copy_from_slice(data));
            return;
        }
        if header.ty != quiche::Type::Initial {
            self.unknown.set(self.unknown.get() + 1);
            tracing::trace!(from = %from, "packet for an unknown connection dropped");
            return;
        }
        // RFC 9000 §14.1: an Initial must come padded to 1200 bytes, and §5.2.2: no Version
        // Negotiation for a datagram too small to start a connection. Dropped without state
        // or reply, so a spoofed small packet buys no amplification.
        if data.len() < MIN_INITIAL_DATAGRAM {
            self.short_initials.set(self.short_initials.get() + 1);
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
        glommio::spawn_local(async move { endpoint.drive(conn, Start::Accepted).await }).detach();
    }

    /// Dials `peer` from this shard's socket (bound at `local`) with a client `config`,
    /// verifying the certificate for `server_name`; `app` runs on the connection once the
    /// handshake completes. The connection's ids name this shard, so replies find it.
    pub fn connect(
        self: &Rc<Self>,
        local: SocketAddr,
        peer: SocketAddr,
        server_name: Option<&str>,
        config: &mut quiche::Config,
        app: DialedApp,
    ) -> Result<Rc<Connection>, quiche::Error> {
        let scid = cid::generate(self.place.id);
        let quiche_conn = quiche::connect_with_buffer_factory(
            server_name,
            &quiche::ConnectionId::from_ref(&scid),
            local,
            peer,
            config,
        )?;
        let conn = Connection::new(quiche_conn, false);
        self.register(&conn, scid.to_vec());
        self.live.set(self.live.get() + 1);
        tracing::debug!(%peer, shard = self.place.id, "dialing");
        let endpoint = self.clone();
        let dialed = conn.clone();
        glommio::spawn_local(async move { endpoint.drive(dialed, Start::Dialed(app)).await })
            .detach();
        Ok(conn)
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
                let fresh = cid::generate(self.place.id);
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

    async fn drive(self: Rc<Self>, conn: Rc<Connection>, start: Start) {
        let mut start = Some(start);
        let mut app: Option<Box<dyn ConnectionApp>> = None;
        let mut last_send = Instant::now();
        let mut alarm = Alarm::default();
        loop {
            let established = conn.quiche.borrow().is_established();
            if established && app.is_none() {
                let chosen = match start.take() {
                    Some(Start::Accepted) => self.handler.accepted(&conn),
                    Some(Start::Dialed(make)) => make(&conn),
                    None => None,
                };
                let Some(chosen) = chosen else {
                    let _ = conn
                        .quiche
                        .borrow_mut()
                        .close(true, 0x15, b"unsupported protocol");
                    break;
                };
                self.issue_cids(&conn);
                app = Some(chosen);
            }
            if let Some(app) = app.as_mut() {
                app.poll(&conn);
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
        conn.ended.notify();
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
