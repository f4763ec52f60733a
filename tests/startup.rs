//! Start-up failures of the real binary: each stops the relay promptly with a non-zero exit
//! code and a message naming the file, the key and the reason.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn relay(args: &[&str]) -> Output {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_moq-relay"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("relay binary runs");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "start-up failure must not hang"
    );
    output
}

fn config(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.toml");
    std::fs::write(&path, text).unwrap();
    let path = path.to_string_lossy().into_owned();
    (dir, path)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const VALID: &str = "[server]\nlisten = \"127.0.0.1:0\"\n[server.tls]\ngenerate = [\"localhost\"]\n[auth]\npublic = \"anon\"\n";

#[test]
fn bad_values_and_unknown_keys_name_the_file_and_key() {
    let (_dir, path) = config("[server]\nlisten = \"nowhere\"\n");
    let out = relay(&[&path]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&path)
            && err.contains("server.listen")
            && err.contains("invalid socket address"),
        "{err}"
    );

    let (_dir, path) = config("[server]\nlisen = \"[::]:4443\"\n");
    let err = stderr(&relay(&[&path]));
    assert!(
        err.contains(&path) && err.contains("server.lisen") && err.contains("unknown key"),
        "{err}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let out = relay(&["/nonexistent/relay.toml"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/nonexistent/relay.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn no_auth_at_all_is_refused() {
    let (_dir, path) =
        config("[server]\nlisten = \"127.0.0.1:0\"\n[server.tls]\ngenerate = [\"localhost\"]\n");
    let out = relay(&[&path]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("auth"), "{}", stderr(&out));
}

#[test]
fn a_port_in_use_is_refused_naming_the_key() {
    let holder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let (_dir, path) = config(VALID);
    let listen = format!("127.0.0.1:{port}");
    let out = relay(&["--shards", "2", "--listen", &listen, &path]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("server.listen") && err.contains(&listen) && err.contains("in use"),
        "{err}"
    );
}

#[test]
fn too_many_shards_is_refused() {
    let (_dir, path) = config(VALID);
    let out = relay(&["--shards", "257", &path]);
    assert!(!out.status.success());
    let cores = std::thread::available_parallelism().unwrap().get();
    let too_many = (cores + 1).to_string();
    let out = relay(&["--shards", &too_many, &path]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("shards"), "{}", stderr(&out));
}

#[test]
fn sigterm_stops_a_running_relay_cleanly() {
    // Started (and ready: it printed its readiness line) by the shared helper.
    let relay = common::Relay::start("");
    let (status, log) = relay.terminate(Duration::from_secs(10));
    let status = status.unwrap_or_else(|| panic!("relay did not stop on SIGTERM:\n{log}"));
    assert!(
        status.success(),
        "clean exit after SIGTERM: {status}\n{log}"
    );
}
