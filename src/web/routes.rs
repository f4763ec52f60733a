//! The request-to-response logic of the simple endpoints, and the dispatch to `/fetch`.

use super::env::WebEnv;
use super::request::Request;
use super::response;
use crate::auth::ConnectPath;
use crate::path;

/// What to do with a request.
pub enum Route {
    /// Answer with these bytes.
    Respond(Vec<u8>),
    /// Stream the group named by the path (`/fetch/...`).
    Fetch {
        broadcast: String,
        track: String,
        group: Option<u64>,
    },
}

/// Routes one request.
pub fn route(env: &WebEnv, request: &Request) -> Route {
    let keep = request.keep_alive();
    if request.method != "GET" && request.method != "HEAD" {
        return Route::Respond(response::error(405, keep));
    }
    let path = request.path();
    if path == "/certificate.sha256" {
        return Route::Respond(response::full(
            200,
            Some("text/plain"),
            env.fingerprint.as_bytes(),
            keep,
        ));
    }
    if path == "/health" {
        return Route::Respond(response::full(200, Some("text/plain"), b"ok\n", keep));
    }
    if let Some(prefix) = path
        .strip_prefix("/announced")
        .filter(|p| p.is_empty() || p.starts_with('/'))
    {
        return Route::Respond(announced(env, request, prefix));
    }
    if let Some(rest) = path.strip_prefix("/fetch/") {
        return fetch_route(env, request, rest);
    }
    Route::Respond(response::error(404, keep))
}

/// `GET /announced/<prefix>`: the visible broadcasts under the prefix, relative to it.
fn announced(env: &WebEnv, request: &Request, prefix: &str) -> Vec<u8> {
    let keep = request.keep_alive();
    let connect = ConnectPath {
        path: prefix.to_string(),
        jwt: request.query("jwt").filter(|j| !j.is_empty()),
    };
    let scope = match env.auth().authorize(&connect) {
        Ok(grant) => grant.scope,
        Err(e) => {
            tracing::info!(error = %e, "announced: refused");
            return response::error(e.http_status(), keep);
        }
    };
    let names: Vec<String> = {
        let announced = env.shard().announced.borrow();
        announced
            .under(&scope.root)
            .filter_map(|(p, _)| scope.relative(p).map(str::to_string))
            .filter(|relative| scope.may_subscribe(relative))
            .collect()
    };
    response::full(200, Some("text/plain"), names.join("\n").as_bytes(), keep)
}

fn fetch_route(env: &WebEnv, request: &Request, rest: &str) -> Route {
    let keep = request.keep_alive();
    let Ok(full) = path::normalize(rest) else {
        return Route::Respond(response::error(400, keep));
    };
    let Some((broadcast, track)) = full.rsplit_once('/') else {
        return Route::Respond(response::error(400, keep));
    };
    let group = match request.query("group").as_deref() {
        None | Some("latest") => None,
        Some(n) => match n.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => return Route::Respond(response::error(400, keep)),
        },
    };
    let connect = ConnectPath {
        path: broadcast.to_string(),
        jwt: request.query("jwt").filter(|j| !j.is_empty()),
    };
    match env.auth().authorize(&connect) {
        Ok(grant) if grant.scope.may_subscribe("") => Route::Fetch {
            broadcast: grant.scope.root,
            track: track.to_string(),
            group,
        },
        Ok(_) => {
            tracing::info!(
                broadcast,
                "fetch: refused, the grants do not cover this broadcast"
            );
            Route::Respond(response::error(403, keep))
        }
        Err(e) => {
            tracing::info!(error = %e, "fetch: refused");
            Route::Respond(response::error(e.http_status(), keep))
        }
    }
}
