//! QPACK field sections with the static table and Huffman strings
//! (src/transport/webtransport/{qpack,huffman}.rs), and what the relay reads from them: the
//! extended CONNECT of a client and the answer of a server. The first byte picks the input's
//! use. A decoded section must re-encode to one that decodes the same; Huffman must round-trip
//! both ways.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moq_relay::transport::webtransport::connect::{ConnectRequest, ConnectResponse};
use moq_relay::transport::webtransport::{huffman, qpack};

/// The output cap the relay's QPACK decoder gives the Huffman decoder.
const HUFFMAN_MAX: usize = qpack::MAX_SECTION_SIZE;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => section(input),
        1 => huffman_decode(input),
        _ => huffman_encode(input),
    }
});

fn section(input: &[u8]) {
    let Ok(headers) = qpack::decode(input) else {
        return;
    };
    assert!(headers.fields.len() <= qpack::MAX_FIELDS);
    if let Ok(request) = ConnectRequest::from_headers(&headers) {
        assert!(request.path.starts_with('/'));
        let _ = (request.path_only(), request.query());
    }
    let _ = ConnectResponse::from_headers(&headers);
    let fields: Vec<(&str, &str)> = headers
        .fields
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    assert_eq!(qpack::decode(&qpack::encode(&fields)), Ok(headers));
}

fn huffman_decode(input: &[u8]) {
    let Ok(decoded) = huffman::decode(input, HUFFMAN_MAX) else {
        return;
    };
    assert!(decoded.len() <= HUFFMAN_MAX);
    let mut wire = Vec::new();
    huffman::encode(&decoded, &mut wire);
    assert_eq!(wire.len(), huffman::encoded_len(&decoded));
    assert_eq!(huffman::decode(&wire, HUFFMAN_MAX).as_ref(), Ok(&decoded));
}

fn huffman_encode(input: &[u8]) {
    let mut wire = Vec::new();
    huffman::encode(input, &mut wire);
    assert_eq!(wire.len(), huffman::encoded_len(input));
    assert_eq!(huffman::decode(&wire, input.len()).as_deref(), Ok(input));
}
