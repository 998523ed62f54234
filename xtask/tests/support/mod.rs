//! Shared pieces of the end-to-end tests: the binary and one run of it ([`Test`]),
//! engines that may be absent ([`engines`]), tiny wheels ([`wheel`]) and a loopback
//! index server ([`http`]).

#![allow(dead_code, unused_imports)] // each test file uses a different subset

mod engines;
mod http;
mod run;
mod wheel;

pub use engines::*;
pub use http::*;
pub use run::*;
pub use wheel::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn xtask() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.env_remove("XTASK_PROJECT");
    c
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Copy a fixture folder into a fresh temporary folder.
pub fn copy_fixture(rel: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join(rel), dir.path());
    dir
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Start `cmd` (stdout discarded) with its stderr read line by line into a channel, so
/// a test can wait for a line with a timeout while the child runs.
pub fn spawn_reading_stderr(
    cmd: &mut Command,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// Send `sig` to a child this test spawned (and has not reaped).
#[cfg(unix)]
pub fn signal(child: &std::process::Child, sig: rustix::process::Signal) {
    rustix::process::kill_process(rustix::process::Pid::from_child(child), sig)
        .unwrap_or_else(|e| panic!("kill {}: {e}", child.id()));
}

/// Run a command, returning its output (never panics on a non-zero exit).
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// The policy's macOS floor (`MACOSX_DEPLOYMENT_TARGET` for uv's `aarch64-apple-darwin`,
/// which otherwise assumes 13.0).
pub fn policy_macos() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/platforms.toml");
    let v: toml::Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["targets"]["macos-arm64-mps"]["macos"]
        .as_str()
        .unwrap()
        .to_string()
}
