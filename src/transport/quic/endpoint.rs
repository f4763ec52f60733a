//! A shard's QUIC endpoint: routes datagrams to connections by connection id, accepts new
//! connections (or answers them with a stateless Retry, as [`Handshakes`] decides), dials
//! out, forwards misrouted packets to their owning shard, and runs one driver task per
//! connection with the application a [`ConnectionHandler`] (or the dialer) chose for it. A
//! handshake that has not completed within the handshake timeout is closed, and until a
//! client's address is validated the connection sends at most three times what it received
//! ([`AntiAmplification`](super::amplification::AntiAmplification)).
//!
//! Nothing on the receive path logs per packet: every drop is counted ([`EndpointStats`]),
//! and the refusals a peer can repeat at will log at most once a second.
//!
//! Connections we dial use the shard's own socket: their connection ids name the shard like
//! every other, so a reply the kernel hands to another shard is forwarded here. That holds
//! for the server's Initial too, whose destination id is the one we chose: an Initial whose
//! id names another shard goes to that shard, which either knows it (a dialed connection) or
//! accepts it (a client that happened to pick such an id).

use super::alarm::Alarm;
use super::cid::{self, CID_LEN};
use super::config::QuicSettings;
use super::connection::Connection;
use super::counters::{Counters, EndpointStats};
use super::handler::{ConnectionApp, ConnectionHandler, DialedApp};
use super::handshakes::{Admission, Handshakes, Ticket};
use super::initial::{self, InitialCheck};
use super::reply_budget::ReplyBudget;
use super::throttle::LogThrottle;
use super::token::{RetryKey, TokenCheck, MAX_TOKEN_LEN};
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// How often a refusal a peer can repeat at will may be logged.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Longest QUIC v1 connection id.
const MAX_CID_LEN: usize = 20;

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
    handshake_timeout: Duration,
    retry_key: RetryKey,
    handshakes: RefCell<Handshakes>,
    /// Retry and Version Negotiation packets left to send, per shard and per address.
    reply_budget: RefCell<ReplyBudget>,
    live: Cell<usize>,
    counters: Counters,
    limit_log: LogThrottle,
    refusal_log: LogThrottle,
    token_log: LogThrottle,
    timeout_log: LogThrottle,
    reply_log: LogThrottle,
    /// The task queue the connections' tasks run in: the one current when the endpoint was
    /// made, whichever queue later receives the datagrams that start them.
    connections_queue: glommio::TaskQueueHandle,
}

impl Endpoint {
    /// An endpoint on `place` accepting with `config` (a server configuration built from
    /// `settings`) and running what `handler` picks on each accepted connection. The tasks
    /// that drive connections go to the task queue current at this call.
    pub fn new(
        place: ShardPlace,
        handler: Rc<dyn ConnectionHandler>,
        config: quiche::Config,
        out: Rc<dyn PacketOut>,
        max_connections: usize,
        settings: &QuicSettings,
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
            keep_alive: settings.keep_alive,
            handshake_timeout: settings.handshake_timeout,
            retry_key: settings.retry_key.clone(),
            handshakes: RefCell::new(Handshakes::new(settings.handshakes, Instant::now())),
            reply_budget: RefCell::new(ReplyBudget::new()),
            live: Cell::new(0),
            counters: Counters::default(),
            limit_log: LogThrottle::new(REFUSAL_LOG_INTERVAL),
            refusal_log: LogThrottle::new(REFUSAL_LOG_INTERVAL),
            token_log: LogThrottle::new(REFUSAL_LOG_INTERVAL),
            timeout_log: LogThrottle::new(REFUSAL_LOG_INTERVAL),
            reply_log: LogThrottle::new(REFUSAL_LOG_INTERVAL),
            connections_queue: glommio::executor().current_task_queue(),
        })
    }

    /// What the endpoint accepted, dropped, refused and answered statelessly so far.
    pub fn stats(&self) -> EndpointStats {
        self.counters.get()
    }

    /// Packets this shard handed to another shard.
    pub fn forwarded(&self) -> u64 {
        self.counters.get().forwarded
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
                self.counters.bump(|c| &mut c.undecodable);
                return;
            }
        };
        let known = self.conns.borrow().get(header.dcid.as_ref()).cloned();
        if let Some(conn) = known {
            let handshake = header.ty == quiche::Type::Handshake;
            self.receive(&conn, data, from, local, handshake);
            conn.notify.notify();
            return;
        }
        let shard = &self.place;
        let owner = cid::owner(&header.dcid, shard.count).filter(|&o| o != shard.id);
        if let Some(owner) = owner.filter(|_| !forwarded) {
            self.counters.bump(|c| &mut c.forwarded);
            let count = self.counters.get().forwarded;
            if count.is_power_of_two() {
                tracing::info!(from = %from, shard = shard.id, to_shard = owner, forwarded = count, "forwarding misrouted packets to their connection's shard");
            }
            (shard.forward)(owner, from, local, Bytes::copy_from_slice(data));
            return;
        }
        if header.ty != quiche::Type::Initial {
            self.counters.bump(|c| &mut c.unknown_connection);
            return;
        }
        // RFC 9000 §14.1: an Initial must come padded to 1200 bytes, and §5.2.2: no Version
        // Negotiation for a datagram too small to start a connection. Dropped without state
        // or reply, so a spoofed small packet buys no amplification.
        if data.len() < MIN_INITIAL_DATAGRAM {
            self.counters.bump(|c| &mut c.short_initials);
            return;
        }
        if !quiche::version_is_supported(header.version) {
            if !self.may_reply(from, Instant::now()) {
                return;
            }
            let mut out = [0u8; MAX_DATAGRAM];
            if let Ok(len) = quiche::negotiate_version(&header.scid, &header.dcid, &mut out) {
                self.out.send(from, &out[..len], len);
                self.counters.bump(|c| &mut c.version_negotiations);
            }
            return;
        }
        // Nothing is answered or kept for an Initial nobody encrypted.
        if initial::check(data) == InitialCheck::Forged {
            self.counters.bump(|c| &mut c.forged_initials);
            return;
        }
        let now = Instant::now();
        if self.live.get() >= self.max_connections {
            self.counters.bump(|c| &mut c.connection_limit);
            if let Some(more) = self.limit_log.ready(now) {
                tracing::warn!(
                    shard = shard.id,
                    limit = self.max_connections,
                    refused_since_last = more,
                    "connection limit reached; Initials dropped"
                );
            }
            return;
        }
        // A token can only be one of our Retry tokens (we send no NEW_TOKEN): it proves the
        // client's address and names the destination id of its first Initial.
        let mut odcid = [0u8; MAX_CID_LEN];
        let mut odcid_len = None;
        if let Some(token) = header.token.as_deref().filter(|t| !t.is_empty()) {
            match self.retry_key.check(token, from, &header.dcid, unix_ms()) {
                TokenCheck::Valid { odcid: id } => {
                    odcid[..id.len()].copy_from_slice(id);
                    odcid_len = Some(id.len());
                }
                // RFC 9000 §8.1.3 lets a server discard an Initial with a bad Retry token
                // (the client then times out); closing with INVALID_TOKEN would mean keeping
                // connection state for whoever sends one.
                check => {
                    let expired = check == TokenCheck::Expired;
                    self.counters.bump(|c| match expired {
                        true => &mut c.tokens_expired,
                        false => &mut c.tokens_invalid,
                    });
                    if let Some(more) = self.token_log.ready(now) {
                        tracing::info!(from = %from, expired, refused_since_last = more, "Initial with an unusable Retry token dropped");
                    }
                    return;
                }
            }
        }
        let admission = self
            .handshakes
            .borrow_mut()
            .admit(from.ip(), odcid_len.is_some(), now);
        let ticket = match admission {
            Admission::Accept(ticket) => ticket,
            Admission::Retry => {
                if self.may_reply(from, now) {
                    self.send_retry(&header, from);
                }
                return;
            }
            Admission::Refuse(reason) => {
                self.counters.bump(|c| &mut c.handshakes_refused);
                if let Some(more) = self.refusal_log.ready(now) {
                    tracing::warn!(from = %from, shard = shard.id, ?reason, refused_since_last = more, "too many handshakes in flight; Initial dropped");
                }
                return;
            }
        };
        let client_dcid = header.dcid.to_vec();
        let scid = cid::generate(shard.id);
        let quiche_conn = {
            let mut config = self.config.borrow_mut();
            let scid = quiche::ConnectionId::from_ref(&scid);
            let accepted = match odcid_len {
                Some(len) => quiche::accept_with_retry(
                    &scid,
                    quiche::RetryConnectionIds {
                        original_destination_cid: &quiche::ConnectionId::from_ref(&odcid[..len]),
                        retry_source_cid: &quiche::ConnectionId::from_ref(&client_dcid),
                    },
                    local,
                    from,
                    &mut config,
                ),
                None => quiche::accept_with_buf_factory(&scid, None, local, from, &mut config),
            };
            match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    self.handshakes.borrow_mut().end(ticket);
                    self.counters.bump(|c| &mut c.accept_failed);
                    tracing::debug!(from = %from, error = %e, "accept failed");
                    return;
                }
            }
        };
        let conn = Connection::new(quiche_conn, true);
        if odcid_len.is_some() {
            conn.amplification.validate();
        }
        self.register(&conn, scid.to_vec());
        self.register(&conn, client_dcid);
        self.live.set(self.live.get() + 1);
        self.counters.bump(|c| &mut c.accepted);
        self.receive(&conn, data, from, local, false);
        tracing::debug!(from = %from, shard = shard.id, "connection accepted");
        let endpoint = self.clone();
        glommio::spawn_local_into(
            async move { endpoint.drive(conn, Start::Accepted, Some(ticket)).await },
            self.connections_queue,
        )
        .expect("the connections' task queue lives as long as the executor")
        .detach();
    }

    /// Hands `data` to `conn`, keeping its anti-amplification ledger: the client's address
    /// counts as validated once quiche processed a packet of a datagram that starts with a
    /// Handshake packet (RFC 9000 §8.1: only the client can have those keys).
    fn receive(
        &self,
        conn: &Connection,
        data: &mut [u8],
        from: SocketAddr,
        local: SocketAddr,
        handshake: bool,
    ) {
        let ledger = &conn.amplification;
        let mut q = conn.quiche.borrow_mut();
        if ledger.is_validated() {
            let _ = q.recv(data, quiche::RecvInfo { from, to: local });
            return;
        }
        ledger.on_received(data.len());
        let before = q.stats().recv;
        let _ = q.recv(data, quiche::RecvInfo { from, to: local });
        if q.is_established() || (handshake && q.stats().recv > before) {
            ledger.validate();
        }
    }

    /// Whether the budget of stateless replies allows one to `to` now; counts it if not.
    fn may_reply(&self, to: SocketAddr, now: Instant) -> bool {
        if self.reply_budget.borrow_mut().take(to.ip(), now) {
            return true;
        }
        self.counters.bump(|c| &mut c.stateless_replies_shed);
        if let Some(more) = self.reply_log.ready(now) {
            tracing::warn!(shard = self.place.id, to = %to, shed_since_last = more, "stateless reply budget spent; Initial dropped unanswered");
        }
        false
    }

    /// Answers an Initial with a Retry whose token proves, when it comes back, that the client
    /// receives at the address it sends from. Keeps nothing.
    fn send_retry(&self, header: &quiche::Header<'_>, from: SocketAddr) {
        let scid = cid::generate(self.place.id);
        let mut token = [0u8; MAX_TOKEN_LEN];
        let len = self
            .retry_key
            .mint(from, &header.dcid, &scid, unix_ms(), &mut token);
        let mut out = [0u8; 256];
        match quiche::retry(
            &header.scid,
            &header.dcid,
            &quiche::ConnectionId::from_ref(&scid),
            &token[..len],
            header.version,
            &mut out,
        ) {
            Ok(written) => {
                self.out.send(from, &out[..written], written);
                self.counters.bump(|c| &mut c.retries);
            }
            Err(_) => self.counters.bump(|c| &mut c.accept_failed),
        }
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
        glommio::spawn_local_into(
            async move { endpoint.drive(dialed, Start::Dialed(app), None).await },
            self.connections_queue,
        )
        .expect("the connections' task queue lives as long as the executor")
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

    /// Runs one connection until it is closed. `ticket` (accepted connections) counts its
    /// handshake in flight until it completes, and puts it under the handshake timeout.
    async fn drive(self: Rc<Self>, conn: Rc<Connection>, start: Start, mut ticket: Option<Ticket>) {
        let mut start = Some(start);
        let mut app: Option<Box<dyn ConnectionApp>> = None;
        let mut last_send = Instant::now();
        let mut alarm = Alarm::default();
        let handshake_deadline = ticket.as_ref().map(|_| last_send + self.handshake_timeout);
        loop {
            let established = conn.quiche.borrow().is_established();
            if established {
                if let Some(ticket) = ticket.take() {
                    self.handshakes.borrow_mut().end(ticket);
                    conn.amplification.validate();
                }
            } else if handshake_deadline.is_some_and(|at| at <= Instant::now()) {
                self.handshake_timed_out(&conn);
                break;
            }
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
            let handshake_deadline = handshake_deadline.filter(|_| !established);
            let deadline = [quic_deadline, session_deadline, ping_at, handshake_deadline]
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
        if let Some(ticket) = ticket.take() {
            self.handshakes.borrow_mut().end(ticket);
        }
        {
            let q = conn.quiche.borrow();
            if !q.is_established() {
                // A handshake that never completed: as many of these as Initials an attacker
                // sends, so not one line each (the counters have them).
                tracing::debug!("handshake ended without completing");
            } else if let Some(err) = q.peer_error() {
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

    /// Closes a connection whose handshake did not complete in time: one CONNECTION_CLOSE
    /// (if the amplification budget allows it) and the state is gone, without the closing
    /// period, since the peer has not shown it is there.
    fn handshake_timed_out(&self, conn: &Connection) {
        self.counters.bump(|c| &mut c.handshakes_timed_out);
        if let Some(more) = self.timeout_log.ready(Instant::now()) {
            tracing::info!(shard = self.place.id, timeout = ?self.handshake_timeout, timed_out_since_last = more, "handshake did not complete in time; connection closed");
        }
        // CONNECTION_REFUSED (RFC 9000 §20.1): the server will not go on with it.
        let _ = conn
            .quiche
            .borrow_mut()
            .close(false, 0x2, b"handshake timeout");
        self.flush(conn);
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
            // Before the client's address is validated, no datagram may take the bytes sent
            // past three times those received; one carrying an Initial must be 1200 bytes,
            // so with less allowed nothing goes until the client sends more.
            let limit = match conn.amplification.allowance() {
                None => MAX_DATAGRAM,
                Some(left) if left >= MIN_INITIAL_DATAGRAM => left.min(MAX_DATAGRAM),
                Some(_) => {
                    if conn.amplification.hold_back() {
                        self.counters.bump(|c| &mut c.amplification_limited);
                    }
                    break;
                }
            };
            let sent = if capacity - filled < limit {
                Err(quiche::Error::BufferTooShort)
            } else {
                q.send(&mut buf[filled..filled + limit])
            };
            match sent {
                Ok((len, info)) => {
                    conn.amplification.on_sent(len);
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

/// Milliseconds since the Unix epoch: the clock tokens carry, shared by every shard.
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
