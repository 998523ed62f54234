//! The start proof: a built image, on its own platform (QEMU for a foreign one) and as its
//! own user, imports the app's entry modules within a time limit. An image whose proof
//! fails loses its tag (kept as `…-unproven`); a passed proof is recorded by image ID, so
//! `push` and a rebuild that changed nothing need not run it again.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use crate::error;
use crate::fsx;
use crate::process::{Cmd, Probe};

/// What the proof imports, where and how long it may take.
pub struct Plan<'a> {
    pub client: &'a Utf8Path,
    pub tag: &'a str,
    pub platform: &'a str,
    pub modules: &'a [String],
    pub timeout: Duration,
    /// templates/docker/start_proof.py
    pub script: &'a Utf8Path,
}

/// One module's line from the script.
#[derive(Deserialize, Debug)]
struct ModuleLine {
    module: String,
    ok: bool,
    seconds: f64,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    r#where: Option<String>,
}

/// The image's identity and size, from `docker image inspect`.
pub struct Identity {
    pub id: String,
    pub size: u64,
}

/// A passed proof, as recorded.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Proven {
    pub id: String,
    pub tag: String,
    pub platform: String,
    pub modules: Vec<String>,
    /// The proof's wall time, in seconds.
    pub seconds: f64,
    /// When it passed (Unix seconds).
    pub at: u64,
}

impl Plan<'_> {
    /// The `docker run` the proof is (the script passed with `-c`, the modules after it).
    pub fn command(&self, name: &str) -> Result<Cmd> {
        let script = std::fs::read_to_string(self.script).map_err(|e| {
            error::absent(format!(
                "{}: cannot read ({e}): copy templates/ from the xtask repository",
                self.script
            ))
        })?;
        Ok(Cmd::new(self.client.as_str())
            .args(["run", "--rm", "--name", name, "--platform", self.platform])
            .args(["--entrypoint", "python3", "-w", "/app", self.tag, "-c"])
            .arg(script)
            .args(self.modules))
    }

    /// How a dry run shows the proof (the script by its path, not its text).
    pub fn shown(&self) -> String {
        let mut words = vec![
            self.client.to_string(),
            "run".into(),
            "--rm".into(),
            "--platform".into(),
            self.platform.into(),
            "--entrypoint".into(),
            "python3".into(),
            "-w".into(),
            "/app".into(),
            self.tag.into(),
            "-c".into(),
            format!("\"$(cat {})\"", self.script),
        ];
        words.extend(self.modules.iter().cloned());
        words.join(" ")
    }

    /// The record of this proof's pass on image `id`, which took `seconds`.
    pub fn proven(&self, id: &str, seconds: f64) -> Proven {
        Proven {
            id: id.to_string(),
            tag: self.tag.to_string(),
            platform: self.platform.to_string(),
            modules: self.modules.to_vec(),
            seconds,
            at: now(),
        }
    }

    /// Run the proof. Ok with its wall time in seconds when every module imports;
    /// otherwise the image's tag is taken away (see [`unprove`]) and the failure is the error.
    pub fn run(&self) -> Result<f64> {
        let name = format!("xtask-proof-{}", std::process::id());
        let cmd = self.command(&name)?;
        errln!(
            "start proof: {} on {} imports {} as the image's own user (limit {} s)...",
            self.tag,
            self.platform,
            self.modules.join(", "),
            self.timeout.as_secs()
        );
        let started = Instant::now();
        let probe = cmd.probe(self.timeout);
        let took = started.elapsed().as_secs_f64();
        let lines: Vec<ModuleLine> = probe
            .any_stdout()
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        match &probe {
            Probe::Exited { code: Some(0), .. } if lines.iter().all(|l| l.ok) => {
                let each: Vec<String> = lines
                    .iter()
                    .map(|l| format!("{} {:.1} s", l.module, l.seconds))
                    .collect();
                errln!("start proof: imported {}", each.join(", "));
                return Ok(took);
            }
            Probe::TimedOut(_) | Probe::Interrupted => {
                let rm = Cmd::new(self.client.as_str()).args(["rm", "-f", &name]);
                let _ = rm.cleanup(Duration::from_secs(30));
            }
            _ => {}
        }
        if matches!(probe, Probe::Interrupted) {
            let kept = unprove(self.client, self.tag);
            return Err(error::interrupted(format!(
                "interrupted: the start proof was stopped; {kept}"
            )));
        }
        let why = failure(&probe, &lines);
        if let Probe::Exited { stderr, .. } = &probe {
            let tail = last_lines(stderr, 8);
            if !tail.is_empty() {
                errln!("start proof: the image's last lines:");
                for l in tail {
                    errln!("  {l}");
                }
            }
        }
        let kept = unprove(self.client, self.tag);
        Err(error::failed(format!(
            "start proof failed for {} on {} after {took:.1} s: {why}; {kept}",
            self.tag, self.platform
        )))
    }
}

/// Why a proof failed, in one line: the module that did not import and where, or the
/// time limit, or what python3 or docker said.
fn failure(probe: &Probe, lines: &[ModuleLine]) -> String {
    match (probe, lines.iter().find(|l| !l.ok)) {
        (Probe::TimedOut(t), _) => {
            let done: Vec<&str> = lines.iter().map(|l| l.module.as_str()).collect();
            format!(
                "the entry modules did not import within {} s (imported: {}; raise --smoke-timeout under QEMU)",
                t.as_secs(),
                if done.is_empty() {
                    "none".to_string()
                } else {
                    done.join(", ")
                }
            )
        }
        (_, Some(l)) => format!(
            "{} does not import: {}{}",
            l.module,
            l.error.as_deref().unwrap_or("an error"),
            l.r#where
                .as_deref()
                .map_or(String::new(), |w| format!(" (at {w})"))
        ),
        (Probe::Exited { code, stderr, .. }, None) => format!(
            "python3 in the image ended with {} before importing: {}",
            code.map_or("a signal".into(), |c| format!("exit {c}")),
            last_lines(stderr, 1).join(" ")
        ),
        (other, None) => format!("docker run: {}", other.failure_line()),
    }
}

/// The last `n` non-empty lines of a stream (a traceback's end).
fn last_lines(text: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// `name:tag` → `name:tag-unproven`; a reference without a tag gets `latest-unproven`.
pub fn unproven_tag(tag: &str) -> String {
    let last = tag.rsplit('/').next().unwrap_or(tag);
    if last.contains(':') {
        format!("{tag}-unproven")
    } else {
        format!("{tag}:latest-unproven")
    }
}

/// Keep a failed image as `…-unproven` and take its tag away, so nothing runs or pushes
/// it as good; says which happened.
fn unprove(client: &Utf8Path, tag: &str) -> String {
    let unproven = unproven_tag(tag);
    let docker = |args: &[&str]| {
        Cmd::new(client.as_str())
            .args(args)
            .cleanup(Duration::from_secs(60))
    };
    let tagged = docker(&["tag", tag, &unproven]).ok_stdout().is_some();
    let removed = tagged && docker(&["rmi", tag]).ok_stdout().is_some();
    match (tagged, removed) {
        (true, true) => format!(
            "{tag} was removed; the image is kept as {unproven} (look inside: `docker run --rm -it --entrypoint bash {unproven}`)"
        ),
        (true, false) => format!(
            "the image is also tagged {unproven}, but {tag} could not be removed: remove it with `docker rmi {tag}`"
        ),
        _ => format!("{tag} could not be retagged {unproven}: remove it with `docker rmi {tag}`"),
    }
}

/// `docker image inspect`: the image's ID and size, where the daemon has it.
pub fn identity(client: &Utf8Path, tag: &str) -> Option<Identity> {
    let out = Cmd::new(client.as_str())
        .args(["image", "inspect", "--format", "{{.Id}} {{.Size}}", tag])
        .probe(Duration::from_secs(30));
    let text = out.ok_stdout()?;
    let mut words = text.split_whitespace();
    let id = words.next()?.to_string();
    let size = words.next()?.parse().ok()?;
    Some(Identity { id, size })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The record of passed proofs: `$XTASK_STATE_DIR`, else `$XDG_STATE_HOME/llmstudio-xtask`,
/// else `~/.local/state/llmstudio-xtask`; `proven-images.json` there. An image ID is a
/// digest of the image's content, so a record holds wherever that image is.
pub fn record_path() -> Option<Utf8PathBuf> {
    let from = |var: &str| {
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Utf8PathBuf::from)
    };
    let dir = from("XTASK_STATE_DIR")
        .or_else(|| from("XDG_STATE_HOME").map(|d| d.join("llmstudio-xtask")))
        .or_else(|| from("HOME").map(|h| h.join(".local/state/llmstudio-xtask")))?;
    Some(dir.join("proven-images.json"))
}

fn read_records(path: &Utf8Path) -> Vec<Proven> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// The recorded proof of image `id`, if one passed.
pub fn recorded(id: &str) -> Option<Proven> {
    let path = record_path()?;
    read_records(&path).into_iter().find(|p| p.id == id)
}

/// Record a passed proof (the newest 500 are kept). A record that cannot be written is a
/// warning: the proof itself passed.
pub fn record(p: &Proven) {
    let Some(path) = record_path() else {
        errln!("warning: no HOME or XDG_STATE_HOME: the passed start proof is not recorded");
        return;
    };
    let mut all = read_records(&path);
    all.retain(|r| r.id != p.id);
    all.push(p.clone());
    let keep = all.len().saturating_sub(500);
    all.drain(..keep);
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .map_err(anyhow::Error::from)
        .and_then(|()| {
            let json = serde_json::to_string_pretty(&all)?;
            fsx::write_atomic(&path, json.as_bytes())
        });
    if let Err(e) = written {
        errln!(
            "warning: {path}: the passed start proof is not recorded ({})",
            error::line_of(&e)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unproven_keeps_the_repository_and_marks_the_tag() {
        assert_eq!(unproven_tag("app:amd64-cuda"), "app:amd64-cuda-unproven");
        assert_eq!(
            unproven_tag("127.0.0.1:5000/fixture"),
            "127.0.0.1:5000/fixture:latest-unproven"
        );
        assert_eq!(
            unproven_tag("127.0.0.1:5000/fixture:t1-arm64-cuda"),
            "127.0.0.1:5000/fixture:t1-arm64-cuda-unproven"
        );
    }

    #[test]
    fn a_traceback_ends_in_its_last_lines() {
        let t = "Traceback (most recent call last):\n  File \"/app/a.py\", line 3\n\nModuleNotFoundError: No module named 'x'\n";
        assert_eq!(
            last_lines(t, 2),
            vec![
                "  File \"/app/a.py\", line 3",
                "ModuleNotFoundError: No module named 'x'"
            ]
        );
        assert!(last_lines("", 3).is_empty());
    }
}
