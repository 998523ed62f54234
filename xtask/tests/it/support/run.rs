//! One end-to-end run of the binary, said once: the command (a project, arguments, an
//! environment), the exit code it must end with, and what its output must hold. A
//! failed expectation prints the command and both streams.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::xtask;

/// A run of `xtask` being prepared.
pub struct Test {
    cmd: Command,
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

    /// Run it (stdin closed); any exit code.
    pub fn run(mut self) -> Ran {
        let out = self
            .cmd
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", self.cmd));
        Ran {
            what: format!("{:?}", self.cmd),
            out,
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
        Test { cmd }
    }
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
}

impl Ran {
    /// The whole run, its exit code, stdout and stderr, against the snapshot `name` in
    /// tests/it/snapshots/ (insta: `cargo insta review`, or `INSTA_UPDATE=always` then read
    /// the diff). Paths, temporary folders, times and versions are filtered out first.
    pub fn snapshot(&self, name: &str) -> &Ran {
        let text = format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code().map_or("a signal".into(), |c| c.to_string()),
            self.stdout(),
            self.stderr()
        );
        snapshot_text(name, &text);
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
    ];
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
