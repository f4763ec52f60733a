//! The builder: reads the TOML file, merges the command line over it key by key (a flag wins
//! over the file, which wins over the default), validates every value and produces the
//! resolved [`Config`]. Each refusal is a [`ConfigError`] naming the file, the dotted key (or
//! the flag), the line:column and the reason.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::cli::Cli;
use super::error::{ConfigError, Position};
use super::file::{self, DurationText, FileConfig, Int, TlsFile};
use super::parse::{self, format_duration, normalize_public_prefix};
use super::peer::PeerUrl;
use super::types::*;
use crate::auth::{Jwk, Verifier};

/// Reads `args.config` (if given), applies the flags and validates the result.
pub fn load(args: &Cli) -> Result<Config, ConfigError> {
    match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::io(path, e))?;
            from_toml(&text, Some(path), args)
        }
        None => from_toml("", None, args),
    }
}

/// Like [`load`], with the file's text given; `file` only names it in errors and
/// [`Config::file`].
pub fn from_toml(text: &str, file: Option<&Path>, args: &Cli) -> Result<Config, ConfigError> {
    let raw = file::parse(text).map_err(|e| e.in_file(file))?;
    Builder { file, text }.build(raw, args)
}

/// Where a value came from, for error messages.
#[derive(Debug, Clone)]
enum Origin {
    File(Range<usize>),
    Flag(&'static str),
    Default,
}

struct Builder<'a> {
    file: Option<&'a Path>,
    text: &'a str,
}

impl Builder<'_> {
    fn error(&self, key: &str, origin: &Origin, reason: impl Into<String>) -> ConfigError {
        let err = ConfigError::invalid(key, reason);
        match origin {
            Origin::File(span) => err
                .in_file(self.file)
                .at(Some(Position::of(self.text, span.start))),
            Origin::Flag(flag) => err.with_flag(flag),
            Origin::Default => err.in_file(self.file),
        }
    }

    /// The flag's value (already checked by clap), else the file's checked by `check`.
    fn value<R, T>(
        &self,
        key: &str,
        flag: &'static str,
        cli: Option<T>,
        file: Option<Spanned<R>>,
        check: impl FnOnce(R) -> Result<T, String>,
    ) -> Result<Option<(T, Origin)>, ConfigError> {
        if let Some(v) = cli {
            return Ok(Some((v, Origin::Flag(flag))));
        }
        let Some(raw) = file else { return Ok(None) };
        let origin = Origin::File(raw.span());
        match check(raw.into_inner()) {
            Ok(v) => Ok(Some((v, origin))),
            Err(reason) => Err(self.error(key, &origin, reason)),
        }
    }

    fn build(&self, raw: FileConfig, cli: &Cli) -> Result<Config, ConfigError> {
        let log = raw.log.unwrap_or_default();
        let server = raw.server.unwrap_or_default();
        let web = raw.web.unwrap_or_default();
        let auth = raw.auth.unwrap_or_default();
        let relay = raw.relay.unwrap_or_default();
        let quic = raw.quic.unwrap_or_default();
        let cluster = raw.cluster.unwrap_or_default();
        let limits = self.limits(raw.limits.unwrap_or_default(), cli)?;

        let level = self
            .value(
                "log.level",
                "--log-level",
                cli.log_level.clone(),
                log.level,
                |s| parse::parse_log_level(&s),
            )?
            .map_or_else(|| DEFAULT_LOG_LEVEL.to_string(), |(v, _)| v);

        let listen = self
            .value(
                "server.listen",
                "--listen",
                cli.listen,
                server.listen,
                |s| parse::parse_socket_addr(&s),
            )?
            .map_or(DEFAULT_LISTEN, |(v, _)| v);
        let shards = self
            .value(
                "server.shards",
                "--shards",
                cli.shards,
                server.shards,
                |Int(n)| parse::check_shards(n),
            )?
            .map_or_else(default_shards, |(v, _)| v);
        let pin = !cli.no_pin && server.pin.unwrap_or(true);
        let tls = self.tls(server.tls.unwrap_or_default(), cli)?;

        let http = match (cli.web_http_listen, web.http) {
            (Some(listen), _) => Some(HttpConfig { listen }),
            (None, Some(http)) => {
                let listen = self
                    .value(
                        "web.http.listen",
                        "--web-http-listen",
                        None,
                        http.listen,
                        |s| parse::parse_socket_addr(&s),
                    )?
                    .map_or(listen, |(v, _)| v);
                Some(HttpConfig { listen })
            }
            (None, None) => None,
        };

        let auth = self.auth(auth, cli)?;

        let duration = |zero_ok: bool| {
            move |DurationText(s): DurationText| {
                let d = parse::parse_duration(&s)?;
                parse::check_duration(d, zero_ok)?;
                Ok(d)
            }
        };
        let linger = self
            .value(
                "relay.linger",
                "--linger",
                cli.linger,
                relay.linger,
                duration(true),
            )?
            .map_or(DEFAULT_LINGER, |(v, _)| v);
        let cache_duration = self
            .value(
                "relay.cache_duration",
                "--cache-duration",
                cli.cache_duration,
                relay.cache_duration,
                duration(false),
            )?
            .map_or(DEFAULT_CACHE_DURATION, |(v, _)| v);
        let positive = |Int(n): Int| parse::check_positive(n);
        let to_usize = |(v, o): (u64, Origin)| (usize::try_from(v).unwrap_or(usize::MAX), o);
        let (max_group_bytes, _) = self
            .value(
                "relay.max_group_bytes",
                "--max-group-bytes",
                cli.max_group_bytes,
                relay.max_group_bytes,
                positive,
            )?
            .map_or((DEFAULT_MAX_GROUP_BYTES, Origin::Default), to_usize);
        let (max_frame_bytes, frame_origin) = self
            .value(
                "relay.max_frame_bytes",
                "--max-frame-bytes",
                cli.max_frame_bytes,
                relay.max_frame_bytes,
                positive,
            )?
            .map_or((DEFAULT_MAX_FRAME_BYTES, Origin::Default), to_usize);
        if max_frame_bytes > max_group_bytes {
            return Err(self.error(
                "relay.max_frame_bytes",
                &frame_origin,
                format!(
                    "{max_frame_bytes} exceeds relay.max_group_bytes ({max_group_bytes}); a frame must fit in a group"
                ),
            ));
        }

        let (idle_timeout, idle_origin) = self
            .value(
                "quic.idle_timeout",
                "--idle-timeout",
                cli.idle_timeout,
                quic.idle_timeout,
                duration(false),
            )?
            .unwrap_or((DEFAULT_IDLE_TIMEOUT, Origin::Default));
        let (keep_alive, keep_alive_origin) = self
            .value(
                "quic.keep_alive",
                "--keep-alive",
                cli.keep_alive,
                quic.keep_alive,
                duration(false),
            )?
            .unwrap_or((DEFAULT_KEEP_ALIVE, Origin::Default));
        if keep_alive >= idle_timeout {
            let (keep_alive, idle_timeout) =
                (format_duration(keep_alive), format_duration(idle_timeout));
            let (key, origin, reason) = match keep_alive_origin {
                Origin::Default => (
                    "quic.idle_timeout",
                    idle_origin,
                    format!("{idle_timeout} must be longer than quic.keep_alive ({keep_alive})"),
                ),
                origin => (
                    "quic.keep_alive",
                    origin,
                    format!("{keep_alive} must be shorter than quic.idle_timeout ({idle_timeout})"),
                ),
            };
            return Err(self.error(
                key,
                &origin,
                format!("{reason}, or quiet connections time out between PINGs"),
            ));
        }
        let max_streams = self
            .value(
                "quic.max_streams",
                "--max-streams",
                cli.max_streams,
                quic.max_streams,
                |Int(n)| {
                    let n = parse::check_positive(n)?;
                    if n > MAX_STREAMS_LIMIT {
                        return Err(format!("must be at most 2^60 (got {n})"));
                    }
                    Ok(n)
                },
            )?
            .map_or(DEFAULT_MAX_STREAMS, |(v, _)| v);

        let handshake_timeout = self
            .value(
                "quic.handshake_timeout",
                "--handshake-timeout",
                cli.handshake_timeout,
                quic.handshake_timeout,
                duration(false),
            )?
            .map_or(DEFAULT_HANDSHAKE_TIMEOUT, |(v, _)| v);
        let retry = self
            .value("quic.retry", "--retry", cli.retry, quic.retry, |s| {
                parse::parse_retry(&s)
            })?
            .map_or(DEFAULT_RETRY, |(v, _)| v);

        let cluster = self.cluster(cluster, cli)?;

        Ok(Config {
            file: self.file.map(Path::to_path_buf),
            log: LogConfig { level },
            server: ServerConfig {
                listen,
                shards,
                pin,
                tls,
            },
            web: WebConfig { http },
            auth,
            relay: RelayConfig {
                linger,
                cache_duration,
                max_group_bytes,
                max_frame_bytes,
            },
            quic: QuicConfig {
                idle_timeout,
                keep_alive,
                max_streams,
                handshake_timeout,
                retry,
            },
            cluster,
            limits,
        })
    }

    fn limits(&self, file: file::LimitsFile, cli: &Cli) -> Result<LimitsConfig, ConfigError> {
        let within = |max: u64| {
            move |Int(n): Int| {
                let n = parse::check_positive(n)?;
                if n > max {
                    return Err(format!("must be at most {max} (got {n})"));
                }
                Ok(n)
            }
        };
        let lane = shards::MAX_CHANNEL_CAPACITY as u64;
        let value = |key: &str, flag: &'static str, cli: Option<u64>, raw, max, default| {
            if let Some(n) = cli.filter(|&n| n > max) {
                let reason = format!("must be at most {max} (got {n})");
                return Err(self.error(key, &Origin::Flag(flag), reason));
            }
            Ok::<usize, ConfigError>(
                self.value(key, flag, cli, raw, within(max))?
                    .map_or(default, |(v, _)| usize::try_from(v).unwrap_or(usize::MAX)),
            )
        };
        Ok(LimitsConfig {
            mesh_control_lane: value(
                "limits.mesh_control_lane",
                "--mesh-control-lane",
                cli.mesh_control_lane,
                file.mesh_control_lane,
                lane,
                DEFAULT_MESH_CONTROL_LANE,
            )?,
            mesh_data_lane: value(
                "limits.mesh_data_lane",
                "--mesh-data-lane",
                cli.mesh_data_lane,
                file.mesh_data_lane,
                lane,
                DEFAULT_MESH_DATA_LANE,
            )?,
            mesh_control_backlog: value(
                "limits.mesh_control_backlog",
                "--mesh-control-backlog",
                cli.mesh_control_backlog,
                file.mesh_control_backlog,
                MAX_MESH_BACKLOG,
                DEFAULT_MESH_CONTROL_BACKLOG,
            )?,
            mesh_data_backlog: value(
                "limits.mesh_data_backlog",
                "--mesh-data-backlog",
                cli.mesh_data_backlog,
                file.mesh_data_backlog,
                MAX_MESH_BACKLOG,
                DEFAULT_MESH_DATA_BACKLOG,
            )?,
            setup_timeout: self
                .value(
                    "limits.setup_timeout",
                    "--setup-timeout",
                    cli.setup_timeout,
                    file.setup_timeout,
                    |DurationText(s): DurationText| {
                        let d = parse::parse_duration(&s)?;
                        parse::check_duration(d, false)?;
                        Ok(d)
                    },
                )?
                .map_or(DEFAULT_SETUP_TIMEOUT, |(v, _)| v),
            unvalidated_handshakes: value(
                "limits.unvalidated_handshakes",
                "--unvalidated-handshakes",
                cli.unvalidated_handshakes,
                file.unvalidated_handshakes,
                MAX_HANDSHAKE_LIMIT,
                DEFAULT_UNVALIDATED_HANDSHAKES,
            )?,
            handshakes_per_ip: value(
                "limits.handshakes_per_ip",
                "--handshakes-per-ip",
                cli.handshakes_per_ip,
                file.handshakes_per_ip,
                MAX_HANDSHAKE_LIMIT,
                DEFAULT_HANDSHAKES_PER_IP,
            )?,
            proven_handshakes_per_ip: value(
                "limits.proven_handshakes_per_ip",
                "--proven-handshakes-per-ip",
                cli.proven_handshakes_per_ip,
                file.proven_handshakes_per_ip,
                MAX_HANDSHAKE_LIMIT,
                DEFAULT_PROVEN_HANDSHAKES_PER_IP,
            )?,
        })
    }

    fn tls(&self, file: TlsFile, cli: &Cli) -> Result<TlsConfig, ConfigError> {
        let cli_files = cli.tls_cert.is_some() || cli.tls_key.is_some();
        let cli_generate = !cli.tls_generate.is_empty();
        // A flag that picks one mode discards the file's other mode.
        let (file_cert, file_key) = match cli_generate {
            true => (None, None),
            false => (file.cert, file.key),
        };
        let file_generate = if cli_files { None } else { file.generate };

        let cert = self.value(
            "server.tls.cert",
            "--tls-cert",
            cli.tls_cert.clone(),
            file_cert,
            path,
        )?;
        let key = self.value(
            "server.tls.key",
            "--tls-key",
            cli.tls_key.clone(),
            file_key,
            path,
        )?;
        let generate = if cli_generate {
            Some((cli.tls_generate.clone(), Origin::Flag("--tls-generate")))
        } else if let Some(list) = file_generate {
            let origin = Origin::File(list.span());
            let mut names: Vec<String> = Vec::new();
            for (i, name) in list.into_inner().into_iter().enumerate() {
                let at = Origin::File(name.span());
                let name = parse::parse_tls_name(name.get_ref())
                    .map_err(|r| self.error(&format!("server.tls.generate[{i}]"), &at, r))?;
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            Some((names, origin))
        } else {
            None
        };
        // `generate = []` counts as unset, unless nothing else is set either.
        let (generate, empty_generate) = match generate {
            Some((names, origin)) if names.is_empty() => (None, Some(origin)),
            other => (other, None),
        };

        match (cert, key, generate) {
            (None, None, Some((names, _))) => Ok(TlsConfig::Generate { names }),
            (Some((cert, cert_origin)), Some((key, key_origin)), None) => {
                readable_file(&cert).map_err(|r| self.error("server.tls.cert", &cert_origin, r))?;
                readable_file(&key).map_err(|r| self.error("server.tls.key", &key_origin, r))?;
                Ok(TlsConfig::Files { cert, key })
            }
            (_, _, Some((_, origin))) => Err(self.error(
                "server.tls",
                &origin,
                "set either cert and key (PEM files) or generate (a self-signed certificate), not both",
            )),
            (Some((_, origin)), None, None) => Err(self.error(
                "server.tls",
                &origin,
                "cert is set but key is not: set server.tls.key (--tls-key) to the private key's PEM file",
            )),
            (None, Some((_, origin)), None) => Err(self.error(
                "server.tls",
                &origin,
                "key is set but cert is not: set server.tls.cert (--tls-cert) to the certificate chain's PEM file",
            )),
            (None, None, None) => Err(match empty_generate {
                Some(origin) => self.error(
                    "server.tls.generate",
                    &origin,
                    r#"must name at least one host, e.g. ["localhost"]"#,
                ),
                None => self.error(
                    "server.tls",
                    &Origin::Default,
                    r#"no certificate configured: set server.tls.cert and server.tls.key (PEM files; --tls-cert, --tls-key), or server.tls.generate = ["localhost"] for a self-signed one (--tls-generate)"#,
                ),
            }),
        }
    }

    fn auth(&self, file: file::AuthFile, cli: &Cli) -> Result<AuthConfig, ConfigError> {
        let (mut public, public_origin) = if !cli.auth_public.is_empty() {
            (cli.auth_public.clone(), Origin::Flag("--auth-public"))
        } else if let Some(list) = file.public {
            let origin = Origin::File(list.span());
            let list = list
                .into_inner()
                .0
                .iter()
                .map(|p| normalize_public_prefix(p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|r| self.error("auth.public", &origin, r))?;
            (list, origin)
        } else {
            (Vec::new(), Origin::Default)
        };
        let mut seen = Vec::with_capacity(public.len());
        public.retain(|p| {
            let new = !seen.contains(p);
            seen.push(p.clone());
            new
        });

        let key = self.value(
            "auth.key",
            "--auth-key",
            cli.auth_key.clone(),
            file.key,
            path,
        )?;
        let jwk = match &key {
            Some((key, origin)) => {
                readable_file(key).map_err(|r| self.error("auth.key", origin, r))?;
                let jwk = Jwk::load(key)
                    .and_then(|jwk| Verifier::new(jwk.clone()).map(|_| jwk))
                    .map_err(|e| {
                        let file = key.display().to_string();
                        self.error("auth.key", origin, format!("{file:?}: {e}"))
                    })?;
                Some(jwk)
            }
            None => None,
        };
        if public.is_empty() && key.is_none() {
            return Err(self.error(
                "auth",
                &public_origin,
                r#"no authentication configured: set auth.public to the prefixes anyone may use without a token (e.g. "anon"; "" makes everything public) and/or auth.key to a JWK file (--auth-public, --auth-key)"#,
            ));
        }
        Ok(AuthConfig {
            public,
            key: key.map(|(k, _)| k),
            jwk,
            require_exp: cli.auth_require_exp || file.require_exp.unwrap_or(false),
        })
    }

    fn cluster(&self, file: file::ClusterFile, cli: &Cli) -> Result<ClusterConfig, ConfigError> {
        let host_port = |s: String| parse::parse_host_port(&s);
        let root = self.value(
            "cluster.root",
            "--cluster-root",
            cli.cluster_root.clone(),
            file.root,
            host_port,
        )?;
        let node = self.value(
            "cluster.node",
            "--cluster-node",
            cli.cluster_node.clone(),
            file.node,
            host_port,
        )?;
        let id = self.value(
            "cluster.id",
            "--cluster-id",
            cli.cluster_id,
            file.id,
            |Int(n)| parse::check_cluster_id(n),
        )?;
        if let (Some((_, origin)), None) = (&root, &node) {
            return Err(self.error(
                "cluster.node",
                origin,
                "must be set when cluster.root is set: an edge registers the host:port other relays dial (--cluster-node)",
            ));
        }
        let peers = if !cli.cluster_peer.is_empty() {
            cli.cluster_peer.clone()
        } else if let Some(list) = file.peers {
            let origin = Origin::File(list.span());
            list.into_inner()
                .iter()
                .map(|url| url.parse::<PeerUrl>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|reason| self.error("cluster.peers", &origin, reason))?
        } else {
            Vec::new()
        };
        Ok(ClusterConfig {
            root: root.map(|(v, _)| v),
            node: node.map(|(v, _)| v),
            id: id.map(|(v, _)| v),
            peers,
        })
    }
}

fn path(s: String) -> Result<PathBuf, String> {
    if s.trim().is_empty() {
        Err("must not be empty".to_string())
    } else {
        Ok(PathBuf::from(s))
    }
}

fn readable_file(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Err(e) => Err(format!("cannot read {:?}: {e}", path.display().to_string())),
        Ok(m) if m.is_dir() => Err(format!(
            "{:?} is a directory, not a file",
            path.display().to_string()
        )),
        Ok(_) => std::fs::File::open(path)
            .map(drop)
            .map_err(|e| format!("cannot read {:?}: {e}", path.display().to_string())),
    }
}
