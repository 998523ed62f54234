//! The thin probing layer: runs commands (through `process`), loads libcuda, reads
//! files, and hands the text to `parse`. Probes run in parallel.

use std::path::{Path, PathBuf};
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};

use super::{
    Apple, Backend, BuildKit, Cuda, Docker, DockerClient, Gpu, Platform, Python, PythonSource,
    Tool, Tools, decide_backend,
};
use super::{machine, parse};
use crate::names::{Arch, Os};
use crate::policy::HostTarget;
use crate::policy::Policy;
use crate::process::{Cmd, Probe, find, find_all};

const QUICK: Duration = Duration::from_secs(10);
/// nvidia-smi can take seconds per GPU on nodes without persistence mode.
const SLOW: Duration = Duration::from_secs(30);

/// Probe the whole machine; the policy maps it to a target.
pub fn detect(policy: &Policy) -> Platform {
    let os = Os::host();
    let mut warnings = Vec::new();

    let machine = machine::detect();
    let (os_version, nvidia, libcuda, apple, tools) = std::thread::scope(|s| {
        let osv = s.spawn(|| os_version(os));
        let nvidia = s.spawn(|| (os == Os::Linux).then(nvidia_smi_gpus));
        let libcuda = s.spawn(|| (os == Os::Linux).then(libcuda));
        let apple = s.spawn(|| (os == Os::Macos).then(apple));
        let tools = s.spawn(tools);
        (
            osv.join().expect("os probe"),
            nvidia.join().expect("nvidia probe"),
            libcuda.join().expect("libcuda probe"),
            apple.join().expect("apple probe"),
            tools.join().expect("tool probe"),
        )
    });

    let arch = machine.arch.clone();
    let mut gpus = Vec::new();
    let mut cuda = None;
    if let Some((found, w)) = nvidia {
        warnings.extend(w);
        gpus = found;
        for g in &mut gpus {
            g.family = g
                .compute_capability
                .as_deref()
                .and_then(crate::gpu::Cc::parse)
                .and_then(|cc| policy.family(cc))
                .map(str::to_string);
        }
    }
    if let Some(mut c) = libcuda {
        c.driver_version = gpus.iter().find_map(|g| g.driver_version.clone());
        if c.driver_cuda_version.is_none() && !gpus.is_empty() {
            c.driver_cuda_version = nvidia_smi_banner_cuda();
        }
        cuda = Some(c);
    }
    let mut apple_info = None;
    if let Some((found, w)) = apple {
        warnings.extend(w);
        if let Some((a, g)) = found {
            gpus.push(g);
            apple_info = Some(a);
        }
    }
    let (backend, backend_evidence) =
        decide_backend(os, &arch, &gpus, cuda.as_ref(), apple_info.as_ref());
    Platform {
        target: HostTarget::new(policy.target_for_host(os, &arch)),
        os,
        os_version,
        arch,
        arch_raw: machine.raw,
        emulation: machine.emulation,
        binary: super::Binary::this(),
        backend,
        backend_evidence,
        gpus,
        cuda,
        apple: apple_info,
        tools,
        warnings,
    }
}

/// The backend only, probing as little as possible (for commands on the hot path):
/// on Linux, CUDA when nvidia-smi is on PATH, libcuda loads and `nvidia-smi -L` lists a
/// GPU; on macOS, MPS on Apple Silicon; CPU otherwise.
pub fn quick_backend() -> Backend {
    match Os::host() {
        Os::Linux => {
            if find("nvidia-smi").is_none() || !libcuda().libcuda_loadable {
                return Backend::Cpu;
            }
            let listed = Cmd::new("nvidia-smi").arg("-L").probe(SLOW);
            let gpus = listed
                .ok_stdout()
                .map_or(0, |o| o.lines().filter(|l| l.starts_with("GPU ")).count());
            if gpus > 0 {
                Backend::Cuda
            } else {
                Backend::Cpu
            }
        }
        Os::Macos if machine::detect().arch == Arch::Aarch64 => Backend::Mps,
        _ => Backend::Cpu,
    }
}

/// This machine's OS and normalised architecture, without other probes.
pub fn os_arch() -> (Os, Arch) {
    (Os::host(), machine::detect().arch)
}

fn os_version(os: Os) -> Option<String> {
    match os {
        Os::Linux => std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|t| parse::os_release_pretty(&t)),
        Os::Macos => Cmd::new("sw_vers")
            .arg("-productVersion")
            .probe(QUICK)
            .ok_stdout()
            .map(|s| format!("macOS {}", s.trim())),
        _ => None,
    }
}

fn nvidia_smi_gpus() -> (Vec<Gpu>, Vec<String>) {
    let Some(smi) = find("nvidia-smi") else {
        return (Vec::new(), Vec::new());
    };
    let p = Cmd::new(&smi)
        .args([
            "--query-gpu=index,name,uuid,driver_version,memory.total,compute_cap",
            "--format=csv,noheader",
        ])
        .probe(SLOW);
    let (mut gpus, warnings) = match p.ok_stdout() {
        Some(out) => parse::nvidia_smi_csv(out),
        None => return (Vec::new(), vec![format!("nvidia-smi {}", p.failure_line())]),
    };
    // Serial numbers and PCI addresses name the card to pull; a driver that cannot
    // report them leaves them out.
    if !gpus.is_empty()
        && let Some(out) = Cmd::new(smi)
            .args([
                "--query-gpu=index,serial,pci.bus_id",
                "--format=csv,noheader",
            ])
            .probe(SLOW)
            .ok_stdout()
    {
        parse::nvidia_smi_identity(out, &mut gpus);
    }
    (gpus, warnings)
}

fn nvidia_smi_banner_cuda() -> Option<String> {
    Cmd::new("nvidia-smi")
        .probe(SLOW)
        .ok_stdout()
        .and_then(parse::nvidia_smi_banner_cuda)
}

/// dlopen libcuda and ask the driver which CUDA version it supports. No cuInit: this
/// is cheap and safe on hosts without a GPU.
fn libcuda() -> Cuda {
    // SAFETY: loading the NVIDIA driver library runs its initialisers, which are
    // designed to be loaded into arbitrary processes (every CUDA program does this).
    let lib = match unsafe { libloading::Library::new("libcuda.so.1") } {
        Ok(l) => l,
        Err(e) => {
            return Cuda {
                libcuda_loadable: false,
                libcuda_error: Some(e.to_string()),
                ..Cuda::default()
            };
        }
    };
    let mut version: i32 = 0;
    // SAFETY: cuDriverGetVersion(int*) is part of the stable driver API and may be
    // called before cuInit.
    let cuda_version = unsafe {
        lib.get::<unsafe extern "C" fn(*mut i32) -> i32>(b"cuDriverGetVersion\0")
            .ok()
            .and_then(|f| (f(&mut version) == 0 && version > 0).then_some(version))
    };
    Cuda {
        libcuda_loadable: true,
        libcuda_error: None,
        driver_cuda_version: cuda_version.map(parse::cuda_version_from_int),
        driver_version: None,
    }
}

type AppleProbe = (Option<(Apple, Gpu)>, Vec<String>);

fn apple() -> AppleProbe {
    let p = Cmd::new("system_profiler")
        .args(["SPDisplaysDataType", "-json"])
        .probe(SLOW);
    let (mut found, mut warnings) = match p.ok_stdout() {
        Some(out) => parse::system_profiler_displays(out),
        None => (None, vec![format!("system_profiler {}", p.failure_line())]),
    };
    let mem = Cmd::new("sysctl").args(["-n", "hw.memsize"]).probe(QUICK);
    match mem.ok_stdout().and_then(parse::memsize) {
        Some(bytes) => {
            if let Some((a, _)) = found.as_mut() {
                a.memory_bytes = Some(bytes);
            }
        }
        None => warnings.push(format!("sysctl hw.memsize {}", mem.failure_line())),
    }
    (found, warnings)
}

fn tools() -> Tools {
    std::thread::scope(|s| {
        let uv = s.spawn(|| find("uv").map(|p| tool(p, &["--version"])));
        let pythons = s.spawn(pythons);
        let docker = s.spawn(docker);
        let smi = s.spawn(|| find("nvidia-smi").map(|p| tool(p, &["--version"])));
        let nvcc = s.spawn(|| {
            find("nvcc")
                .or_else(|| {
                    let p = PathBuf::from("/usr/local/cuda/bin/nvcc");
                    p.is_file().then_some(p)
                })
                .map(|p| tool(p, &["--version"]))
        });
        Tools {
            uv: uv.join().expect("uv probe"),
            pythons: pythons.join().expect("python probe"),
            docker: docker.join().expect("docker probe"),
            nvidia_smi: smi.join().expect("nvidia-smi probe"),
            nvcc: nvcc.join().expect("nvcc probe"),
        }
    })
}

fn utf8(p: PathBuf) -> Utf8PathBuf {
    Utf8PathBuf::from_path_buf(p)
        .unwrap_or_else(|p| Utf8PathBuf::from(p.to_string_lossy().as_ref()))
}

fn tool(path: PathBuf, args: &[&str]) -> Tool {
    let p = Cmd::new(&path).args(args).probe(QUICK);
    Tool {
        version: p.ok_stdout().and_then(parse::version_in),
        path: utf8(path),
    }
}

/// Interpreters on PATH that answer `--version`, then pyenv's installed versions (an
/// inactive pyenv shim fails, so the versions folder is read directly).
pub fn pythons() -> Vec<Python> {
    let pyenv = pyenv_root();
    // One probe per interpreter file: `python3` and `python3.11` on PATH are often the
    // same file, and a pyenv shim (a shell script that starts pyenv, ~0.1 s) is run as the
    // interpreter it selects.
    let mut candidates: Vec<(PathBuf, PythonSource, PathBuf)> = Vec::new();
    for (path, source) in python_candidates(pyenv.as_deref()) {
        let run = match pyenv.as_deref().and_then(|root| resolve_shim(root, &path)) {
            Some(Some(p)) => p,
            // pyenv would say "command not found": the selected versions lack it.
            Some(None) => continue,
            None => path.clone(),
        };
        let real = std::fs::canonicalize(&run).unwrap_or_else(|_| run.clone());
        if !candidates.iter().any(|(_, _, r)| *r == real) {
            candidates.push((path, source, real));
        }
    }
    let root = pyenv.as_deref();
    let probed: Vec<Option<(Python, PathBuf)>> = std::thread::scope(|s| {
        let handles: Vec<_> = candidates
            .iter()
            .map(|(path, source, real)| {
                s.spawn(move || {
                    pyenv_named(root, path, real, *source)
                        .or_else(|| python_identity(path, real, *source))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().ok().flatten())
            .collect()
    });
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut out = Vec::new();
    for (py, real) in probed.into_iter().flatten() {
        if !seen.contains(&real) {
            seen.push(real);
            out.push(py);
        }
    }
    // PATH entries keep PATH order; pyenv's follow, newest first.
    out.sort_by_key(|py| {
        let v: Vec<u32> = py
            .version
            .split('.')
            .filter_map(|p| p.parse().ok())
            .collect();
        let pyenv = py.source == PythonSource::Pyenv;
        (pyenv, std::cmp::Reverse(if pyenv { v } else { Vec::new() }))
    });
    out
}

fn pyenv_root() -> Option<PathBuf> {
    std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pyenv")))
}

/// The interpreter a pyenv shim (`<root>/shims/NAME`) would run, found the way pyenv
/// finds it: `$PYENV_VERSION`, else the nearest `.python-version` upwards from here, else
/// `<root>/version`; the first selected version that has NAME (`Some(None)`: none has it,
/// so the shim fails). None for anything else (not a shim, the `system` version, nothing
/// selected): then the shim itself is run.
fn resolve_shim(root: &Path, path: &Path) -> Option<Option<PathBuf>> {
    if path.parent()? != root.join("shims") {
        return None;
    }
    let name = path.file_name()?;
    let from_file = |f: &Path| std::fs::read_to_string(f).ok();
    let selected = std::env::var("PYENV_VERSION")
        .ok()
        .map(|v| v.replace(':', "\n"))
        .or_else(|| {
            let cwd = std::env::current_dir().ok()?;
            cwd.ancestors()
                .find_map(|d| from_file(&d.join(".python-version")))
        })
        .or_else(|| from_file(&root.join("version")))?;
    let versions: Vec<&str> = selected
        .split_whitespace()
        .filter(|v| !v.starts_with('#'))
        .collect();
    if versions.is_empty() || versions.contains(&"system") {
        return None;
    }
    Some(
        versions
            .iter()
            .map(|v| root.join("versions").join(v).join("bin").join(name))
            .find(|p| p.is_file()),
    )
}

/// Where interpreters may be: the usual names on PATH, then pyenv's versions.
fn python_candidates(pyenv_root: Option<&Path>) -> Vec<(PathBuf, PythonSource)> {
    let mut candidates = Vec::new();
    let names = [
        "python3",
        "python",
        "python3.10",
        "python3.11",
        "python3.12",
        "python3.13",
        "python3.14",
    ];
    for name in names {
        for p in find_all(name) {
            candidates.push((p, PythonSource::Path));
        }
    }
    if let Some(root) = pyenv_root
        && let Ok(entries) = std::fs::read_dir(root.join("versions"))
    {
        let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        dirs.sort();
        for d in dirs {
            let bin = d.join("bin").join("python3");
            if bin.is_file() {
                candidates.push((bin, PythonSource::Pyenv));
            }
        }
    }
    candidates
}

/// An interpreter of pyenv's versions folder whose folder is named X.Y.Z (what `pyenv
/// install X.Y.Z` makes): that is its version, no need to start it. Other names
/// (virtualenvs, PyPy, conda, free-threaded builds) are asked.
fn pyenv_named(
    root: Option<&Path>,
    path: &Path,
    real: &Path,
    source: PythonSource,
) -> Option<(Python, PathBuf)> {
    let versions = root?.join("versions");
    let folder = real.strip_prefix(&versions).ok()?.components().next()?;
    let name = folder.as_os_str().to_str()?;
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() != 3
        || !parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let py = Python {
        path: utf8(path.to_path_buf()),
        version: name.to_string(),
        source,
    };
    Some((py, real.to_path_buf()))
}

/// An interpreter's version and its real executable, when it answers (`run` is what
/// `path` runs: the interpreter behind a pyenv shim).
fn python_identity(path: &Path, run: &Path, source: PythonSource) -> Option<(Python, PathBuf)> {
    let out = Cmd::new(run)
        .args([
            "-c",
            "import sys; print(sys.version.split()[0]); print(sys.executable)",
        ])
        .probe(QUICK);
    let (version, exe) = parse::python_identity(out.ok_stdout()?)?;
    let real = std::fs::canonicalize(&exe).unwrap_or(exe);
    let py = Python {
        path: utf8(path.to_path_buf()),
        version,
        source,
    };
    Some((py, real))
}

pub fn docker() -> Docker {
    // Every docker CLI start costs tens of milliseconds: all of them at once.
    let found = find_all("docker");
    let (clients, daemon) = std::thread::scope(|s| {
        let daemon = found
            .first()
            .map(|first| s.spawn(move || docker_daemon(&utf8(first.clone()), QUICK)));
        let clients: Vec<_> = found
            .iter()
            .map(|p| s.spawn(move || docker_client(p.clone())))
            .collect();
        (
            clients
                .into_iter()
                .map(|h| h.join().expect("docker client probe"))
                .collect::<Vec<_>>(),
            daemon.map(|h| h.join().expect("docker daemon probe")),
        )
    });
    let mut docker = Docker {
        clients,
        ..Docker::default()
    };
    match daemon {
        Some(Ok(v)) => docker.daemon = Some(v),
        Some(Err(e)) => docker.daemon_error = Some(e),
        None => {}
    }
    docker
}

/// One docker client: its version, its buildx plugin's, and how it can use BuildKit.
pub fn docker_client(path: impl Into<PathBuf>) -> DockerClient {
    let path = path.into();
    let version_of = |args: &[&str]| {
        Cmd::new(&path)
            .args(args)
            .probe(QUICK)
            .ok_stdout()
            .and_then(parse::version_in)
    };
    let (version, buildx) = std::thread::scope(|s| {
        let buildx = s.spawn(|| version_of(&["buildx", "version"]));
        (
            version_of(&["--version"]),
            buildx.join().expect("buildx probe"),
        )
    });
    let buildkit = BuildKit::of(version.as_deref(), buildx.is_some());
    DockerClient {
        path: utf8(path),
        version,
        buildx,
        buildkit,
    }
}

/// The daemon's version as this client reaches it, or why none answers.
pub fn docker_daemon(client: &Utf8Path, timeout: Duration) -> Result<String, String> {
    let p = Cmd::new(client.as_std_path())
        .args(["version", "--format", "{{.Server.Version}}"])
        .probe(timeout);
    match (p.ok_stdout().map(str::trim), &p) {
        (Some(v), _) if !v.is_empty() => Ok(v.to_string()),
        (_, Probe::Exited { stderr, .. }) if stderr.contains("Cannot connect") => {
            Err("no daemon answers on the Docker socket".into())
        }
        _ => Err(p.failure_line()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyenv_shims_resolve_without_starting_pyenv() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for v in ["3.11.7", "3.12.1", "myenv"] {
            let bin = r.join("versions").join(v).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::write(bin.join("python3"), "").unwrap();
        }
        std::fs::write(r.join("versions/3.12.1/bin/python3.12"), "").unwrap();
        std::fs::create_dir_all(r.join("shims")).unwrap();
        let shim = |n: &str| r.join("shims").join(n);
        // Not a shim: not resolved.
        assert_eq!(resolve_shim(r, Path::new("/usr/bin/python3")), None);
        let inherited = std::env::var_os("PYENV_VERSION").is_some()
            || std::env::current_dir()
                .unwrap()
                .ancestors()
                .any(|d| d.join(".python-version").exists());
        if inherited {
            return; // this shell selects its own version
        }
        // Nothing selected: the shim is run as it is.
        assert_eq!(resolve_shim(r, &shim("python3")), None);
        std::fs::write(r.join("version"), "3.12.1\n3.11.7\n").unwrap();
        let v312 = r.join("versions/3.12.1/bin/python3.12");
        assert_eq!(resolve_shim(r, &shim("python3.12")), Some(Some(v312)));
        // Selected versions without that command: pyenv would fail, so it is no candidate.
        assert_eq!(resolve_shim(r, &shim("python3.13")), Some(None));
        std::fs::write(r.join("version"), "system\n").unwrap();
        assert_eq!(resolve_shim(r, &shim("python3")), None);
        // Folders named X.Y.Z are that version; others are asked.
        let named = |v: &str| {
            let exe = r.join("versions").join(v).join("bin/python3");
            pyenv_named(Some(r), &exe, &exe, PythonSource::Pyenv).map(|(p, _)| p.version)
        };
        assert_eq!(named("3.11.7").as_deref(), Some("3.11.7"));
        assert_eq!(named("myenv"), None);
    }

    #[test]
    fn buildkit_modes() {
        assert_eq!(BuildKit::of(Some("28.2.2"), true), BuildKit::Buildx);
        assert_eq!(BuildKit::of(Some("28.2.2"), false), BuildKit::None);
        assert_eq!(
            BuildKit::of(Some("20.10.24+dfsg1"), false),
            BuildKit::Legacy
        );
        assert_eq!(BuildKit::of(None, false), BuildKit::None);
    }

    #[test]
    fn detect_this_machine() {
        let policy =
            crate::policy::Policy::parse(include_str!("../../../templates/platforms.toml"))
                .unwrap();
        let p = detect(&policy);
        assert!(!p.arch.as_str().is_empty());
        if p.os == Os::Linux {
            assert_eq!(
                p.target.name(),
                Some(format!("linux-{}-cuda", p.arch).as_str())
            );
        }
        assert!(!p.backend_evidence.is_empty());
        // Every interpreter listed answered with a version.
        assert!(
            p.tools
                .pythons
                .iter()
                .all(|py| py.version.starts_with(['2', '3']))
        );
    }
}
