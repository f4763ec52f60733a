//! The `moq-token` binary, alone and against the published moq-token-cli 0.5.48: keys and
//! tokens of all twelve algorithms must move between the two tools in both directions.
//! `scripts/test` installs the reference and sets `MOQ_TOKEN_REF_BIN`; without it the
//! interop halves say so and pass vacuously.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use moq_relay::auth::{Algorithm, Jwk};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn ours() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_moq-token"))
}

/// moq-token-cli 0.5.48, when `scripts/test` installed it.
fn reference_bin() -> Option<PathBuf> {
    common::reference::installed("MOQ_TOKEN_REF_BIN", "moq-token")
}

/// What a run of either tool gave.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self, what: &str) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "{what} failed\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }

    fn fails(self, what: &str) -> Self {
        assert!(
            self.code.is_some_and(|c| c != 0),
            "{what} should fail\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }
}

fn run(bin: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(bin)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts: {e}", bin.display()));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn unix_now() -> u64 {
    moq_relay::auth::unix_now()
}

/// A key pair written by `bin generate` into `dir`: the private file and the file to
/// verify with (the public half for asymmetric algorithms, the secret itself otherwise).
fn generate(bin: &Path, dir: &Path, alg: Algorithm, extra: &[&str]) -> (PathBuf, PathBuf) {
    let private = dir.join("private.jwk");
    let public = dir.join("public.jwk");
    let mut args = vec!["generate", "--algorithm", alg.name(), "--out", s(&private)];
    if alg.is_asymmetric() {
        args.extend(["--public", s(&public)]);
    }
    args.extend(extra);
    run(bin, &args, None).ok(&format!("{} generate {alg}", bin.display()));
    let verify = if alg.is_asymmetric() {
        public
    } else {
        private.clone()
    };
    (private, verify)
}

/// Signs root `demo`, publish `live`, subscribe `chat` with `bin`, expiring in an hour.
fn sign(bin: &Path, key: &Path) -> String {
    let exp = (unix_now() + 3600).to_string();
    let iat = unix_now().to_string();
    let args = [
        "sign",
        "--key",
        s(key),
        "--root",
        "demo",
        "--publish",
        "live",
        "--subscribe",
        "chat",
        "--expires",
        &exp,
        "--issued",
        &iat,
    ];
    let out = run(bin, &args, None).ok(&format!("{} sign", bin.display()));
    let token = out.stdout.trim().to_string();
    assert_eq!(token.split('.').count(), 3, "{token}");
    token
}

/// Our verify, token on stdin: the printed claims must be what `sign` granted.
fn our_verify(key: &Path, token: &str) {
    let out = run(&ours(), &["verify", "--key", s(key)], Some(token)).ok("our verify");
    let claims: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(claims["root"], "demo", "{}", out.stdout);
    assert_eq!(claims["put"], serde_json::json!(["live"]), "{}", out.stdout);
    assert_eq!(claims["get"], serde_json::json!(["chat"]), "{}", out.stdout);
    assert!(claims["exp"].as_u64().unwrap() > unix_now());
    assert!(claims["iat"].is_u64());
    assert!(claims.get("cluster").is_none());
}

/// The reference's verify, token from a file; it prints the claims' Debug form.
fn reference_verify(reference: &Path, dir: &Path, key: &Path, token: &str) {
    let file = dir.join("token.jwt");
    std::fs::write(&file, token).unwrap();
    let out = run(
        reference,
        &["verify", "--key", s(key), "--in", s(&file)],
        None,
    )
    .ok("reference verify");
    for shown in [r#"root: "demo""#, r#""live""#, r#""chat""#] {
        assert!(out.stdout.contains(shown), "{shown} in {}", out.stdout);
    }
}

/// The reference generates; each tool signs with its key and the other verifies.
fn with_reference_key(alg: Algorithm) {
    let Some(reference) = reference_bin() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (private, verify) = generate(&reference, dir.path(), alg, &[]);
    reference_verify(&reference, dir.path(), &verify, &sign(&ours(), &private));
    our_verify(&verify, &sign(&reference, &private));
}

/// We generate; each tool signs with our key and the other verifies.
fn with_our_key(alg: Algorithm) {
    let Some(reference) = reference_bin() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (private, verify) = generate(&ours(), dir.path(), alg, &[]);
    let key = Jwk::load(&private).unwrap();
    assert_eq!(key.alg, alg);
    assert!(key.has_private() && key.can_sign);
    our_verify(&verify, &sign(&reference, &private));
    reference_verify(&reference, dir.path(), &verify, &sign(&ours(), &private));
}

macro_rules! interop {
    ($($name:ident => $alg:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;

                #[test]
                fn reference_key() {
                    with_reference_key(Algorithm::$alg);
                }

                #[test]
                fn our_key() {
                    with_our_key(Algorithm::$alg);
                }
            }
        )*

        #[test]
        fn every_algorithm_is_covered() {
            let covered = [$(Algorithm::$alg),*];
            assert_eq!(covered, Algorithm::ALL);
        }
    };
}

interop! {
    hs256 => HS256,
    hs384 => HS384,
    hs512 => HS512,
    es256 => ES256,
    es384 => ES384,
    rs256 => RS256,
    rs384 => RS384,
    rs512 => RS512,
    ps256 => PS256,
    ps384 => PS384,
    ps512 => PS512,
    eddsa => EdDSA,
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn private_key_files_are_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = generate(&ours(), dir.path(), Algorithm::ES256, &[]);
    assert_eq!(mode(&private), 0o600);
    assert_eq!(mode(&public), 0o644);
    let hs = dir.path().join("hs.jwk");
    run(&ours(), &["generate", "--out", s(&hs)], None).ok("generate HS256");
    assert_eq!(mode(&hs), 0o600);

    // Over an existing world-readable file, the secret still lands owner-only.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hs, std::fs::Permissions::from_mode(0o644)).unwrap();
    run(&ours(), &["generate", "--out", s(&hs)], None).ok("generate over a file");
    assert_eq!(mode(&hs), 0o600);

    // Directories get {kid}.jwk.
    let (privates, publics) = (dir.path().join("private"), dir.path().join("public"));
    std::fs::create_dir(&privates).unwrap();
    std::fs::create_dir(&publics).unwrap();
    let args = [
        "generate",
        "--algorithm",
        "EdDSA",
        "--id",
        "edge-1",
        "--out-dir",
        s(&privates),
        "--public-dir",
        s(&publics),
    ];
    run(&ours(), &args, None).ok("generate into directories");
    assert_eq!(mode(&privates.join("edge-1.jwk")), 0o600);
    assert_eq!(mode(&publics.join("edge-1.jwk")), 0o644);
    let public = Jwk::load(&publics.join("edge-1.jwk")).unwrap();
    assert_eq!(public.kid.as_deref(), Some("edge-1"));
    assert!(!public.has_private() && !public.can_sign);
}

#[test]
fn the_private_key_goes_to_stdout_by_default() {
    let out = run(&ours(), &["generate", "--algorithm", "HS512"], None).ok("generate");
    let key = Jwk::parse(&out.stdout).unwrap();
    assert_eq!(key.alg, Algorithm::HS512);
    let kid = key.kid.unwrap();
    assert_eq!(kid.len(), 16);
    assert!(
        kid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{kid}"
    );

    // The public half alone may go to stdout when the private half goes to a file.
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("k.jwk");
    let args = [
        "generate",
        "--algorithm",
        "ES384",
        "--out",
        s(&private),
        "--public",
        "-",
    ];
    let out = run(&ours(), &args, None).ok("generate --public -");
    assert!(!Jwk::parse(&out.stdout).unwrap().has_private());
}

#[test]
fn usage_errors_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let public = dir.path().join("public.jwk");
    for (args, reason) in [
        (vec!["generate", "--public", s(&public)], "shared secret"),
        (
            vec!["generate", "--algorithm", "ES256", "--public", "-"],
            "cannot write both keys to stdout",
        ),
        (
            vec!["generate", "--algorithm", "ES512"],
            "unknown algorithm",
        ),
        (vec!["generate", "--id", "a b"], "invalid key id"),
        (
            vec!["verify", "--key", "-", "--in", "-"],
            "cannot both read from stdin",
        ),
        (
            vec!["sign", "--key", s(&public), "--publish", "x"],
            "cannot read",
        ),
        (vec!["sign", "--key", "-", "--expires", "-1"], "-1"),
        (vec!["frobnicate"], "frobnicate"),
    ] {
        let out = run(&ours(), &args, Some("")).fails(&args.join(" "));
        assert_eq!(out.code, Some(1), "{args:?}");
        assert!(out.stderr.contains(reason), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
    }
    assert!(
        !public.exists(),
        "nothing is written for a refused --public"
    );
}

/// `token` with one bit of its first signature byte flipped.
fn tamper(token: &str) -> String {
    let (message, signature) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    sig[0] ^= 0x01;
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(&sig))
}

#[test]
fn a_tampered_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for alg in [Algorithm::HS256, Algorithm::ES256, Algorithm::EdDSA] {
        let (private, verify) = generate(&ours(), dir.path(), alg, &[]);
        let token = sign(&ours(), &private);
        our_verify(&verify, &token);
        let file = dir.path().join("tampered.jwt");
        std::fs::write(&file, tamper(&token)).unwrap();
        let args = ["verify", "--key", s(&verify), "--in", s(&file)];
        let out = run(&ours(), &args, None).fails("verify a tampered token");
        assert_eq!(out.code, Some(1));
        assert!(
            out.stderr.contains("error: bad signature"),
            "{}",
            out.stderr
        );
        assert!(out.stdout.is_empty());
        if let Some(reference) = reference_bin() {
            run(&reference, &args, None).fails("the reference verifies a tampered token");
        }
    }
}

#[test]
fn a_token_without_an_expiry_is_signed_quietly_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (private, _) = generate(&ours(), dir.path(), Algorithm::HS256, &[]);
    let args = ["sign", "--key", "-", "--subscribe", "live"];
    let key = std::fs::read_to_string(&private).unwrap();
    let out = run(&ours(), &args, Some(&key)).ok("sign without --expires");
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let token = out.stdout.trim();
    // moq-relay checks exp only when present, and so does our verify.
    let out = run(&ours(), &["verify", "--key", s(&private)], Some(token)).ok("verify");
    let claims: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(claims["get"], serde_json::json!(["live"]));
    assert!(claims.get("exp").is_none(), "{}", out.stdout);
    if let Some(reference) = reference_bin() {
        run(&reference, &["verify", "--key", s(&private)], Some(token))
            .ok("the reference verifies a token without exp");
    }
}

/// A key scoped to publishing under `demo/live` signs that and nothing else, in both tools.
fn check_scope(tools: &[&Path], private: &Path, verify: &Path) {
    let exp = (unix_now() + 600).to_string();
    for tool in tools {
        let outside = [
            "sign",
            "--key",
            s(private),
            "--root",
            "demo",
            "--publish",
            "other",
            "--expires",
            &exp,
        ];
        let out = run(tool, &outside, None).fails(&format!("{} sign outside", tool.display()));
        assert!(out.stdout.trim().is_empty(), "{}", out.stdout);
        let inside = [
            "sign",
            "--key",
            s(private),
            "--root",
            "demo",
            "--publish",
            "live",
            "--expires",
            &exp,
        ];
        let token = run(tool, &inside, None).ok("sign inside").stdout;
        let out = run(&ours(), &["verify", "--key", s(verify)], Some(&token)).ok("verify");
        assert!(out.stdout.contains("\"live\""), "{}", out.stdout);
    }
}

#[test]
fn a_scoped_key_signs_only_within_its_scope() {
    let scope = ["--root", "demo", "--publish", "live"];
    let dir = tempfile::tempdir().unwrap();
    let reference = reference_bin();
    let mut tools = vec![ours()];
    tools.extend(reference.clone());
    let tools: Vec<&Path> = tools.iter().map(PathBuf::as_path).collect();

    let (private, verify) = generate(&ours(), dir.path(), Algorithm::ES256, &scope);
    let key = Jwk::load(&verify).unwrap();
    let scope_of = key.scope.expect("the key carries its scope");
    assert_eq!(
        (scope_of.root.as_str(), scope_of.put.as_slice()),
        ("demo", &["live".to_string()][..])
    );
    assert!(scope_of.get.is_empty());
    check_scope(&tools, &private, &verify);

    if let Some(reference) = &reference {
        let dir = tempfile::tempdir().unwrap();
        let (private, verify) = generate(reference, dir.path(), Algorithm::HS256, &scope);
        check_scope(&tools, &private, &verify);
    }
}
