//! Standard output that never panics. A reader that goes away (`| head`) ends the
//! output quietly: the command still finishes and exits with its own code. Any other
//! write error (a full disk) is remembered, and `main` reports it in one line and exits
//! non-zero: a command must not succeed when it could not say what it did.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);
/// The command's result is on stdout (`--json`): children's output goes to stderr.
static RESERVED: AtomicBool = AtomicBool::new(false);
static WROTE: AtomicBool = AtomicBool::new(false);
static FAILED: Mutex<Option<String>> = Mutex::new(None);

/// `print!` for the commands.
macro_rules! out {
    ($($t:tt)*) => { $crate::out::write(&format!($($t)*)) };
}

/// `println!` for the commands.
macro_rules! outln {
    () => { $crate::out::write("\n") };
    ($($t:tt)*) => { $crate::out::write(&format!("{}\n", format_args!($($t)*))) };
}

/// `eprintln!` for the commands: stderr is for people (progress, warnings, the error
/// line). A closed or failing stderr loses the text and nothing else (eprintln! would panic).
macro_rules! errln {
    () => { $crate::out::err("\n") };
    ($($t:tt)*) => { $crate::out::err(&format!("{}\n", format_args!($($t)*))) };
}

/// `eprint!` for the commands.
macro_rules! err {
    ($($t:tt)*) => { $crate::out::err(&format!($($t)*)) };
}

/// Text for stderr, written whole (one line at a time reaches a shared terminal unmixed).
pub fn err(text: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(text.as_bytes()).and_then(|()| e.flush());
}

pub fn write(text: &str) {
    write_bytes(text.as_bytes());
}

/// Bytes as they come (a child's output passed through).
pub fn write_bytes(bytes: &[u8]) {
    WROTE.store(true, Ordering::Relaxed);
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CLOSED.store(true, Ordering::Relaxed);
        } else if let Ok(mut f) = FAILED.lock() {
            f.get_or_insert_with(|| e.to_string());
        }
    }
}

/// From now on stdout carries only the command's result (one JSON document): what child
/// processes print goes to stderr.
pub fn reserve_stdout() {
    RESERVED.store(true, Ordering::Relaxed);
}

pub fn stdout_reserved() -> bool {
    RESERVED.load(Ordering::Relaxed)
}

/// A child's output passed through: to stdout, or to stderr once stdout is reserved.
pub fn child_bytes(bytes: &[u8]) {
    if stdout_reserved() {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(bytes).and_then(|()| err.flush());
    } else {
        write_bytes(bytes);
    }
}

/// A line for people that is a command's output when no result holds stdout (pytest's
/// summary after `test`), and goes to stderr under `--json`.
pub fn human_line(text: &str) {
    child_bytes(format!("{text}\n").as_bytes());
}

/// The first write error other than a closed pipe.
pub fn failure() -> Option<String> {
    FAILED.lock().ok().and_then(|f| f.clone())
}

/// Whether anything was written to stdout (a command's own JSON report, say).
pub fn wrote_anything() -> bool {
    WROTE.load(Ordering::Relaxed)
}

/// Progress on stderr for a long wait: a live line on a terminal, elsewhere a line
/// every 15 s. Never fails: a closed stderr only loses the progress.
pub struct Progress {
    tty: bool,
    last: Option<std::time::Instant>,
    open: bool,
}

impl Progress {
    pub fn new() -> Progress {
        use std::io::IsTerminal;
        Progress {
            tty: std::io::stderr().is_terminal(),
            last: None,
            open: false,
        }
    }

    /// What is being waited for, and for how long so far.
    pub fn show(&mut self, what: &str, elapsed: std::time::Duration) {
        let every = std::time::Duration::from_secs(if self.tty { 1 } else { 15 });
        match self.last {
            Some(t) if t.elapsed() < every => return,
            None if !self.tty => {
                self.last = Some(std::time::Instant::now());
                return;
            }
            _ => {}
        }
        let secs = elapsed.as_secs();
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{what} ... {secs} s");
            self.open = true;
        } else {
            let _ = writeln!(err, "{what} ... {secs} s");
        }
        self.last = Some(std::time::Instant::now());
    }

    /// An event worth its own line (the live line is redrawn after it).
    pub fn line(&mut self, text: &str) {
        self.clear();
        let _ = writeln!(std::io::stderr().lock(), "{text}");
        if self.tty {
            self.last = None;
        }
    }

    pub fn clear(&mut self) {
        if self.open {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            self.open = false;
        }
    }
}
