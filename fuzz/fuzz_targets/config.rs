//! The TOML configuration file (src/config): toml's parser, our schema and every value
//! parser and check, with no command-line flags. The builder checks that `auth.key` and the
//! TLS files are readable and loads the key, so inputs naming device or process files
//! (`dev`, `proc`, `sys`, or any `\u` escape that could spell them) are skipped: reading
//! `/dev/zero` is not a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moq_relay::config::{from_toml, Cli};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lower = text.to_ascii_lowercase();
    if ["dev", "proc", "sys", "\\u"]
        .iter()
        .any(|s| lower.contains(s))
    {
        return;
    }
    let cli = Cli::default();
    if let Err(e) = from_toml(text, None, &cli) {
        assert!(!e.to_string().is_empty());
    }
});
