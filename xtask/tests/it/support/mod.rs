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

/// A folder holding an `nvidia-smi` that prints a recording (test data standing in for a
/// machine's GPUs; the parser and the binary under test are real), and the PATH with it
/// first.
#[cfg(unix)]
pub fn recorded_nvidia_smi(recording: &str) -> (tempfile::TempDir, String) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = fixtures().join("platform").join(recording);
    assert!(file.is_file(), "{}", file.display());
    let path = dir.path().join("nvidia-smi");
    let body = format!(
        "#!/bin/sh\ncase \"$1\" in --query-gpu=*) exec cat '{}';; esac\nexit 0\n",
        file.display()
    );
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let search = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (dir, search)
}

/// A project whose `.venv` holds the `torch/version.py` a torch of this version writes
/// (`2.8.0+cu128`: cuda 12.8; `+cpu` or no local version: cuda None), as the installed
/// environment `validate` reads without starting Python.
pub fn venv_with_torch(version: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let torch = dir.path().join(".venv/lib/python3.12/site-packages/torch");
    std::fs::create_dir_all(&torch).unwrap();
    let cuda = version
        .split_once("+cu")
        .map(|(_, cu)| {
            let (a, b) = cu.split_at(cu.len() - 1);
            format!("'{a}.{b}'")
        })
        .unwrap_or_else(|| "None".into());
    std::fs::write(
        torch.join("version.py"),
        format!(
            "from typing import Optional\n\n__all__ = ['__version__', 'debug', 'cuda', 'git_version', 'hip', 'rocm', 'xpu']\n__version__ = '{version}'\ndebug = False\ncuda: Optional[str] = {cuda}\ngit_version = 'a1b2c3d'\nhip: Optional[str] = None\nrocm: Optional[str] = None\nxpu: Optional[str] = None\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pyproject.toml"),
        "[project]\nname = \"gpu-node\"\nversion = \"0.1.0\"\nrequires-python = \"==3.12.*\"\ndependencies = [\"torch\"]\n",
    )
    .unwrap();
    dir
}
