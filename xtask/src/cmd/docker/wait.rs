//! `docker run --wait`: return once the app inside the container is up. Under H2O Wave
//! that is when the app has registered its route with waved: waved answers at once, so
//! the app's own server (which listens only after it registered) is asked from inside the
//! container. A container that exits first, or a timeout, ends with its last log lines.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Result;
use camino::Utf8Path;

use crate::error;
use crate::process::{self, Cmd, Sigint};

/// Asks the app's own server, inside the container, whether it answers HTTP: at
/// H2O_WAVE_APP_ADDRESS as the container has it, else Wave's default (127.0.0.1:8000).
const APP_PROBE: &str = "\
import os, socket, sys, urllib.parse
u = urllib.parse.urlparse(os.environ.get('H2O_WAVE_APP_ADDRESS') or 'http://127.0.0.1:8000')
s = socket.create_connection((u.hostname or '127.0.0.1', u.port or 80), timeout=2)
s.settimeout(3)
s.sendall(b'GET / HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n')
sys.exit(0 if s.recv(5) == b'HTTP/' else 1)
";

/// How long each step took.
pub struct Up {
    pub waved: Duration,
    pub app: Duration,
}

pub struct Wait<'a> {
    pub client: &'a Utf8Path,
    pub container: &'a str,
    /// The host port waved is published on.
    pub port: u16,
    pub timeout: Duration,
}

impl Wait<'_> {
    fn docker(&self, args: &[&str]) -> Cmd {
        Cmd::new(self.client.as_str()).args(args)
    }

    /// `running`, or the container's end (`exited 1`), from docker inspect.
    fn state(&self) -> Option<String> {
        let p = self
            .docker(&[
                "inspect",
                "--format",
                "{{.State.Status}} {{.State.ExitCode}}",
                self.container,
            ])
            .probe(Duration::from_secs(15));
        p.ok_stdout().map(|s| s.trim().to_string())
    }

    /// The container's last log lines, on stderr.
    fn show_log(&self) {
        let p = self
            .docker(&["logs", "--tail", "20", self.container])
            .cleanup(Duration::from_secs(15));
        let lines = log_lines(&p);
        if !lines.is_empty() {
            errln!("its last log lines:");
            for l in lines {
                errln!("  {l}");
            }
        }
    }

    fn remove(&self) {
        let _ = self
            .docker(&["rm", "-f", self.container])
            .cleanup(Duration::from_secs(30));
    }

    /// Poll until waved answers on the host port and the app answers inside.
    pub fn until_up(&self, what: &str) -> Result<Up> {
        let sigint = Sigint::catch()?;
        let mut shown = crate::out::Progress::new();
        let started = Instant::now();
        let waved_addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut waved = None;
        loop {
            if sigint.seen() {
                shown.clear();
                self.remove();
                return Err(error::interrupted("interrupted: the container was removed"));
            }
            match self.state() {
                Some(s) if s.starts_with("running") || s.starts_with("created") => {}
                state => {
                    shown.clear();
                    let end = state.map_or("is gone".to_string(), |s| match s.split_once(' ') {
                        Some((_, code)) => format!("exited with {code}"),
                        None => s,
                    });
                    self.show_log();
                    self.remove();
                    return Err(error::failed(format!(
                        "the container {end} after {:.1} s, before {what} was up (its log is above; the container was removed)",
                        started.elapsed().as_secs_f64()
                    )));
                }
            }
            if waved.is_none() && crate::waveapp::http_answers(waved_addr) {
                waved = Some(started.elapsed());
            }
            if let Some(w) = waved
                && self
                    .docker(&["exec", self.container, "python3", "-c", APP_PROBE])
                    .probe(Duration::from_secs(30))
                    .ok_stdout()
                    .is_some()
            {
                shown.clear();
                return Ok(Up {
                    waved: w,
                    app: started.elapsed(),
                });
            }
            if started.elapsed() > self.timeout {
                shown.clear();
                let missing = match waved {
                    None => format!("waved never answered on port {}", self.port),
                    Some(_) => format!(
                        "waved answers on port {} but {what} never registered",
                        self.port
                    ),
                };
                self.show_log();
                self.remove();
                return Err(error::failed(format!(
                    "not up within {} s: {missing} (its log is above; the container was removed; raise --wait-timeout under QEMU)",
                    self.timeout.as_secs()
                )));
            }
            let doing = match waved {
                None => format!("waiting for waved on port {}", self.port),
                Some(_) => format!("waiting for {what} to register with waved"),
            };
            shown.show(&doing, started.elapsed());
            process::pause(Duration::from_millis(500));
        }
    }
}

/// A log probe's lines: docker logs writes the container's stdout, then its stderr, to
/// its own two streams.
fn log_lines(p: &process::Probe) -> Vec<String> {
    match p {
        process::Probe::Exited { stdout, stderr, .. } => stdout
            .lines()
            .chain(stderr.lines())
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}
