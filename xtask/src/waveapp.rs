//! The app under H2O Wave, for `wave`, `llmstudio`, `test-ui --serve` and
//! `stop-llmstudio`: its environment as the Makefile set it, started in its own process
//! group and recorded (so the tool can stop what it started, and nothing else), and
//! readiness: waved answers, then the app's own server answers (it registers its route
//! with waved before it listens).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use crate::error;
use crate::fsx;
use crate::process::{self, Cmd, Group, Sigint};
use crate::uv::Uv;

/// `wave` reloads on code changes; `llmstudio` runs without reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Reload,
    NoReload,
}

/// What to start.
pub struct Launch<'a> {
    pub module: &'a str,
    /// The port waved (the app's address for users) listens on.
    pub port: u16,
    /// Whether the port was chosen by the user (then waved is told to listen there).
    pub port_given: bool,
    pub mode: Mode,
}

/// The record of a started app: `<project>/.venv/.xtask-app-<port>.json`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub pgid: u32,
    pub port: u16,
    pub module: String,
    /// The group leader's start time, where the OS says (a pid can be reused).
    pub started: Option<u64>,
}

/// A started app.
pub struct Running {
    group: Group,
    pub waved: SocketAddr,
    pub app: SocketAddr,
    pub module: String,
    record: Utf8PathBuf,
}

fn record_path(project: &Utf8Path, port: u16) -> Utf8PathBuf {
    project
        .join(".venv")
        .join(format!(".xtask-app-{port}.json"))
}

/// Every app this tool started for the project and recorded (stale records included).
pub fn records(project: &Utf8Path) -> Vec<(Utf8PathBuf, Record)> {
    let Ok(entries) = project.join(".venv").read_dir_utf8() else {
        return Vec::new();
    };
    let mut out: Vec<(Utf8PathBuf, Record)> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let n = e.file_name();
            n.starts_with(".xtask-app-") && n.ends_with(".json")
        })
        .filter_map(|e| {
            let r = serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
            Some((e.path().to_path_buf(), r))
        })
        .collect();
    out.sort_by_key(|(_, r)| r.port);
    out
}

impl Record {
    /// Whether the recorded group still runs the process this tool started.
    pub fn alive(&self) -> bool {
        process::group_alive(self.pgid)
            && (self.started.is_none() || process::start_time(self.pgid) == self.started)
    }
}

/// A busy port refused up front, before anything is installed or started.
pub fn refuse_busy(port: u16) -> Result<()> {
    if connects(SocketAddr::from(([127, 0, 0, 1], port))) {
        return Err(error::usage(format!(
            "port {port} is already in use (is the app already running? `cargo xtask stop-llmstudio` stops one this tool started): stop that process or pass --port"
        )));
    }
    Ok(())
}

/// Start the app with the Makefile's environment, in its own process group.
pub fn start(uv: &Uv, project: &Utf8Path, launch: &Launch) -> Result<Running> {
    refuse_busy(launch.port)?;
    let waved = SocketAddr::from(([127, 0, 0, 1], launch.port));
    let (app_address, app) = app_address()?;
    let workdir = match std::env::var("H2O_LLM_STUDIO_WORKDIR") {
        Ok(w) if !w.is_empty() => std::path::absolute(&w)
            .map_err(|e| error::usage(format!("H2O_LLM_STUDIO_WORKDIR={w}: {e}")))?
            .display()
            .to_string(),
        _ => project.to_string(),
    };
    let mut cmd = uv
        .cmd()
        .args(["run", "--frozen", "wave", "run"])
        .dir(project.as_std_path())
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("H2O_WAVE_APP_ACCESS_KEY_ID", "dev")
        .env("H2O_WAVE_APP_ACCESS_KEY_SECRET", "dev")
        .env("H2O_WAVE_RELOAD_EXCLUDE", "data:output:reports")
        .env("H2O_WAVE_MAX_REQUEST_SIZE", "25MB")
        .env("H2O_WAVE_NO_LOG", "true")
        .env(
            "H2O_WAVE_PRIVATE_DIR",
            format!("/download/@{workdir}/output/download"),
        )
        .env("H2O_LLM_STUDIO_WORKDIR", &workdir)
        .env("H2O_WAVE_APP_ADDRESS", &app_address);
    if launch.port_given {
        cmd = cmd.env("H2O_WAVE_LISTEN", format!(":{}", launch.port)).env(
            "H2O_WAVE_ADDRESS",
            format!("http://127.0.0.1:{}", launch.port),
        );
    }
    if launch.mode == Mode::NoReload {
        cmd = cmd.arg("--no-reload");
    }
    let group = cmd.arg(launch.module).spawn_group()?;
    let record = record_path(project, launch.port);
    let rec = Record {
        pgid: group.id(),
        port: launch.port,
        module: launch.module.to_string(),
        started: process::start_time(group.id()),
    };
    if record.parent().is_some_and(Utf8Path::is_dir) {
        fsx::write_atomic(&record, serde_json::to_string_pretty(&rec)?.as_bytes())?;
    }
    Ok(Running {
        group,
        waved,
        app,
        module: launch.module.to_string(),
        record,
    })
}

/// When the app became ready.
pub struct Ready {
    pub total: Duration,
    pub waved: Duration,
    pub app: Duration,
}

impl Running {
    /// The app's exit code once it has exited (None inside: killed by a signal).
    pub fn exited(&self) -> Option<Option<i32>> {
        self.group.try_wait()
    }

    /// Whether `cargo xtask stop-llmstudio` took the record (it stopped the app).
    pub fn stopped_elsewhere(&self) -> bool {
        !self.record.exists()
    }

    /// Stop the whole group and forget the record.
    pub fn stop(&self) {
        self.group.stop(Duration::from_secs(5));
        let _ = std::fs::remove_file(&self.record);
    }

    /// Wait until waved and the app's own server answer, showing progress. Stops the app
    /// on timeout (exit 1 naming what never came up) and on Ctrl-C (130).
    pub fn wait_ready(&self, timeout: Duration, sigint: &Sigint) -> Result<Ready> {
        let mut w = crate::out::Progress::new();
        let started = Instant::now();
        let (mut waved_up, mut app_up) = (None, None);
        loop {
            if sigint.seen() {
                w.clear();
                errln!("stopping the app (process group)...");
                self.stop();
                return Err(error::interrupted("interrupted: the app was stopped"));
            }
            if let Some(code) = self.exited() {
                w.clear();
                let _ = std::fs::remove_file(&self.record);
                return Err(error::failed(format!(
                    "the app exited before it was ready ({}); its output is above",
                    code.map_or("killed by a signal".into(), |c| format!("exit {c}"))
                )));
            }
            if waved_up.is_none() && http_answers(self.waved) {
                waved_up = Some(started.elapsed());
            }
            if waved_up.is_some() && app_up.is_none() && http_answers(self.app) {
                app_up = Some(started.elapsed());
            }
            if let (Some(waved), Some(app)) = (waved_up, app_up) {
                w.clear();
                return Ok(Ready {
                    total: started.elapsed(),
                    waved,
                    app,
                });
            }
            let what = match waved_up {
                None => format!("waiting for the Wave server on port {}", self.waved.port()),
                Some(_) => format!(
                    "waiting for the app ({}) to register and serve on {}",
                    self.module, self.app
                ),
            };
            if started.elapsed() > timeout {
                w.clear();
                let missing = match waved_up {
                    None => format!(
                        "the Wave server (waved) never answered on port {}",
                        self.waved.port()
                    ),
                    Some(_) => format!(
                        "waved answers on port {} but the app server ({}) never answered on {}",
                        self.waved.port(),
                        self.module,
                        self.app
                    ),
                };
                self.stop();
                return Err(error::failed(format!(
                    "the app was not ready within {} s: {missing} (its output is above); the app was stopped",
                    timeout.as_secs()
                )));
            }
            w.show(&what, started.elapsed());
            crate::process::pause(Duration::from_millis(200));
        }
    }
}

impl Drop for Running {
    /// Whatever ends the tool's part (an error, a panic on a closed stderr), the app it
    /// started does not outlive it.
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.group.stop(Duration::from_secs(5));
        }
        let _ = std::fs::remove_file(&self.record);
    }
}

/// The app server's address: `H2O_WAVE_APP_ADDRESS` as the user set it, else a free
/// loopback port (as `wave run` would scan for one, but known to us).
fn app_address() -> Result<(String, SocketAddr)> {
    if let Ok(url) = std::env::var("H2O_WAVE_APP_ADDRESS")
        && !url.is_empty()
    {
        let hostport = url
            .split_once("://")
            .map_or(url.as_str(), |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or_default();
        let addr = hostport
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| {
                error::usage(format!(
                    "H2O_WAVE_APP_ADDRESS={url}: not an address the app can listen on (write http://HOST:PORT)"
                ))
            })?;
        return Ok((url, addr));
    }
    let probe = TcpListener::bind(("127.0.0.1", 0))?;
    let addr = probe.local_addr()?;
    drop(probe);
    Ok((format!("http://{addr}"), addr))
}

fn connects(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Whether an HTTP server answers at `addr` (any status): a socket that accepts but
/// does not answer (bound, not yet serving) does not count.
pub fn http_answers(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(1000)));
    let _ = s.set_write_timeout(Some(Duration::from_millis(1000)));
    if s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 5];
    s.read_exact(&mut head).is_ok() && &head == b"HTTP/"
}

/// What the Makefile's `nvidia-smi` showed, without ever failing a non-NVIDIA host.
pub fn nvidia_report() {
    match process::find("nvidia-smi") {
        None => errln!("note: nvidia-smi not found: the app runs on CPU/MPS"),
        Some(smi) => {
            let p = Cmd::new(smi).arg("-L").probe(Duration::from_secs(30));
            match p.ok_stdout() {
                Some(out) => err!("{out}"),
                None => errln!(
                    "note: nvidia-smi {}: the app may run on CPU",
                    p.failure_line()
                ),
            }
        }
    }
}
