//! `moq-token`: generate keys, sign tokens and verify them for moq-relay.
//!
//! The command line is moq-token-cli 0.5.48's (`generate`, `sign`, `verify`, same flags and
//! the same key files), so keys and tokens move freely between the two tools. `verify`
//! applies moq-relay's own rules, so a token it accepts is one the relay accepts (with its
//! default `[auth]`: a token without `exp` never expires unless the relay sets `require_exp`).
//! Every failure prints `error: <reason>` on stderr and exits with status 1.

use clap::{Parser, Subcommand};
use moq_relay::auth::signing::{self, TokenClaims};
use moq_relay::auth::{unix_now, Algorithm, Jwk, KeyScope, Verifier};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Generate, sign, and verify tokens for moq-relay.
#[derive(Debug, Parser)]
#[command(name = "moq-token", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a new signing key.
    ///
    /// A random key ID is assigned unless --id is specified.
    /// Output is base64url-encoded JSON.
    Generate {
        /// The algorithm to use.
        #[arg(long, default_value = "HS256")]
        algorithm: Algorithm,

        /// The key ID. Randomly generated if not provided.
        #[arg(long)]
        id: Option<String>,

        /// Write the key to a file path. Use `-` for stdout.
        #[arg(long)]
        out: Option<PathBuf>,

        /// Write the key to a directory as {kid}.jwk.
        #[arg(long, conflicts_with = "out")]
        out_dir: Option<PathBuf>,

        /// Write the public key to a file path (asymmetric algorithms only). Use `-` for stdout.
        #[arg(long)]
        public: Option<PathBuf>,

        /// Write the public key to a directory as {kid}.jwk (asymmetric algorithms only).
        #[arg(long, conflicts_with = "public")]
        public_dir: Option<PathBuf>,

        /// Root path for the optional key scope. Only applied alongside --publish or --subscribe.
        #[arg(long, default_value = "")]
        root: String,

        /// Publish prefixes the key may grant (repeatable).
        #[arg(long)]
        publish: Vec<String>,

        /// Subscribe prefixes the key may grant (repeatable).
        #[arg(long)]
        subscribe: Vec<String>,
    },

    /// Sign a token, writing it to stdout.
    Sign {
        /// Path to the signing key file. Use `-` for stdin.
        #[arg(long)]
        key: PathBuf,

        /// The root path for the token.
        #[arg(long, default_value = "")]
        root: String,

        /// Paths the user can publish to (repeatable).
        #[arg(long)]
        publish: Vec<String>,

        /// Paths the user can subscribe to (repeatable).
        #[arg(long)]
        subscribe: Vec<String>,

        /// Expiration time as a unix timestamp. moq-relay refuses tokens without one.
        #[arg(long)]
        expires: Option<u64>,

        /// Issued-at time as a unix timestamp.
        #[arg(long)]
        issued: Option<u64>,
    },

    /// Verify a token with moq-relay's rules, writing its claims to stdout as JSON.
    Verify {
        /// Path to the key file. Use `-` for stdin (requires `--in` to be a file).
        #[arg(long)]
        key: PathBuf,

        /// Path to read the token from. Use `-` for stdin.
        #[arg(long = "in", default_value = "-")]
        token: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout and succeed; usage errors are errors like any other.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("error: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Generate {
            algorithm,
            id,
            out,
            out_dir,
            public,
            public_dir,
            root,
            publish,
            subscribe,
        } => generate(GenerateArgs {
            algorithm,
            id,
            out,
            out_dir,
            public,
            public_dir,
            scope: (!publish.is_empty() || !subscribe.is_empty())
                .then_some((root, publish, subscribe)),
        }),
        Command::Sign {
            key,
            root,
            publish,
            subscribe,
            expires,
            issued,
        } => {
            let key = read_key(&key)?;
            let claims = TokenClaims {
                root,
                put: publish,
                get: subscribe,
                exp: expires,
                iat: issued,
            };
            let token = signing::sign(&key, &claims)?;
            print_line(&token)
        }
        Command::Verify { key, token } => {
            if is_dash(&key) && is_dash(&token) {
                return Err("--key and --in cannot both read from stdin".into());
            }
            let key = read_key(&key)?;
            let token = read_token(&token)?;
            let verifier = Verifier::new(key).map_err(|e| e.to_string())?;
            let claims = verifier.verify(&token, unix_now())?;
            let shown = ShownClaims {
                root: &claims.root,
                put: &claims.put,
                get: &claims.get,
                exp: claims.exp,
                iat: claims.iat,
                cluster: claims.cluster,
            };
            let json = serde_json::to_string_pretty(&shown)
                .map_err(|e| format!("cannot print the claims: {e}"))?;
            print_line(&json)
        }
    }
}

/// What `verify` prints, in this order; `exp`, `iat` and `cluster` only when present.
#[derive(serde::Serialize)]
struct ShownClaims<'a> {
    root: &'a str,
    put: &'a [String],
    get: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cluster: bool,
}

struct GenerateArgs {
    algorithm: Algorithm,
    id: Option<String>,
    out: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    public: Option<PathBuf>,
    public_dir: Option<PathBuf>,
    /// Root, publish and subscribe of the key scope, when one was asked for.
    scope: Option<(String, Vec<String>, Vec<String>)>,
}

fn generate(args: GenerateArgs) -> Result<(), String> {
    // Everything that can be refused is refused before a file is touched.
    let wants_public = args.public.is_some() || args.public_dir.is_some();
    if wants_public && !args.algorithm.is_asymmetric() {
        return Err(format!(
            "{} keys are a shared secret with no public half; --public and --public-dir \
             need an asymmetric algorithm",
            args.algorithm
        ));
    }
    let public_to_stdout = args.public.as_deref().is_some_and(is_dash);
    let private_to_stdout = args.out_dir.is_none() && args.out.as_deref().is_none_or(is_dash);
    if public_to_stdout && private_to_stdout {
        return Err(
            "cannot write both keys to stdout; use --out/--public with a file path, \
                    or --out-dir/--public-dir"
                .into(),
        );
    }
    let scope = match args.scope {
        None => None,
        Some((root, put, get)) => Some(KeyScope {
            root: normalize("--root", &root)?,
            put: normalize_all("--publish", &put)?,
            get: normalize_all("--subscribe", &get)?,
        }),
    };

    let mut key = signing::generate(args.algorithm, args.id)?;
    key.scope = scope;
    let kid = key.kid.clone().unwrap_or_default();
    let file_name = format!("{kid}.jwk");

    let public_path = match (&args.public_dir, &args.public) {
        (Some(dir), _) => Some(dir.join(&file_name)),
        (None, path) => path.clone(),
    };
    if let Some(path) = public_path {
        let public = key.to_public().ok_or("the key has no public half")?;
        write_key(&path, &public.to_base64url(), false)?;
    }
    let private = key.to_base64url();
    match (&args.out_dir, &args.out) {
        (Some(dir), _) => write_key(&dir.join(&file_name), &private, true),
        (None, Some(path)) => write_key(path, &private, true),
        (None, None) => print_line(&private),
    }
}

fn normalize(flag: &str, raw: &str) -> Result<String, String> {
    moq_relay::path::normalize(raw).map_err(|e| format!("{flag} {raw:?}: {e}"))
}

fn normalize_all(flag: &str, raw: &[String]) -> Result<Vec<String>, String> {
    raw.iter().map(|p| normalize(flag, p)).collect()
}

fn is_dash(path: &Path) -> bool {
    path == Path::new("-")
}

/// Prints one line on stdout, reporting a closed pipe as an error instead of panicking.
fn print_line(text: &str) -> Result<(), String> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))
}

/// Writes a key to `path` (`-` is stdout). A file holding private material is created with
/// mode 0600 and a public one with 0644, both before any byte is written.
fn write_key(path: &Path, encoded: &str, private: bool) -> Result<(), String> {
    if is_dash(path) {
        return print_line(encoded);
    }
    write_file(path, encoded, private).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(unix)]
fn write_file(path: &Path, contents: &str, private: bool) -> io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mode = if private { 0o600 } else { 0o644 };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    // The mode applies only when open(2) creates the file. An existing key file that others
    // may read is tightened through the open handle before the secret is written to it.
    if private {
        let metadata = file.metadata()?;
        if metadata.is_file() && metadata.permissions().mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
    }
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_file(path: &Path, contents: &str, _private: bool) -> io::Result<()> {
    std::fs::write(path, contents)
}

fn read_stdin(what: &str) -> Result<String, String> {
    let mut text = String::new();
    io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read the {what} from stdin: {e}"))?;
    Ok(text)
}

fn read_key(path: &Path) -> Result<Jwk, String> {
    if is_dash(path) {
        Jwk::parse(&read_stdin("key")?).map_err(|e| format!("invalid key on stdin: {e}"))
    } else {
        Jwk::load(path).map_err(|e| {
            let shown = path.display().to_string();
            if e.0.contains(&shown) {
                e.0
            } else {
                format!("invalid key in {shown}: {e}")
            }
        })
    }
}

fn read_token(path: &Path) -> Result<String, String> {
    let raw = if is_dash(path) {
        read_stdin("token")?
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the token from {}: {e}", path.display()))?
    };
    let token = raw.trim();
    if token.is_empty() {
        return Err("no token given".into());
    }
    Ok(token.to_string())
}
