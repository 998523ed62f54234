//! `cargo xtask bench`: this repository's benchmarks, as `ci` is its checks. Each row is
//! measured side by side in one run (ours and the reference interleaved, so a noisy
//! machine slows both), reported as the median of N runs with min and max, and as the
//! ratio of the medians. Figures for people: nothing here passes or fails on time.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

use crate::ctx::{Ctx, OutputArgs};
use crate::error;
use crate::process::{self, Cmd};
use crate::uv;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Rows: no-op `setup-dev` vs `uv sync --frozen` no-op (a small fixture app); `audit` of every target vs \
uv's three `uv sync --frozen --dry-run --offline --python-platform` runs (a public ML project's lock (litgpt), \
made here at first use with `uv lock --exclude-newer`); `port --check` on a pyproject shaped like the \
app's; `--help`; `platform`; `validate --level 1`; a probe of `true` (in process). With --cold also: \
a fresh clone's first `cargo xtask validate` and its CPU matmul rate vs the release tensor-smoke's, and \
a cold `cargo build -p xtask` vs a crate with the design card's crates alone (minutes).")]
pub struct Bench {
    /// Runs per row (the median is reported)
    #[arg(long, default_value_t = 9)]
    runs: usize,
    /// Also the cold rows: fresh-clone validate and cold builds (minutes)
    #[arg(long)]
    cold: bool,
    /// Measure this xtask binary instead of the running one (e.g. an older build, for a
    /// before/after table)
    #[arg(long, value_name = "BIN")]
    xtask: Option<Utf8PathBuf>,
    /// Where the work files go (fixture copies, the generated lock) [default: <target-dir>/bench]
    #[arg(long, value_name = "DIR")]
    work: Option<Utf8PathBuf>,
    #[command(flatten)]
    out: OutputArgs,
}

/// Median, min and max of one side's runs, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Stat {
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

impl Stat {
    fn of(mut d: Vec<Duration>) -> Stat {
        d.sort();
        let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
        Stat {
            median_ms: ms(&d[d.len() / 2]),
            min_ms: ms(&d[0]),
            max_ms: ms(&d[d.len() - 1]),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    pub ours: Stat,
    /// The reference measured beside it, when the row is a ratio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<(String, Stat)>,
    /// ours / reference, medians.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

#[derive(Debug, Serialize)]
struct Table {
    runs: usize,
    rows: Vec<Row>,
    /// Rows that could not be measured here, with why.
    skipped: Vec<(String, String)>,
}

impl Bench {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        self.out.preflight(ctx)?;
        if self.runs == 0 {
            return Err(error::usage("--runs 0: give at least one run"));
        }
        let work = match &self.work {
            Some(w) => w.clone(),
            None => crate::smoke::target_dir(&ctx.workspace).join("bench"),
        };
        std::fs::create_dir_all(&work)
            .map_err(|e| error::usage(format!("--work {work}: cannot create: {e}")))?;
        let work = crate::ctx::absolute(&work)?;
        let me = match &self.xtask {
            Some(b) if b.is_file() => crate::ctx::absolute(b)?.into_std_path_buf(),
            Some(b) => return Err(error::usage(format!("--xtask {b}: no such file"))),
            None => std::env::current_exe()?,
        };
        let b = Runner {
            runs: self.runs,
            xtask: me,
            ws: ctx.workspace.clone(),
            work,
        };
        let mut table = Table {
            runs: self.runs,
            rows: Vec::new(),
            skipped: Vec::new(),
        };
        let uv = uv::ensure(&ctx.workspace, ctx.policy()?).ok();
        type Job<'a> = Box<dyn Fn(&Runner) -> Result<Row, String> + 'a>;
        let mut jobs: Vec<(&str, Job)> = vec![
            ("probe of `true`", Box::new(|b: &Runner| Ok(b.probe_true()))),
            (
                "--help",
                Box::new(|b: &Runner| b.alone("--help", &["--help"], None)),
            ),
            (
                "platform",
                Box::new(|b: &Runner| b.alone("platform", &["platform"], None)),
            ),
            (
                "validate --level 1",
                Box::new(|b: &Runner| {
                    b.alone("validate --level 1", &["validate", "--level", "1"], None)
                }),
            ),
            ("port --check", Box::new(|b: &Runner| b.port())),
        ];
        if let Some(uv) = &uv {
            jobs.push((
                "setup-dev no-op",
                Box::new(move |b: &Runner| b.setup_noop(uv)),
            ));
            jobs.push(("audit", Box::new(move |b: &Runner| b.audit(uv))));
        } else {
            table
                .skipped
                .push(("setup-dev, audit".into(), "no uv".into()));
        }
        if self.cold {
            jobs.push(("first validate", Box::new(|b: &Runner| b.first_validate())));
            jobs.push(("cold build", Box::new(|b: &Runner| b.cold_build())));
        }
        for (name, job) in jobs {
            if process::signal_received().is_some() {
                return Err(error::interrupted("interrupted: bench stopped"));
            }
            errln!("bench: {name}");
            match job(&b) {
                Ok(row) => table.rows.push(row),
                Err(why) => {
                    errln!("bench: {name}: skipped: {why}");
                    table.skipped.push((name.to_string(), why));
                }
            }
        }
        self.out.emit(&table, || render(&table))
    }
}

fn render(t: &Table) -> String {
    let mut out = format!(
        "{:<22} {:>10} {:>19}  {:<34} {:>10} {:>7}\n",
        "bench", "ours ms", "(min-max)", "reference", "ref ms", "ratio"
    );
    let span = |s: &Stat| format!("({:.1}-{:.1})", s.min_ms, s.max_ms);
    for r in &t.rows {
        let (rname, rms) = match &r.reference {
            Some((n, s)) => (n.clone(), format!("{:.1}", s.median_ms)),
            None => ("-".into(), "-".into()),
        };
        let ratio = r.ratio.map_or("-".into(), |x| format!("{x:.2}x"));
        out.push_str(&format!(
            "{:<22} {:>10.1} {:>19}  {:<34} {:>10} {:>7}\n",
            r.name,
            r.ours.median_ms,
            span(&r.ours),
            rname,
            rms,
            ratio
        ));
        if !r.note.is_empty() {
            out.push_str(&format!("{:<22} {}\n", "", r.note));
        }
    }
    for (name, why) in &t.skipped {
        out.push_str(&format!("{name:<22} skipped: {why}\n"));
    }
    out.push_str(&format!("median of {} runs each", t.runs));
    out
}

struct Runner {
    runs: usize,
    xtask: PathBuf,
    ws: Utf8PathBuf,
    work: Utf8PathBuf,
}

/// One timed run of a command; an error when it does not exit 0.
fn timed(cmd: &Cmd) -> Result<Duration, String> {
    timed_codes(cmd, &[0])
}

/// One timed run; an error unless it exits with one of `codes` (`audit` says 1 when a
/// target cannot install, uv 1 or 2: both are still timed).
fn timed_codes(cmd: &Cmd, codes: &[i32]) -> Result<Duration, String> {
    let t = Instant::now();
    let p = cmd.probe(Duration::from_secs(1800));
    let took = t.elapsed();
    match &p {
        process::Probe::Exited { code: Some(c), .. } if codes.contains(c) => Ok(took),
        _ => Err(format!("`{}` {}", cmd.display(), p.failure_line())),
    }
}

impl Runner {
    fn xt(&self) -> Cmd {
        Cmd::new(&self.xtask).env("NO_COLOR", "1")
    }

    fn probe_true(&self) -> Row {
        let runs = self.runs.max(20);
        let d = (0..runs)
            .map(|_| {
                let t = Instant::now();
                let _ = Cmd::new("true").probe(Duration::from_secs(10));
                t.elapsed()
            })
            .collect();
        Row {
            name: "probe of `true`".into(),
            ours: Stat::of(d),
            reference: None,
            ratio: None,
            note: format!("in process, {runs} runs: spawn, wait, collect output"),
        }
    }

    /// A command of ours alone, N times.
    fn alone(&self, name: &str, args: &[&str], project: Option<&Utf8Path>) -> Result<Row, String> {
        let mut cmd = self.xt();
        if let Some(p) = project {
            cmd = cmd.arg("--project").arg(p.as_str());
        }
        let cmd = cmd.args(args).dir(self.work.as_std_path());
        timed(&cmd)?;
        let d = (0..self.runs)
            .map(|_| timed(&cmd))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Row {
            name: name.into(),
            ours: Stat::of(d),
            reference: None,
            ratio: None,
            note: String::new(),
        })
    }

    /// Ours and the reference interleaved, N times each (the reference's commands summed);
    /// each must exit with one of `codes`.
    fn pair_codes(
        &self,
        name: &str,
        ours: &Cmd,
        rname: &str,
        theirs: &[Cmd],
        note: String,
        codes: &[i32],
    ) -> Result<Row, String> {
        timed_codes(ours, codes)?;
        for t in theirs {
            timed_codes(t, codes)?;
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..self.runs {
            a.push(timed_codes(ours, codes)?);
            let mut sum = Duration::ZERO;
            for t in theirs {
                sum += timed_codes(t, codes)?;
            }
            b.push(sum);
        }
        let (ours, reference) = (Stat::of(a), Stat::of(b));
        Ok(Row {
            name: name.into(),
            ratio: Some(ours.median_ms / reference.median_ms),
            ours,
            reference: Some((rname.into(), reference)),
            note,
        })
    }

    /// A fresh copy of a fixture folder under the work folder.
    fn fixture(&self, rel: &str, name: &str) -> Result<Utf8PathBuf, String> {
        let from = self.ws.join("xtask/tests/fixtures").join(rel);
        if !from.is_dir() {
            return Err(format!(
                "{from}: no such fixture (run bench from a checkout)"
            ));
        }
        let to = self.work.join(name);
        let _ = std::fs::remove_dir_all(&to);
        crate::fsx::copy_tree(from.as_std_path(), to.as_std_path(), &[])
            .map_err(|e| format!("copying {from}: {e}"))?;
        Ok(to)
    }

    fn port(&self) -> Result<Row, String> {
        let dir = self.fixture("port/main", "port")?;
        // The rewrite first, so --check measures reading, planning and comparing.
        timed(&self.xt().args(["--project", dir.as_str(), "port"]))?;
        let mut row = self.alone("port --check", &["port", "--check"], Some(&dir))?;
        row.note = "a pyproject.toml shaped like the app's (xtask/tests/fixtures/port/main)".into();
        Ok(row)
    }

    fn setup_noop(&self, uv: &uv::Uv) -> Result<Row, String> {
        let dir = self.fixture("devloop/app", "devloop")?;
        timed(&self.xt().args(["--project", dir.as_str(), "lock"]))?;
        let ours = self.xt().args(["--project", dir.as_str(), "setup-dev"]);
        timed(&ours)?;
        let theirs = uv
            .cmd()
            .args(["sync", "--frozen", "--group", "dev"])
            .dir(dir.as_std_path());
        self.pair_codes(
            "setup-dev no-op",
            &ours,
            "uv sync --frozen (no-op)",
            &[theirs],
            "the binary itself (no `cargo run` in front); xtask/tests/fixtures/devloop/app".into(),
            &[0],
        )
    }

    fn audit(&self, uv: &uv::Uv) -> Result<Row, String> {
        // A public ML project's pyproject (verbatim in the audit corpus), locked here once.
        let dir = self.work.join("audit-litgpt");
        let src = self
            .ws
            .join("xtask/tests/fixtures/uvcorpus/litgpt/pyproject.toml");
        let text = std::fs::read(&src).map_err(|e| format!("{src}: {e}"))?;
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        if std::fs::read(dir.join("pyproject.toml")).ok().as_deref() != Some(&text[..])
            || !dir.join("uv.lock").is_file()
        {
            std::fs::write(dir.join("pyproject.toml"), &text).map_err(|e| e.to_string())?;
            let _ = std::fs::remove_file(dir.join("uv.lock"));
            timed(
                &uv.cmd()
                    .args(["lock", "--exclude-newer", "2026-06-01"])
                    .dir(dir.as_std_path()),
            )
            .map_err(|e| format!("locking litgpt (needs PyPI once): {e}"))?;
        }
        let requires = crate::pyproject::load_requirements(&dir)
            .map_err(|e| error::line_of(&e))?
            .requires_python
            .unwrap_or_else(|| ">=3".into());
        let py = uv::python_for(uv, &dir, &requires)
            .map_err(|e| error::line_of(&e))?
            .map(|p| p.display().to_string());
        let platforms = [
            "x86_64-manylinux_2_28",
            "aarch64-manylinux_2_28",
            "aarch64-apple-darwin",
        ];
        let theirs: Vec<Cmd> = platforms
            .iter()
            .map(|p| {
                let mut c = uv
                    .cmd()
                    .args([
                        "sync",
                        "--frozen",
                        "--dry-run",
                        "--offline",
                        "--python-platform",
                        p,
                    ])
                    .dir(dir.as_std_path())
                    .env("UV_PYTHON_DOWNLOADS", "never");
                if let Some(py) = &py {
                    c = c.args(["--python", py]);
                }
                c
            })
            .collect();
        let lock_kib = std::fs::metadata(dir.join("uv.lock")).map_or(0, |m| m.len() / 1024);
        self.pair_codes(
            "audit (3 targets)",
            &self.xt().args(["--project", dir.as_str(), "audit"]),
            "uv sync --dry-run, 3 platforms",
            &theirs,
            format!("litgpt's lock ({lock_kib} KiB), made here with --exclude-newer 2026-06-01"),
            &[0, 1, 2],
        )
    }

    /// A fresh clone's first `cargo xtask validate` (builds tensor-smoke), and its CPU
    /// matmul rate against the release build's.
    fn first_validate(&self) -> Result<Row, String> {
        let clone = self.work.join("fresh-clone");
        let _ = std::fs::remove_dir_all(&clone);
        timed(&Cmd::new("git").args(["clone", "--quiet", self.ws.as_str(), clone.as_str()]))?;
        let cargo = process::cargo().unwrap_or_else(|| "cargo".into());
        let report = self.work.join("fresh-validate.json");
        let first = Cmd::new(&cargo)
            .args(["xtask", "validate", "--output", report.as_str()])
            .dir(clone.as_std_path())
            .env_remove("CARGO_TARGET_DIR");
        let took = timed(&first)?;
        let rate = |path: &Utf8Path| -> Option<f64> {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
            v["checks"].as_array()?.iter().find_map(|c| {
                (c["group"] == "cpu" && c["name"].as_str()?.starts_with("matmul"))
                    .then(|| c["rate"].as_f64())
                    .flatten()
            })
        };
        let dev_rate = rate(&report);
        timed(
            &Cmd::new(&cargo)
                .args(["build", "--release", "-p", "tensor-smoke"])
                .dir(clone.as_std_path())
                .env_remove("CARGO_TARGET_DIR"),
        )?;
        let release = clone
            .join("target/release")
            .join(process::exe("tensor-smoke"));
        let out = Cmd::new(release.as_str())
            .args(["--json", "--backend", "cpu"])
            .probe(Duration::from_secs(600));
        let release_rate = out.ok_stdout().and_then(|o| {
            let v: serde_json::Value = serde_json::from_str(o).ok()?;
            v["checks"].as_array()?.iter().find_map(|c| {
                (c["name"].as_str()?.starts_with("matmul"))
                    .then(|| c["rate"].as_f64())
                    .flatten()
            })
        });
        let _ = std::fs::remove_dir_all(&clone);
        let note = match (dev_rate, release_rate) {
            (Some(d), Some(r)) => format!(
                "CPU matmul {d:.1} GFLOP/s from that build = {:.2}x the release build's {r:.1}",
                d / r
            ),
            _ => "CPU matmul rates not found in the reports".into(),
        };
        Ok(Row {
            name: "first validate".into(),
            ours: Stat::of(vec![took]),
            reference: None,
            ratio: None,
            note: format!("`git clone` then `cargo xtask validate` (builds tensor-smoke); {note}"),
        })
    }

    /// Cold `cargo build -p xtask` in a fresh clone vs a crate that depends on the design
    /// card's crates alone (clap, serde, toml_edit, xshell, duct, camino, which, tempfile).
    fn cold_build(&self) -> Result<Row, String> {
        let cargo = process::cargo().unwrap_or_else(|| "cargo".into());
        let clone = self.work.join("cold-clone");
        let _ = std::fs::remove_dir_all(&clone);
        timed(&Cmd::new("git").args(["clone", "--quiet", self.ws.as_str(), clone.as_str()]))?;
        let card = self.work.join("card-crates");
        let _ = std::fs::remove_dir_all(&card);
        std::fs::create_dir_all(card.join("src")).map_err(|e| e.to_string())?;
        std::fs::write(
            card.join("Cargo.toml"),
            "[package]\nname = \"card-crates\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n[workspace]\n\n\
             [dependencies]\nclap = { version = \"4\", features = [\"derive\", \"env\"] }\n\
             serde = { version = \"1\", features = [\"derive\"] }\ntoml_edit = \"0.25\"\nxshell = \"0.2\"\n\
             duct = \"1\"\ncamino = \"1\"\nwhich = \"8\"\ntempfile = \"3\"\n",
        )
        .map_err(|e| e.to_string())?;
        std::fs::write(card.join("src/main.rs"), "fn main() {}\n").map_err(|e| e.to_string())?;
        // Fetch first, so both builds measure compiling only.
        for dir in [&clone, &card] {
            timed(
                &Cmd::new(&cargo)
                    .arg("fetch")
                    .dir(dir.as_std_path())
                    .env_remove("CARGO_TARGET_DIR"),
            )?;
        }
        let ours = timed(
            &Cmd::new(&cargo)
                .args(["build", "-p", "xtask"])
                .dir(clone.as_std_path())
                .env_remove("CARGO_TARGET_DIR"),
        )?;
        let theirs = timed(
            &Cmd::new(&cargo)
                .arg("build")
                .dir(card.as_std_path())
                .env_remove("CARGO_TARGET_DIR"),
        )?;
        let _ = std::fs::remove_dir_all(&clone);
        let _ = std::fs::remove_dir_all(&card);
        let (ours, reference) = (Stat::of(vec![ours]), Stat::of(vec![theirs]));
        Ok(Row {
            name: "cold build".into(),
            ratio: Some(ours.median_ms / reference.median_ms),
            ours,
            reference: Some(("the card's crates alone".into(), reference)),
            note: "`cargo build -p xtask` (dev profile) in a fresh clone, one run each".into(),
        })
    }
}
