//! `cargo xtask fleet`: validate every node of a cluster and find the bad one.
//! `validate` submits a Slurm job that runs a dist bundle's `validate` once per node,
//! follows it, and merges; `render` writes that job (or a Kubernetes Indexed Job) for
//! people who submit themselves; `merge` reads reports gathered any way.

use std::time::{Duration, Instant};

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};

use crate::ctx::{self, Ctx, OutputArgs};
use crate::error;
use crate::fleet::{self, kube, slurm};
use crate::fsx;
use crate::out::Progress;
use crate::process::Sigint;
use crate::report::Require;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Each node runs `<bundle>/bin/xtask validate --output <reports>/job-<id>/<node>.json` (a `cargo xtask \
dist` bundle built for the nodes' architecture, on a filesystem the nodes share). The merged view \
has one row per node, then the outliers: GPUs whose rate on a check is below --slow-fraction of the \
fleet median for the same device model. Exit 1 when a node failed, wrote no report or is an \
outlier; 3 when --require went unmet on a node; 130 after Ctrl-C (the job is cancelled).")]
pub struct Fleet {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Submit one validate task per node (Slurm), follow the job, then merge the reports
    Validate(Run),
    /// Write the batch script (Slurm) or Indexed Job manifest (Kubernetes) to submit yourself
    Render(Render),
    /// Merge reports gathered any other way (files, or folders of *.json)
    Merge(Merge),
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Scheduler {
    Slurm,
    Kubernetes,
}

/// What every node runs, and how many nodes.
#[derive(clap::Args, Debug)]
struct Nodes {
    /// How many nodes to validate (one task, or pod, per node)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    nodes: u32,
    /// validate's level on each node (1-2 need no Python project; 3-4 take --project, as the nodes see it)
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=4))]
    level: u8,
    /// Each node fails with exit 3 unless this backend ran there
    #[arg(long, value_enum)]
    require: Option<Require>,
    /// Smaller problem sizes on each node (faster, less precise rates)
    #[arg(long)]
    quick: bool,
    /// The job's name
    #[arg(long, default_value = "xtask-fleet", value_name = "NAME")]
    job_name: String,
}

#[derive(clap::Args, Debug)]
struct SlurmArgs {
    /// Slurm partition
    #[arg(long, value_name = "P")]
    partition: Option<String>,
    /// Generic resources per node, e.g. gpu:4
    #[arg(long, value_name = "GRES")]
    gres: Option<String>,
    /// Time limit of the job (Slurm's format, e.g. 00:30:00)
    #[arg(long, value_name = "T")]
    time: Option<String>,
}

#[derive(clap::Args, Debug)]
struct Run {
    /// The scheduler to submit to
    #[arg(long, value_enum, default_value_t = Scheduler::Slurm)]
    scheduler: Scheduler,
    #[command(flatten)]
    nodes: Nodes,
    #[command(flatten)]
    slurm: SlurmArgs,
    /// The dist bundle the nodes run [default: the bundle this binary is in, else dist/llmstudio-xtask-<os>-<arch>]
    #[arg(long, value_name = "DIR")]
    bundle: Option<Utf8PathBuf>,
    /// A folder on a filesystem every node shares; the job writes job-<id>/ in it
    #[arg(long, default_value = "fleet-reports", value_name = "DIR")]
    reports: Utf8PathBuf,
    /// Flag a GPU whose rate is below this fraction of the fleet median for its device
    #[arg(long, default_value_t = 0.8, value_name = "FRACTION")]
    slow_fraction: f64,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(clap::Args, Debug)]
struct Render {
    #[arg(long, value_enum)]
    scheduler: Scheduler,
    #[command(flatten)]
    nodes: Nodes,
    #[command(flatten)]
    slurm: SlurmArgs,
    /// The dist bundle as the nodes see it (Kubernetes: its path inside --image) [default: this bundle, else dist/llmstudio-xtask-<os>-<arch>; /opt/llmstudio-xtask in an image]
    #[arg(long, value_name = "DIR")]
    bundle: Option<Utf8PathBuf>,
    /// Slurm: the shared folder the job writes job-<id>/ in
    #[arg(long, default_value = "fleet-reports", value_name = "DIR")]
    reports: Utf8PathBuf,
    /// Kubernetes: the pods' image (holding the dist bundle at --bundle, unless --bundle-claim mounts it)
    #[arg(long, value_name = "IMAGE", required_if_eq("scheduler", "kubernetes"))]
    image: Option<String>,
    /// Kubernetes: nvidia.com/gpu per pod (leave out to validate without GPUs)
    #[arg(long, value_name = "K")]
    gpus: Option<u32>,
    /// Kubernetes: a ReadWriteMany PersistentVolumeClaim the pods write their reports to
    #[arg(long, default_value = "xtask-fleet-reports", value_name = "NAME")]
    claim: String,
    /// Kubernetes: a PersistentVolumeClaim holding the dist bundle, mounted read-only at --bundle (then any image with glibc will do)
    #[arg(long, value_name = "NAME")]
    bundle_claim: Option<String>,
    /// Kubernetes: the namespace
    #[arg(long, value_name = "NS")]
    namespace: Option<String>,
    /// Write to FILE (atomically) instead of stdout
    #[arg(long, value_name = "FILE")]
    output: Option<Utf8PathBuf>,
}

#[derive(clap::Args, Debug)]
struct Merge {
    /// Report files, or folders whose *.json are reports
    #[arg(required = true, value_name = "REPORT|DIR")]
    reports: Vec<Utf8PathBuf>,
    /// Flag a GPU whose rate is below this fraction of the fleet median for its device
    #[arg(long, default_value_t = 0.8, value_name = "FRACTION")]
    slow_fraction: f64,
    /// A node that did not run this backend counts against the fleet (exit 3)
    #[arg(long, value_enum)]
    require: Option<Require>,
    #[command(flatten)]
    out: OutputArgs,
}

impl Fleet {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        match self.action {
            Action::Validate(r) => r.run(ctx),
            Action::Render(r) => r.run(ctx),
            Action::Merge(m) => m.run(ctx),
        }
    }
}

impl Nodes {
    /// validate's flags on each node.
    fn validate_args(&self, ctx: &Ctx) -> Result<Vec<String>> {
        let mut v = vec!["--level".to_string(), self.level.to_string()];
        if let Some(r) = self.require {
            v.extend(["--require".into(), r.as_str().into()]);
        }
        if self.quick {
            v.push("--quick".into());
        }
        if self.level >= 3 {
            let Some(p) = ctx.project_opt() else {
                return Err(error::usage(
                    "--level 3-4 on the nodes needs the app's project: pass --project DIR (a path the nodes share)",
                ));
            };
            v.extend(["--project".into(), p.to_string()]);
        }
        Ok(v)
    }
}

/// The bundle the nodes run: the flag, the bundle this binary is in, or this host's `dist/` one.
fn bundle(flag: Option<&Utf8Path>, ctx: &Ctx) -> Result<Utf8PathBuf> {
    let dir = match flag {
        Some(b) => {
            fleet::check_bundle(b)?;
            ctx::absolute(b)?
        }
        None => match ctx::bundle_root() {
            Some(root) => root,
            None => {
                let name = ctx::bundle_name(crate::names::Os::host(), &crate::names::Arch::host());
                let local = ctx.workspace.join("dist").join(name);
                if !local.is_dir() {
                    return Err(error::usage(format!(
                        "no dist bundle at {local}: run `cargo xtask dist` (`--target aarch64-unknown-linux-gnu` for aarch64 nodes) or pass --bundle DIR"
                    )));
                }
                local
            }
        },
    };
    fleet::check_bundle(&dir)?;
    Ok(dir)
}

impl Render {
    fn run(self, ctx: &Ctx) -> Result<()> {
        let args = self.nodes.validate_args(ctx)?;
        let text = match self.scheduler {
            Scheduler::Slurm => {
                let bundle = bundle(self.bundle.as_deref(), ctx)?;
                let reports = std::path::absolute(&self.reports)
                    .ok()
                    .and_then(|p| Utf8PathBuf::from_path_buf(p).ok())
                    .ok_or_else(|| {
                        error::usage(format!("--reports {}: cannot resolve", self.reports))
                    })?;
                slurm_job(&self.nodes, &self.slurm, &bundle, &reports, args).script()?
            }
            Scheduler::Kubernetes => kube::Job {
                name: &self.nodes.job_name,
                namespace: self.namespace.as_deref(),
                nodes: self.nodes.nodes,
                image: self.image.as_deref().unwrap_or_default(),
                bundle: self
                    .bundle
                    .as_ref()
                    .map_or("/opt/llmstudio-xtask", |b| b.as_str()),
                gpus: self.gpus,
                claim: &self.claim,
                bundle_claim: self.bundle_claim.as_deref(),
                validate: args,
            }
            .manifest()?,
        };
        match &self.output {
            Some(f) => {
                fsx::write_atomic(f, text.as_bytes())
                    .map_err(|e| error::usage(format!("--output {f}: {e:#}")))?;
                errln!("wrote {f}");
            }
            None => out!("{text}"),
        }
        Ok(())
    }
}

fn slurm_job<'a>(
    nodes: &'a Nodes,
    s: &'a SlurmArgs,
    bundle: &'a Utf8Path,
    reports: &'a Utf8Path,
    validate: Vec<String>,
) -> slurm::Job<'a> {
    slurm::Job {
        name: &nodes.job_name,
        nodes: nodes.nodes,
        partition: s.partition.as_deref(),
        gres: s.gres.as_deref(),
        time: s.time.as_deref(),
        bundle,
        reports,
        validate,
    }
}

impl Merge {
    fn run(self, ctx: &Ctx) -> Result<()> {
        fleet::check_fraction(self.slow_fraction)?;
        self.out.preflight(ctx)?;
        let reports = fleet::read(&self.reports)?;
        if reports.is_empty() {
            return Err(error::usage(format!(
                "{}: no reports (*.json written by `validate --output`)",
                self.reports
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            )));
        }
        let merged = fleet::merge(&reports, &[], self.slow_fraction, self.require);
        self.out.emit(&merged, || merged.render())?;
        merged.verdict()
    }
}

impl Run {
    fn run(self, ctx: &Ctx) -> Result<()> {
        if self.scheduler == Scheduler::Kubernetes {
            return Err(error::usage(
                "fleet validate drives Slurm; for Kubernetes run `fleet render --scheduler kubernetes`, `kubectl apply -f` it, then `fleet merge` the reports",
            ));
        }
        fleet::check_fraction(self.slow_fraction)?;
        self.out.preflight(ctx)?;
        let args = self.nodes.validate_args(ctx)?;
        let bundle = bundle(self.bundle.as_deref(), ctx)?;
        let slurm = slurm::Slurm::find()?;
        std::fs::create_dir_all(&self.reports)
            .map_err(|e| error::usage(format!("--reports {}: cannot create: {e}", self.reports)))?;
        let reports = ctx::absolute(&self.reports)?;
        let script = slurm_job(&self.nodes, &self.slurm, &bundle, &reports, args).script()?;
        let script_file = reports.join(format!("{}.sbatch", self.nodes.job_name));
        fsx::write_atomic(&script_file, script.as_bytes())?;
        let sigint = Sigint::catch()?;
        let id = slurm.submit(&script_file)?;
        let started = Instant::now();
        let dir = reports.join(format!("job-{id}"));
        errln!(
            "submitted job {id}: {} node(s), reports in {dir}",
            self.nodes.nodes
        );
        let info = follow(&slurm, &id, &dir, self.nodes.nodes, &sigint)?;
        let expected = match info.as_ref().and_then(|i| i.node_list.clone()) {
            Some(list) => slurm.hostnames(&list),
            None => Vec::new(),
        };
        let gathered = if dir.is_dir() {
            fleet::read(std::slice::from_ref(&dir))?
        } else {
            Vec::new()
        };
        let state = info.map_or_else(|| "gone".to_string(), |i| i.state);
        errln!(
            "job {id} {state} after {:.0} s: {} report(s); merge again with `fleet merge {dir}`",
            started.elapsed().as_secs_f64(),
            gathered.len(),
        );
        if gathered.is_empty() && expected.is_empty() {
            return Err(error::failed(format!(
                "job {id} ended ({state}) without a report; see {reports}/slurm-{id}.out"
            )));
        }
        let merged = fleet::merge(&gathered, &expected, self.slow_fraction, self.nodes.require);
        self.out.emit(&merged, || merged.render())?;
        merged.verdict()
    }
}

/// Follow the job until it ends, showing its state and which nodes have reported;
/// on Ctrl-C cancel it. The job's last known state (None: Slurm forgot it).
fn follow(
    slurm: &slurm::Slurm,
    id: &str,
    dir: &Utf8Path,
    nodes: u32,
    sigint: &Sigint,
) -> Result<Option<slurm::JobInfo>> {
    let started = Instant::now();
    let mut progress = Progress::new();
    let mut last_state = String::new();
    let mut seen: Vec<String> = Vec::new();
    let mut info: Option<slurm::JobInfo> = None;
    loop {
        if sigint.seen() {
            progress.clear();
            slurm.cancel(id);
            return Err(error::interrupted(format!(
                "interrupted: cancelled job {id} (scancel)"
            )));
        }
        let now = slurm.job(id);
        let gone = now.is_none();
        if let Some(n) = now {
            info = Some(n);
        }
        for r in report_names(dir) {
            if !seen.contains(&r) {
                progress.line(&format!(
                    "{r} reported ({} of {nodes}) after {} s",
                    seen.len() + 1,
                    started.elapsed().as_secs()
                ));
                seen.push(r);
            }
        }
        if let Some(i) = &info
            && i.state != last_state
        {
            let on = i
                .node_list
                .as_deref()
                .map(|n| format!(" on {n}"))
                .unwrap_or_default();
            let why = if i.reason.is_empty() || i.reason == "None" {
                String::new()
            } else {
                format!(" ({})", i.reason)
            };
            progress.line(&format!("job {id} {}{on}{why}", i.state.to_lowercase()));
            last_state.clone_from(&i.state);
        }
        if gone || info.as_ref().is_some_and(slurm::JobInfo::ended) {
            progress.clear();
            return Ok(info);
        }
        progress.show(
            &format!(
                "job {id} {}: {} of {nodes} node(s) reported",
                last_state.to_lowercase(),
                seen.len()
            ),
            started.elapsed(),
        );
        crate::process::pause(Duration::from_millis(500));
    }
}

/// The node names in `dir`'s reports so far (file stems of finished *.json files).
fn report_names(dir: &Utf8Path) -> Vec<String> {
    let mut names: Vec<String> = dir
        .read_dir_utf8()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let p = e.into_path();
            (p.extension() == Some("json"))
                .then(|| p.file_stem().map(str::to_string))
                .flatten()
        })
        .collect();
    names.sort();
    names
}
