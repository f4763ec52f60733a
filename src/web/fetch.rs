//! `GET /fetch/<broadcast>/<track>[?group=N|latest]`: one group's frame payloads, streamed
//! as they arrive (chunk by chunk, a large frame before its end), from the relay's cache
//! (subscribing upstream like any viewer).

use super::env::WebEnv;
use super::response;
use crate::model::{Demand, GroupState, TrackEnd};
use crate::notify::Notify;
use crate::relay::{RelayShard, TrackHandle};
use crate::wire::error_code::stream as code;
use futures_lite::{AsyncWrite, AsyncWriteExt};
use std::rc::Rc;
use std::time::Instant;

/// How a fetch ended, for the connection to decide whether to keep going.
pub enum Outcome {
    /// The response was written completely.
    Done,
    /// The connection failed or the body was cut short; close it.
    Broken,
}

/// Streams the group, or answers 404/504/500. `broadcast` is absolute.
pub async fn fetch(
    env: &WebEnv,
    stream: &mut (impl AsyncWrite + Unpin),
    broadcast: &str,
    track: &str,
    group: Option<u64>,
    keep: bool,
) -> Outcome {
    let deadline = Instant::now() + env.fetch_wait;
    let notify = Notify::new();
    // The broadcast must be announced (routable) first.
    let watch = env
        .shard()
        .announced
        .borrow_mut()
        .watch(broadcast.to_string(), notify.clone());
    while env.shard().announced.borrow().get(broadcast).is_none() {
        if !wait(&notify, deadline).await {
            return respond(stream, response::error(504, keep)).await;
        }
    }
    drop(watch);
    let demand = Demand {
        start: group,
        ..Demand::default()
    };
    env.shard().advance(Instant::now());
    let handle = TimedHandle {
        handle: env.shard().open_track(broadcast, track, Some(demand)),
        shard: env.shard().clone(),
    };
    let track = handle.handle.track().clone();
    track.watch(&notify);
    let wanted = loop {
        let found = match group {
            None => track.latest(),
            Some(n) => track.group(n),
        };
        if let Some(found) = found {
            break found;
        }
        match track.end() {
            // The publisher refused the track (codes differ between registries: any
            // refusal means there is no such track to fetch).
            Some(TrackEnd::Failed(c)) if c != code::SESSION_CLOSED => {
                tracing::debug!(code = c, "fetch: track refused upstream");
                return respond(stream, response::error(404, keep)).await;
            }
            Some(TrackEnd::Failed(_)) => return respond(stream, response::error(500, keep)).await,
            Some(TrackEnd::Finished { .. }) => {
                return respond(stream, response::error(404, keep)).await
            }
            None => {}
        }
        // A specific group older than everything cached will not come back.
        if let (Some(n), Some(latest)) = (group, track.latest()) {
            if latest.sequence > n && track.group_at_or_after(0).is_some_and(|g| g.sequence > n) {
                return respond(stream, response::error(404, keep)).await;
            }
        }
        if !wait(&notify, deadline).await {
            return respond(stream, response::error(504, keep)).await;
        }
    };
    if stream
        .write_all(&response::chunked(200, keep))
        .await
        .is_err()
    {
        return Outcome::Broken;
    }
    // Payload goes out as it lands in the cache, chunk by chunk (frames have no boundaries
    // in the body).
    let mut next = 0;
    loop {
        while let Some(payload) = wanted.chunk(next) {
            next += 1;
            // An empty chunk would end the body (the cache keeps none; this keeps it so).
            if payload.is_empty() {
                continue;
            }
            if stream.write_all(&response::chunk(&payload)).await.is_err() {
                return Outcome::Broken;
            }
        }
        match wanted.state() {
            GroupState::Complete => break,
            // The body cannot carry an error any more: end it abruptly.
            GroupState::Aborted(_) => return Outcome::Broken,
            GroupState::Open => {
                if !wait(&notify, deadline).await {
                    return Outcome::Broken;
                }
            }
        }
    }
    match stream.write_all(&response::chunk(&[])).await {
        Ok(()) => Outcome::Done,
        Err(_) => Outcome::Broken,
    }
}

/// Waits for a change or the deadline; false once the deadline passed.
/// A fetch's track handle. The shard's clock moves only when a driver hands it the time, and
/// a fetch is not a session: it hands the time in when the handle goes, so the track's idle
/// grace starts when the fetch ends, not when the shard last heard the time.
struct TimedHandle {
    handle: TrackHandle,
    shard: Rc<RelayShard>,
}

impl Drop for TimedHandle {
    fn drop(&mut self) {
        // Runs before the handle's own drop, which schedules the release.
        self.shard.advance(Instant::now());
    }
}

async fn wait(notify: &Notify, deadline: Instant) -> bool {
    let now = Instant::now();
    if now >= deadline {
        return false;
    }
    let sleep = glommio::timer::sleep(deadline - now);
    futures_lite::future::or(async { notify.notified().await }, sleep).await;
    Instant::now() < deadline
}

async fn respond(stream: &mut (impl AsyncWrite + Unpin), bytes: Vec<u8>) -> Outcome {
    match stream.write_all(&bytes).await {
        Ok(()) => Outcome::Done,
        Err(_) => Outcome::Broken,
    }
}
