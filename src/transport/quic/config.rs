//! The quiche configuration every shard builds for its endpoint.

use super::handshakes::HandshakeLimits;
use super::token::RetryKey;
use crate::transport::tls::Certificate;
use crate::wire::Version;
use std::time::Duration;

/// QUIC settings taken from the relay configuration.
#[derive(Clone, Debug)]
pub struct QuicSettings {
    pub idle_timeout: Duration,
    /// A connection that sent nothing for this long sends a PING.
    pub keep_alive: Duration,
    pub max_streams: u64,
    /// Connection-level receive window in bytes.
    pub max_data: u64,
    /// Per-stream receive window in bytes.
    pub max_stream_data: u64,
    /// An accepted connection whose handshake has not completed by then is closed.
    pub handshake_timeout: Duration,
    /// When new clients get a Retry or are refused.
    pub handshakes: HandshakeLimits,
    /// Signs and checks Retry tokens; made once at start-up and shared by every shard
    /// (clones share the key), since a client's next Initial may reach another shard.
    pub retry_key: RetryKey,
}

impl Default for QuicSettings {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(5),
            max_streams: 10_000,
            max_data: 64 << 20,
            max_stream_data: 16 << 20,
            handshake_timeout: Duration::from_secs(10),
            handshakes: HandshakeLimits::default(),
            retry_key: RetryKey::generate(),
        }
    }
}

/// The ALPN protocols we serve, in our order of preference: moq-lite newest first, then
/// `h3` for WebTransport.
pub fn alpn_list() -> Vec<&'static [u8]> {
    let mut list: Vec<&'static [u8]> = Version::ALL.iter().map(|v| v.alpn()).collect();
    list.push(b"h3");
    list
}

/// Builds a server configuration presenting `cert`, handed to BoringSSL from memory.
///
/// ALPN is chosen by our list order (newest first), not the client's: quiche's built-in
/// selection walks the client's list, so we install our own callback on its TLS context and
/// leave quiche's application protocols unset on the server.
pub fn server_config(
    settings: &QuicSettings,
    cert: &Certificate,
) -> Result<quiche::Config, quiche::Error> {
    let mut tls = boring::ssl::SslContextBuilder::new(boring::ssl::SslMethod::tls())
        .map_err(|_| quiche::Error::TlsFail)?;
    tls.set_alpn_select_callback(|ssl, offered| {
        shed_config_after_handshake(ssl);
        select_alpn(&alpn_list(), offered).ok_or(boring::ssl::AlpnError::NOACK)
    });
    cert.configure(&mut tls)
        .map_err(|_| quiche::Error::TlsFail)?;
    let mut config = quiche::Config::with_boring_ssl_ctx_builder(quiche::PROTOCOL_VERSION, tls)?;
    config.verify_peer(false);
    apply(&mut config, settings);
    Ok(config)
}

/// Lets BoringSSL free the connection's copy of the TLS configuration (certificate
/// credential, verify parameters, cipher lists) once its handshake is done: about 1.5 KiB per
/// connection that nothing reads afterwards. The ALPN callback is where a server connection's
/// `SSL` is first in our hands, during its handshake.
fn shed_config_after_handshake(ssl: &mut boring::ssl::SslRef) {
    // SAFETY: `ssl` is a live `SSL` for the duration of the callback, and the flag only takes
    // effect when BoringSSL finishes the handshake.
    unsafe {
        boring_sys::SSL_set_shed_handshake_config(foreign_types::ForeignTypeRef::as_ptr(ssl), 1)
    };
}

/// The first protocol of `ours` that the client's wire-format list `offered` contains,
/// as a slice of `offered`.
fn select_alpn<'a>(ours: &[&[u8]], offered: &'a [u8]) -> Option<&'a [u8]> {
    let mut client = Vec::new();
    let mut rest = offered;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len);
        if tail.len() < len {
            return None;
        }
        client.push(&tail[..len]);
        rest = &tail[len..];
    }
    ours.iter()
        .find_map(|want| client.iter().find(|c| **c == *want).copied())
}

/// Builds a client configuration (our own client: cluster links, tests, bench).
pub fn client_config(
    settings: &QuicSettings,
    alpns: &[&[u8]],
    verify: bool,
) -> Result<quiche::Config, quiche::Error> {
    let mut config = quiche::Config::new(quiche::PROTOCOL_VERSION)?;
    config.verify_peer(verify);
    apply(&mut config, settings);
    config.set_application_protos(alpns)?;
    Ok(config)
}

/// A configuration for dialing a peer with `alpns`, checking its certificate as `tls` (a
/// client context, e.g. from `tls::client_context`) says.
pub fn dial_config(
    settings: &QuicSettings,
    alpns: &[&[u8]],
    tls: boring::ssl::SslContextBuilder,
) -> Result<quiche::Config, quiche::Error> {
    // No `verify_peer` here: it would replace the context's verify callback.
    let mut config = quiche::Config::with_boring_ssl_ctx_builder(quiche::PROTOCOL_VERSION, tls)?;
    apply(&mut config, settings);
    config.set_application_protos(alpns)?;
    Ok(config)
}

/// The largest UDP payload we send: a 1500-byte Ethernet MTU less the IPv6 and UDP headers,
/// as quinn's path MTU discovery also caps it. Path MTU discovery (RFC 8899) probes it after
/// the handshake and falls back towards 1200 bytes on paths that drop it.
pub const MAX_UDP_PAYLOAD: usize = 1452;

fn apply(config: &mut quiche::Config, settings: &QuicSettings) {
    config.set_max_idle_timeout(settings.idle_timeout.as_millis() as u64);
    config.set_max_recv_udp_payload_size(1500);
    config.set_max_send_udp_payload_size(MAX_UDP_PAYLOAD);
    config.discover_pmtu(true);
    config.set_initial_max_data(settings.max_data);
    config.set_initial_max_stream_data_bidi_local(settings.max_stream_data);
    config.set_initial_max_stream_data_bidi_remote(settings.max_stream_data);
    config.set_initial_max_stream_data_uni(settings.max_stream_data);
    config.set_initial_max_streams_bidi(settings.max_streams);
    config.set_initial_max_streams_uni(settings.max_streams);
    config.set_max_connection_window(settings.max_data.max(64 << 20));
    config.set_max_stream_window(settings.max_stream_data.max(16 << 20));
    config.set_active_connection_id_limit(4);
    config.set_disable_active_migration(false);
    config.enable_dgram(true, 1024, 1024);
    config.set_cc_algorithm(quiche::CongestionControlAlgorithm::CUBIC);
    config.enable_pacing(false);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_order_wins_over_the_clients() {
        let offered = b"\x0bmoq-lite-04\x0bmoq-lite-05\x02h3";
        let ours: Vec<&[u8]> = vec![b"moq-lite-05", b"moq-lite-04"];
        assert_eq!(select_alpn(&ours, offered), Some(&b"moq-lite-05"[..]));
        assert_eq!(
            select_alpn(&ours, b"\x0bmoq-lite-04"),
            Some(&b"moq-lite-04"[..])
        );
        assert_eq!(select_alpn(&ours, b"\x02h3"), None);
        assert_eq!(select_alpn(&ours, b"\x0bmoq-lite"), None, "truncated list");
    }
}
