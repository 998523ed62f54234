//! `cargo xtask wave` / `llmstudio`: run the app with the Makefile's environment;
//! `--wait` says when it answers; Ctrl-C stops it and everything it started.

use std::io::{IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::ctx::Ctx;
use crate::error;
use crate::process::{Cmd, Sigint, find};
use crate::uv;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Environment as the Makefile set it: HF_HUB_DISABLE_TELEMETRY=1, H2O_WAVE_APP_ACCESS_KEY_ID=dev, \
H2O_WAVE_APP_ACCESS_KEY_SECRET=dev, H2O_WAVE_RELOAD_EXCLUDE, H2O_WAVE_MAX_REQUEST_SIZE=25MB, \
H2O_WAVE_NO_LOG=true and H2O_WAVE_PRIVATE_DIR=/download/@$WORKDIR/output/download, where WORKDIR is \
$H2O_LLM_STUDIO_WORKDIR or the project folder (made absolute). The app's own server gets a free \
loopback port in H2O_WAVE_APP_ADDRESS unless you set one.

--wait reports when the app is ready: first the Wave server (waved) answers on its port, then the \
app's own server answers on H2O_WAVE_APP_ADDRESS. The app registers its route with waved before \
its server listens, so the second means the app is registered and serving; for H2O LLM Studio \
that follows the import of the app (about a minute and a half on a small machine, cold). \
Ctrl-C stops the app's whole process group (exit 130).

Examples:
  cargo xtask wave --wait
  cargo xtask llmstudio --wait --wait-timeout 900")]
pub struct Wave {
    /// Say when the app is ready (waved and the app's own server answer), then keep running
    #[arg(long)]
    wait: bool,
    /// Seconds --wait allows before giving up (stops the app, exit 1)
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    wait_timeout: u64,
    /// The port the app answers on [default: the policy's, 10101]
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// The Wave app module [default: the policy's, llm_studio.app]
    #[arg(long, value_name = "MODULE")]
    app: Option<String>,
}

/// `wave` reloads on code changes; `llmstudio` runs without reload and shows the GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Reload,
    NoReload,
}

impl Wave {
    pub fn run(self, ctx: &Ctx, mode: Mode) -> Result<()> {
        let project = ctx.project()?;
        let policy = ctx.policy()?;
        let port = self.port.unwrap_or(policy.app.port);
        let module = self
            .app
            .clone()
            .unwrap_or_else(|| policy.app.module.clone());
        let waved = SocketAddr::from(([127, 0, 0, 1], port));
        if connects(waved) {
            return Err(error::usage(format!(
                "port {port} is already in use (is the app already running?): stop that process or pass --port"
            )));
        }
        let (app_address, app_addr) = app_address()?;
        if mode == Mode::NoReload {
            nvidia_report();
        }
        let uv = uv::ensure(&ctx.workspace, policy)?;
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
        if self.port.is_some() {
            cmd = cmd
                .env("H2O_WAVE_LISTEN", format!(":{port}"))
                .env("H2O_WAVE_ADDRESS", format!("http://127.0.0.1:{port}"));
        }
        if mode == Mode::NoReload {
            cmd = cmd.arg("--no-reload");
        }
        let cmd = cmd.arg(&module);
        let sigint = Sigint::catch()?;
        let child = cmd.spawn_group()?;
        let mut wait = self.wait.then(|| Waiting::new(waved, app_addr, &module));
        loop {
            if sigint.seen() {
                if let Some(w) = &mut wait {
                    w.clear_line();
                }
                eprintln!("stopping the app (process group)...");
                child.stop(Duration::from_secs(5));
                return Err(error::interrupted("interrupted: the app was stopped"));
            }
            if let Some(code) = child.try_wait() {
                if let Some(w) = &mut wait {
                    w.clear_line();
                }
                return match code {
                    Some(0) => Ok(()),
                    Some(c) => Err(error::failed(format!("the app exited with {c}"))),
                    None => Err(error::failed("the app was killed by a signal")),
                };
            }
            if let Some(w) = &mut wait {
                if w.poll() {
                    eprintln!(
                        "ready: the app answers on http://localhost:{port} after {:.1} s (waved after {:.1} s, the app server on {app_addr} after {:.1} s); Ctrl-C stops it",
                        w.started.elapsed().as_secs_f64(),
                        w.waved_up.unwrap_or_default().as_secs_f64(),
                        w.app_up.unwrap_or_default().as_secs_f64(),
                    );
                    wait = None;
                } else if w.started.elapsed() > Duration::from_secs(self.wait_timeout) {
                    w.clear_line();
                    let what = w.missing();
                    child.stop(Duration::from_secs(5));
                    return Err(error::failed(format!(
                        "the app was not ready within --wait-timeout {} s: {what} (its output is above); the app was stopped",
                        self.wait_timeout
                    )));
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
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

/// `--wait`: what has come up so far, and progress while it has not.
struct Waiting {
    waved: SocketAddr,
    app: SocketAddr,
    module: String,
    started: Instant,
    waved_up: Option<Duration>,
    app_up: Option<Duration>,
    last_report: Instant,
    tty: bool,
    line_open: bool,
}

impl Waiting {
    fn new(waved: SocketAddr, app: SocketAddr, module: &str) -> Waiting {
        let now = Instant::now();
        Waiting {
            waved,
            app,
            module: module.to_string(),
            started: now,
            waved_up: None,
            app_up: None,
            last_report: now,
            tty: std::io::stderr().is_terminal(),
            line_open: false,
        }
    }

    /// Check once; true when both servers answer.
    fn poll(&mut self) -> bool {
        if self.waved_up.is_none() && http_answers(self.waved) {
            self.waved_up = Some(self.started.elapsed());
        }
        if self.waved_up.is_some() && self.app_up.is_none() && http_answers(self.app) {
            self.app_up = Some(self.started.elapsed());
        }
        if self.app_up.is_some() {
            self.clear_line();
            return true;
        }
        self.progress();
        false
    }

    fn missing(&self) -> String {
        if self.waved_up.is_none() {
            format!(
                "the Wave server (waved) never answered on port {}",
                self.waved.port()
            )
        } else {
            format!(
                "waved answers on port {} but the app server ({}) never answered on {}",
                self.waved.port(),
                self.module,
                self.app
            )
        }
    }

    fn waiting_for(&self) -> String {
        if self.waved_up.is_none() {
            format!("waiting for the Wave server on port {}", self.waved.port())
        } else {
            format!(
                "waiting for the app ({}) to register and serve on {}",
                self.module, self.app
            )
        }
    }

    /// A live line on a terminal; otherwise a line every 15 s.
    fn progress(&mut self) {
        let secs = self.started.elapsed().as_secs();
        if self.tty {
            if self.last_report.elapsed() >= Duration::from_secs(1) || !self.line_open {
                eprint!("\r\x1b[2K{} ... {secs} s", self.waiting_for());
                self.line_open = true;
                self.last_report = Instant::now();
            }
        } else if self.last_report.elapsed() >= Duration::from_secs(15) {
            eprintln!("{} ... {secs} s", self.waiting_for());
            self.last_report = Instant::now();
        }
    }

    fn clear_line(&mut self) {
        if self.line_open {
            eprint!("\r\x1b[2K");
            self.line_open = false;
        }
    }
}

fn connects(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Whether an HTTP server answers at `addr` (any status): a socket that accepts but
/// does not answer (bound, not yet serving) does not count.
fn http_answers(addr: SocketAddr) -> bool {
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
fn nvidia_report() {
    match find("nvidia-smi") {
        None => eprintln!("note: nvidia-smi not found: the app runs on CPU/MPS"),
        Some(smi) => {
            let p = Cmd::new(smi).arg("-L").probe(Duration::from_secs(30));
            match p.ok_stdout() {
                Some(out) => eprint!("{out}"),
                None => eprintln!(
                    "note: nvidia-smi {}: the app may run on CPU",
                    p.failure_line()
                ),
            }
        }
    }
}
