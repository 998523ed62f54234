//! `cargo xtask validate`: does this machine run the app, and its GPU correctly?
//! Level 1 judges the platform; level 2 runs the bundled tensor-smoke on every backend
//! the host has; level 3 runs torch in the project's environment; level 4 the project's
//! GPU-marked tests. Skips carry their reason; `--require` makes a backend mandatory.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};

use crate::ctx::{Ctx, OutputArgs};
use crate::error;
use crate::fleet;
use crate::lock;
use crate::platform::{self, Backend, Platform};
use crate::policy::Policy;
use crate::process::Cmd;
use crate::pytest;
use crate::report::{self, Check, GpuId, Group, Host, Report, Require, Status};
use crate::smoke;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Levels: 1 platform, drivers and tools (judged); 2 tensor-smoke on cuda (NVIDIA), wgpu (Metal, or \
Vulkan: lavapipe counts) and the cpu reference; 3 torch in the project's environment (device, \
tensor ops against the CPU, a tiny GPT-2 that trains and generates); 4 the project's GPU-marked \
tests. Levels 1-2 need no Python project. Exit 0 when every check that ran passed, 1 on a failed \
check, 3 when --require names a backend that could not run.

--output may hold `{node}`: the scheduler's node name ($SLURMD_NODENAME, $NODE_NAME) or the \
hostname. Many nodes: `cargo xtask fleet validate` (Slurm) runs a dist bundle on each and merges; \
`cargo xtask fleet merge DIR` reads reports gathered any other way.")]
pub struct Validate {
    /// Highest level to run (1-4)
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=4))]
    level: u8,
    /// Fail with exit 3 unless this backend ran its checks
    #[arg(long, value_enum)]
    require: Option<Require>,
    /// A prebuilt tensor-smoke binary (compute nodes without a Rust toolchain)
    #[arg(long, value_name = "PATH")]
    smoke_bin: Option<Utf8PathBuf>,
    /// Smaller problem sizes (faster, less precise rates)
    #[arg(long)]
    quick: bool,
    /// Print one table from reports written with --output on many hosts; runs nothing (as `fleet merge`)
    #[arg(long, num_args = 1.., value_name = "REPORT")]
    merge: Vec<Utf8PathBuf>,
    /// --merge: flag a node whose rate is below this fraction of the fleet median for the same device
    #[arg(long, default_value_t = 0.8, value_name = "FRACTION")]
    slow_fraction: f64,
    #[command(flatten)]
    out: OutputArgs,
}

impl Validate {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        if !self.merge.is_empty() {
            return self.merge_reports();
        }
        let (node, job) = report::scheduler_identity();
        let out = self.out_for(node.as_deref());
        out.preflight(ctx)?;
        let policy = ctx.policy()?;
        let plat = platform::probe::detect(policy);
        let mut versions = versions(&plat);
        let mut checks = level1(&plat, policy, ctx);
        let mut levels = vec![1];
        if self.level >= 2 {
            levels.push(2);
            checks.extend(self.level2(ctx, &plat));
        }
        if self.level >= 3 {
            checks.extend(self.python_levels(ctx, &plat, &mut levels, &mut versions)?);
        }
        let report = Report {
            host: host(&plat, node, job),
            versions,
            levels_run: levels,
            checks,
        };
        out.emit(&report, || report.table())?;
        self.verdict(&report, &plat)
    }

    /// `--output` with `{node}` expanded: one file per node on a shared filesystem.
    fn out_for(&self, node: Option<&str>) -> OutputArgs {
        let mut out = self.out.clone();
        if let Some(o) = &out.output
            && o.as_str().contains("{node}")
        {
            let name = node
                .map(str::to_string)
                .unwrap_or_else(hostname)
                .replace(['/', '\\'], "_");
            out.output = Some(o.as_str().replace("{node}", &name).into());
        }
        out
    }

    fn level2(&self, ctx: &Ctx, plat: &Platform) -> Vec<Check> {
        // Where NVIDIA is present CUDA is built, and judged (a broken driver fails).
        let cuda = plat.has_nvidia();
        let checks = match smoke::binary(self.smoke_bin.as_deref(), &ctx.workspace, cuda) {
            Ok(bin) => smoke::run(&bin, self.quick),
            Err(why) => vec![Check::skip(Group::Cpu, None, "tensor-smoke", why)],
        };
        at_level(2, checks)
    }

    /// Levels 3 and 4, which need the app's Python project.
    fn python_levels(
        &self,
        ctx: &Ctx,
        plat: &Platform,
        levels: &mut Vec<u8>,
        versions: &mut BTreeMap<String, String>,
    ) -> Result<Vec<Check>> {
        let Some(project) = ctx.project_opt() else {
            let ran: Vec<String> = levels.iter().map(u8::to_string).collect();
            errln!(
                "note: levels 3-4 need the app's Python project (pass --project DIR); ran levels {}",
                ran.join(", ")
            );
            let why = "no Python project (pass --project DIR)";
            return Ok(vec![
                Check::skip(Group::Torch, None, "torch", why).at_level(3),
            ]);
        };
        levels.push(3);
        let (mut checks, torch) = level3(ctx, project, plat.backend, self.quick)?;
        if let Some(v) = torch {
            versions.insert("torch".into(), v);
        }
        if self.level >= 4 {
            levels.push(4);
            checks.extend(level4(ctx, project, ctx.policy()?, plat.backend)?);
        }
        Ok(checks)
    }

    /// Exit 1 on a failed check, 3 when `--require` went unmet.
    fn verdict(&self, report: &Report, plat: &Platform) -> Result<()> {
        let failed = report.failed();
        if !failed.is_empty() {
            return Err(error::failed(format!("failed: {}", failed.join(", "))));
        }
        if let Some(req) = self.require
            && !report.meets(req)
        {
            let what = req.as_str();
            return Err(error::absent(format!(
                "--require {what}: no {what} check ran on this host (backend {}: {})",
                plat.backend.as_str(),
                plat.backend_evidence.join("; ")
            )));
        }
        Ok(())
    }
}

/// The versions a report records: this tool's, uv's, the NVIDIA driver's and its CUDA's.
fn versions(plat: &Platform) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    v.insert("xtask".to_string(), env!("CARGO_PKG_VERSION").to_string());
    if let Some(uv) = plat.tools.uv.as_ref().and_then(|uv| uv.version.clone()) {
        v.insert("uv".into(), uv);
    }
    if let Some(cuda) = &plat.cuda {
        if let Some(d) = &cuda.driver_version {
            v.insert("nvidia_driver".into(), d.clone());
        }
        if let Some(c) = &cuda.driver_cuda_version {
            v.insert("driver_cuda".into(), c.clone());
        }
    }
    v
}

/// The host as a report names it, with its GPUs' identities.
fn host(plat: &Platform, node: Option<String>, job: Option<String>) -> Host {
    Host {
        node,
        job,
        hostname: hostname(),
        os: plat.os.to_string(),
        arch: plat.arch.clone(),
        target: plat.target.clone(),
        backend: plat.backend,
        driver: plat.cuda.as_ref().and_then(|c| c.driver_version.clone()),
        gpus: plat
            .gpus
            .iter()
            .map(|g| GpuId {
                index: g.index,
                name: g.name.clone(),
                uuid: g.uuid.clone(),
                serial: g.serial.clone(),
                pci_bus_id: g.pci_bus_id.clone(),
                compute_capability: g.compute_capability.clone(),
            })
            .collect(),
        emulated: plat
            .emulation
            .as_ref()
            .map(|e| format!("{} on {}", e.binary_arch, e.machine_arch)),
    }
}

fn at_level(level: u8, checks: Vec<Check>) -> Vec<Check> {
    checks.into_iter().map(|c| c.at_level(level)).collect()
}

/// One of validate's own checks.
fn check(level: u8, group: Group, name: &str, status: Status, reason: impl Into<String>) -> Check {
    Check::new(group, None, name)
        .with(status, reason)
        .at_level(level)
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            Cmd::new("hostname")
                .probe(Duration::from_secs(5))
                .ok_stdout()
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Level 1: the platform data, judged.
fn level1(p: &Platform, policy: &Policy, ctx: &Ctx) -> Vec<Check> {
    let mut out = vec![target_check(p)];
    let broken_driver = p.backend == Backend::Cpu && p.gpus.iter().any(|g| g.vendor == "nvidia");
    out.push(platform_check(
        "gpu backend",
        Status::of(!broken_driver),
        format!("{}: {}", p.backend.as_str(), p.backend_evidence.join("; ")),
    ));
    if let Some(e) = &p.emulation {
        let why = format!("{}; {}", e.evidence, e.advice);
        out.push(platform_check("native", Status::Skip, why));
    }
    for w in &p.warnings {
        out.push(platform_check("probe", Status::Skip, w.clone()));
    }
    // The project's lock, read once for both of its checks.
    let target = policy.target_for_host(p.os, &p.arch);
    let mut torch_cuda = None;
    let mut requires_python = None;
    let installed = ctx.project_opt().map(|dir| installed_torch(dir, p));
    if let (Some(dir), Some(t)) = (ctx.project_opt(), target) {
        let proj = lock::Project::load(dir);
        out.push(lock_check(proj.as_ref(), policy, t));
        if let Ok(proj) = proj {
            torch_cuda = proj.torch_cuda(t);
            requires_python = proj.reqs.requires_python.clone();
            out.extend(entry_module_checks(ctx, policy, dir, &proj.reqs, t));
        }
    }
    if let Some(installed) = &installed {
        // The torch installed is what runs: its CUDA, over the lock's.
        if let Ok(f) = installed
            && let crate::torch::Build::Cuda(c) = &f.build
        {
            torch_cuda = Some((f.version.clone(), c.clone()));
        }
        out.push(torch_gpu_check(p, policy, installed));
    }
    out.push(driver_check(p, torch_cuda));
    out.extend(tool_checks(p, policy, requires_python.as_deref()));
    out
}

/// The torch installed in the project's `.venv`, read from its `torch/version.py` (no
/// Python started); Err says why there is none.
fn installed_torch(project: &Utf8Path, p: &Platform) -> Result<crate::torch::Found, String> {
    let venv = project.join(".venv");
    if !venv.is_dir() {
        return Err(format!(
            "no {venv}: run `cargo xtask setup` (or setup-dev) first"
        ));
    }
    let mut files: Vec<Utf8PathBuf> = ["lib", "lib64"]
        .iter()
        .filter_map(|l| venv.join(l).read_dir_utf8().ok())
        .flatten()
        .flatten()
        .filter(|e| e.file_name().starts_with("python"))
        .map(|e| e.path().join("site-packages/torch/version.py"))
        .filter(|f| f.is_file())
        .collect();
    files.sort();
    let Some(file) = files.pop() else {
        return Err(format!("torch is not installed in {venv}"));
    };
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{file}: cannot read: {e}"))?;
    crate::torch::from_version_py(&text, p.os, &p.arch)
        .ok_or_else(|| format!("{file}: no __version__ in it"))
}

/// Whether the installed torch uses this host's GPUs: an NVIDIA GPU (as nvidia-smi lists
/// it, whether or not libcuda loads) with a CPU-only torch, or a torch without kernels
/// for its compute capability, fails, naming the GPU, the build's list and the fix.
fn torch_gpu_check(
    p: &Platform,
    policy: &Policy,
    installed: &Result<crate::torch::Found, String>,
) -> Check {
    use crate::torch::Build;
    let name = "torch uses the GPU";
    let nvidia: Vec<&platform::Gpu> = p.gpus.iter().filter(|g| g.vendor == "nvidia").collect();
    let found = match installed {
        Ok(f) => f,
        Err(why) => return platform_check(name, Status::Skip, why.clone()),
    };
    if nvidia.is_empty() {
        let (status, why) = match found.build {
            Build::Mps => (
                Status::Pass,
                format!(
                    "torch {} is the MPS build: Apple's GPU through Metal",
                    found.version
                ),
            ),
            _ => (
                Status::Skip,
                format!(
                    "no NVIDIA GPU on this host (torch {}: {})",
                    found.version,
                    found.build.describe()
                ),
            ),
        };
        return platform_check(name, status, why);
    }
    let (asked, unknown_cc) = gpu_models(&nvidia);
    let j = crate::torch::judge(policy, &p.arch, true, found, &asked, &[]);
    let described = |d: &crate::torch::GpuVerdict| {
        let family = crate::gpu::Cc::parse(&d.cc)
            .and_then(|c| policy.family(c))
            .map(|f| format!(", {f}"))
            .unwrap_or_default();
        format!("{} ({}{family})", d.gpu, d.cc)
    };
    let build = format!("torch {} ({})", found.version, found.build.describe());
    let detail = |keep: fn(&crate::torch::GpuVerdict) -> bool, with_why: bool| -> Vec<String> {
        j.gpus
            .detail
            .iter()
            .filter(|d| keep(d))
            .map(|d| match with_why {
                true => format!("{}: {}", described(d), d.why),
                false => described(d),
            })
            .collect()
    };
    if !j.findings.is_empty() {
        let fails = detail(|d| d.runs == Some(false), true);
        let why = format!(
            "{build}{}; {}: {}",
            j.sm.as_ref()
                .map(|sm| format!(" carries {}", sm.join(" ")))
                .unwrap_or_default(),
            fails.join("; "),
            torch_fix(found, &j)
        );
        return platform_check(name, Status::Fail, why);
    }
    let mut unknown = detail(|d| d.runs.is_none(), false);
    unknown.extend(unknown_cc);
    if !unknown.is_empty() {
        let why = format!("{build}: {}; {}", j.kernels, unknown.join("; "));
        return platform_check(name, Status::Skip, why);
    }
    let runs = detail(|_| true, true);
    platform_check(
        name,
        Status::Pass,
        format!("{build} runs on {}", runs.join("; ")),
    )
}

/// One question per GPU model (eight H100s are one line): the models with a compute
/// capability to judge, and the lines for those whose capability nvidia-smi did not give.
fn gpu_models(nvidia: &[&platform::Gpu]) -> (Vec<(crate::gpu::Asked, bool)>, Vec<String>) {
    let mut models: Vec<(String, usize, Option<&str>)> = Vec::new();
    for g in nvidia {
        match models.iter_mut().find(|(n, _, _)| *n == g.name) {
            Some(m) => m.1 += 1,
            None => models.push((g.name.clone(), 1, g.compute_capability.as_deref())),
        }
    }
    let mut unknown_cc = Vec::new();
    let mut asked = Vec::new();
    for (model, count, cc) in models {
        let label = if count > 1 {
            format!("{count}× {model}")
        } else {
            model
        };
        match cc.and_then(crate::gpu::Cc::parse) {
            Some(cc) => asked.push((
                crate::gpu::Asked {
                    name: label,
                    cc,
                    only: None,
                },
                false,
            )),
            None => unknown_cc.push(format!(
                "{label}: compute capability unknown (nvidia-smi: {})",
                cc.unwrap_or("none")
            )),
        }
    }
    (asked, unknown_cc)
}

/// What to do about a torch that leaves a GPU idle: the source that runs it (a CUDA build
/// without its kernels), else the port to the CUDA index.
fn torch_fix(found: &crate::torch::Found, j: &crate::torch::Judged) -> String {
    match &found.build {
        crate::torch::Build::Cuda(_) => j
            .findings
            .iter()
            .filter_map(|f| f.rsplit_once("; ").map(|(_, fix)| fix.to_string()))
            .next()
            .unwrap_or_default(),
        _ => "run `cargo xtask port` (it sources torch from the CUDA index), `cargo xtask lock`, then `cargo xtask setup`".into(),
    }
}

/// The runtime proof of `audit`'s import check: each of the app's entry modules
/// (`[tool.xtask] entry-modules`, else the policy's) that the project has imports in its
/// installed environment, as the app would start. Skipped without a .venv.
fn entry_module_checks(
    ctx: &Ctx,
    policy: &Policy,
    project: &Utf8Path,
    reqs: &crate::pyproject::Requirements,
    target: &crate::policy::Target,
) -> Vec<Check> {
    let present = entry_modules(project, policy, reqs);
    if present.is_empty() {
        return Vec::new();
    }
    let name = |m: &str| format!("import {m}");
    if !project.join(".venv").is_dir() {
        return present
            .iter()
            .map(|m| {
                let why = "no .venv: run `cargo xtask setup-dev` first".to_string();
                platform_check(&name(m), Status::Skip, why)
            })
            .collect();
    }
    let uv = match crate::uv::ensure(&ctx.workspace, policy) {
        Ok(uv) => uv,
        Err(e) => {
            let why = error::line_of(&e);
            return present
                .iter()
                .map(|m| platform_check(&name(m), Status::Skip, why.clone()))
                .collect();
        }
    };
    let mut out = Vec::new();
    for m in &present {
        let started = std::time::Instant::now();
        let cmd = uv
            .cmd()
            .args(["run", "--frozen", "--no-sync", "python", "-c"])
            .arg(format!("import {m}"))
            .env("PYTHONPATH", project.as_str())
            .dir(project.as_std_path());
        errln!("$ {}", cmd.display());
        let probe = cmd.probe(Duration::from_secs(900));
        let took = started.elapsed().as_secs_f64();
        let check = if probe.ok_stdout().is_some() {
            platform_check(
                &name(m),
                Status::Pass,
                format!("imports on {} in {took:.1} s", target.name),
            )
        } else {
            let last = match &probe {
                crate::process::Probe::Exited { stderr, .. } => stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
                other => other.failure_line(),
            };
            let why = format!(
                "does not import on {} ({last}): `cargo xtask audit` lists the unguarded imports",
                target.name
            );
            platform_check(&name(m), Status::Fail, why)
        };
        out.push(check);
    }
    out
}

/// The app's entry modules ([tool.xtask] entry-modules, else the policy's) that the
/// project has: what `validate` and the image's start proof import.
pub(crate) fn entry_modules(
    project: &Utf8Path,
    policy: &Policy,
    reqs: &crate::pyproject::Requirements,
) -> Vec<String> {
    reqs.entry_modules
        .clone()
        .unwrap_or_else(|| policy.app.entry_modules.clone())
        .into_iter()
        .filter(|m| module_file(project, m).is_some())
        .collect()
}

/// `a/b.py` or `a/b/__init__.py` for module `a.b`, at the project root or under `src/`.
fn module_file(project: &Utf8Path, module: &str) -> Option<camino::Utf8PathBuf> {
    let rel = module.replace('.', "/");
    [project.to_path_buf(), project.join("src")]
        .into_iter()
        .flat_map(|root| {
            [
                root.join(format!("{rel}.py")),
                root.join(&rel).join("__init__.py"),
            ]
        })
        .find(|p| p.is_file())
}

fn platform_check(name: &str, status: Status, reason: String) -> Check {
    check(1, Group::Platform, name, status, reason)
}

fn target_check(p: &Platform) -> Check {
    match p.target.name() {
        Some(name) => platform_check("target", Status::Pass, name.into()),
        None => {
            let why = format!("{} on {} maps to no target of the policy", p.os, p.arch);
            platform_check("target", Status::Fail, why)
        }
    }
}

/// The project's lock must have something installable for this host's target.
fn lock_check(
    proj: Result<&lock::Project, &anyhow::Error>,
    policy: &Policy,
    t: &crate::policy::Target,
) -> Check {
    let name = "lock installs here";
    let missing = proj.map_err(|e| anyhow::anyhow!(error::line_of(e)));
    match missing.and_then(|proj| lock_installs(proj, policy, t)) {
        Ok(missing) if missing.is_empty() => platform_check(
            name,
            Status::Pass,
            format!(
                "every package of uv.lock has a wheel or an sdist for {}",
                t.name
            ),
        ),
        Ok(missing) => platform_check(
            name,
            Status::Fail,
            format!(
                "no installable file for {} on {}: run `cargo xtask port`, then `cargo xtask lock`",
                missing.join(", "),
                t.name
            ),
        ),
        Err(e) => platform_check(name, Status::Skip, error::line_of(&e)),
    }
}

/// The driver must support the CUDA version torch was built for.
fn driver_check(p: &Platform, torch_cuda: Option<(String, String)>) -> Check {
    let have = p.cuda.as_ref().and_then(|c| c.driver_cuda_version.clone());
    let (status, why) = match (p.backend, torch_cuda, have) {
        (Backend::Cuda, Some((torch, need)), Some(have)) => {
            if crate::xy::Xy::parse(&have) >= crate::xy::Xy::parse(&need) {
                let why = format!("driver supports CUDA {have}; torch {torch} needs {need}");
                (Status::Pass, why)
            } else {
                let why = format!(
                    "driver supports CUDA {have} but torch {torch} needs {need}: update the NVIDIA driver"
                );
                (Status::Fail, why)
            }
        }
        (Backend::Cuda, None, _) => (
            Status::Skip,
            "no CUDA build of torch in the project (pass --project; its .venv or lock says)".into(),
        ),
        (Backend::Cuda, _, None) => (Status::Skip, "the driver's CUDA version is unknown".into()),
        _ => (
            Status::Skip,
            format!("no CUDA on this host (backend {})", p.backend.as_str()),
        ),
    };
    platform_check("driver vs torch CUDA", status, why)
}

/// uv, a Python for the project's `requires-python` (without a project, the policy's),
/// Docker and nvcc: found, or why not.
fn tool_checks(p: &Platform, policy: &Policy, requires_python: Option<&str>) -> Vec<Check> {
    let found = |name: &str, t: Option<&platform::Tool>, missing: &str| match t {
        Some(t) => platform_check(
            name,
            Status::Pass,
            format!("{} {}", t.version.as_deref().unwrap_or("?"), t.path),
        ),
        None => platform_check(name, Status::Skip, missing.into()),
    };
    let py = &policy.python.version;
    let project_spec = requires_python.and_then(|r| crate::pep::specifiers(r).ok().map(|s| (r, s)));
    let fits = |v: &str| match &project_spec {
        Some((_, spec)) => crate::pep::version(v).is_ok_and(|v| spec.contains(&v)),
        None => v.starts_with(&format!("{py}.")),
    };
    let python = match p.tools.pythons.iter().find(|x| fits(&x.version)) {
        Some(x) => platform_check("python", Status::Pass, format!("{} {}", x.version, x.path)),
        None => {
            let wanted = match &project_spec {
                Some((r, _)) => format!("Python {r} (the project's requires-python)"),
                None => format!("Python {py}"),
            };
            platform_check(
                "python",
                Status::Skip,
                format!("no {wanted} found (needed for levels 3-4)"),
            )
        }
    };
    let docker = &p.tools.docker;
    let docker = match (&docker.daemon, docker.clients.is_empty()) {
        (Some(v), _) => platform_check("docker", Status::Pass, format!("daemon {v}")),
        (None, true) => platform_check("docker", Status::Skip, "no docker client".into()),
        (None, false) => platform_check(
            "docker",
            Status::Skip,
            docker
                .daemon_error
                .clone()
                .unwrap_or_else(|| "no daemon".into()),
        ),
    };
    vec![
        found(
            "uv",
            p.tools.uv.as_ref(),
            "not on PATH (setup-dev installs it with pip)",
        ),
        python,
        docker,
        found(
            "nvcc",
            p.tools.nvcc.as_ref(),
            "not found (only needed to build flash-attn / DeepSpeed ops)",
        ),
    ]
}

/// The packages of the project's lock with nothing installable on `t` (as `uv sync` would walk it).
fn lock_installs(
    proj: &lock::Project,
    policy: &Policy,
    t: &crate::policy::Target,
) -> Result<Vec<String>> {
    let python = proj.python()?;
    let sel = lock::Selection {
        default_groups: proj.reqs.default_groups.clone(),
        ..lock::Selection::default()
    };
    let results = lock::audit::Auditor::new(proj, policy).target(t, python, &sel)?;
    Ok(results
        .into_iter()
        .filter(|r| r.status == lock::audit::Status::Missing)
        .map(|r| format!("{} {}", r.name, r.version))
        .collect())
}

/// Level 3: torch in the project's environment.
fn level3(
    ctx: &Ctx,
    project: &Utf8Path,
    backend: Backend,
    quick: bool,
) -> Result<(Vec<Check>, Option<String>)> {
    let policy = ctx.policy()?;
    let uv = crate::uv::ensure(&ctx.workspace, policy)?;
    let script = ctx
        .workspace
        .join("templates")
        .join("validate")
        .join("torch_smoke.py");
    let mut cmd = uv
        .cmd()
        .args(["run", "--frozen", "--no-sync", "python"])
        .arg(script.as_str())
        .args(["--expect", backend.as_str()])
        .dir(project.as_std_path());
    if quick {
        cmd = cmd.arg("--quick");
    }
    errln!("$ {}", cmd.display());
    let probe = cmd.probe(Duration::from_secs(1200));
    let out = probe.any_stdout().unwrap_or_default();
    let report: TorchReport =
        serde_json::from_str(out.lines().last().unwrap_or("")).map_err(|e| {
            anyhow::anyhow!(
                "level 3: the torch check printed no report it could read ({}; {e})",
                probe.failure_line()
            )
        })?;
    if let Some(e) = report.error {
        return Err(error::absent(format!(
            "level 3: {e} in {project}/.venv: run `cargo xtask setup` (or setup-dev) first"
        )));
    }
    let mut checks = at_level(3, report.checks);
    checks.extend(arch_check(
        policy,
        &crate::names::Arch::host(),
        &report.info,
    ));
    Ok((checks, report.info.torch))
}

/// What templates/validate/torch_smoke.py prints: its checks have tensor-smoke's fields.
#[derive(serde::Deserialize)]
struct TorchReport {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    info: TorchInfo,
    #[serde(default)]
    checks: Vec<Check>,
}

#[derive(serde::Deserialize, Default)]
struct TorchInfo {
    torch: Option<String>,
    #[serde(default)]
    torch_cuda: Option<String>,
    /// `torch._C._cuda_getArchFlags()`: the GPU code the build carries.
    #[serde(default)]
    arch_flags: Option<String>,
    #[serde(default)]
    arch_flags_error: Option<String>,
    /// Each CUDA device's compute capability, where torch sees CUDA.
    #[serde(default)]
    capabilities: Vec<String>,
}

/// Level 3's word on the GPU code: what the installed build reports, against the
/// policy's fact (which `audit` answers from), and against each device torch sees.
fn arch_check(policy: &Policy, arch: &crate::names::Arch, info: &TorchInfo) -> Option<Check> {
    let name = "torch GPU architectures";
    let (version, cuda) = (info.torch.as_deref()?, info.torch_cuda.as_deref()?);
    let judged = |status, why: String| Some(check(3, Group::Torch, name, status, why));
    let flags = match (&info.arch_flags, &info.arch_flags_error) {
        (Some(f), _) => f,
        (None, Some(e)) => {
            return judged(Status::Skip, format!("torch {version} did not say: {e}"));
        }
        (None, None) => return None,
    };
    let list = match crate::gpu::ArchList::from_flags(flags) {
        Ok(l) => l,
        Err(e) => {
            return judged(
                Status::Fail,
                format!("torch {version} reports {flags:?}: {e}"),
            );
        }
    };
    let cuda_xy = crate::xy::Xy::parse(cuda).map_or_else(|| cuda.to_string(), |v| v.to_string());
    let mut bad = Vec::new();
    for (i, cc) in info.capabilities.iter().enumerate() {
        if let Some(c) = crate::gpu::Cc::parse(cc)
            && list.runs(c) == crate::gpu::Runs::No
        {
            bad.push(format!("device {i} ({cc}) has no kernels in it"));
        }
    }
    let reports = format!(
        "torch {version} (CUDA {cuda_xy}, {}) reports {}",
        arch.as_str(),
        list.describe()
    );
    let verdict = match policy.build_fact(version, &cuda_xy, arch) {
        Some(f) if f.list == list => (
            Status::Pass,
            format!("{reports}: as the policy's fact ({})", f.source),
        ),
        Some(f) => (
            Status::Fail,
            format!(
                "{reports}, but the policy's fact says {} (torch {} CUDA {} {}): correct [[torch.builds]] in the policy, or `audit` answers wrongly",
                f.list.describe(),
                f.versions_text,
                f.cuda,
                f.arch.as_str()
            ),
        ),
        None => (
            Status::Skip,
            format!(
                "{reports}; the policy has no fact for it: add [[torch.builds]] versions = \"=={}\", cuda = \"{cuda_xy}\", arch = \"{}\", arch-list = \"{}\"",
                crate::policy::release_of(version).map_or(version.to_string(), |v| v.to_string()),
                arch.as_str(),
                torch_list(&list)
            ),
        ),
    };
    if !bad.is_empty() {
        return judged(Status::Fail, format!("{reports}: {}", bad.join("; ")));
    }
    judged(verdict.0, verdict.1)
}

/// An arch list as TORCH_CUDA_ARCH_LIST writes it (`7.5;8.0;12.0+PTX`).
fn torch_list(l: &crate::gpu::ArchList) -> String {
    l.sass
        .iter()
        .map(|s| {
            let suffix = match s.reach {
                crate::gpu::Reach::Plain => "",
                crate::gpu::Reach::Specific => "a",
                crate::gpu::Reach::Family => "f",
            };
            let ptx = if l.ptx.contains(&s.cc) { "+PTX" } else { "" };
            format!("{}{suffix}{ptx}", s.cc)
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// Level 4: the project's GPU tests (marked, or named by the policy) that this host's
/// backend can run.
fn level4(ctx: &Ctx, project: &Utf8Path, policy: &Policy, backend: Backend) -> Result<Vec<Check>> {
    let name = "GPU tests";
    let judged = |status, why: String| vec![check(4, Group::Pytest, name, status, why)];
    let anywhere = policy
        .gpu_tests
        .markers
        .iter()
        .chain(&policy.gpu_tests.node_ids)
        .any(|(_, need)| *need == crate::policy::Need::Any);
    if backend == Backend::Cpu && !anywhere {
        return Ok(judged(Status::Skip, "no GPU on this host".into()));
    }
    let run = pytest::Run {
        suite: pytest::Suite::All,
        gpu: pytest::Gpu::OnlyRunnable(backend),
        marker: None,
        cov: None,
        extra: &[],
        env: Vec::new(),
    };
    let outcome = pytest::run(ctx, project, policy, &run)?;
    let summary = outcome.summary.as_ref().map(pytest::Summary::line);
    if outcome.status.code == Some(5) && !outcome.status.interrupted {
        let why = format!(
            "the project has no GPU tests for {} ({})",
            backend.as_str(),
            summary.unwrap_or_default()
        );
        return Ok(judged(Status::Skip, why));
    }
    match pytest::judge(&outcome) {
        Ok(()) => Ok(vec![Check {
            reason: summary,
            ..Check::new(Group::Pytest, None, name).at_level(4)
        }]),
        Err(e) if error::code_of(&e) == error::Code::Interrupted => Err(e),
        Err(e) => Ok(judged(Status::Fail, error::line_of(&e))),
    }
}

impl Validate {
    /// `--merge` (as `fleet merge`): one row per node, then the GPUs that are slow for their device.
    fn merge_reports(&self) -> Result<()> {
        fleet::check_fraction(self.slow_fraction)?;
        let reports = fleet::read(&self.merge)?;
        let merged = fleet::merge(&reports, &[], self.slow_fraction, self.require);
        self.out.emit(&merged, || merged.render())?;
        merged.verdict()
    }
}
