//! `cargo xtask validate`: does this machine run the app, and its GPU correctly?
//! Level 1 judges the platform; level 2 runs the bundled tensor-smoke on every backend
//! the host has; level 3 runs torch in the project's environment; level 4 the project's
//! GPU-marked tests. Skips carry their reason; `--require` makes a backend mandatory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;

use crate::ctx::{Ctx, OutputArgs};
use crate::error;
use crate::fleet;
use crate::lock;
use crate::platform::{self, Backend};
use crate::policy::Policy;
use crate::process::{Cmd, find};
use crate::pytest;
use crate::report::{self, Check, GpuId, Host, Report, Require};

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
        // `{node}` in --output: one file per node on a shared filesystem.
        let mut out = self.out.clone();
        if let Some(o) = &out.output
            && o.as_str().contains("{node}")
        {
            let name = node
                .clone()
                .unwrap_or_else(hostname)
                .replace(['/', '\\'], "_");
            out.output = Some(o.as_str().replace("{node}", &name).into());
        }
        out.preflight(ctx)?;
        let policy = ctx.policy()?;
        let plat = platform::probe::detect(policy);
        let mut versions = BTreeMap::new();
        versions.insert("xtask".to_string(), env!("CARGO_PKG_VERSION").to_string());
        if let Some(uv) = &plat.tools.uv
            && let Some(v) = &uv.version
        {
            versions.insert("uv".into(), v.clone());
        }
        if let Some(v) = plat.cuda.as_ref().and_then(|c| c.driver_version.clone()) {
            versions.insert("nvidia_driver".into(), v);
        }
        if let Some(v) = plat
            .cuda
            .as_ref()
            .and_then(|c| c.driver_cuda_version.clone())
        {
            versions.insert("driver_cuda".into(), v);
        }
        let mut checks = level1(&plat, policy, ctx);
        let mut levels = vec![1];
        if self.level >= 2 {
            levels.push(2);
            checks.extend(self.level2(ctx, &plat));
        }
        let project = ctx.project_opt();
        if self.level >= 3 {
            match project {
                None => {
                    eprintln!(
                        "note: levels 3-4 need the app's Python project (pass --project DIR); ran levels {}",
                        levels
                            .iter()
                            .map(u8::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    checks.push(Check::new(
                        3,
                        "torch",
                        "torch",
                        "skip",
                        Some("no Python project (pass --project DIR)".into()),
                    ));
                }
                Some(p) => {
                    levels.push(3);
                    let (c, torch) = level3(ctx, p, plat.backend, self.quick)?;
                    if let Some(v) = torch {
                        versions.insert("torch".into(), v);
                    }
                    checks.extend(c);
                    if self.level >= 4 {
                        levels.push(4);
                        checks.extend(level4(ctx, p, policy, plat.backend)?);
                    }
                }
            }
        }
        let report = Report {
            host: Host {
                node,
                job,
                hostname: hostname(),
                os: plat.os.clone(),
                arch: plat.arch.clone(),
                target: plat.target.clone(),
                backend: plat.backend.as_str().into(),
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
                    })
                    .collect(),
            },
            versions,
            levels_run: levels,
            checks,
        };
        out.emit(&report, || report.table())?;
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

    fn level2(&self, ctx: &Ctx, plat: &platform::Platform) -> Vec<Check> {
        let bin = match self.smoke_binary(ctx, plat) {
            Ok(b) => b,
            Err(why) => return vec![Check::new(2, "cpu", "tensor-smoke", "skip", Some(why))],
        };
        let mut cmd = Cmd::new(&bin).arg("--json");
        if self.quick {
            cmd = cmd.arg("--quick");
        }
        if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
            cmd = cmd.env("XDG_RUNTIME_DIR", std::env::temp_dir());
        }
        eprintln!("$ {}", cmd.display());
        let probe = cmd.probe(Duration::from_secs(600));
        let Some(stdout) = stdout_any(&probe) else {
            return vec![Check::new(
                2,
                "cpu",
                "tensor-smoke",
                "fail",
                Some(format!("tensor-smoke {}", probe.failure_line())),
            )];
        };
        #[derive(Deserialize)]
        struct SmokeReport {
            checks: Vec<Check>,
        }
        match serde_json::from_str::<SmokeReport>(&stdout) {
            Ok(r) => r
                .checks
                .into_iter()
                .map(|c| Check { level: 2, ..c })
                .collect(),
            Err(e) => vec![Check::new(
                2,
                "cpu",
                "tensor-smoke",
                "fail",
                Some(format!("unreadable report: {e}")),
            )],
        }
    }

    /// --smoke-bin, a tensor-smoke beside this binary (a dist bundle), or one built now.
    fn smoke_binary(
        &self,
        ctx: &Ctx,
        plat: &platform::Platform,
    ) -> std::result::Result<PathBuf, String> {
        if let Some(p) = &self.smoke_bin {
            return if p.is_file() {
                Ok(p.clone().into_std_path_buf())
            } else {
                Err(format!("--smoke-bin {p} does not exist"))
            };
        }
        if let Some(root) = crate::ctx::bundle_root() {
            let bundled = root
                .join("bin")
                .join(format!("tensor-smoke{}", std::env::consts::EXE_SUFFIX));
            if bundled.is_file() {
                return Ok(bundled.into_std_path_buf());
            }
        }
        if !ctx
            .workspace
            .join("tensor-smoke")
            .join("Cargo.toml")
            .is_file()
        {
            return Err("no tensor-smoke: pass --smoke-bin PATH (see `cargo xtask dist`)".into());
        }
        let cargo = std::env::var_os("CARGO")
            .map(PathBuf::from)
            .or_else(|| find("cargo"));
        let Some(cargo) = cargo else {
            return Err(
                "no cargo to build tensor-smoke: pass --smoke-bin PATH (see `cargo xtask dist`)"
                    .into(),
            );
        };
        let features = smoke_features(&plat.os);
        eprintln!("building tensor-smoke ({features}); the first build takes a minute or two");
        let cmd = Cmd::new(&cargo)
            .args(["build", "--quiet", "-p", "tensor-smoke", "--features"])
            .arg(&features)
            .dir(ctx.workspace.as_std_path());
        cmd.run_shown()
            .map_err(|e| format!("building tensor-smoke failed: {}", error::line_of(&e)))?;
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(Utf8PathBuf::from)
            .unwrap_or_else(|_| ctx.workspace.join("target"));
        Ok(target
            .join("debug")
            .join(format!("tensor-smoke{}", std::env::consts::EXE_SUFFIX))
            .into_std_path_buf())
    }
}

/// The tensor-smoke features a host can use: CUDA on Linux, wgpu (Metal/Vulkan) everywhere.
pub fn smoke_features(os: &str) -> String {
    match os {
        "linux" | "windows" => "cuda,wgpu".into(),
        "macos" => "wgpu".into(),
        _ => "cpu".into(),
    }
}

fn stdout_any(p: &crate::process::Probe) -> Option<String> {
    match p {
        crate::process::Probe::Exited { stdout, .. } if !stdout.trim().is_empty() => {
            Some(stdout.clone())
        }
        _ => None,
    }
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
fn level1(p: &platform::Platform, policy: &Policy, ctx: &Ctx) -> Vec<Check> {
    let mut out = Vec::new();
    let mut add = |name: &str, status: &str, reason: String| {
        out.push(Check::new(1, "platform", name, status, Some(reason)));
    };
    if p.target == platform::UNSUPPORTED {
        add(
            "target",
            "fail",
            format!("{} on {} maps to no target of the policy", p.os, p.arch),
        );
    } else {
        add("target", "pass", p.target.clone());
    }
    let broken_driver = p.backend == Backend::Cpu && p.gpus.iter().any(|g| g.vendor == "nvidia");
    add(
        "gpu backend",
        if broken_driver { "fail" } else { "pass" },
        format!("{}: {}", p.backend.as_str(), p.backend_evidence.join("; ")),
    );
    for w in &p.warnings {
        add("probe", "skip", w.clone());
    }
    // The project's lock must have something installable for this host's target.
    if let (Some(dir), Some(t)) = (
        ctx.project_opt(),
        policy.targets.iter().find(|t| t.name == p.target),
    ) {
        match lock_installs(dir, policy, t) {
            Ok(missing) if missing.is_empty() => add(
                "lock installs here",
                "pass",
                format!(
                    "every package of uv.lock has a wheel or an sdist for {}",
                    t.name
                ),
            ),
            Ok(missing) => add(
                "lock installs here",
                "fail",
                format!(
                    "no installable file for {} on {}: run `cargo xtask port`, then `cargo xtask lock`",
                    missing.join(", "),
                    t.name
                ),
            ),
            Err(e) => add("lock installs here", "skip", error::line_of(&e)),
        }
    }
    // The driver must support the CUDA version torch was built for.
    let torch_cuda = ctx
        .project_opt()
        .and_then(|proj| torch_cuda_in_lock(proj, policy, &p.target));
    match (
        p.backend,
        torch_cuda,
        p.cuda.as_ref().and_then(|c| c.driver_cuda_version.clone()),
    ) {
        (Backend::Cuda, Some((torch, need)), Some(have)) => {
            let ok = version_tuple(&have) >= version_tuple(&need);
            add(
                "driver vs torch CUDA",
                if ok { "pass" } else { "fail" },
                if ok {
                    format!("driver supports CUDA {have}; torch {torch} needs {need}")
                } else {
                    format!(
                        "driver supports CUDA {have} but torch {torch} needs {need}: update the NVIDIA driver"
                    )
                },
            );
        }
        (Backend::Cuda, None, _) => add(
            "driver vs torch CUDA",
            "skip",
            "no project lock with a CUDA build of torch (pass --project)".into(),
        ),
        (Backend::Cuda, _, None) => add(
            "driver vs torch CUDA",
            "skip",
            "the driver's CUDA version is unknown".into(),
        ),
        _ => add(
            "driver vs torch CUDA",
            "skip",
            format!("no CUDA on this host (backend {})", p.backend.as_str()),
        ),
    }
    match &p.tools.uv {
        Some(uv) => add(
            "uv",
            "pass",
            format!("{} {}", uv.version.as_deref().unwrap_or("?"), uv.path),
        ),
        None => add(
            "uv",
            "skip",
            "not on PATH (setup-dev installs it with pip)".into(),
        ),
    }
    let py = &policy.python.version;
    match p
        .tools
        .pythons
        .iter()
        .find(|x| x.version.starts_with(&format!("{py}.")))
    {
        Some(x) => add("python", "pass", format!("{} {}", x.version, x.path)),
        None => add(
            "python",
            "skip",
            format!("no Python {py} found (needed for levels 3-4)"),
        ),
    }
    match (&p.tools.docker.daemon, p.tools.docker.clients.is_empty()) {
        (Some(v), _) => add("docker", "pass", format!("daemon {v}")),
        (None, true) => add("docker", "skip", "no docker client".into()),
        (None, false) => add(
            "docker",
            "skip",
            p.tools
                .docker
                .daemon_error
                .clone()
                .unwrap_or_else(|| "no daemon".into()),
        ),
    }
    match &p.tools.nvcc {
        Some(t) => add(
            "nvcc",
            "pass",
            format!("{} {}", t.version.as_deref().unwrap_or("?"), t.path),
        ),
        None => add(
            "nvcc",
            "skip",
            "not found (only needed to build flash-attn / DeepSpeed ops)".into(),
        ),
    }
    out
}

/// The packages of the project's lock with nothing installable on `t` (as `uv sync` would walk it).
fn lock_installs(
    dir: &Utf8Path,
    policy: &Policy,
    t: &crate::policy::Target,
) -> Result<Vec<String>> {
    let proj = lock::Project::load(dir)?;
    let python = proj.python()?;
    let sel = lock::Selection {
        default_groups: proj.reqs.default_groups.clone(),
        ..lock::Selection::default()
    };
    let results = lock::audit::Auditor::new(&proj, policy).target(t, python, &sel)?;
    Ok(results
        .into_iter()
        .filter(|r| r.status == lock::audit::Status::Missing)
        .map(|r| format!("{} {}", r.name, r.version))
        .collect())
}

fn version_tuple(v: &str) -> Vec<u32> {
    v.split('.').filter_map(|p| p.parse().ok()).collect()
}

/// torch's version and CUDA version ("12.8" from "+cu128") as locked for a target.
fn torch_cuda_in_lock(
    project: &Utf8Path,
    policy: &Policy,
    target: &str,
) -> Option<(String, String)> {
    let proj = lock::Project::load(project).ok()?;
    let t = policy.targets.iter().find(|t| t.name == target)?;
    let (major, minor) = proj.python().ok()?;
    let env = crate::pep::environment(
        &t.sys_platform,
        &t.platform_machine,
        &format!("{major}.{minor}"),
    )
    .ok()?;
    let walk = proj.walk(&env, &lock::Selection::default()).ok()?;
    walk.reached
        .iter()
        .map(|&i| &proj.lock.package[i])
        .find(|p| p.name == "torch")
        .and_then(|p| {
            let v = p.version.clone()?;
            let cu = v.split_once("+cu")?.1;
            let (major, minor) = cu.split_at(cu.len().saturating_sub(1));
            Some((v.clone(), format!("{major}.{minor}")))
        })
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
    eprintln!("$ {}", cmd.display());
    let probe = cmd.probe(Duration::from_secs(1200));
    let out = stdout_any(&probe).unwrap_or_default();
    let json: serde_json::Value =
        serde_json::from_str(out.lines().last().unwrap_or("")).map_err(|_| {
            anyhow::anyhow!(
                "level 3: the torch check printed no report ({})",
                probe.failure_line()
            )
        })?;
    if let Some(e) = json.get("error").and_then(|e| e.as_str()) {
        return Err(error::absent(format!(
            "level 3: {e} in {project}/.venv: run `cargo xtask setup` (or setup-dev) first"
        )));
    }
    let torch = json["info"]["torch"].as_str().map(str::to_string);
    let device = json["info"]["device"].as_str().map(str::to_string);
    let checks: Vec<Check> = serde_json::from_value(json["checks"].clone())
        .map_err(|e| anyhow::anyhow!("level 3: unreadable torch report: {e}"))?;
    let checks = checks
        .into_iter()
        .map(|c| Check {
            level: 3,
            group: "torch".into(),
            device: device.clone(),
            ..c
        })
        .collect();
    Ok((checks, torch))
}

/// Level 4: the project's GPU tests (marked, or named by the policy) that this host's
/// backend can run.
fn level4(ctx: &Ctx, project: &Utf8Path, policy: &Policy, backend: Backend) -> Result<Vec<Check>> {
    let name = "GPU tests";
    if backend == Backend::Cpu {
        return Ok(vec![Check::new(
            4,
            "pytest",
            name,
            "skip",
            Some("no GPU on this host".into()),
        )]);
    }
    let outcome = pytest::run(
        ctx,
        project,
        policy,
        &pytest::Run {
            suite: pytest::Suite::All,
            gpu: pytest::Gpu::OnlyRunnable(backend),
            marker: None,
            cov: None,
            extra: &[],
            env: Vec::new(),
        },
    )?;
    let reason = outcome.summary.as_ref().map(pytest::Summary::line);
    if outcome.status.code == Some(5) && !outcome.status.interrupted {
        return Ok(vec![Check::new(
            4,
            "pytest",
            name,
            "skip",
            Some(format!(
                "the project has no GPU tests for {} ({})",
                backend.as_str(),
                reason.unwrap_or_default()
            )),
        )]);
    }
    Ok(vec![match pytest::judge(&outcome) {
        Ok(()) => Check::new(4, "pytest", name, "pass", reason),
        Err(e) if error::code_of(&e) == error::Code::Interrupted => return Err(e),
        Err(e) => Check::new(4, "pytest", name, "fail", Some(error::line_of(&e))),
    }])
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
