//! The exit-status contract, implemented once: [`Code`] is every status the tool can end
//! with, and the single source of `--help`'s line, the README's table (a test holds the
//! two together) and `main`'s exit.
//!
//! Commands return `anyhow::Result`; an error built with [`usage`], [`absent`],
//! [`failed`] or [`interrupted`] carries its code. Any other error exits 1.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    Ok,
    Failed,
    Usage,
    Absent,
    /// A panic: a bug in the tool (one line naming where, never a backtrace).
    Internal,
    /// SIGINT (Ctrl-C), once the work in flight is undone.
    Interrupted,
    /// SIGTERM, likewise.
    Terminated,
}

impl Code {
    /// Every status, in the order the tables list them.
    pub const ALL: [Code; 7] = [
        Code::Ok,
        Code::Failed,
        Code::Usage,
        Code::Absent,
        Code::Internal,
        Code::Interrupted,
        Code::Terminated,
    ];

    pub fn as_i32(self) -> i32 {
        match self {
            Code::Ok => 0,
            Code::Failed => 1,
            Code::Usage => 2,
            Code::Absent => 3,
            Code::Internal => 101,
            Code::Interrupted => 128 + 2,
            Code::Terminated => 128 + 15,
        }
    }

    /// What the status means, for the tables.
    pub fn meaning(self) -> &'static str {
        match self {
            Code::Ok => "ok (a skipped check is reported with its reason and is not an error)",
            Code::Failed => "a check failed",
            Code::Usage => "usage or input error: a bad flag, file or target, named in one line",
            Code::Absent => {
                "something required is absent (e.g. a Docker daemon, a GPU that was required)"
            }
            Code::Internal => {
                "an internal error (a bug in `cargo xtask`): one line naming where, never a backtrace"
            }
            Code::Interrupted => "interrupted (SIGINT, Ctrl-C): what was started is stopped first",
            Code::Terminated => "terminated (SIGTERM): likewise",
        }
    }

    /// The status a signal ends the tool with (128 + n; SIGINT and SIGTERM by name).
    pub fn of_signal(sig: i32) -> i32 {
        match sig {
            2 => Code::Interrupted.as_i32(),
            15 => Code::Terminated.as_i32(),
            n => 128 + n,
        }
    }

    /// `--help`'s line: "Exit codes: 0 ok, 1 a check failed, ...".
    pub fn help_line() -> String {
        let parts: Vec<String> = Code::ALL
            .iter()
            .map(|c| {
                let short = c.meaning().split([':', '(']).next().unwrap_or_default();
                format!("{} {}", c.as_i32(), short.trim())
            })
            .collect();
        format!("Exit codes: {}.", parts.join(", "))
    }

    /// The README's table (Markdown).
    pub fn markdown_table() -> String {
        let mut s = String::from("| code | meaning |\n|---|---|\n");
        for c in Code::ALL {
            s.push_str(&format!("| {} | {} |\n", c.as_i32(), c.meaning()));
        }
        s
    }
}

/// An error with a place in the contract. `message` is one line for the user; an
/// empty message means the command already reported the problem itself.
#[derive(Debug)]
pub struct Failure {
    pub code: Code,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

fn with(code: Code, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        code,
        message: message.into(),
    })
}

/// An error with the code another error had (a message rewritten for its context).
pub fn with_code(code: Code, message: impl Into<String>) -> anyhow::Error {
    with(code, message)
}

/// Exit 2: the user gave something we cannot use. Name the flag or file and what to do.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    with(Code::Usage, message)
}

/// Exit 3: something required is not on this machine.
pub fn absent(message: impl Into<String>) -> anyhow::Error {
    with(Code::Absent, message)
}

/// Exit 1: a check ran and did not pass.
pub fn failed(message: impl Into<String>) -> anyhow::Error {
    with(Code::Failed, message)
}

/// Exit 130.
pub fn interrupted(message: impl Into<String>) -> anyhow::Error {
    with(Code::Interrupted, message)
}

/// The contract's code for an error: the first [`Failure`] in its chain, else 1.
pub fn code_of(err: &anyhow::Error) -> Code {
    err.chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .map_or(Code::Failed, |f| f.code)
}

/// The single line printed for an error (empty when the command reported it already).
pub fn line_of(err: &anyhow::Error) -> String {
    match err.downcast_ref::<Failure>() {
        Some(f) => f.message.clone(),
        // anyhow's alternate form joins the context chain with ": " on one line.
        None => format!("{err:#}").replace('\n', " "),
    }
}

std::thread_local! {
    /// Set while [`quietly`] runs: the panic hook stays silent.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The panic message and place of the last panic on this thread.
static LAST_PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Replace the default panic output (a message and a backtrace hint) with a record that
/// `main` turns into one line and exit 101, the code of an internal error.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        if QUIET.with(|q| q.get()) {
            return;
        }
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(format!("{msg}{at}"));
        }
    }));
}

/// For tests: keep the default panic output, except inside [`quietly`].
pub fn quiet_panics_in_tests() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                prev(info);
            }
        }));
    });
}

/// The last panic recorded by the hook.
pub fn last_panic() -> Option<String> {
    LAST_PANIC.lock().ok().and_then(|mut l| l.take())
}

/// Run `f`, turning a panic into `None` without any output (for third-party parsers
/// that panic on malformed input).
pub fn quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
    QUIET.with(|q| q.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    r.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_survive_context() {
        let e = absent("docker daemon is not running").context("docker build");
        assert_eq!(code_of(&e), Code::Absent);
        assert_eq!(code_of(&usage("x")), Code::Usage);
        assert_eq!(code_of(&anyhow::anyhow!("io")), Code::Failed);
        assert_eq!(Code::Interrupted.as_i32(), 130);
    }

    #[test]
    fn unclassified_errors_are_one_line() {
        let e = anyhow::anyhow!("first\nsecond").context("reading x");
        assert_eq!(line_of(&e), "reading x: first second");
    }
}
