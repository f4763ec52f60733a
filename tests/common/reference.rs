//! Where `scripts/setup` installed the published reference tools.

use std::path::PathBuf;

/// The binary `name` in the directory named by the environment variable `var`
/// (`MOQ_REF_BIN` or `MOQ_TOKEN_REF_BIN`, which `scripts/test` sets). `None`, with a note,
/// when the variable is unset, so a plain `cargo test` skips what needs the tool; a set
/// variable with the binary missing is an error.
pub fn installed(var: &str, name: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os(var) else {
        eprintln!("{var} is not set: run scripts/test to include the reference tools");
        return None;
    };
    let path = PathBuf::from(dir).join(name);
    assert!(
        path.exists(),
        "{} is missing: scripts/setup installs it",
        path.display()
    );
    Some(path)
}
