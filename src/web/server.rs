//! The TCP accept loop of one shard and the life of one HTTP connection: take a slot for it
//! (or answer the refusal and close), read a bounded head within a deadline, route it,
//! answer, and keep the connection for the next request or close it.

use super::env::WebEnv;
use super::fetch::{self, Outcome};
use super::request::{self, Request};
use super::response;
use super::routes::{route, Route};
use super::slots::Slots;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A response write that makes no progress for this long ends the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts connections forever.
pub async fn serve(listener: TcpListener, env: Rc<WebEnv>) {
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let Ok(peer) = stream.peer_addr() else {
            // Already gone: nothing to answer.
            continue;
        };
        let source = match env.slots.admit(peer.ip()) {
            Ok(source) => source,
            Err(refusal) => {
                let mut stream = stream;
                glommio::spawn_local(async move {
                    let _ = stream
                        .write_all(&response::error(refusal.status(), false))
                        .await;
                    let _ = stream.close().await;
                })
                .detach();
                continue;
            }
        };
        let env = env.clone();
        glommio::spawn_local(async move {
            connection(&env, stream).await;
            env.slots.release(source);
        })
        .detach();
    }
}

/// Whether the request asks for a WebSocket.
fn is_websocket(request: &Request) -> bool {
    request
        .header("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

async fn connection(env: &WebEnv, mut stream: TcpStream) {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        let request = match read_head(&env.slots, &mut stream, &mut buf).await {
            Ok(Some(request)) => request,
            Ok(None) => break,
            Err(status) => {
                let _ = stream.write_all(&response::error(status, false)).await;
                break;
            }
        };
        if is_websocket(&request) {
            let leftover = std::mem::take(&mut buf);
            env.upgrade.upgrade(stream, request, leftover).await;
            return;
        }
        let keep = request.keep_alive();
        let outcome = match route(env, &request) {
            Route::Respond(bytes) => match stream.write_all(&bytes).await {
                Ok(()) => Outcome::Done,
                Err(_) => Outcome::Broken,
            },
            Route::Fetch {
                broadcast,
                track,
                group,
            } => fetch::fetch(env, &mut stream, &broadcast, &track, group, keep).await,
        };
        if matches!(outcome, Outcome::Broken) || !keep {
            break;
        }
    }
    let _ = stream.close().await;
}

/// Reads one request head: `Ok(None)` when the client closed or went idle between
/// requests, `Err(status)` for a request to refuse (then close). The head must arrive within
/// the slots' head timeout, which shrinks while the shard is under pressure: the deadline is
/// looked at again at least every [`Slots::recheck_interval`].
async fn read_head(
    slots: &Slots,
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<Option<Request>, u16> {
    let start = Instant::now();
    let mut chunk = [0u8; 4096];
    loop {
        match request::parse(buf) {
            Ok(Some((request, used))) => {
                buf.drain(..used);
                return Ok(Some(request));
            }
            Ok(None) => {}
            Err(e) => return Err(e.status()),
        }
        let now = Instant::now();
        let deadline = start + slots.head_timeout();
        if now >= deadline {
            slots.count_head_timeout();
            return if buf.is_empty() { Ok(None) } else { Err(408) };
        }
        let wait = (deadline - now).min(slots.recheck_interval());
        let read = futures_lite::future::or(async { Some(stream.read(&mut chunk).await) }, async {
            glommio::timer::sleep(wait).await;
            None
        })
        .await;
        match read {
            Some(Ok(0)) | Some(Err(_)) => return Ok(None),
            Some(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            // Time to look at the deadline again.
            None => {}
        }
    }
}
