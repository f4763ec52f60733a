//! Logging set-up: `tracing-subscriber`'s fmt layer to stdout, filtered by `log.level`
//! (or `--log-level`) unless `RUST_LOG` is set, with colours only on a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber. `level` is a level or an `EnvFilter` directive list
/// (`info`, `info,moq_relay=debug`); a non-empty `RUST_LOG` overrides it. ANSI colours are used
/// only when stdout is a terminal and `NO_COLOR` is unset. Calling it twice is harmless (the
/// first subscriber stays).
pub fn init_logging(level: &str) {
    let (filter, ignored) = filter(level, std::env::var("RUST_LOG").ok().as_deref());
    let ansi = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_ansi(ansi)
        .try_init()
        .is_ok();
    if let (true, Some((what, value, err))) = (installed, ignored) {
        tracing::warn!("ignoring invalid {what} {value:?}: {err}");
    }
}

/// The filter to use, and what was ignored because it did not parse.
fn filter(
    level: &str,
    rust_log: Option<&str>,
) -> (EnvFilter, Option<(&'static str, String, String)>) {
    let mut ignored = None;
    if let Some(env) = rust_log.filter(|v| !v.trim().is_empty()) {
        match EnvFilter::builder().parse(env) {
            Ok(f) => return (f, None),
            Err(e) => ignored = Some(("RUST_LOG", env.to_string(), e.to_string())),
        }
    }
    match EnvFilter::builder().parse(level) {
        Ok(f) => (f, ignored),
        Err(e) => (
            EnvFilter::new("info"),
            ignored.or(Some(("log level", level.to_string(), e.to_string()))),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_overrides_the_level() {
        let (f, ignored) = filter("info", Some("moq_relay=trace"));
        assert!(ignored.is_none());
        assert_eq!(f.to_string(), "moq_relay=trace");
        let (f, _) = filter("debug", Some("  "));
        assert_eq!(f.to_string(), "debug");
        let (f, _) = filter("warn", None);
        assert_eq!(f.to_string(), "warn");
    }

    #[test]
    fn bad_filters_fall_back() {
        let (f, ignored) = filter("info", Some("x=loud"));
        assert_eq!(f.to_string(), "info");
        assert_eq!(ignored.unwrap().0, "RUST_LOG");
        let (f, ignored) = filter("x=loud", None);
        assert_eq!(f.to_string(), "info");
        assert_eq!(ignored.unwrap().0, "log level");
    }
}
