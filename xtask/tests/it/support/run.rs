//! One end-to-end run of the binary, said once: the command (a project, arguments, an
//! environment), the exit code it must end with, and what its output must hold. A
//! failed expectation prints the command and both streams.
//!
//! Whole outputs by default: a run of the tool that is dropped without [`Ran::snapshot`] is
//! compared, exit code, stdout and stderr, against a snapshot named after its test
//! (`MODULE-TEST-N`, N counting that test's runs). Substring checks alone are for outputs
//! that are a stream (uv, docker, pytest, the machine's own facts), and the test says so,
//! and why, before the run: [`Test::stream`], [`Test::stderr_stream`], [`Test::children_of`].

use std::cell::Cell;
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::xtask;

/// The commands whose stdout carries other tools' output (pytest, ruff, mypy), as the
/// Makefile's targets printed it: a stream, whole.
const TOOLS_ON_STDOUT: &[&str] = &[
    "test",
    "test-unit",
    "test-ui",
    "test-debug",
    "style",
    "format",
];

/// Why a run whose output describes this machine (`platform`, `validate`'s report) is a
/// stream: what a snapshot cannot hold is the machine the tests run on.
pub const HOST: &str = "this machine's facts: its OS, tools, devices and timings";

/// Why a run of one of [`TOOLS_ON_STDOUT`] is a stream.
const TOOLS: &str = "pytest's, ruff's or mypy's output";

/// Why stderr is a stream where the tool starts uv, pytest or the app (their output is
/// copied through).
const CHILDREN: &str = "uv's, pytest's and the app's output";

/// Why stderr is a stream in `dist` (cargo's build).
pub const CARGO: &str = "cargo's build";

/// A run of `xtask` being prepared.
pub struct Test {
    cmd: Command,
    stderr_stream: Option<&'static str>,
    stream: Option<&'static str>,
    filters: Vec<(String, String)>,
}

impl Test {
    /// `xtask ARGS...`.
    pub fn new<I, S>(args: I) -> Test
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Test::from(xtask()).args(args)
    }

    /// `xtask --project DIR ARGS...`.
    pub fn in_project<I, S>(dir: impl AsRef<Path>, args: I) -> Test
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Test::new(args).project(dir)
    }

    /// Add `--project DIR` (a global flag: anywhere on the line).
    pub fn project(self, dir: impl AsRef<Path>) -> Test {
        self.arg("--project").arg(dir.as_ref())
    }

    /// Add `--policy FILE`.
    pub fn policy(self, file: impl AsRef<Path>) -> Test {
        self.arg("--policy").arg(file.as_ref())
    }

    pub fn args<I, S>(mut self, args: I) -> Test
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Test {
        self.cmd.arg(arg);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Test {
        self.cmd.env(key, value);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Test {
        self.cmd.current_dir(dir);
        self
    }

    /// In its snapshot, `pattern` (a regular expression) reads `to`: a value this run
    /// picked (a free port, a job number), on top of the filters every snapshot has.
    pub fn filter(mut self, pattern: impl Into<String>, to: impl Into<String>) -> Test {
        self.filters.push((pattern.into(), to.into()));
        self
    }

    /// Its output is a stream (another tool's progress, a machine's facts, a race): only
    /// what the test asserts of it is checked, not the whole. `why` is for the reader.
    pub fn stream(mut self, why: &'static str) -> Test {
        assert!(!why.is_empty(), "say why this output is a stream");
        self.stream = Some(why);
        self
    }

    /// Its stderr is a stream (docker's, uv's, pytest's or cargo's progress copied
    /// through): the snapshot still holds the exit code and stdout whole and says
    /// `(a stream: WHY)` for stderr; of stderr, what the test asserts.
    pub fn stderr_stream(mut self, why: &'static str) -> Test {
        self.stderr_stream = Some(why);
        self
    }

    /// A run of `command` that starts uv, pytest or the app: its stderr is theirs, and where
    /// the command prints pytest's, ruff's or mypy's output on stdout (`test`, `style`, ...),
    /// the whole output is.
    pub fn children_of(self, command: &str) -> Test {
        let t = self.stderr_stream(CHILDREN);
        if TOOLS_ON_STDOUT.contains(&command) {
            t.stream(TOOLS)
        } else {
            t
        }
    }

    /// Run it (stdin closed); any exit code.
    pub fn run(mut self) -> Ran {
        let out = self
            .cmd
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", self.cmd));
        // Another program's output (docker's, uv's) is not this tool's contract.
        let ours = Path::new(self.cmd.get_program()).file_stem() == Some(OsStr::new("xtask"));
        Ran {
            what: format!("{:?}", self.cmd),
            out,
            seen: Cell::new(!ours || self.stream.is_some()),
            stderr_stream: self.stderr_stream,
            filters: self.filters,
        }
    }

    /// Run it; it must exit with `code`.
    pub fn expect(self, code: i32) -> Ran {
        let ran = self.run();
        assert_eq!(ran.out.status.code(), Some(code), "{}", ran.context());
        ran
    }
}

/// A command the test file prepared itself (its own environment), arguments to follow.
impl From<Command> for Test {
    fn from(cmd: Command) -> Test {
        Test {
            cmd,
            stderr_stream: None,
            stream: None,
            filters: Vec::new(),
        }
    }
}

/// The default: a run nobody snapshotted or called a stream is snapshotted whole, under
/// its test's name. Not while the test is already failing (its own message comes first).
impl Drop for Ran {
    fn drop(&mut self) {
        if self.seen.get() || std::thread::panicking() {
            return;
        }
        let name = default_snapshot_name();
        self.snapshot(&name);
    }
}

thread_local! {
    static RUNS: Cell<usize> = const { Cell::new(0) };
}

/// `MODULE-TEST-N` from the test's thread (libtest names it `module::test`), N counting
/// this test's unnamed runs from 1.
fn default_snapshot_name() -> String {
    let thread = std::thread::current();
    let test = match thread.name() {
        Some(name) if name != "main" => name.replace("::", "-"),
        _ => panic!("a run outside a test's own thread needs .snapshot(NAME) or Test::stream(WHY)"),
    };
    let n = RUNS.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    format!("{test}-{n}")
}

impl std::fmt::Debug for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.context())
    }
}

/// A finished run: its output, and assertions on it that print everything when they fail.
pub struct Ran {
    what: String,
    pub out: Output,
    /// Snapshotted, or declared a stream: nothing left for the drop to check.
    seen: Cell<bool>,
    /// Why stderr is a stream, when it is: the snapshot then holds stdout alone.
    stderr_stream: Option<&'static str>,
    /// This run's own filters ([`Test::filter`]).
    filters: Vec<(String, String)>,
}

impl Ran {
    /// The whole run, its exit code, stdout and stderr, against the snapshot `name` in
    /// tests/it/snapshots/ (insta: `cargo insta review`, or `INSTA_UPDATE=always` then read
    /// the diff). Paths, temporary folders, times and versions are filtered out first.
    pub fn snapshot(&self, name: &str) -> &Ran {
        self.seen.set(true);
        let stderr = match self.stderr_stream {
            Some(why) => format!("(a stream: {why})\n"),
            None => self.stderr(),
        };
        let text = format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{stderr}",
            self.code().map_or("a signal".into(), |c| c.to_string()),
            self.stdout(),
        );
        snapshot_filtered(name, &text, &self.filters);
        self
    }

    pub fn code(&self) -> Option<i32> {
        self.out.status.code()
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    /// stdout holds `needle`.
    pub fn out_has(&self, needle: &str) -> &Ran {
        self.holds("stdout", &self.stdout(), needle, true)
    }

    /// stderr holds `needle`.
    pub fn err_has(&self, needle: &str) -> &Ran {
        self.holds("stderr", &self.stderr(), needle, true)
    }

    /// stderr lacks `needle`.
    pub fn err_lacks(&self, needle: &str) -> &Ran {
        self.holds("stderr", &self.stderr(), needle, false)
    }

    fn holds(&self, stream: &str, text: &str, needle: &str, want: bool) -> &Ran {
        let says = if want { "lacks" } else { "holds" };
        assert!(
            text.contains(needle) == want,
            "{stream} {says} {needle:?}\n{}",
            self.context()
        );
        self
    }

    /// stderr is exactly one line holding `needle`: the contract for bad input.
    pub fn one_line_error(&self, needle: &str) -> &Ran {
        let err = self.stderr();
        assert!(
            err.lines().count() == 1 && err.contains(needle),
            "not one line holding {needle:?}\n{}",
            self.context()
        );
        self
    }

    /// The last non-blank line of stdout (a summary).
    pub fn last_line(&self) -> String {
        self.stdout()
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .to_string()
    }

    /// stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.out.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", self.context()))
    }

    fn context(&self) -> String {
        format!(
            "$ {}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}",
            self.what,
            self.out.status.code(),
            self.stdout(),
            self.stderr()
        )
    }
}

/// `text` against the snapshot `name` in tests/it/snapshots/ (a generated file, or a run's
/// whole output), with paths, temporary folders, times and versions filtered out.
pub fn snapshot_text(name: &str, text: &str) {
    snapshot_filtered(name, text, &[]);
}

fn snapshot_filtered(name: &str, text: &str, own: &[(String, String)]) {
    // `XTASK_SNAPSHOTS_USED=FILE cargo test` lists the snapshots a run compared, one a line:
    // what is in tests/it/snapshots/ and not there is a leftover to delete.
    if let Some(log) = std::env::var_os("XTASK_SNAPSHOTS_USED") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        writeln!(f, "{name}").unwrap();
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().unwrap().display().to_string();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(manifest.join("tests/it/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    let filters: Vec<(String, &str)> = vec![
        (regex_escape(&workspace), "[WS]"),
        (r"/tmp/\.tmp[A-Za-z0-9]+".into(), "[TMP]"),
        (r"\b\d+(\.\d+)? ?(ms|s)\b".into(), "[T]"),
        (r"\[env: ([A-Z_]+)=[^\]]*\]".into(), "[env: $1=]"),
        (r"uv \d+\.\d+\.\d+".into(), "uv [V]"),
        (r"(127\.0\.0\.1|localhost):\d+".into(), "$1:[PORT]"),
        (r"127\.0\.0\.1 port \d+".into(), "127.0.0.1 port [PORT]"),
        (
            r"sha256:([0-9a-f]{64}|[0-9a-f]{12})\b".into(),
            "sha256:[DIGEST]",
        ),
        (r"\b[0-9a-f]{64}\b".into(), "[ID]"),
        (r"process group \d+".into(), "process group [PGID]"),
        (r#"[^\s"'(=]*/python3(\.\d+)?\b"#.into(), "[PYTHON]"),
        (r#"[^\s"'(=]*/(bin|shims)/uv\b"#.into(), "[UV]"),
        (r"\b\d+(\.\d+)? ([KMG]i?B|kB)\b".into(), "[SIZE]"),
        (
            r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?".into(),
            "[DATE]",
        ),
    ];
    for (pattern, to) in own {
        settings.add_filter(pattern, to.as_str());
    }
    for (pattern, to) in &filters {
        settings.add_filter(pattern, *to);
    }
    settings.bind(|| insta::assert_snapshot!(name, text));
}

/// `s` as a regular expression matching itself.
fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '.' | '+' | '*' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$' | '\\' => {
                format!("\\{c}")
            }
            c => c.to_string(),
        })
        .collect()
}
