//! Slurm: the batch script that runs a dist bundle's `validate` once on every node of
//! an allocation, and what `scontrol` says about the job while it runs.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use camino::Utf8Path;

use crate::error;
use crate::process::{Cmd, Probe, find, quote};

/// The Slurm programs on this host's PATH.
pub struct Slurm {
    sbatch: PathBuf,
    scontrol: PathBuf,
    scancel: PathBuf,
}

const ASK: Duration = Duration::from_secs(30);

impl Slurm {
    /// sbatch, scontrol and scancel, or exit 3 naming the one missing.
    pub fn find() -> Result<Slurm> {
        let tool = |name: &str| {
            find(name).ok_or_else(|| {
                error::absent(format!(
                    "fleet validate --scheduler slurm: no `{name}` on PATH; run it on a Slurm login node (or use `fleet render`)"
                ))
            })
        };
        Ok(Slurm {
            sbatch: tool("sbatch")?,
            scontrol: tool("scontrol")?,
            scancel: tool("scancel")?,
        })
    }

    /// `sbatch --parsable SCRIPT`: the job id.
    pub fn submit(&self, script: &Utf8Path) -> Result<String> {
        let submit = Cmd::new(&self.sbatch)
            .arg("--parsable")
            .arg(script.as_str());
        errln!("$ {}", submit.display());
        let probe = submit.probe(Duration::from_secs(120));
        probe.ok_stdout().and_then(parse_job_id).ok_or_else(|| {
            error::failed(format!(
                "sbatch did not submit the job: {}",
                probe.failure_line()
            ))
        })
    }

    /// What Slurm says of the job now (None: it does not know it, or did not answer).
    pub fn job(&self, id: &str) -> Option<JobInfo> {
        job_of(
            &Cmd::new(&self.scontrol)
                .args(["show", "job", "-o", id])
                .probe(ASK),
        )
    }

    /// Cancel the job and wait (a minute at most) until Slurm has ended it. Runs
    /// after the tool was interrupted: its commands are not handed the signal.
    pub fn cancel(&self, id: &str) {
        errln!("cancelling job {id}");
        let done = Cmd::new(&self.scancel).arg(id).cleanup(ASK);
        if done.ok_stdout().is_none() {
            errln!("warning: scancel {id} {}", done.failure_line());
        }
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            let show = Cmd::new(&self.scontrol)
                .args(["show", "job", "-o", id])
                .cleanup(ASK);
            match job_of(&show) {
                Some(s) if !s.ended() && s.state != "COMPLETING" => {}
                _ => return,
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        errln!("warning: job {id} still not ended a minute after scancel; check `squeue -j {id}`");
    }

    /// A hostlist (`node[1-2,7]`) as names (`scontrol show hostnames`).
    pub fn hostnames(&self, list: &str) -> Vec<String> {
        Cmd::new(&self.scontrol)
            .args(["show", "hostnames", list])
            .probe(ASK)
            .ok_stdout()
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_else(|| vec![list.to_string()])
    }
}

fn job_of(p: &Probe) -> Option<JobInfo> {
    p.ok_stdout()
        .and_then(|s| s.lines().find_map(JobInfo::parse))
}

/// What the batch script asks of Slurm and runs on each node.
pub struct Job<'a> {
    pub name: &'a str,
    pub nodes: u32,
    pub partition: Option<&'a str>,
    pub gres: Option<&'a str>,
    pub time: Option<&'a str>,
    /// The dist bundle, as the nodes see it (absolute).
    pub bundle: &'a Utf8Path,
    /// Where the job writes `job-<id>/<node>.json` and `slurm-<id>.out` (absolute, shared).
    pub reports: &'a Utf8Path,
    /// validate's flags (`--level 2`, `--require cuda`, ...).
    pub validate: Vec<String>,
}

/// A value for an `#SBATCH` line: Slurm reads those lines without a shell, so spaces,
/// quotes and `%` (its filename patterns) cannot be written there.
fn plain(flag: &str, value: &str) -> Result<()> {
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\"'%\\#$`".contains(c))
    {
        return Err(error::usage(format!(
            "{flag} {value:?}: Slurm cannot take spaces, quotes, `%`, `#`, `$` or backslashes here; choose a plain value or path"
        )));
    }
    Ok(())
}

impl Job<'_> {
    /// The batch script (`sbatch SCRIPT`). The reports folder must exist when it is submitted.
    pub fn script(&self) -> Result<String> {
        plain("--job-name", self.name)?;
        plain("--reports", self.reports.as_str())?;
        if let Some(p) = self.partition {
            plain("--partition", p)?;
        }
        if let Some(g) = self.gres {
            plain("--gres", g)?;
        }
        if let Some(t) = self.time {
            plain("--time", t)?;
        }
        let mut s = String::from("#!/bin/bash\n");
        s.push_str(
            "# Validates every node of the allocation with the llmstudio-xtask dist bundle:\n\
             # one task per node writes <reports>/job-<id>/<node>.json; then\n\
             # `bin/xtask fleet merge <reports>/job-<id>` shows one row per node and the slow GPUs.\n\
             # Written by `cargo xtask fleet render --scheduler slurm`.\n",
        );
        let _ = writeln!(s, "#SBATCH --job-name={}", self.name);
        let _ = writeln!(s, "#SBATCH --nodes={}", self.nodes);
        s.push_str("#SBATCH --ntasks-per-node=1\n");
        // Rates are only comparable when nothing else runs on the node.
        s.push_str("#SBATCH --exclusive\n");
        if let Some(p) = self.partition {
            let _ = writeln!(s, "#SBATCH --partition={p}");
        }
        if let Some(g) = self.gres {
            let _ = writeln!(s, "#SBATCH --gres={g}");
        }
        if let Some(t) = self.time {
            let _ = writeln!(s, "#SBATCH --time={t}");
        }
        let _ = writeln!(s, "#SBATCH --output={}/slurm-%j.out", self.reports);
        s.push_str("set -euo pipefail\n");
        let _ = writeln!(
            s,
            "reports={}/job-\"$SLURM_JOB_ID\"",
            quote(self.reports.as_str())
        );
        s.push_str("mkdir -p \"$reports\"\n");
        // One task per node; a node whose validate fails does not stop the others.
        s.push_str(
            "srun --nodes=\"$SLURM_JOB_NUM_NODES\" --ntasks-per-node=1 --kill-on-bad-exit=0 --label \\\n",
        );
        let mut words: Vec<String> = vec![
            quote(self.bundle.join("bin").join("xtask").as_str()),
            "validate".into(),
        ];
        words.extend(self.validate.iter().map(|w| quote(w)));
        words.push("--output".into());
        words.push("\"$reports/{node}.json\"".into());
        let _ = writeln!(s, "  {}", words.join(" "));
        Ok(s)
    }
}

/// What `scontrol show job -o ID` says about a job.
#[derive(Debug, Default, PartialEq)]
pub struct JobInfo {
    pub state: String,
    pub reason: String,
    pub node_list: Option<String>,
}

impl JobInfo {
    pub fn parse(line: &str) -> Option<JobInfo> {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_string)
        };
        Some(JobInfo {
            state: field("JobState")?,
            reason: field("Reason").unwrap_or_default(),
            node_list: field("NodeList").filter(|n| n != "(null)" && !n.is_empty()),
        })
    }

    /// The job will not run (any further): done, failed, cancelled, timed out, ...
    pub fn ended(&self) -> bool {
        matches!(
            self.state.as_str(),
            "COMPLETED"
                | "FAILED"
                | "CANCELLED"
                | "TIMEOUT"
                | "NODE_FAIL"
                | "PREEMPTED"
                | "OUT_OF_MEMORY"
                | "BOOT_FAIL"
                | "DEADLINE"
                | "SPECIAL_EXIT"
        )
    }
}

/// The job id `sbatch --parsable` prints (`123` or `123;cluster`).
pub fn parse_job_id(stdout: &str) -> Option<String> {
    let id = stdout.trim().split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job<'a>(reports: &'a str, bundle: &'a str) -> Job<'a> {
        Job {
            name: "xtask-fleet",
            nodes: 16,
            partition: Some("gh200"),
            gres: Some("gpu:4"),
            time: Some("00:30:00"),
            bundle: Utf8Path::new(bundle),
            reports: Utf8Path::new(reports),
            validate: vec![
                "--level".into(),
                "2".into(),
                "--require".into(),
                "cuda".into(),
            ],
        }
    }

    #[test]
    fn the_script_asks_for_one_task_per_node_and_names_each_report_by_node() {
        let s = job("/shared/fleet", "/shared/llmstudio-xtask-linux-aarch64")
            .script()
            .unwrap();
        for line in [
            "#SBATCH --nodes=16",
            "#SBATCH --ntasks-per-node=1",
            "#SBATCH --partition=gh200",
            "#SBATCH --gres=gpu:4",
            "#SBATCH --time=00:30:00",
            "#SBATCH --output=/shared/fleet/slurm-%j.out",
            "reports=/shared/fleet/job-\"$SLURM_JOB_ID\"",
            "  /shared/llmstudio-xtask-linux-aarch64/bin/xtask validate --level 2 --require cuda --output \"$reports/{node}.json\"",
        ] {
            assert!(s.lines().any(|l| l == line), "{line:?} not in\n{s}");
        }
        assert!(s.starts_with("#!/bin/bash\n"));
    }

    #[test]
    fn values_slurm_cannot_read_are_refused_with_the_flag() {
        let e = job("/shared/my fleet", "/b").script().unwrap_err();
        assert!(
            e.to_string().starts_with("--reports \"/shared/my fleet\""),
            "{e}"
        );
        assert_eq!(error::code_of(&e), error::Code::Usage);
        assert!(job("/r%j", "/b").script().is_err());
    }

    #[test]
    fn bash_reads_each_quoted_word_back() {
        let words = [
            "it's", "a b", "a{b,c}", "$HOME", "x=1", "%j", "`id`", "", "é", "a,b", "--x=~",
            "{a,b}", "*",
        ];
        let line: Vec<String> = words.iter().map(|w| quote(w)).collect();
        // A script file, as sbatch hands the batch script to bash.
        let script = format!("printf '%s\\n' {}\n", line.join(" "));
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &script).unwrap();
        let out = crate::process::Cmd::new("bash")
            .arg(file.path())
            .probe(std::time::Duration::from_secs(30));
        let printed = out.ok_stdout().unwrap_or_else(|| panic!("bash: {out:?}"));
        let back: Vec<&str> = printed.lines().collect();
        assert_eq!(back, words, "{script}");
        // What people type stays as typed.
        assert_eq!(quote("VERSION=1.0"), "VERSION=1.0");
        assert_eq!(quote("CRITICAL,HIGH"), "CRITICAL,HIGH");
    }

    #[test]
    fn scontrol_lines_are_read() {
        // The fields of `scontrol show job -o` (Slurm 22.05) that the tool reads.
        let line = "JobId=2 JobName=xtask-fleet UserId=root(0) JobState=RUNNING Reason=None Dependency=(null) NodeList=node[1-2] BatchHost=node1 NumNodes=2";
        let j = JobInfo::parse(line).unwrap();
        assert_eq!(j.state, "RUNNING");
        assert_eq!(j.node_list.as_deref(), Some("node[1-2]"));
        assert!(!j.ended());
        let j =
            JobInfo::parse("JobId=3 JobState=PENDING Reason=Resources NodeList=(null)").unwrap();
        assert_eq!((j.reason.as_str(), j.node_list), ("Resources", None));
        assert!(
            JobInfo::parse("JobState=CANCELLED Reason=None")
                .unwrap()
                .ended()
        );
        assert_eq!(
            JobInfo::parse("slurm_load_jobs error: Invalid job id specified"),
            None
        );
        assert_eq!(parse_job_id("42;cluster\n").as_deref(), Some("42"));
        assert_eq!(parse_job_id("sbatch: error"), None);
    }
}
