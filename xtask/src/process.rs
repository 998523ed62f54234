//! The only place that spawns processes. Always argument vectors (duct), never a
//! shell string. Probes capture output under a time limit; visible runs print the
//! command first and map the child's status onto the exit-code contract.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
#[cfg(unix)]
use rustix::process::{Pid, Signal, kill_process, kill_process_group, test_kill_process_group};

use crate::error;

/// A command line: program plus arguments, with optional environment and folder.
#[derive(Clone, Debug)]
pub struct Cmd {
    /// An `OsString`, not a `Path`: duct looks bare names up on PATH only for strings.
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    env_removed: Vec<OsString>,
    dir: Option<PathBuf>,
}

impl Cmd {
    pub fn new(program: impl Into<OsString>) -> Self {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            env_removed: Vec::new(),
            dir: None,
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Leave a variable of this process's environment out of the child's.
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.env_removed.push(key.into());
        self
    }

    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    fn expression(&self) -> duct::Expression {
        let mut e = duct::cmd(&self.program, &self.args);
        for k in &self.env_removed {
            e = e.env_remove(k);
        }
        for (k, v) in &self.env {
            e = e.env(k, v);
        }
        if let Some(d) = &self.dir {
            e = e.dir(d);
        }
        e
    }

    /// The expression for a child with inherited stdio: its stdout goes to stderr when
    /// the command's result holds stdout (`--json`).
    fn inheriting(&self) -> duct::Expression {
        let e = self.expression();
        if crate::out::stdout_reserved() {
            e.stdout_to_stderr()
        } else {
            e
        }
    }

    /// The command as a user could paste it into a shell (for display only).
    pub fn display(&self) -> String {
        let mut parts: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), quote(&v.to_string_lossy())))
            .collect();
        parts.push(quote(&self.program.to_string_lossy()));
        parts.extend(self.args.iter().map(|a| quote(&a.to_string_lossy())));
        parts.join(" ")
    }

    /// Run with captured output, killed after `timeout`. Never fails: the outcome says
    /// what happened, so probing code can turn it into a warning.
    pub fn probe(&self, timeout: Duration) -> Probe {
        self.probe_with(timeout, true)
    }

    /// `probe` for clean-up after the tool was interrupted (cancelling a scheduler's
    /// job): it runs even though a signal came, and is not handed that signal.
    pub fn cleanup(&self, timeout: Duration) -> Probe {
        self.probe_with(timeout, false)
    }

    fn probe_with(&self, timeout: Duration, interruptible: bool) -> Probe {
        let watch = Sigint::catch();
        if interruptible && signal_received().is_some() {
            return Probe::Interrupted;
        }
        let handle = match self
            .expression()
            .stdin_null()
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .start()
        {
            Ok(h) => h,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Probe::NotFound,
            Err(e) => return Probe::SpawnError(e.to_string()),
        };
        let forward = interruptible.then(|| Forward::start(handle.pids()));
        let waited = handle.wait_timeout(timeout);
        drop(forward);
        drop(watch);
        match waited {
            Ok(Some(_)) if interruptible && signal_received().is_some() => Probe::Interrupted,
            Ok(Some(out)) => Probe::Exited {
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
            Ok(None) => {
                let _ = handle.kill();
                Probe::TimedOut(timeout)
            }
            Err(e) => Probe::SpawnError(e.to_string()),
        }
    }

    /// Print the command to stderr, run it with inherited stdio, and map its status:
    /// success → Ok, SIGINT / 130 → interrupted (130), anything else → failed (1).
    pub fn run_shown(&self) -> Result<()> {
        self.run_status()?.check(&format!("`{}`", self.display()))
    }
}

impl Cmd {
    /// Print the command, run it with inherited stdio and return its exit status
    /// without judging it. Ctrl-C reaches the child (same process group) while this
    /// process keeps running, so the caller can map the child's answer.
    pub fn run_status(&self) -> Result<Status> {
        errln!("$ {}", self.display());
        let sigint = Sigint::catch()?;
        if sigint.seen() {
            return Ok(Status {
                code: None,
                interrupted: true,
            });
        }
        let handle = self
            .inheriting()
            .unchecked()
            .start()
            .map_err(|e| self.start_failed(e))?;
        let forward = Forward::start(handle.pids());
        let out = handle.wait();
        drop(forward);
        let status = out
            .map_err(|e| anyhow::anyhow!("waiting for `{}`: {e}", self.display()))?
            .status;
        Ok(Status {
            code: status.code(),
            interrupted: sigint.seen() || was_interrupted(status),
        })
    }

    /// A child that could not start: absent (exit 3) when the program is not found.
    fn start_failed(&self, e: std::io::Error) -> anyhow::Error {
        if e.kind() == std::io::ErrorKind::NotFound {
            error::absent(format!(
                "`{}` not found on PATH",
                self.program.to_string_lossy()
            ))
        } else {
            anyhow::anyhow!("cannot start `{}`: {e}", self.display())
        }
    }

    /// Like [`Cmd::run_status`], with stdout and stderr merged, shown as they come and
    /// also written to `log` (the Makefile's `2>&1 | tee reports/x.log`). Returns the
    /// status and the text, for callers that judge the output (mypy's "Success").
    pub fn run_tee(&self, log: &std::path::Path) -> Result<(Status, String)> {
        use std::io::{Read, Write};
        errln!("$ {}", self.display());
        let sigint = Sigint::catch()?;
        let mut file = std::fs::File::create(log)
            .map_err(|e| error::usage(format!("{}: cannot write: {e}", log.display())))?;
        let reader = self
            .expression()
            .stderr_to_stdout()
            .unchecked()
            .reader()
            .map_err(|e| self.start_failed(e))?;
        let forward = Forward::start(reader.pids());
        let mut all = Vec::new();
        let mut buf = [0u8; 8192];
        let mut reading = &reader;
        loop {
            let n = match reading.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(anyhow::anyhow!("reading `{}`: {e}", self.display())),
            };
            // A closed stdout (`| head`) must not stop the log or the child.
            crate::out::child_bytes(&buf[..n]);
            file.write_all(&buf[..n])?;
            all.extend_from_slice(&buf[..n]);
        }
        drop(forward);
        let status = reader
            .try_wait()?
            .map(|o| o.status)
            .ok_or_else(|| anyhow::anyhow!("`{}` did not finish", self.display()))?;
        Ok((
            Status {
                code: status.code(),
                interrupted: sigint.seen() || was_interrupted(status),
            },
            String::from_utf8_lossy(&all).into_owned(),
        ))
    }

    /// Start the command in its own process group (so it and everything it starts can
    /// be stopped together), with inherited stdio.
    #[cfg(unix)]
    pub fn spawn_group(&self) -> Result<Group> {
        use std::os::unix::process::CommandExt;
        errln!("$ {}", self.display());
        let handle = self
            .inheriting()
            .unchecked()
            .before_spawn(|c| {
                c.process_group(0);
                Ok(())
            })
            .start()
            .map_err(|e| anyhow::anyhow!("cannot start `{}`: {e}", self.display()))?;
        let pid = *handle.pids().first().expect("one process");
        Ok(Group { handle, pid })
    }
}

/// The exit of a child run with [`Cmd::run_status`].
#[derive(Debug, Clone, Copy)]
pub struct Status {
    pub code: Option<i32>,
    pub interrupted: bool,
}

impl Status {
    /// On the contract: 0 → Ok, interrupted → 130, any other exit → 1 naming `what`
    /// (whose own message is above: stdio was inherited).
    pub fn check(self, what: &str) -> Result<()> {
        match self.exited(what)? {
            Some(0) => Ok(()),
            Some(c) => Err(error::failed(format!(
                "{what} failed (exit {c}); its message is above"
            ))),
            None => Err(error::failed(format!("{what} was killed by a signal"))),
        }
    }

    /// The exit code (None: ended by a signal) for a caller that reads codes itself; a
    /// run the user interrupted is already the 130 error naming `what`.
    pub fn exited(self, what: &str) -> Result<Option<i32>> {
        if self.interrupted {
            return Err(error::interrupted(format!("{what}: interrupted")));
        }
        Ok(self.code)
    }
}

/// The SIGINT or SIGTERM received, 0 while none.
static SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
/// Sections that handle a signal themselves (a child running, a file being replaced).
static WATCHED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static INSTALLED: std::sync::Once = std::sync::Once::new();
/// The write end of the self-pipe the handler wakes the watcher thread with (-1: none).
static WAKE_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Wakes whoever waits for "a signal came, or my work is done" ([`pause`], the
/// forwarding of a signal to children): the watcher thread notifies it when the handler
/// wrote to the self-pipe, and a finished wait notifies it itself. Nobody polls.
static BELL: Bell = Bell {
    lock: std::sync::Mutex::new(()),
    cv: std::sync::Condvar::new(),
};

struct Bell {
    lock: std::sync::Mutex<()>,
    cv: std::sync::Condvar,
}

impl Bell {
    fn ring(&self) {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.cv.notify_all();
    }

    /// Wait until `done()` or `timeout` (None: no limit); true when `done()`.
    fn wait_until(&self, timeout: Option<Duration>, done: impl Fn() -> bool) -> bool {
        let end = timeout.map(|t| std::time::Instant::now() + t);
        let mut g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if done() {
                return true;
            }
            g = match end {
                None => self.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(end) => {
                    let now = std::time::Instant::now();
                    if now >= end {
                        return false;
                    }
                    self.cv
                        .wait_timeout(g, end - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

/// SIGINT and SIGTERM end the tool with 130 / 143 at once, unless a [`Sigint`] section
/// is open: then they are recorded, the section finishes its work (stops its child,
/// removes its temporary file) and `main` exits with the signal's code.
///
/// Both are blocked while the handlers are registered: a signal arriving in between
/// would otherwise find the handler installed but its action not yet (and be lost, the
/// command then ending 0); blocked, it waits and is handled the moment they are unblocked.
pub fn install_signal_handlers() {
    INSTALLED.call_once(|| {
        let sigs = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM];
        let blocked = block_signals(&sigs);
        if let Ok((reader, writer)) = std::io::pipe() {
            use std::os::fd::IntoRawFd;
            WAKE_FD.store(writer.into_raw_fd(), std::sync::atomic::Ordering::SeqCst);
            let _ = std::thread::Builder::new()
                .name("signal-bell".into())
                .spawn(move || watch_signals(reader));
        }
        for sig in sigs {
            // SAFETY: the handler only touches atomics and calls write(2) and _exit(2),
            // all async-signal-safe.
            let _ = unsafe {
                signal_hook::low_level::register(sig, move || {
                    SIGNAL.store(sig, std::sync::atomic::Ordering::SeqCst);
                    if WATCHED.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                        libc::_exit(128 + sig);
                    }
                    let fd = WAKE_FD.load(std::sync::atomic::Ordering::SeqCst);
                    if fd >= 0 {
                        libc::write(fd, [1u8].as_ptr().cast(), 1);
                    }
                })
            };
        }
        if let Some(old) = blocked {
            restore_mask(&old);
        }
    });
}

/// The watcher: one byte per signal from the handler; each rings the bell.
fn watch_signals(mut reader: std::io::PipeReader) {
    use std::io::Read;
    let mut byte = [0u8; 1];
    while matches!(reader.read(&mut byte), Ok(1)) {
        BELL.ring();
    }
}

#[cfg(unix)]
fn block_signals(sigs: &[i32]) -> Option<libc::sigset_t> {
    // SAFETY: sigset_t is plain data initialised by sigemptyset; pthread_sigmask only
    // reads `set` and writes `old`.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in sigs {
            libc::sigaddset(&mut set, *s);
        }
        (libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) == 0).then_some(old)
    }
}

#[cfg(unix)]
fn restore_mask(old: &libc::sigset_t) {
    // SAFETY: restores the mask saved by block_signals.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut());
    }
}

/// The signal that asked the tool to stop (SIGINT or SIGTERM), if one came.
pub fn signal_received() -> Option<i32> {
    match SIGNAL.load(std::sync::atomic::Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Sleep up to `d` between two looks at something outside (a server coming up, a
/// scheduler's queue); true when a signal ended the pause early.
pub fn pause(d: Duration) -> bool {
    BELL.wait_until(Some(d), || signal_received().is_some())
}

/// While alive, SIGINT and SIGTERM set a flag instead of ending this process.
pub struct Sigint {
    _private: (),
}

impl Sigint {
    pub fn catch() -> Result<Sigint> {
        install_signal_handlers();
        WATCHED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Sigint { _private: () })
    }

    pub fn seen(&self) -> bool {
        signal_received().is_some()
    }
}

impl Drop for Sigint {
    fn drop(&mut self) {
        WATCHED.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Until dropped, passes a signal the tool received on to `pids` (children in this
/// process group): after a grace period (a Ctrl-C from the terminal reached them
/// already), the same signal, then SIGKILL. So no child outlives the tool when only
/// the tool was signalled (a scheduler's or `timeout`'s SIGTERM). Its thread sleeps on
/// the bell: dropping it returns at once, with no polling interval to wait out.
struct Forward {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Forward {
    fn start(pids: Vec<u32>) -> Forward {
        use std::sync::atomic::Ordering::SeqCst;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        let thread = std::thread::spawn(move || {
            BELL.wait_until(None, || flag.load(SeqCst) || signal_received().is_some());
            let Some(sig) = signal_received().filter(|_| !flag.load(SeqCst)) else {
                return;
            };
            let sig = Signal::from_named_raw(sig).unwrap_or(Signal::TERM);
            for (grace, signal) in [(2, sig), (5, Signal::KILL)] {
                if BELL.wait_until(Some(Duration::from_secs(grace)), || flag.load(SeqCst)) {
                    return;
                }
                // Our own children, not reaped yet (the caller waits after dropping this).
                for pid in pids.iter().filter_map(|p| Pid::from_raw(*p as i32)) {
                    let _ = kill_process(pid, signal);
                }
            }
        });
        Forward {
            done,
            thread: Some(thread),
        }
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        BELL.ring();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A child running in its own process group.
#[cfg(unix)]
pub struct Group {
    handle: duct::Handle,
    pid: u32,
}

#[cfg(unix)]
impl Group {
    /// The child's exit code once it has exited.
    pub fn try_wait(&self) -> Option<Option<i32>> {
        match self.handle.try_wait() {
            Ok(Some(out)) => Some(out.status.code()),
            Ok(None) => None,
            Err(_) => Some(None),
        }
    }

    /// The process group's id (its leader's pid).
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// SIGINT to the whole group, then SIGTERM and SIGKILL if it lingers.
    pub fn stop(&self, grace: Duration) {
        stop_group(self.pid, grace, || self.try_wait().is_some());
    }
}

/// SIGINT to a process group, then SIGTERM and SIGKILL, each after `grace`, until no
/// process of it is left (and `reaped` says its leader's exit was collected, for a group
/// we started). Returns the last signal sent.
#[cfg(unix)]
pub fn stop_group(pgid: u32, grace: Duration, reaped: impl Fn() -> bool) -> &'static str {
    for (signal, name) in [
        (Signal::INT, "SIGINT"),
        (Signal::TERM, "SIGTERM"),
        (Signal::KILL, "SIGKILL"),
    ] {
        // A stale group id only yields ESRCH.
        if let Some(group) = Pid::from_raw(pgid as i32) {
            let _ = kill_process_group(group, signal);
        }
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if reaped() && !group_alive(pgid) {
                return name;
            }
            // Processes of a group are not our children to wait for: look again soon.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    "SIGKILL"
}

/// Whether any process of the group exists.
#[cfg(unix)]
pub fn group_alive(pgid: u32) -> bool {
    Pid::from_raw(pgid as i32).is_some_and(|g| test_kill_process_group(g).is_ok())
}

/// When a process started (Linux: clock ticks since boot, from /proc), to tell it from a
/// later process that got the same pid. None where the system does not say.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

#[cfg(unix)]
fn was_interrupted(status: std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(2) || status.code() == Some(130)
}

#[cfg(not(unix))]
fn was_interrupted(status: std::process::ExitStatus) -> bool {
    status.code() == Some(130)
}

/// What a probe saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    NotFound,
    /// The tool was asked to stop (SIGINT / SIGTERM) and stopped the command.
    Interrupted,
    SpawnError(String),
    TimedOut(Duration),
    Exited {
        code: Option<i32>,
        stdout: String,
        stderr: String,
    },
}

impl Probe {
    /// stdout when the command exited 0.
    pub fn ok_stdout(&self) -> Option<&str> {
        match self {
            Probe::Exited {
                code: Some(0),
                stdout,
                ..
            } => Some(stdout),
            _ => None,
        }
    }

    /// stdout when the command exited and printed something, whatever its exit code
    /// (a checker that exits 1 with a full report).
    pub fn any_stdout(&self) -> Option<&str> {
        match self {
            Probe::Exited { stdout, .. } if !stdout.trim().is_empty() => Some(stdout),
            _ => None,
        }
    }

    /// One line describing a probe that did not succeed (for warnings and evidence).
    pub fn failure_line(&self) -> String {
        match self {
            Probe::NotFound => "not found".into(),
            Probe::Interrupted => "interrupted".into(),
            Probe::SpawnError(e) => format!("could not start: {e}"),
            Probe::TimedOut(t) => format!("no answer within {} s", t.as_secs()),
            Probe::Exited {
                code,
                stdout,
                stderr,
            } => {
                let text = first_line(stderr).or_else(|| first_line(stdout));
                let code = code.map_or("a signal".to_string(), |c| c.to_string());
                match text {
                    Some(t) => format!("exited with {code}: {t}"),
                    None => format!("exited with {code}"),
                }
            }
        }
    }
}

fn first_line(s: &str) -> Option<String> {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

/// One word as a POSIX shell reads it back: bare when plain, quoted otherwise (shlex's
/// rule, so `a{b,c}` is not brace-expanded). Used for the commands shown and the Slurm
/// batch script; a NUL (which no argument can hold) is shown escaped.
pub fn quote(s: &str) -> String {
    // shlex also quotes `=` and `,`, which mean something only in a command's first word
    // (an assignment) or inside braces: no word written here is either, so
    // `--build-arg VERSION=1.0` and `--severity CRITICAL,HIGH` read as people type them.
    let bare = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-./:@_=,".contains(&b));
    if bare {
        return s.to_string();
    }
    shlex::try_quote(s).map_or_else(|_| format!("{s:?}"), |q| q.into_owned())
}

/// A program's file name on this OS (`xtask`, `xtask.exe`).
pub fn exe(name: &str) -> String {
    format!("{name}{}", std::env::consts::EXE_SUFFIX)
}

/// The cargo running us (`$CARGO`), else the one on PATH.
pub fn cargo() -> Option<PathBuf> {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .or_else(|| find("cargo"))
}

/// Find a program on PATH: every match, in PATH order, each file once (for tools with
/// PATH traps, such as two docker clients).
pub fn find_all(program: &str) -> Vec<PathBuf> {
    let Ok(all) = which::which_all(program) else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, PathBuf)> = Vec::new();
    for candidate in all {
        let canon = std::fs::canonicalize(&candidate).unwrap_or_else(|_| candidate.clone());
        if !found.iter().any(|(_, c)| *c == canon) {
            found.push((candidate, canon));
        }
    }
    found.into_iter().map(|(p, _)| p).collect()
}

/// The first match of a program on PATH.
pub fn find(program: &str) -> Option<PathBuf> {
    which::which(program).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let c = Cmd::new("cargo")
            .args(["clippy", "--", "-D", "warnings"])
            .arg("a b")
            .arg("it's");
        assert_eq!(c.display(), r#"cargo clippy -- -D warnings 'a b' "it's""#);
        // Both brace expansion and `=` are quoted; a path stays bare.
        assert_eq!(quote("a{b,c}"), "'a{b,c}'");
        assert_eq!(quote("/opt/x-1.2/bin"), "/opt/x-1.2/bin");
    }

    #[test]
    fn probe_reports_missing_programs_and_exit_codes() {
        assert_eq!(
            Cmd::new("definitely-not-a-program-here").probe(Duration::from_secs(5)),
            Probe::NotFound
        );
        let p = Cmd::new("python3")
            .args([
                "-c",
                "import sys; print('out'); sys.stderr.write('err\\n'); sys.exit(3)",
            ])
            .probe(Duration::from_secs(5));
        assert_eq!(p.failure_line(), "exited with 3: err");
        assert!(p.ok_stdout().is_none());
    }

    #[test]
    fn probe_times_out() {
        let p = Cmd::new("sleep").arg("5").probe(Duration::from_millis(200));
        assert!(matches!(p, Probe::TimedOut(_)), "{p:?}");
    }

    #[test]
    fn run_tee_shows_logs_and_returns_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let (st, text) = Cmd::new("python3")
            .args([
                "-c",
                "import sys; print('out'); sys.stdout.flush(); sys.stderr.write('err\\n'); sys.exit(3)",
            ])
            .run_tee(&log)
            .unwrap();
        assert_eq!(st.code, Some(3));
        assert_eq!(text, "out\nerr\n");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "out\nerr\n");
    }

    #[test]
    fn run_shown_maps_status() {
        let e = Cmd::new("false").run_shown().unwrap_err();
        assert_eq!(error::code_of(&e), error::Code::Failed);
        let e = Cmd::new("no-such-program-xyz").run_shown().unwrap_err();
        assert_eq!(error::code_of(&e), error::Code::Absent);
        let e = Cmd::new("python3")
            .args(["-c", "raise SystemExit(130)"])
            .run_shown()
            .unwrap_err();
        assert_eq!(error::code_of(&e), error::Code::Interrupted);
    }
}
