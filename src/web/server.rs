//! The TCP accept loop of one shard and the life of one HTTP connection: read a bounded
//! head within a deadline, route it, answer, and keep the connection for the next request
//! or close it.

use super::env::WebEnv;
use super::fetch::{self, Outcome};
use super::request::{self, Request};
use super::response;
use super::routes::{route, Route};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Most HTTP connections one shard serves at once; more are answered 503 and closed.
const MAX_CONNECTIONS: usize = 4096;
/// A request head must arrive within this long (and an idle keep-alive ends after it).
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
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
        if env.live.get() >= MAX_CONNECTIONS {
            let mut stream = stream;
            glommio::spawn_local(async move {
                let _ = stream.write_all(&response::error(503, false)).await;
                let _ = stream.close().await;
            })
            .detach();
            continue;
        }
        env.live.set(env.live.get() + 1);
        let env = env.clone();
        glommio::spawn_local(async move {
            connection(&env, stream).await;
            env.live.set(env.live.get() - 1);
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
        let request = match read_head(&mut stream, &mut buf).await {
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
/// requests, `Err(status)` for a request to refuse (then close).
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Option<Request>, u16> {
    let deadline = Instant::now() + HEAD_TIMEOUT;
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
        if now >= deadline {
            return if buf.is_empty() { Ok(None) } else { Err(408) };
        }
        let read = futures_lite::future::or(async { Some(stream.read(&mut chunk).await) }, async {
            glommio::timer::sleep(deadline - now).await;
            None
        })
        .await;
        match read {
            Some(Ok(0)) | Some(Err(_)) => return Ok(None),
            Some(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            None => return if buf.is_empty() { Ok(None) } else { Err(408) },
        }
    }
}
