//! The HTTP/1.1 request head the TCP listener reads (src/web/request.rs), and what the relay
//! takes from it before routing: path, query parameters, keep-alive and the connect path auth
//! checks. A head that parses must parse the same from exactly the bytes it used.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moq_relay::auth::{Auth, ConnectPath};
use moq_relay::web::parse;

/// The bound src/web/request.rs holds heads to.
const MAX_HEAD: usize = 16 * 1024;

fuzz_target!(|data: &[u8]| {
    let Ok(Some((request, used))) = parse(data) else {
        return;
    };
    assert!(used <= data.len() && used <= MAX_HEAD);
    assert_eq!(parse(&data[..used]), Ok(Some((request.clone(), used))));
    let _ = (
        request.path(),
        request.keep_alive(),
        request.header("upgrade"),
    );
    let _ = (request.query("jwt"), request.query("group"));
    let public = Auth {
        public: vec!["anon".into()],
        verifier: None,
    };
    let _ = public.authorize_at(&ConnectPath::parse(&request.target), 1_750_000_000);
});
