//! The relay's configuration: the TOML file, the command line that overrides it key by key, the
//! typed [`Config`] both turn into, its defaults and its validation, plus the logging set-up.
//!
//! - `types.rs`: the resolved [`Config`] and its sections, the defaults and bounds;
//! - `build.rs`: [`load`] and [`from_toml`], merging the file and the flags into a [`Config`]
//!   and validating it;
//! - `file.rs`: the file's serde schema (`deny_unknown_fields` everywhere) and span-to-key
//!   mapping for toml's errors;
//! - `cli.rs`: [`Cli`], `moq-relay [OPTIONS] [CONFIG]`;
//! - `parse.rs`: the value parsers both share (durations, addresses, prefixes, ...);
//! - `error.rs`: [`ConfigError`], which names the file, the dotted key, the flag and the
//!   line:column;
//! - `logging.rs`: [`init_logging`].
//!
//! Decisions worth knowing:
//! - A flag wins over the file, which wins over the default. For TLS, a flag choosing one mode
//!   (`--tls-generate`, or `--tls-cert`/`--tls-key`) discards the file's other mode, so
//!   `--tls-generate localhost` works with a production file and vice versa.
//! - Relative paths (`server.tls.cert`, `auth.key`) are relative to the working directory, as
//!   in moq-relay, and are checked to be readable files at load time; their contents are parsed
//!   later by `transport::tls` (certificates) and `auth` (keys).
//! - `[web.http]` is off unless the table (or `--web-http-listen`) is present; a present table
//!   without `listen` uses `server.listen`'s address, i.e. the same port over TCP, which is what
//!   browsers' certificate-hash bootstrap expects (PROTOCOL.md §7.4).
//! - `auth.public` is normalized (PROTOCOL.md §2.2, §8.5): `/anon/` = `anon/**` = `anon`, and
//!   `**` = `""` (everything public). The relay refuses to start with neither public prefixes
//!   nor a key.
//! - `cluster.id` stays `None` when unset; [`ClusterConfig::random_id`] draws the random hop id
//!   the cluster module should use then. A `cluster.root` requires `cluster.node`.
//! - `auth.require_exp` (default false, as moq-relay: `exp` is checked when present) is the
//!   file spelling of `--auth-require-exp`.
//! - `server.pin` (default true) is the file spelling of `--no-pin`. `--keep-alive`,
//!   `--max-streams`, `--max-group-bytes` and `--max-frame-bytes` exist beside the listed flags
//!   so every key has one.
//! - `Default` for [`Config`] is the built-in default of every key, for programmatic use and
//!   tests; it picks a generated `localhost` certificate and no auth, while [`load`] insists
//!   that TLS and auth be configured explicitly.

mod build;
mod cli;
mod error;
mod file;
mod logging;
mod parse;
mod peer;
mod types;

pub use build::{from_toml, load};
pub use cli::Cli;
pub use error::{ConfigError, ErrorKind, Position};
pub use logging::{init_logging, Logging};
pub use parse::{
    format_duration, normalize_public_prefix, parse_duration, HostPort, MAX_DURATION, MAX_HOP_ID,
    MAX_SHARDS,
};
pub use peer::PeerUrl;
pub use types::{
    default_shards, AuthConfig, ClusterConfig, Config, HttpConfig, LimitsConfig, LogConfig,
    QuicConfig, RelayConfig, ServerConfig, TlsConfig, WebConfig, DEFAULT_CACHE_DURATION,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_KEEP_ALIVE, DEFAULT_LINGER, DEFAULT_LISTEN, DEFAULT_LOG_LEVEL,
    DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_GROUP_BYTES, DEFAULT_MAX_STREAMS,
    DEFAULT_MESH_CONTROL_BACKLOG, DEFAULT_MESH_CONTROL_LANE, DEFAULT_MESH_DATA_BACKLOG,
    DEFAULT_MESH_DATA_LANE, MAX_MESH_BACKLOG, MAX_STREAMS_LIMIT,
};

#[cfg(test)]
mod tests;
