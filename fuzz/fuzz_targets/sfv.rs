//! RFC 8941 structured fields as the WebTransport CONNECT carries them
//! (src/transport/webtransport/sfv.rs): `wt-available-protocols` (a list of strings) and
//! `wt-protocol` (one string). What parses must serialize back to text that parses the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moq_relay::transport::webtransport::sfv::{
    parse_string_item, parse_string_list, string_item, MAX_MEMBERS,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(list) = parse_string_list(text) {
        assert!(list.len() <= MAX_MEMBERS);
        let wire: Vec<String> = list.iter().map(|s| string_item(s)).collect();
        assert_eq!(parse_string_list(&wire.join(", ")), Ok(list));
    }
    if let Ok(item) = parse_string_item(text) {
        assert_eq!(parse_string_item(&string_item(&item)), Ok(item));
    }
});
