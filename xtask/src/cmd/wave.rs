//! `cargo xtask wave` / `llmstudio`: run the app with the Makefile's environment;
//! `--wait` says when it answers; Ctrl-C stops it and everything it started.

use std::time::Duration;

use anyhow::Result;

use crate::ctx::Ctx;
use crate::error;
use crate::process::{self, Sigint};
use crate::uv;
use crate::waveapp::{self, Launch, Mode};

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

impl Wave {
    pub fn run(self, ctx: &Ctx, mode: Mode) -> Result<()> {
        let project = ctx.project()?;
        let policy = ctx.policy()?;
        let port = self.port.unwrap_or(policy.app.port);
        let module = self.app.as_deref().unwrap_or(&policy.app.module);
        waveapp::refuse_busy(port)?;
        if mode == Mode::NoReload {
            waveapp::nvidia_report();
        }
        let uv = uv::ensure(&ctx.workspace, policy)?;
        let sigint = Sigint::catch()?;
        let app = waveapp::start(
            &uv,
            project,
            &Launch {
                module,
                port,
                port_given: self.port.is_some(),
                mode,
            },
        )?;
        if self.wait {
            let ready = app.wait_ready(Duration::from_secs(self.wait_timeout), &sigint)?;
            errln!(
                "ready: the app answers on http://localhost:{port} after {:.1} s (waved after {:.1} s, the app server on {} after {:.1} s); Ctrl-C stops it",
                ready.total.as_secs_f64(),
                ready.waved.as_secs_f64(),
                app.app,
                ready.app.as_secs_f64(),
            );
        }
        loop {
            if sigint.seen() {
                errln!("stopping the app (process group)...");
                app.stop();
                return Err(error::interrupted("interrupted: the app was stopped"));
            }
            if let Some(code) = app.exited() {
                if app.stopped_elsewhere() {
                    errln!("the app was stopped by `cargo xtask stop-llmstudio`");
                    return Ok(());
                }
                return match code {
                    Some(0) => Ok(()),
                    Some(c) => Err(error::failed(format!("the app exited with {c}"))),
                    None => Err(error::failed("the app was killed by a signal")),
                };
            }
            crate::process::pause(Duration::from_millis(200));
        }
    }
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Stops the app that `cargo xtask wave`, `llmstudio` or `test-ui --serve` started for this project \
(recorded with its process group in .venv): SIGINT to the whole group, then SIGTERM and SIGKILL \
if it lingers, and says what was stopped. Unlike the Makefile's `kill $(lsof -ti :10101)`, a \
process this tool did not start is never touched, whatever port it holds. Nothing running is \
not an error.

Examples:
  cargo xtask llmstudio --wait & ...; cargo xtask stop-llmstudio
  cargo xtask stop-llmstudio --port 10102")]
pub struct StopLlmstudio {
    /// Only the app on this port [default: every app this tool started for the project]
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
}

impl StopLlmstudio {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let project = ctx.project()?;
        let mut stopped = 0;
        for (path, rec) in waveapp::records(project) {
            if self.port.is_some_and(|p| p != rec.port) {
                continue;
            }
            // The record goes first: the `wave` that started the app sees it gone and
            // knows the stop was asked for.
            let _ = std::fs::remove_file(&path);
            if !rec.alive() {
                errln!(
                    "note: {} on port {} (process group {}) is no longer running; forgot it",
                    rec.module,
                    rec.port,
                    rec.pgid
                );
                continue;
            }
            let signal = process::stop_group(rec.pgid, Duration::from_secs(5), || true);
            outln!(
                "stopped {} on port {} (process group {}, {signal})",
                rec.module,
                rec.port,
                rec.pgid
            );
            stopped += 1;
        }
        if stopped == 0 {
            let port = self.port.unwrap_or(ctx.policy()?.app.port);
            let busy = std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_millis(200),
            )
            .is_ok();
            outln!(
                "nothing to stop: no app started by cargo xtask for {project} is running{}",
                if busy {
                    format!(
                        " (port {port} is held by a process this tool did not start; it was left alone)"
                    )
                } else {
                    String::new()
                }
            );
        }
        Ok(())
    }
}
