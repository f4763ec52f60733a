//! The two RFC 8941 structured-field shapes WebTransport protocol negotiation uses: a list of
//! strings (`wt-available-protocols`) and a single string item (`wt-protocol`).

use super::H3Error;

/// The most list members we accept.
pub const MAX_MEMBERS: usize = 32;

fn skip_ows(s: &[u8], pos: &mut usize) {
    while matches!(s.get(*pos), Some(b' ' | b'\t')) {
        *pos += 1;
    }
}

fn skip_sp(s: &[u8], pos: &mut usize) {
    while s.get(*pos) == Some(&b' ') {
        *pos += 1;
    }
}

/// Parses an sf-string at `*pos` (RFC 8941 §4.2.5).
fn parse_string(s: &[u8], pos: &mut usize) -> Result<String, H3Error> {
    if s.get(*pos) != Some(&b'"') {
        return Err(H3Error::Malformed("structured field (expected a string)"));
    }
    *pos += 1;
    let mut out = String::new();
    loop {
        let c = *s
            .get(*pos)
            .ok_or(H3Error::Malformed("structured field string"))?;
        *pos += 1;
        match c {
            b'"' => return Ok(out),
            b'\\' => {
                let next = *s
                    .get(*pos)
                    .ok_or(H3Error::Malformed("structured field string"))?;
                *pos += 1;
                if next != b'"' && next != b'\\' {
                    return Err(H3Error::Malformed("structured field escape"));
                }
                out.push(next as char);
            }
            0x20..=0x7e => out.push(c as char),
            _ => return Err(H3Error::Malformed("structured field string character")),
        }
    }
}

/// Skips parameters `;key[=value]` after an item; values may be strings or bare items.
fn skip_parameters(s: &[u8], pos: &mut usize) -> Result<(), H3Error> {
    while s.get(*pos) == Some(&b';') {
        *pos += 1;
        skip_sp(s, pos);
        let start = *pos;
        while matches!(
            s.get(*pos),
            Some(b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*')
        ) {
            *pos += 1;
        }
        if *pos == start {
            return Err(H3Error::Malformed("structured field parameter"));
        }
        if s.get(*pos) == Some(&b'=') {
            *pos += 1;
            if s.get(*pos) == Some(&b'"') {
                parse_string(s, pos)?;
            } else {
                let start = *pos;
                while matches!(s.get(*pos), Some(c) if !matches!(c, b';' | b',' | b' ' | b'\t')) {
                    *pos += 1;
                }
                if *pos == start {
                    return Err(H3Error::Malformed("structured field parameter value"));
                }
            }
        }
    }
    Ok(())
}

/// Parses an sf-list whose members are all strings (parameters are ignored).
pub fn parse_string_list(value: &str) -> Result<Vec<String>, H3Error> {
    let s = value.as_bytes();
    let mut pos = 0;
    let mut out = Vec::new();
    skip_sp(s, &mut pos);
    if pos == s.len() {
        return Ok(out);
    }
    loop {
        if out.len() == MAX_MEMBERS {
            return Err(H3Error::TooLarge("structured field list"));
        }
        out.push(parse_string(s, &mut pos)?);
        skip_parameters(s, &mut pos)?;
        skip_ows(s, &mut pos);
        if pos == s.len() {
            return Ok(out);
        }
        if s[pos] != b',' {
            return Err(H3Error::Malformed("structured field list"));
        }
        pos += 1;
        skip_ows(s, &mut pos);
        if pos == s.len() {
            return Err(H3Error::Malformed("structured field list (trailing comma)"));
        }
    }
}

/// Serializes an sf-string item: quotes included, `"` and `\` escaped.
pub fn string_item(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Parses a single sf-string item (as in `wt-protocol`).
pub fn parse_string_item(value: &str) -> Result<String, H3Error> {
    let s = value.as_bytes();
    let mut pos = 0;
    skip_sp(s, &mut pos);
    let out = parse_string(s, &mut pos)?;
    skip_parameters(s, &mut pos)?;
    skip_sp(s, &mut pos);
    if pos != s.len() {
        return Err(H3Error::Malformed("structured field item"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(
            parse_string_list("\"moq-lite-05\", \"moq-lite-04\"").unwrap(),
            ["moq-lite-05", "moq-lite-04"]
        );
        assert_eq!(parse_string_list("\"a\";q=1,\"b\"").unwrap(), ["a", "b"]);
        assert_eq!(parse_string_list("\"a\\\"b\"").unwrap(), ["a\"b"]);
        assert_eq!(parse_string_list("").unwrap(), Vec::<String>::new());
        for bad in [
            "moq",
            "\"a\",",
            "\"a\" \"b\"",
            "\"a",
            "\"a\\x\"",
            "\"a\";",
            "\"\u{1}\"",
        ] {
            assert!(parse_string_list(bad).is_err(), "{bad:?}");
        }
        let long = vec!["\"x\""; MAX_MEMBERS + 1].join(",");
        assert!(parse_string_list(&long).is_err());
    }

    #[test]
    fn items() {
        assert_eq!(string_item("moq-lite-05"), "\"moq-lite-05\"");
        assert_eq!(string_item("a\"b"), "\"a\\\"b\"");
        assert_eq!(parse_string_item("\"moq-lite-05\"").unwrap(), "moq-lite-05");
        assert!(parse_string_item("moq-lite-05").is_err());
        assert!(parse_string_item("\"a\" x").is_err());
    }
}
