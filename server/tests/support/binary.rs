//! Running the `memberdb` binary from a test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `memberdb` with `args` and waits for it.
pub fn memberdb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memberdb"))
        .args(args)
        .output()
        .expect("binary runs")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes `content` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}
