//! Authentication against the real relay (`--shards 2`, real QUIC and TLS): a table of bad and
//! borderline tokens and paths, each with the result PROTOCOL.md §8 prescribes, while a
//! bystander session goes on unaffected; and the same rules on the HTTP endpoints.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::http::get;
use common::Relay;
use moq_bench::client::{Event, MoqClient};
use moq_relay::transport::quic::QuicSettings;
use moq_relay::wire::{Role, Version};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const WAIT: Duration = Duration::from_secs(10);
/// The relay's HS256 secret (32 bytes).
const SECRET: &[u8; 32] = b"table-test-secret-of-32-bytes-ok";
const KID: &str = "table-key";
/// An RSA public key (moq-token-cli 0.5.48, RS256): the algorithm-confusion relay's key.
const RSA_PUBLIC: &str = r#"{"alg":"RS256","key_ops":["verify"],"kty":"RSA","n":"mA2Ly1PQfsZKxjiRCpJYJ5djUYz_NElpb6eVGHr2r7VkaCRiUKgkyCrBErn9s0Ita0_wOGoXwmHbW0dLVEPRysWuIXvJosw9VKHCZirx2CK10JItu1BllwcuKFRMCf_1v-ok9ree1oHD2Z1Ra2vgA4Tp6eI5cmMNgZw0tZrvpKhrNHnO358E3mJB1o91vT7JnY4zdAzayJChcSfoLc__FT3-Q6AE-ZMEYf1R2OFbWVmG_zzMoZJXb_U_pqFLzhTOCaenCOtEMkHJQvN0AIyyI4E9y6WhstQmp7kGVQGxAN1czRCjy8FoPyxxMh17Jr4zsasOu8VJ3Fm6WZ67cTHDoQ","e":"AQAB","kid":"rsa-table"}"#;

/// Broadcasts the seeder publishes, absolute.
const SEEDED: &[&str] = &[
    "anon/a",
    "demo/my-stream",
    "demo/room/x",
    "my-app/cam",
    "shared/s",
    "secret/s",
];

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A compact JWS with `header` and `payload`, HMAC-signed with `secret` under the header's
/// `alg` (HS256 or HS384); any other `alg` gets an empty signature.
fn jws(header: &Value, payload: &Value, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string().as_bytes()),
        URL_SAFE_NO_PAD.encode(payload.to_string().as_bytes())
    );
    let algorithm = match header["alg"].as_str() {
        Some("HS256") => ring::hmac::HMAC_SHA256,
        Some("HS384") => ring::hmac::HMAC_SHA384,
        _ => return format!("{input}."),
    };
    let tag = ring::hmac::sign(&ring::hmac::Key::new(algorithm, secret), input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// A valid token for the table relay with these claims (`exp` an hour ahead unless given).
fn token(claims: Value) -> String {
    let mut claims = claims;
    if claims.get("exp").is_none() {
        claims["exp"] = json!(unix_now() + 3600);
    }
    jws(
        &json!({"alg": "HS256", "typ": "JWT", "kid": KID}),
        &claims,
        SECRET,
    )
}

fn with_jwt(path: &str, jwt: &str) -> String {
    format!("{path}?jwt={jwt}")
}

/// What a case should come to.
#[derive(Debug)]
enum Expect {
    /// Closed with Unauthorized (0x2).
    Refused,
    /// Let in: the relay asks for announcements under exactly `publish`, and a request for
    /// everything shows exactly `visible` (both relative to the connect path).
    Access {
        publish: &'static [&'static str],
        visible: &'static [&'static str],
    },
    /// Let in, then closed with Unauthorized when the token's `exp` passes.
    ExpiresInSession,
}

struct Case {
    name: &'static str,
    /// The SETUP path, query included.
    path: String,
    role: Role,
    expect: Expect,
}

fn case(name: &'static str, path: String, expect: Expect) -> Case {
    Case {
        name,
        path,
        role: Role::Both,
        expect,
    }
}

fn access(publish: &'static [&'static str], visible: &'static [&'static str]) -> Expect {
    Expect::Access { publish, visible }
}

fn table() -> Vec<Case> {
    use Expect::*;
    let now = unix_now();
    // PROTOCOL.md §8.3's worked example, and its seed-era one.
    let demo = token(json!({"root": "demo", "put": ["my-stream"], "get": [""]}));
    let seed = token(json!({"root": "", "pub": "my-app/*", "sub": ["my-app/*", "shared/*"]}));
    let wrong_key = jws(
        &json!({"alg": "HS256", "kid": KID}),
        &json!({"put": [""], "get": [""], "exp": now + 3600}),
        b"another-secret-another-secret-32",
    );
    let mut tampered = demo.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let cases = vec![
        case(
            "worked example at /demo",
            with_jwt("/demo", &demo),
            access(&["my-stream"], &["my-stream", "room/x"]),
        ),
        case(
            "worked example at /",
            with_jwt("/", &demo),
            access(&["demo/my-stream"], &["demo/my-stream", "demo/room/x"]),
        ),
        case(
            "worked example at /demo/room",
            with_jwt("/demo/room", &demo),
            access(&[], &["x"]),
        ),
        case(
            "worked example at /demo/my-stream",
            with_jwt("/demo/my-stream", &demo),
            access(&[""], &[""]),
        ),
        case("wrong root", with_jwt("/other", &demo), Refused),
        case(
            "seed-era wildcards at /my-app",
            with_jwt("/my-app", &seed),
            access(&[""], &["cam"]),
        ),
        case(
            "seed-era wildcards at /",
            with_jwt("/", &seed),
            access(&["my-app"], &["my-app/cam", "shared/s"]),
        ),
        case(
            "seed-era lone wildcards",
            with_jwt("/", &token(json!({"pub": "*", "sub": "**"}))),
            access(&[""], SEEDED),
        ),
        case(
            "seed-era wildcard inside a grant",
            with_jwt("/", &token(json!({"pub": "a/*/b"}))),
            Refused,
        ),
        case(
            "both generations are merged",
            with_jwt(
                "/",
                &token(json!({"put": "anon", "pub": "shared/*", "get": "secret"})),
            ),
            access(&["anon", "shared"], &["secret/s"]),
        ),
        case(
            "grant outside the root",
            with_jwt(
                "/demo/room",
                &token(json!({"root": "demo", "put": ["other"]})),
            ),
            Refused,
        ),
        case(
            "empty grants",
            with_jwt("/", &token(json!({"put": [], "get": []}))),
            Refused,
        ),
        case(
            "no grants at all",
            with_jwt("/", &token(json!({"root": "demo"}))),
            Refused,
        ),
        case(
            "glob-pattern grants",
            with_jwt("/", &token(json!({"publish": ["demo/**"]}))),
            Refused,
        ),
        // moq-relay checks exp only when present; `moq-token sign` omits it by default.
        case(
            "no exp: never expires",
            with_jwt(
                "/",
                &jws(
                    &json!({"alg": "HS256"}),
                    &json!({"root": "demo", "get": [""]}),
                    SECRET,
                ),
            ),
            access(&[], &["demo/my-stream", "demo/room/x"]),
        ),
        // The largest exp a signer can write: a far-off expiry, not an overflow.
        case(
            "exp at u64::MAX",
            with_jwt(
                "/",
                &token(json!({"root": "demo", "get": [""], "exp": u64::MAX})),
            ),
            access(&[], &["demo/my-stream", "demo/room/x"]),
        ),
        case(
            "exp as a huge float",
            with_jwt(
                "/",
                &token(json!({"root": "demo", "get": [""], "exp": 1e300})),
            ),
            access(&[], &["demo/my-stream", "demo/room/x"]),
        ),
        case(
            "past exp",
            with_jwt("/", &token(json!({"put": [""], "exp": now - 1}))),
            Refused,
        ),
        case(
            "exp passes during the session",
            // Its token is signed when the case runs (see `connect_path`).
            "/".into(),
            ExpiresInSession,
        ),
        case(
            "audience",
            with_jwt("/", &token(json!({"put": [""], "aud": "other-service"}))),
            Refused,
        ),
        case(
            "alg none",
            with_jwt(
                "/",
                &jws(
                    &json!({"alg": "none"}),
                    &json!({"put": [""], "exp": now + 60}),
                    SECRET,
                ),
            ),
            Refused,
        ),
        case(
            "alg other than the key's",
            with_jwt(
                "/",
                &jws(
                    &json!({"alg": "HS384"}),
                    &json!({"put": [""], "exp": now + 60}),
                    SECRET,
                ),
            ),
            Refused,
        ),
        case("bad signature", with_jwt("/demo", &tampered), Refused),
        case("signed by another key", with_jwt("/", &wrong_key), Refused),
        case(
            "kid of another key",
            with_jwt(
                "/",
                &jws(
                    &json!({"alg": "HS256", "kid": "other-key"}),
                    &json!({"put": [""], "exp": now + 60}),
                    SECRET,
                ),
            ),
            Refused,
        ),
        case(
            "kid with bad characters",
            with_jwt(
                "/",
                &jws(
                    &json!({"alg": "HS256", "kid": "../table-key"}),
                    &json!({"put": [""], "exp": now + 60}),
                    SECRET,
                ),
            ),
            Refused,
        ),
        case(
            "no kid is fine",
            with_jwt(
                "/",
                &jws(
                    &json!({"alg": "HS256"}),
                    &json!({"get": ["shared"], "exp": now + 60}),
                    SECRET,
                ),
            ),
            access(&[], &["shared/s"]),
        ),
        case(
            "critical header extension",
            with_jwt(
                "/",
                &jws(
                    &json!({"alg": "HS256", "crit": ["x"], "x": 1}),
                    &json!({"put": [""], "exp": now + 60}),
                    SECRET,
                ),
            ),
            Refused,
        ),
        case("malformed token", with_jwt("/", "not-a-token"), Refused),
        case("malformed token parts", with_jwt("/", "a.b.c"), Refused),
        case("oversized token", with_jwt("/", &"a".repeat(9000)), Refused),
        case(
            "a token on a public path is no fallback",
            with_jwt("/anon", &demo),
            Refused,
        ),
        case(
            "a bad token on a public path is no fallback",
            with_jwt("/anon", "bad"),
            Refused,
        ),
        case("public path", "/anon".into(), access(&[""], &["a"])),
        case(
            "root without a token sees only the public prefix",
            "/".into(),
            access(&["anon"], &["anon/a"]),
        ),
        case("private path without a token", "/secret".into(), Refused),
        case(
            "look-alike of the public prefix",
            "/anonymous".into(),
            Refused,
        ),
        case("path with ..", "/anon/../secret".into(), Refused),
        case("path with //", "//anon//".into(), access(&[""], &["a"])),
        case(
            "empty jwt parameter is ignored",
            "/anon?jwt=".into(),
            access(&[""], &["a"]),
        ),
        Case {
            name: "subscriber role with a publish-only token",
            path: with_jwt("/", &token(json!({"put": [""]}))),
            role: Role::Subscriber,
            expect: Refused,
        },
        Case {
            name: "publisher role with a subscribe-only token",
            path: with_jwt("/", &token(json!({"get": [""]}))),
            role: Role::Publisher,
            expect: Refused,
        },
        Case {
            name: "subscriber role drops publish grants",
            path: with_jwt("/demo", &demo),
            role: Role::Subscriber,
            expect: access(&[], &["my-stream", "room/x"]),
        },
    ];
    cases
}

/// The case's SETUP path; a token that must expire soon is signed now.
fn connect_path(case: &Case) -> String {
    match case.expect {
        Expect::ExpiresInSession => with_jwt(
            &case.path,
            &token(json!({"get": [""], "exp": unix_now() + 2})),
        ),
        _ => case.path.clone(),
    }
}

/// Runs one case on a fresh connection; `Err` says how the result differed.
fn run_case(relay: &Relay, case: &Case) -> Result<(), String> {
    let mut client = MoqClient::connect_as(
        relay.addr,
        Version::Lite05,
        &connect_path(case),
        &QuicSettings::default(),
        case.role,
    )
    .map_err(|e| format!("connect: {e}"))?;
    if case.role != Role::Publisher {
        client.request_announces("");
    }
    let published = |events: &[Event]| -> BTreeSet<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::AnnounceRequested { prefix } => Some(prefix.clone()),
                _ => None,
            })
            .collect()
    };
    let visible = |events: &[Event]| -> BTreeSet<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Announced {
                    suffix,
                    active: true,
                    ..
                } => Some(suffix.clone()),
                _ => None,
            })
            .collect()
    };
    match &case.expect {
        Expect::Refused => {
            client.wait_for(WAIT, |_| false);
            match client.closed() {
                Some(Some(0x2)) => Ok(()),
                other => Err(format!(
                    "expected a close with 0x2, got {other:?}: {:?}",
                    client.events
                )),
            }
        }
        Expect::Access {
            publish,
            visible: want,
        } => {
            let publish: BTreeSet<String> = publish.iter().map(|s| s.to_string()).collect();
            let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
            client.wait_for(WAIT, |events| {
                published(events) == publish && visible(events) == want
            });
            // Anything extra would have come with the rest.
            let settle = Instant::now() + Duration::from_millis(300);
            while Instant::now() < settle && client.poll(Duration::from_millis(20)).is_ok() {}
            if let Some(code) = client.closed() {
                return Err(format!("closed with {code:?}"));
            }
            let (got_publish, got_visible) = (published(&client.events), visible(&client.events));
            if got_publish != publish || got_visible != want {
                return Err(format!("publish {got_publish:?} visible {got_visible:?}"));
            }
            Ok(())
        }
        Expect::ExpiresInSession => {
            client.wait_for(Duration::from_millis(500), |_| false);
            if client.closed().is_some() {
                return Err(format!("closed before its exp: {:?}", client.closed()));
            }
            client.wait_for(Duration::from_secs(5), |_| false);
            match client.closed() {
                Some(Some(0x2)) => Ok(()),
                other => Err(format!("expected a close with 0x2 at exp, got {other:?}")),
            }
        }
    }
}

/// A publisher with access to everything, on its own thread: it publishes [`SEEDED`] and,
/// later, whatever arrives on the channel.
fn seeder(relay: &Relay) -> (mpsc::Sender<String>, std::thread::JoinHandle<()>) {
    let addr = relay.addr;
    let path = with_jwt("/", &token(json!({"put": [""], "exp": unix_now() + 3600})));
    let (tx, rx) = mpsc::channel::<String>();
    let handle = std::thread::spawn(move || {
        let mut client = MoqClient::connect(addr, Version::Lite05, &path).unwrap();
        for broadcast in SEEDED {
            client.publish(broadcast);
        }
        loop {
            match rx.try_recv() {
                Ok(broadcast) => client.publish(&broadcast),
                Err(mpsc::TryRecvError::Disconnected) => return,
                Err(mpsc::TryRecvError::Empty) => {}
            }
            if client.poll(Duration::from_millis(10)).is_err() || client.closed().is_some() {
                panic!("the seeder's session ended");
            }
        }
    });
    (tx, handle)
}

fn table_relay(key: &str) -> (Relay, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key.jwk");
    std::fs::write(&file, key).unwrap();
    (
        Relay::start(&format!("key = {:?}", file.to_str().unwrap())),
        dir,
    )
}

fn table_key() -> String {
    format!(
        r#"{{"alg":"HS256","kty":"oct","k":"{}","kid":"{KID}"}}"#,
        URL_SAFE_NO_PAD.encode(SECRET)
    )
}

#[test]
fn bad_and_borderline_tokens_and_paths_get_the_intended_result() {
    let (relay, _dir) = table_relay(&table_key());
    let (seed, seeder) = seeder(&relay);
    // A viewer of the public prefix, connected through the whole table.
    let mut bystander = MoqClient::connect(relay.addr, Version::Lite05, "/anon").unwrap();
    bystander.request_announces("");
    assert!(bystander.wait_for(WAIT, |e| e
        .iter()
        .any(|e| matches!(e, Event::Announced { suffix, .. } if suffix == "a"))));
    let cases = table();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(why) = run_case(&relay, case) {
            failures.push(format!(
                "{} ({:?}, {:?}): {why}",
                case.name, case.role, case.expect
            ));
        }
        let _ = bystander.poll(Duration::from_millis(1));
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}\n\nrelay log:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n"),
        relay.log_text()
    );
    // The bystander saw none of it: still connected, still told about new broadcasts.
    seed.send("anon/late".into()).unwrap();
    assert!(
        bystander.wait_for(WAIT, |e| e
            .iter()
            .any(|e| matches!(e, Event::Announced { suffix, .. } if suffix == "late"))),
        "the bystander still hears announcements"
    );
    assert_eq!(bystander.closed(), None);
    drop(seed);
    seeder.join().unwrap();
    // Every refusal was logged with its reason, and never with the token itself: the log is
    // the operator's view, read once the relay has exited.
    let log = relay.stop();
    let count = |what: &str| log.lines().filter(|l| l.contains(what)).count();
    assert!(
        count("unsigned tokens (alg none) are refused") >= 1,
        "{log}"
    );
    assert!(count("bad signature") >= 2, "{log}");
    assert!(count("the token expired") >= 2, "{log}");
    assert_eq!(count("eyJ"), 0, "a token reached the log");
}

/// An HS256 token signed with the bytes of the relay's RSA public key: the alg check refuses
/// it before any signature is computed (algorithm confusion).
#[test]
fn an_hmac_token_is_never_checked_against_an_rsa_public_key() {
    let (relay, _dir) = table_relay(RSA_PUBLIC);
    let payload = json!({"put": [""], "get": [""], "exp": unix_now() + 60});
    let rsa_n = serde_json::from_str::<Value>(RSA_PUBLIC).unwrap()["n"]
        .as_str()
        .unwrap()
        .to_string();
    for secret in [RSA_PUBLIC.as_bytes(), rsa_n.as_bytes()] {
        for alg in ["HS256", "HS384"] {
            let forged = jws(&json!({"alg": alg}), &payload, secret);
            let case = case(
                "algorithm confusion",
                with_jwt("/", &forged),
                Expect::Refused,
            );
            run_case(&relay, &case).unwrap_or_else(|why| panic!("{alg}: {why}"));
        }
    }
    let log = relay.stop();
    assert!(
        log.lines()
            .filter(|l| l.contains("but the key is RS256"))
            .count()
            >= 4,
        "{log}"
    );
}

#[test]
fn http_endpoints_apply_the_same_rules() {
    let (relay, _dir) = table_relay(&table_key());
    let (seed, seeder) = seeder(&relay);
    let demo = token(json!({"root": "demo", "put": ["my-stream"], "get": [""]}));
    let publish_only = token(json!({"root": "demo", "put": [""]}));
    let expired = token(json!({"root": "demo", "get": [""], "exp": unix_now() - 5}));
    let http = relay.http;
    // Wait until the seeded broadcasts are announced: a viewer with the same token is told
    // of both. Its shard knows them then; the one serving the HTTP request (either) learns of
    // them through the mesh within moments, and each GET below is a fresh round trip to it.
    let demo_path = with_jwt("/demo", &demo);
    for seeded in ["my-stream", "room/x"] {
        common::await_announced(&relay, Version::Lite05, &demo_path, seeded, WAIT).unwrap();
    }
    let deadline = Instant::now() + WAIT;
    while get(http, &format!("/announced/demo?jwt={demo}"))
        .1
        .lines()
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "seeded broadcasts never showed");
    }
    let listed = |path: &str| {
        let (status, body) = get(http, path);
        let mut names: Vec<String> = body.lines().map(str::to_string).collect();
        names.sort();
        (status, names)
    };
    assert_eq!(
        listed(&format!("/announced/demo?jwt={demo}")),
        (200, vec!["my-stream".into(), "room/x".into()])
    );
    assert_eq!(
        listed(&format!("/announced/?jwt={demo}")),
        (200, vec!["demo/my-stream".into(), "demo/room/x".into()])
    );
    assert_eq!(listed("/announced/").0, 200);
    assert_eq!(listed("/announced/").1, vec!["anon/a".to_string()]);
    assert_eq!(
        listed(&format!("/announced/demo?jwt={publish_only}")),
        (200, vec![])
    );
    for (path, status) in [
        (format!("/announced/other?jwt={demo}"), 401),
        (format!("/announced/demo?jwt={expired}"), 401),
        ("/announced/demo?jwt=garbage".to_string(), 401),
        ("/announced/secret".to_string(), 401),
        (format!("/announced/anon?jwt={demo}"), 401),
        ("/announced/anon/../secret".to_string(), 400),
        (format!("/fetch/demo/my-stream/video?jwt={expired}"), 401),
        (
            format!("/fetch/demo/my-stream/video?jwt={publish_only}"),
            403,
        ),
        ("/fetch/demo/my-stream/video".to_string(), 401),
        ("/fetch/demo/my-stream/video?jwt=a.b.c".to_string(), 401),
    ] {
        assert_eq!(get(http, &path).0, status, "{path}");
    }
    // An authorized fetch gets the group: the relay subscribes upstream to a publisher
    // that holds its own token.
    let publisher_path = with_jwt("/demo", &publish_only);
    let mut publisher = MoqClient::connect(relay.addr, Version::Lite05, &publisher_path).unwrap();
    publisher.publish("live");
    let fetch_path = format!("/fetch/demo/live/video?jwt={demo}");
    let fetch = std::thread::spawn(move || get(http, &fetch_path));
    assert!(
        publisher.wait_for(WAIT, |e| e
            .iter()
            .any(|e| matches!(e, Event::Subscribed { .. }))),
        "the fetch subscribed upstream"
    );
    publisher.send_group("live", "video", 0, &[b"frame-0 ", b"frame-1"]);
    let deadline = Instant::now() + WAIT;
    while !fetch.is_finished() && Instant::now() < deadline {
        let _ = publisher.poll(Duration::from_millis(5));
    }
    assert_eq!(fetch.join().unwrap(), (200, "frame-0 frame-1".to_string()));
    drop((publisher, seed));
    seeder.join().unwrap();
    let log = relay.stop();
    assert!(
        log.lines().filter(|l| l.contains("fetch: refused")).count() >= 4,
        "{log}"
    );
}
