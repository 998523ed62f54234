//! `cargo xtask docker [build|run|clean|render|scan|push] <target>`: the app's image per
//! target, built with BuildKit from docker/Dockerfile (multi-stage, non-root, uv cache
//! mounts). A build asks the audit of its target first (the preflight) and proves the app
//! starts inside the image after (proof.rs); `run --wait` returns once the app is up
//! (wait.rs); `push` publishes only proven images.

mod cli;
mod proof;
mod wait;

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};

use crate::ctx::Ctx;
use crate::error;
use crate::names::{self, Os};
use crate::platform::{self, BuildKit, DockerClient};
use crate::policy::{Policy, Target};
use crate::process::Cmd;
use crate::pyproject;

const LABEL: &str = "xtask.llmstudio.image";

pub use cli::Docker;

/// `docker --help`'s epilogue.
const AFTER_HELP: &str = "\
Targets: a canonical name or Docker alias from templates/platforms.toml (amd64-cuda = \
linux-x86_64-cuda on linux/amd64, arm64-cuda = linux-aarch64-cuda on linux/arm64), or `cpu` for this \
machine's architecture; the images run on CPU-only hosts too. The builder is `docker buildx build` \
when buildx works, else `DOCKER_BUILDKIT=1 docker build` with a client that still has BuildKit \
built in (clients from 23 on need the buildx plugin); --docker or $DOCKER picks the client.

Actions: build; run (as the Makefile's docker-run: --init, --shm-size 64g, the app's port, \
llmstudio_mnt at /mount, --runtime=nvidia where the host has it; --wait returns once the app \
has registered with waved); clean (every container of the image, then the image: the \
Makefile's docker-clean-all); render (the Dockerfile, arguments and command); scan (trivy, the \
Makefile's trivy-local); push (build, prove and push each target, then one manifest list). \
--tag or $DOCKER_IMAGE names the image, as the Makefile's DOCKER_IMAGE did. --dry-run prints \
the preflight's verdict and the commands, and starts nothing.

Before docker starts, build and push audit the image's target as the image installs it (the \
lock offline, `--no-dev` and UV_EXTRA_ARGS' extras and groups, the app's imports): a missing \
wheel, an unguarded import of a package the target leaves out, or a torch that cannot use the \
target's GPUs refuses the build (exit 1; --no-preflight builds anyway). After the build, the \
start proof runs the image on its own platform (QEMU for a foreign one), as its own user, and \
imports the app's entry modules (APP_MODULE and [tool.xtask] entry-modules, else the policy's); \
a failure is exit 1 and the image keeps only a `…-unproven` tag. A passed proof is recorded by \
image ID ($XDG_STATE_HOME/llmstudio-xtask/proven-images.json); push publishes only proven images.

Examples:
  cargo xtask docker build arm64-cuda
  DOCKER_IMAGE=h2oairelease/h2oai-llmstudio-app:nightly cargo xtask docker build amd64-cuda
  cargo xtask docker run cpu --dry-run
  cargo xtask docker scan amd64-cuda --severity CRITICAL";

/// What the action was asked: every flag of every action, those it does not take left at
/// their defaults (the clap layer in cli.rs gives each action only its own).
#[derive(Debug, Default)]
struct Opts {
    /// push: the repository to push to, REGISTRY/NAME (e.g. ghcr.io/h2oai/h2o-llmstudio)
    registry: Option<String>,
    /// push: talk plain HTTP to the registry (docker manifest's --insecure; loopback registries)
    insecure: bool,
    /// Image name and tag (the Makefile's DOCKER_IMAGE) [default: <project>:<alias>]
    tag: Option<String>,
    /// scan: severities that count as findings (trivy's --severity)
    severity: String,
    /// scan: trivy's report as JSON on stdout
    json: bool,
    /// Platform to build or run for [default: the target's]
    platform: Option<String>,
    /// Extra build arguments (BASE_IMAGE, BUILDER_IMAGE, UV_IMAGE, PYTHON_SOURCE, ...)
    build_args: Vec<String>,
    /// CA bundle for TLS-intercepting proxies, passed as a BuildKit secret (never stored in a layer)
    ca_bundle: Option<Utf8PathBuf>,
    /// The docker client to use [default: $DOCKER, else the first on PATH that can use BuildKit]
    docker: Option<Utf8PathBuf>,
    /// A buildx builder (e.g. one with native arm64 nodes instead of QEMU)
    builder: Option<String>,
    /// Push the image after building
    push: bool,
    /// Print the exact commands and run nothing (no docker process, no folder created)
    dry_run: bool,
    /// run: host port for the app's [default: the policy's [app] port, 10101]
    port: Option<u16>,
    /// run: shared memory for the container (PyTorch data loaders need a lot)
    shm_size: String,
    /// run: host folder mounted at /mount [default: <project>/llmstudio_mnt]
    mount_dir: Option<Utf8PathBuf>,
    /// run: start in the background and print the container id
    detach: bool,
    /// run: return once the app inside has registered with waved (implies --detach; the
    /// container is kept when it exits, to show its log)
    wait: bool,
    /// run --wait: give up after this many seconds, show the log and remove the container
    wait_timeout: u64,
    /// build, push: skip the audit of the image's target that runs before docker starts
    no_preflight: bool,
    /// build, push: accept imports of PKG in PATH that the app never loads where PKG is left
    /// out (as `audit --allow-import`); repeatable
    allow_imports: Vec<String>,
    /// build: skip the start proof (push needs one: recorded earlier for the same image ID)
    no_smoke: bool,
    /// build, push: how long the start proof may take, in seconds (QEMU imports slowly)
    smoke_timeout: u64,
}

/// One target's image.
struct Image {
    /// The target's canonical name (what the preflight audits).
    target: String,
    platform: String,
    alias: String,
    tag: String,
}

/// How to invoke a BuildKit build with a client.
struct Builder {
    client: Utf8PathBuf,
    buildx: bool,
}

/// What the targets' images get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Build,
    Run,
    Clean,
    Render,
    Scan,
    /// Build, prove and push each target, then one manifest list.
    Push,
}

/// Where a build's image goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    /// Nothing is built: the Dockerfile, arguments and command are printed.
    Render,
    /// Into the local docker.
    Load,
    /// To the registry its tag names.
    Push,
}

impl Opts {
    fn run(self, ctx: &Ctx, action: Action, targets: &[String]) -> Result<()> {
        let policy = ctx.policy()?;
        let project = ctx.project()?;
        let reqs = pyproject::load_requirements(project)?;
        let version = reqs.version.clone().unwrap_or_else(|| "0".into());
        if action == Action::Push {
            return self.push_all(ctx, project, policy, &reqs, targets, &version);
        }
        let image = self.image(policy, &targets[0], &reqs)?;
        let build = |output| self.build(ctx, project, policy, &image, &reqs, output, true);
        match action {
            Action::Build if self.push => build(Output::Push),
            Action::Build | Action::Push => build(Output::Load),
            Action::Render => build(Output::Render),
            Action::Run => self.run_image(project, policy, &image),
            Action::Clean => self.clean(&image.tag),
            Action::Scan => self.scan(&image.tag),
        }
    }

    /// A target's image: platform, alias and tag (`--tag` overrides the default name).
    fn image(
        &self,
        policy: &Policy,
        target_name: &str,
        reqs: &pyproject::Requirements,
    ) -> Result<Image> {
        let target = resolve_target(policy, target_name)?;
        let platform = match (&self.platform, &target.docker_platform) {
            (Some(p), _) => p.clone(),
            (None, Some(p)) => p.clone(),
            (None, None) => {
                return Err(error::usage(format!(
                    "target {} has no Docker platform in the policy",
                    target.name
                )));
            }
        };
        let name = names::normalize(reqs.name.as_deref().unwrap_or("app"));
        // `cpu` is its own image name even where it builds the same platform as a CUDA
        // target, so the two never overwrite each other.
        let alias = if target_name == "cpu" {
            "cpu".to_string()
        } else {
            target
                .docker_alias
                .clone()
                .unwrap_or_else(|| target.name.clone())
        };
        let tag = self
            .tag
            .clone()
            .unwrap_or_else(|| format!("{name}:{alias}"));
        Ok(Image {
            target: target.name.clone(),
            platform,
            alias,
            tag,
        })
    }

    /// Build and push each target's image, then publish one manifest list for all of
    /// them; print every digest.
    fn push_all(
        &self,
        ctx: &Ctx,
        project: &Utf8Path,
        policy: &Policy,
        reqs: &pyproject::Requirements,
        names: &[String],
        version: &str,
    ) -> Result<()> {
        let Some(repo) = &self.registry else {
            return Err(error::usage(
                "docker push: name the repository with --registry REGISTRY/NAME",
            ));
        };
        if repo.contains(char::is_whitespace) || !repo.contains('/') || repo.contains('@') {
            return Err(error::usage(format!(
                "--registry {repo}: give REGISTRY/NAME without a tag (e.g. ghcr.io/h2oai/h2o-llmstudio)"
            )));
        }
        let tag = self.tag.clone().unwrap_or_else(|| version.to_string());
        let list = format!("{repo}:{tag}");
        let builder = if self.dry_run {
            None
        } else {
            Some(self.choose_builder()?)
        };
        let mut refs = Vec::new();
        for n in names {
            let mut image = self.image(policy, n, reqs)?;
            image.tag = format!("{repo}:{tag}-{}", image.alias);
            refs.push(image);
        }
        // Every target's preflight before the first build: a refusal costs milliseconds,
        // not the minutes of the builds before it.
        let args = self.build_args(project, policy, version)?;
        let mut refused = Vec::new();
        for image in &refs {
            if let Err(e) = self.preflight(ctx, image, &args) {
                if !self.dry_run {
                    return Err(e);
                }
                refused.push(e);
            }
        }
        for image in &refs {
            self.build(ctx, project, policy, image, reqs, Output::Push, false)?;
        }
        let buildx = builder.as_ref().is_none_or(|b| b.buildx);
        let client = builder
            .as_ref()
            .map_or_else(|| self.shown_client(), |b| b.client.clone());
        let join = self.manifest_commands(&client, buildx, &list, &refs);
        if self.shown(None, &join) {
            return refused.into_iter().next().map_or(Ok(()), Err);
        }
        for r in &refs {
            let digest = digest(&client, buildx, &r.tag);
            outln!(
                "pushed {} ({}) {}",
                r.tag,
                r.platform,
                digest.as_deref().unwrap_or("(digest unknown)")
            );
        }
        for c in &join {
            c.run_shown()?;
        }
        let platforms: Vec<&str> = refs.iter().map(|r| r.platform.as_str()).collect();
        outln!("published {list} for {}", platforms.join(", "));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        ctx: &Ctx,
        project: &Utf8Path,
        policy: &Policy,
        image: &Image,
        reqs: &pyproject::Requirements,
        output: Output,
        preflight: bool,
    ) -> Result<()> {
        let dockerfile = build_inputs(ctx, project)?;
        let version = reqs.version.as_deref().unwrap_or("0");
        let args = self.build_args(project, policy, version)?;
        // The preflight decides before any docker process; a dry run shows its verdict
        // with the commands and ends as the real run would.
        let verdict = if preflight && output != Output::Render {
            self.preflight(ctx, image, &args)
        } else {
            Ok(())
        };
        let verdict = match (verdict, self.dry_run) {
            (Err(e), false) => return Err(e),
            (v, _) => v,
        };
        // render and --dry-run start no process of docker's (not even a probe): they show
        // the buildx form, which a real build uses wherever buildx works.
        let builder = if output == Output::Render || self.dry_run {
            Builder {
                client: self.shown_client(),
                buildx: true,
            }
        } else {
            self.choose_builder()?
        };
        let cmd = self.build_command(&builder, &dockerfile, image, &args)?;
        let cmd = cmd.arg(project.as_str());
        if output == Output::Render {
            return render(&dockerfile, &args, &cmd);
        }
        let modules = proof_modules(project, policy, reqs, &args);
        let script = ctx.workspace.join("templates/docker/start_proof.py");
        let plan = proof::Plan {
            client: &builder.client,
            tag: &image.tag,
            platform: &image.platform,
            modules: &modules,
            timeout: Duration::from_secs(self.smoke_timeout),
            script: &script,
        };
        if self.dry_run {
            let mut lines = vec![cmd.display()];
            if !self.no_smoke {
                lines.push(plan.shown());
            }
            if output == Output::Push {
                lines.push(format!("{} push {}", builder.client, image.tag));
            }
            self.shown_lines(Some(DRY_BUILD), lines);
            return verdict;
        }
        let how = if builder.buildx {
            "docker buildx build"
        } else {
            "DOCKER_BUILDKIT=1 docker build"
        };
        errln!("builder: {} ({how})", builder.client);
        self.require_daemon(&builder.client)?;
        cmd.run_shown()?;
        outln!("built {} for {}", image.tag, image.platform);
        self.prove(&builder.client, &plan, output)?;
        if output == Output::Push {
            Cmd::new(builder.client.as_str())
                .args(["push", &image.tag])
                .run_shown()?;
        }
        Ok(())
    }

    /// The audit of the image's target as the image installs it, before docker starts:
    /// its text on stderr; a finding refuses the image (exit 1).
    fn preflight(&self, ctx: &Ctx, image: &Image, args: &[(String, String)]) -> Result<()> {
        if self.no_preflight {
            errln!(
                "preflight: skipped (--no-preflight): {} is built without the audit of {}",
                image.tag,
                image.target
            );
            return Ok(());
        }
        let (sel, ignored) = image_selection(args);
        for flag in ignored {
            errln!("preflight: UV_EXTRA_ARGS {flag}: not a selection flag, not audited");
        }
        let started = Instant::now();
        let audit = super::audit::for_image(ctx, &image.target, &sel, &self.allow_imports)
            .map_err(|e| {
                let code = error::code_of(&e);
                error::with_code(
                    code,
                    format!(
                        "docker {}: the preflight cannot audit {}: {} (--no-preflight builds without it)",
                        image.alias,
                        image.target,
                        error::line_of(&e)
                    ),
                )
            })?;
        errln!(
            "preflight: {} as the image installs it ({}), audited in {} ms:",
            image.target,
            describe_selection(&sel),
            started.elapsed().as_millis()
        );
        for line in audit.text.lines() {
            errln!("  {line}");
        }
        match audit.verdict {
            Ok(()) => {
                errln!("preflight: nothing in the lock or the code breaks the image");
                Ok(())
            }
            Err(e) => Err(error::failed(format!(
                "docker build {}: refused before docker starts: {}; fix it (`cargo xtask audit --target {}` says how), or build anyway with --no-preflight",
                image.alias,
                error::line_of(&e),
                image.target
            ))),
        }
    }

    /// The start proof after a build (or its record for the same image ID); a push needs
    /// one, --no-smoke or not.
    fn prove(&self, client: &Utf8Path, plan: &proof::Plan, output: Output) -> Result<()> {
        let identity = proof::identity(client, plan.tag);
        let known = identity
            .as_ref()
            .and_then(|i| proof::recorded(&i.id).map(|p| (i, p)));
        let size = |i: &proof::Identity| format!("{:.0} MB", i.size as f64 / 1e6);
        if let Some((i, p)) = &known {
            outln!(
                "start proof: passed earlier for this image ({}, {}, proof {:.1} s): not run again",
                short_id(&i.id),
                size(i),
                p.seconds
            );
            return Ok(());
        }
        if self.no_smoke {
            if output == Output::Push {
                return Err(error::failed(format!(
                    "docker push: {} has no start proof (--no-smoke skips it, and none is recorded for its image ID): push without --no-smoke",
                    plan.tag
                )));
            }
            errln!(
                "start proof: skipped (--no-smoke): nothing says {} starts",
                plan.tag
            );
            return Ok(());
        }
        let seconds = plan.run()?;
        if let Some(i) = &identity {
            proof::record(&plan.proven(&i.id, seconds));
        }
        outln!(
            "start proof: {} starts on {}: {} imported as its own user in {:.1} s (image {})",
            plan.tag,
            plan.platform,
            plan.modules.join(", "),
            seconds,
            identity.as_ref().map_or("size unknown".into(), size)
        );
        Ok(())
    }

    /// The build arguments: the app's module, port, version and revision, then
    /// `--build-arg`s (which win).
    fn build_args(
        &self,
        project: &Utf8Path,
        policy: &Policy,
        version: &str,
    ) -> Result<Vec<(String, String)>> {
        if let Some(ca) = &self.ca_bundle
            && let Err(e) = std::fs::File::open(ca)
        {
            return Err(error::usage(format!("--ca-bundle {ca}: cannot read: {e}")));
        }
        let revision = Cmd::new("git")
            .args(["-C", project.as_str(), "rev-parse", "--short", "HEAD"])
            .probe(Duration::from_secs(10))
            .ok_stdout()
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let mut args: Vec<(String, String)> = vec![
            ("APP_MODULE".into(), policy.app.module.clone()),
            ("APP_PORT".into(), policy.app.port.to_string()),
            ("VERSION".into(), version.to_string()),
            ("REVISION".into(), revision),
        ];
        for a in &self.build_args {
            let Some((k, v)) = a.split_once('=') else {
                return Err(error::usage(format!("--build-arg {a}: give KEY=VALUE")));
            };
            args.retain(|(key, _)| key != k);
            args.push((k.to_string(), v.to_string()));
        }
        Ok(args)
    }

    /// `docker buildx build ...` or `DOCKER_BUILDKIT=1 docker build ...`, without the context.
    fn build_command(
        &self,
        builder: &Builder,
        dockerfile: &Utf8Path,
        image: &Image,
        args: &[(String, String)],
    ) -> Result<Cmd> {
        let mut cmd = Cmd::new(builder.client.as_str());
        if builder.buildx {
            cmd = cmd.args(["buildx", "build"]);
            if let Some(b) = &self.builder {
                cmd = cmd.args(["--builder", b]);
            }
        } else {
            if self.builder.is_some() {
                return Err(error::usage(
                    "--builder needs docker buildx, which this client lacks",
                ));
            }
            cmd = cmd.env("DOCKER_BUILDKIT", "1").arg("build");
        }
        cmd = cmd
            .args(["--platform", &image.platform, "-f", dockerfile.as_str()])
            .args(["-t", &image.tag])
            .args(
                args.iter()
                    .flat_map(|(k, v)| ["--build-arg".to_string(), format!("{k}={v}")]),
            );
        if let Some(ca) = &self.ca_bundle {
            cmd = cmd.arg("--secret").arg(format!("id=cabundle,src={ca}"));
        }
        // Into the local docker: the start proof runs it there, and push pushes it after.
        if builder.buildx {
            cmd = cmd.arg("--load");
        }
        Ok(cmd)
    }

    /// The commands that publish one manifest list over the pushed images.
    fn manifest_commands(
        &self,
        client: &Utf8Path,
        buildx: bool,
        list: &str,
        refs: &[Image],
    ) -> Vec<Cmd> {
        let tags = refs.iter().map(|r| r.tag.as_str());
        if buildx {
            return vec![
                Cmd::new(client.as_str())
                    .args(["buildx", "imagetools", "create", "--tag", list])
                    .args(tags),
            ];
        }
        let insecure: &[&str] = if self.insecure { &["--insecure"] } else { &[] };
        vec![
            Cmd::new(client.as_str())
                .args(["manifest", "create", "--amend"])
                .args(insecure)
                .arg(list)
                .args(tags),
            Cmd::new(client.as_str())
                .args(["manifest", "push", "--purge"])
                .args(insecure)
                .arg(list),
        ]
    }

    /// A dry run's whole answer: what a real run adds or skips (`note`, on stderr), then
    /// the commands it would run (stdout). False, printing nothing, for a real run.
    fn shown(&self, note: Option<&str>, plan: &[Cmd]) -> bool {
        self.shown_lines(note, plan.iter().map(Cmd::display))
    }

    /// [`Self::shown`] for a plan with a line that is not one command as written.
    fn shown_lines(&self, note: Option<&str>, plan: impl IntoIterator<Item = String>) -> bool {
        if !self.dry_run {
            return false;
        }
        if let Some(note) = note {
            errln!("dry run: {note}");
        }
        for line in plan {
            outln!("{line}");
        }
        true
    }

    /// The client a dry run or render shows without asking any: --docker, else `docker`.
    fn shown_client(&self) -> Utf8PathBuf {
        self.docker.clone().unwrap_or_else(|| "docker".into())
    }

    fn clients(&self) -> Vec<DockerClient> {
        let all = platform::probe::docker().clients;
        let Some(p) = &self.docker else {
            return all;
        };
        let found: Vec<DockerClient> = all.iter().filter(|c| &c.path == p).cloned().collect();
        if found.is_empty() {
            // A client not on PATH: probe it the same way.
            vec![platform::probe::docker_client(p.as_std_path())]
        } else {
            found
        }
    }

    /// The first client that can use BuildKit: buildx, else a legacy client with
    /// DOCKER_BUILDKIT=1.
    fn choose_builder(&self) -> Result<Builder> {
        let clients = self.clients();
        if clients.is_empty() {
            return Err(error::absent(match &self.docker {
                Some(p) => format!("--docker {p}: not a docker client"),
                None => {
                    "no docker client on PATH: install Docker (e.g. `apt-get install docker.io`)"
                        .into()
                }
            }));
        }
        if let Some(c) = clients.iter().find(|c| c.buildkit == BuildKit::Buildx) {
            return Ok(Builder {
                client: c.path.clone(),
                buildx: true,
            });
        }
        if let Some(c) = clients.iter().find(|c| c.buildkit == BuildKit::Legacy) {
            return Ok(Builder {
                client: c.path.clone(),
                buildx: false,
            });
        }
        let seen: Vec<String> = clients
            .iter()
            .map(|c| format!("{} {}", c.path, c.version.as_deref().unwrap_or("?")))
            .collect();
        Err(error::absent(format!(
            "no docker client can build with BuildKit ({}: clients from 23 on need the buildx plugin): install docker-buildx, or pass --docker an older client",
            seen.join(", ")
        )))
    }

    fn require_daemon(&self, client: &Utf8Path) -> Result<()> {
        platform::probe::docker_daemon(client, Duration::from_secs(15))
            .map(drop)
            .map_err(|why| {
                error::absent(format!(
                    "the Docker daemon is not running ({why}): start it with `sudo systemctl start docker` (or run `dockerd &` as root)"
                ))
            })
    }

    fn client(&self) -> Result<Utf8PathBuf> {
        let clients = self.clients();
        clients
            .first()
            .map(|c| c.path.clone())
            .ok_or_else(|| error::absent("no docker client on PATH: install Docker"))
    }

    /// The client a run uses: one whose daemon answers and has the image.
    fn run_client(&self, image: &Image) -> Result<Utf8PathBuf> {
        let client = self.client()?;
        self.require_daemon(&client)?;
        let inspect = Cmd::new(client.as_str())
            .args(["image", "inspect", &image.tag])
            .probe(Duration::from_secs(15));
        if inspect.ok_stdout().is_none() {
            return Err(error::absent(format!(
                "image {} does not exist: run `cargo xtask docker build {}` first",
                image.tag, image.alias
            )));
        }
        Ok(client)
    }

    /// The host folder mounted at /mount: created by a real run, only shown by a dry one.
    fn mount(&self, project: &Utf8Path) -> Result<Utf8PathBuf> {
        let mount = self
            .mount_dir
            .clone()
            .unwrap_or_else(|| project.join("llmstudio_mnt"));
        if self.dry_run {
            return Ok(crate::ctx::absolute(&mount).unwrap_or(mount));
        }
        std::fs::create_dir_all(&mount)
            .map_err(|e| error::usage(format!("--mount-dir {mount}: cannot create: {e}")))?;
        Ok(mount.canonicalize_utf8().unwrap_or(mount))
    }

    fn run_image(&self, project: &Utf8Path, policy: &Policy, image: &Image) -> Result<()> {
        let client = if self.dry_run {
            self.shown_client()
        } else {
            self.run_client(image)?
        };
        let mount = self.mount(project)?;
        // --runtime=nvidia only where docker lists it (a dry run asks nothing).
        let nvidia = (!self.dry_run).then(|| {
            Cmd::new(client.as_str())
                .args(["info", "--format", "{{json .Runtimes}}"])
                .probe(Duration::from_secs(15))
                .ok_stdout()
                .is_some_and(|r| r.contains("nvidia"))
        });
        let mut cmd = Cmd::new(client.as_str()).arg("run");
        if self.detach || self.wait {
            cmd = cmd.arg("-d");
        } else if std::io::stdin().is_terminal() {
            cmd = cmd.arg("-it");
        }
        match nvidia {
            Some(true) => cmd = cmd.arg("--runtime=nvidia"),
            Some(false) => {
                errln!("note: no NVIDIA container runtime on this host: the app runs on CPU")
            }
            None => {}
        }
        // --wait keeps a container that exits, to show its log (then removes it).
        if !self.wait {
            cmd = cmd.arg("--rm");
        }
        cmd = cmd
            .args(["--init", "--platform", &image.platform])
            .args(["--shm-size", &self.shm_size]);
        // As the Makefile did, files in the mount belong to the caller; root keeps the
        // image's own non-root user instead.
        let (uid, gid) = ids();
        if uid != 0 {
            cmd = cmd.args(["-u", &format!("{uid}:{gid}")]);
        }
        let app_port = policy.app.port;
        let host_port = self.port.unwrap_or(app_port);
        cmd = cmd
            .args(["-p", &format!("{host_port}:{app_port}")])
            .args(["-v", &format!("{mount}:/mount")])
            .args(["--label", &format!("{LABEL}={}", image.tag)])
            .arg(&image.tag);
        let note = format!(
            "nothing is started or created ({mount} is created by a real run; --runtime=nvidia is added where `docker info` lists that runtime)"
        );
        if self.shown(Some(&note), std::slice::from_ref(&cmd)) {
            return Ok(());
        }
        if !self.wait {
            return cmd.run_status()?.check("docker run");
        }
        self.run_and_wait(&cmd, &client, policy, image, host_port)
    }

    /// `run --wait`: start the container detached, then return once the app inside is up
    /// (printing its id), or end with its log.
    fn run_and_wait(
        &self,
        cmd: &Cmd,
        client: &Utf8Path,
        policy: &Policy,
        image: &Image,
        host_port: u16,
    ) -> Result<()> {
        errln!("$ {}", cmd.display());
        let started = cmd.probe(Duration::from_secs(300));
        let Some(id) = started.ok_stdout().map(|s| s.trim().to_string()) else {
            return Err(error::failed(format!(
                "docker run: {}",
                started.failure_line()
            )));
        };
        let module = image_env(client, &image.tag, "APP_MODULE")
            .unwrap_or_else(|| policy.app.module.clone());
        let what = format!("the app ({module})");
        let up = wait::Wait {
            client,
            container: &id,
            port: host_port,
            timeout: Duration::from_secs(self.wait_timeout),
        }
        .until_up(&what)?;
        outln!("{id}");
        errln!(
            "up: {} answers on http://localhost:{host_port}: waved in {:.1} s, {what} registered in {:.1} s",
            image.tag,
            up.waved.as_secs_f64(),
            up.app.as_secs_f64()
        );
        Ok(())
    }

    /// trivy on the target's image (Makefile: trivy-local): exit 1 on findings at the
    /// chosen severity, 3 without trivy. With --json, trivy writes its report to a file and
    /// the one document on stdout holds it.
    fn scan(&self, tag: &str) -> Result<()> {
        let dir = tempfile::tempdir()?;
        let report = dir.path().join("trivy.json");
        let mut cmd = Cmd::new("trivy")
            .args(["image", "--scanners", "vuln", "--severity", &self.severity])
            .args(["--timeout", "60m", "--exit-code", "1"]);
        if self.json {
            cmd = cmd.args(["--format", "json", "--output"]).arg(&report);
        }
        let cmd = cmd.arg(tag);
        if self.dry_run && self.json {
            let v = serde_json::json!({"dry_run": true, "image": tag, "commands": [cmd.display()]});
            outln!("{v}");
            return Ok(());
        }
        if self.shown(None, std::slice::from_ref(&cmd)) {
            return Ok(());
        }
        if crate::process::find("trivy").is_none() {
            return Err(error::absent(
                "trivy not found on PATH: install it (https://trivy.dev, or Aqua's apt/rpm repositories or Homebrew) to scan the image",
            ));
        }
        let code = cmd.run_status()?.exited("trivy")?;
        if self.json && matches!(code, Some(0 | 1)) {
            let text = std::fs::read_to_string(&report).unwrap_or_default();
            let trivy: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| error::failed(format!("trivy's report on {tag} is not JSON ({e})")))?;
            let v = serde_json::json!({
                "image": tag,
                "severity": self.severity,
                "passed": code == Some(0),
                "trivy": trivy,
            });
            outln!("{v}");
        }
        match code {
            Some(0) => {
                errln!("scan: no {} vulnerabilities in {tag}", self.severity);
                Ok(())
            }
            Some(1) => Err(error::failed(format!(
                "scan: {tag} has {} vulnerabilities (trivy's report is {})",
                self.severity,
                if self.json { "on stdout" } else { "above" }
            ))),
            Some(c) => Err(error::failed(format!(
                "trivy could not scan {tag} (exit {c}; is the image built? `cargo xtask docker build`)"
            ))),
            None => Err(error::failed("trivy was killed by a signal")),
        }
    }

    /// Every container of the image (started by `docker run` here or elsewhere: the
    /// Makefile's `ancestor` filter, plus this tool's label), then the image.
    fn clean(&self, tag: &str) -> Result<()> {
        let filters = [format!("ancestor={tag}"), format!("label={LABEL}={tag}")];
        let client = if self.dry_run {
            self.shown_client()
        } else {
            self.client()?
        };
        let docker = |args: &[&str]| Cmd::new(client.as_str()).args(args);
        let ps = |filter: &str| docker(&["ps", "-aq", "--filter", filter]);
        let mut plan: Vec<String> = filters.iter().map(|f| ps(f).display()).collect();
        plan.push(format!(
            "{} <each container found>",
            docker(&["rm", "-f"]).display()
        ));
        plan.push(docker(&["rmi", tag]).display());
        if self.shown_lines(Some("nothing is removed; a real clean runs:"), plan) {
            return Ok(());
        }
        self.require_daemon(&client)?;
        let mut ids: Vec<String> = Vec::new();
        for f in &filters {
            let found = ps(f).probe(Duration::from_secs(30));
            for id in found.ok_stdout().unwrap_or_default().split_whitespace() {
                if !ids.iter().any(|i| i == id) {
                    ids.push(id.to_string());
                }
            }
        }
        if !ids.is_empty() {
            docker(&["rm", "-f"]).args(&ids).run_shown()?;
        }
        let exists = docker(&["image", "inspect", tag])
            .probe(Duration::from_secs(15))
            .ok_stdout()
            .is_some();
        if exists {
            docker(&["rmi", tag]).run_shown()?;
        }
        outln!(
            "removed {} container(s) and {}",
            ids.len(),
            if exists { tag } else { "no image" }
        );
        Ok(())
    }
}

/// The modules the start proof imports: the image's APP_MODULE (what `wave run` starts),
/// then the entry modules `validate` imports.
fn proof_modules(
    project: &Utf8Path,
    policy: &Policy,
    reqs: &pyproject::Requirements,
    args: &[(String, String)],
) -> Vec<String> {
    let mut modules: Vec<String> = args
        .iter()
        .filter(|(k, _)| k == "APP_MODULE")
        .map(|(_, v)| v.clone())
        .collect();
    for m in super::validate::entry_modules(project, policy, reqs) {
        if !modules.contains(&m) {
            modules.push(m);
        }
    }
    modules
}

/// What the image's `uv sync --no-dev` adds from UV_EXTRA_ARGS (`--extra X`,
/// `--all-extras`, `--group X`), and the words that select nothing.
fn image_selection(args: &[(String, String)]) -> (super::audit::ImageSelection, Vec<String>) {
    let mut sel = super::audit::ImageSelection::default();
    let mut ignored = Vec::new();
    let extra = args
        .iter()
        .rev()
        .find(|(k, _)| k == "UV_EXTRA_ARGS")
        .map_or("", |(_, v)| v.as_str());
    let mut words = extra.split_whitespace();
    while let Some(w) = words.next() {
        let (flag, inline) = match w.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (w, None),
        };
        let mut value = || inline.clone().or_else(|| words.next().map(str::to_string));
        match flag {
            "--extra" => sel.extras.extend(value()),
            "--group" => sel.groups.extend(value()),
            "--all-extras" => sel.all_extras = true,
            _ => ignored.push(w.to_string()),
        }
    }
    (sel, ignored)
}

/// "no dev group, extras flash" for the preflight's line.
fn describe_selection(sel: &super::audit::ImageSelection) -> String {
    let mut parts = vec!["--no-dev".to_string()];
    if sel.all_extras {
        parts.push("--all-extras".into());
    }
    parts.extend(sel.extras.iter().map(|e| format!("--extra {e}")));
    parts.extend(sel.groups.iter().map(|g| format!("--group {g}")));
    parts.join(" ")
}

/// What a dry run of a build says before its commands.
const DRY_BUILD: &str = "nothing is started; a real build uses `docker buildx build` where buildx works, else `DOCKER_BUILDKIT=1 docker build` with a client that has BuildKit built in; then the start proof";

/// What a build needs on disk: the project's lock (the image installs exactly it) and the
/// Dockerfile; the Dockerfile's path.
fn build_inputs(ctx: &Ctx, project: &Utf8Path) -> Result<Utf8PathBuf> {
    let lock = project.join("uv.lock");
    if !lock.is_file() {
        return Err(error::usage(format!(
            "{lock} does not exist: run `cargo xtask lock` (the image installs exactly the lock)"
        )));
    }
    let dockerfile = ctx.workspace.join("docker").join("Dockerfile");
    if !dockerfile.is_file() {
        return Err(error::usage(format!(
            "{dockerfile} is missing: copy docker/ from the xtask repository"
        )));
    }
    Ok(dockerfile)
}

/// `render`: the Dockerfile, the build arguments and the command.
fn render(dockerfile: &Utf8Path, args: &[(String, String)], cmd: &Cmd) -> Result<()> {
    outln!("# {dockerfile}");
    out!("{}", std::fs::read_to_string(dockerfile)?);
    outln!("\n# build arguments");
    for (k, v) in args {
        outln!("{k}={v}");
    }
    outln!("\n# command\n{}", cmd.display());
    Ok(())
}

/// One variable of an image's environment (its APP_MODULE, which a build argument may
/// have set).
fn image_env(client: &Utf8Path, tag: &str, key: &str) -> Option<String> {
    let env = Cmd::new(client.as_str())
        .args(["image", "inspect", "--format", "{{json .Config.Env}}", tag])
        .probe(Duration::from_secs(15));
    let env: Vec<String> = serde_json::from_str(env.ok_stdout()?.trim()).ok()?;
    let prefix = format!("{key}=");
    env.iter()
        .find_map(|e| e.strip_prefix(&prefix).map(str::to_string))
}

/// `sha256:0123456789ab` from an image ID.
fn short_id(id: &str) -> &str {
    &id[..id.len().min("sha256:".len() + 12)]
}

/// The registry digest of a pushed image, when the client can tell.
fn digest(client: &Utf8Path, buildx: bool, tag: &str) -> Option<String> {
    if buildx {
        Cmd::new(client.as_str())
            .args(["buildx", "imagetools", "inspect", tag])
            .args(["--format", "{{json .Manifest.Digest}}"])
            .probe(Duration::from_secs(60))
            .ok_stdout()
            .map(|s| s.trim().trim_matches('"').to_string())
    } else {
        Cmd::new(client.as_str())
            .args(["inspect", "--format", "{{index .RepoDigests 0}}", tag])
            .probe(Duration::from_secs(30))
            .ok_stdout()
            .and_then(|s| s.trim().rsplit('@').next().map(str::to_string))
    }
}

/// A target by name or alias; `cpu` means this machine's architecture.
fn resolve_target<'p>(policy: &'p Policy, name: &str) -> Result<&'p Target> {
    if name == "cpu" {
        let (os, arch) = platform::probe::os_arch();
        let linux = policy.target_for_host(Os::Linux, &arch);
        return linux
            .filter(|t| t.docker_platform.is_some())
            .ok_or_else(|| {
                error::usage(format!(
                    "docker cpu: no Linux target for this machine's architecture ({os} {arch})"
                ))
            });
    }
    let t = policy.target(name)?;
    if t.docker_platform.is_none() {
        let with: Vec<String> = policy
            .targets
            .iter()
            .filter_map(|t| t.docker_alias.clone())
            .collect();
        return Err(error::usage(format!(
            "target {} has no Docker image (choose {}, or cpu)",
            t.name,
            with.join(", ")
        )));
    }
    Ok(t)
}

#[cfg(unix)]
fn ids() -> (u32, u32) {
    let (uid, gid) = (rustix::process::getuid(), rustix::process::getgid());
    (uid.as_raw(), gid.as_raw())
}

#[cfg(not(unix))]
fn ids() -> (u32, u32) {
    (1000, 1000)
}
