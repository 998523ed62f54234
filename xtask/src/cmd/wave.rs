//! `cargo xtask wave` / `llmstudio`: run the app with the Makefile's environment;
//! `--wait` says when it answers; Ctrl-C stops it and everything it started.

use std::net::{SocketAddr, TcpStream};
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
$H2O_LLM_STUDIO_WORKDIR or the project folder. Ctrl-C stops the app's whole process group (exit 130).")]
pub struct Wave {
    /// Wait until the app answers on its port and say so (then keep running)
    #[arg(long)]
    wait: bool,
    /// Seconds --wait allows before giving up
    #[arg(long, default_value_t = 180, value_name = "SECS")]
    wait_timeout: u64,
    /// The port the app answers on [default: the policy's, 10101]
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// The Wave app module [default: the policy's, llm_studio.app]
    #[arg(long, value_name = "MODULE")]
    app: Option<String>,
}

impl Wave {
    /// `reload`: `wave` reloads on code changes; `llmstudio` runs with --no-reload.
    pub fn run(self, ctx: &Ctx, reload: bool) -> Result<()> {
        let project = ctx.project()?;
        let policy = ctx.policy()?;
        let port = self.port.unwrap_or(policy.app.port);
        let module = self
            .app
            .clone()
            .unwrap_or_else(|| policy.app.module.clone());
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if answers(addr) {
            return Err(error::usage(format!(
                "port {port} is already in use (is the app already running?): stop that process or pass --port"
            )));
        }
        if !reload {
            nvidia_report();
        }
        let uv = uv::ensure(&ctx.workspace, policy)?;
        let workdir = std::env::var("H2O_LLM_STUDIO_WORKDIR")
            .ok()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| project.to_string());
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
            .env("H2O_LLM_STUDIO_WORKDIR", &workdir);
        if self.port.is_some() {
            cmd = cmd
                .env("H2O_WAVE_LISTEN", format!(":{port}"))
                .env("H2O_WAVE_ADDRESS", format!("http://127.0.0.1:{port}"));
        }
        if !reload {
            cmd = cmd.arg("--no-reload");
        }
        let cmd = cmd.arg(&module);
        let sigint = Sigint::catch()?;
        let child = cmd.spawn_group()?;
        let started = Instant::now();
        let mut announced = !self.wait;
        loop {
            if sigint.seen() {
                eprintln!("stopping the app (process group)...");
                child.stop(Duration::from_secs(5));
                return Err(error::interrupted("interrupted: the app was stopped"));
            }
            if let Some(code) = child.try_wait() {
                return match code {
                    Some(0) => Ok(()),
                    Some(c) => Err(error::failed(format!("the app exited with {c}"))),
                    None => Err(error::failed("the app was killed by a signal")),
                };
            }
            if !announced {
                if answers(addr) {
                    eprintln!(
                        "the app answers on http://localhost:{port} ({:.1} s); Ctrl-C stops it",
                        started.elapsed().as_secs_f64()
                    );
                    announced = true;
                } else if started.elapsed() > Duration::from_secs(self.wait_timeout) {
                    child.stop(Duration::from_secs(5));
                    return Err(error::failed(format!(
                        "the app did not answer on port {port} within {} s",
                        self.wait_timeout
                    )));
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn answers(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
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
