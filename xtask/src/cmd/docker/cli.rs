//! `docker`'s command line: each action a subcommand with only the flags it reads, so a
//! flag that means nothing there is refused by clap; `docker TARGET` is `docker build
//! TARGET`. Each turns into the one set of options the actions run with.

use anyhow::Result;
use camino::Utf8PathBuf;

use super::{AFTER_HELP, Action, Opts};
use crate::ctx::Ctx;
use crate::error;

#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP, args_conflicts_with_subcommands = true)]
pub struct Docker {
    #[command(subcommand)]
    action: Option<Sub>,
    /// Build this target's image (as `docker build TARGET`)
    #[arg(value_name = "TARGET")]
    target: Vec<String>,
    #[command(flatten)]
    build: BuildFlags,
}

#[derive(clap::Subcommand, Debug)]
enum Sub {
    /// Build a target's image: the preflight, the build, the start proof
    Build(Build),
    /// Run a target's image (the Makefile's docker-run)
    Run(Run),
    /// Remove every container of a target's image, then the image
    Clean(Clean),
    /// Print the Dockerfile, the build arguments and the command
    Render(Render),
    /// Scan a target's image for vulnerabilities with trivy
    Scan(Scan),
    /// Build, prove and push each target's image, then publish one manifest list
    Push(Push),
}

/// The target an action acts on, and its image.
#[derive(clap::Args, Debug)]
struct TargetImage {
    /// A canonical target name or Docker alias (amd64-cuda, arm64-cuda), or cpu
    #[arg(value_name = "TARGET")]
    target: String,
    #[command(flatten)]
    image: ImageRef,
}

/// The image an action acts on.
#[derive(clap::Args, Debug)]
struct ImageRef {
    /// Image name and tag (the Makefile's DOCKER_IMAGE) [default: <project>:<alias>]
    #[arg(long, env = "DOCKER_IMAGE", value_name = "IMAGE")]
    tag: Option<String>,
}

/// The docker client and the dry run, for the actions that start docker.
#[derive(clap::Args, Debug)]
struct Client {
    /// The docker client to use [default: $DOCKER, else the first on PATH that can use BuildKit]
    #[arg(long, env = "DOCKER", value_name = "PATH")]
    docker: Option<Utf8PathBuf>,
    /// Print the exact commands and run nothing (no docker process, no folder created)
    #[arg(long)]
    dry_run: bool,
}

/// How an image is built and proven (build, push).
#[derive(clap::Args, Debug)]
struct Making {
    /// Extra build arguments (BASE_IMAGE, BUILDER_IMAGE, UV_IMAGE, PYTHON_SOURCE, UV_EXTRA_ARGS, ...)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_args: Vec<String>,
    /// CA bundle for TLS-intercepting proxies, passed as a BuildKit secret (never stored in a layer)
    #[arg(long, value_name = "FILE")]
    ca_bundle: Option<Utf8PathBuf>,
    /// A buildx builder (e.g. one with native arm64 nodes instead of QEMU)
    #[arg(long, value_name = "NAME")]
    builder: Option<String>,
    /// Skip the audit of the image's target that runs before docker starts
    #[arg(long)]
    no_preflight: bool,
    /// Accept imports of PKG in PATH that the app never loads where PKG is left out (as
    /// `audit --allow-import`); repeatable
    #[arg(long = "allow-import", value_name = "PKG:PATH")]
    allow_imports: Vec<String>,
    /// Skip the start proof (push still needs one: recorded earlier for the same image ID)
    #[arg(long)]
    no_smoke: bool,
    /// How long the start proof may take, in seconds (QEMU imports slowly)
    #[arg(long, default_value_t = 900, value_name = "SECS")]
    smoke_timeout: u64,
    #[command(flatten)]
    client: Client,
}

/// `docker build`'s flags (also those of the bare `docker TARGET`).
#[derive(clap::Args, Debug)]
struct BuildFlags {
    #[command(flatten)]
    image: ImageRef,
    /// Platform to build for [default: the target's]
    #[arg(long)]
    platform: Option<String>,
    /// Push the image after it is built and proven (to the registry its tag names)
    #[arg(long)]
    push: bool,
    #[command(flatten)]
    making: Making,
}

#[derive(clap::Args, Debug)]
struct Build {
    /// A canonical target name or Docker alias (amd64-cuda, arm64-cuda), or cpu
    #[arg(value_name = "TARGET")]
    target: String,
    #[command(flatten)]
    flags: BuildFlags,
}

#[derive(clap::Args, Debug)]
struct Run {
    #[command(flatten)]
    which: TargetImage,
    /// Platform to run [default: the target's]
    #[arg(long)]
    platform: Option<String>,
    /// Host port for the app's [default: the policy's [app] port, 10101]
    #[arg(long)]
    port: Option<u16>,
    /// Shared memory for the container (PyTorch data loaders need a lot)
    #[arg(long, default_value = "64g")]
    shm_size: String,
    /// Host folder mounted at /mount [default: <project>/llmstudio_mnt]
    #[arg(long, value_name = "DIR")]
    mount_dir: Option<Utf8PathBuf>,
    /// Start in the background and print the container id
    #[arg(long)]
    detach: bool,
    /// Return once the app inside has registered with waved (implies --detach; the
    /// container is kept when it exits, to show its log)
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds, show the log and remove the container
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    wait_timeout: u64,
    #[command(flatten)]
    client: Client,
}

#[derive(clap::Args, Debug)]
struct Clean {
    #[command(flatten)]
    which: TargetImage,
    #[command(flatten)]
    client: Client,
}

#[derive(clap::Args, Debug)]
struct Render {
    #[command(flatten)]
    which: TargetImage,
    /// Platform to build for [default: the target's]
    #[arg(long)]
    platform: Option<String>,
    /// Extra build arguments (BASE_IMAGE, BUILDER_IMAGE, UV_IMAGE, PYTHON_SOURCE, UV_EXTRA_ARGS, ...)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_args: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct Scan {
    #[command(flatten)]
    which: TargetImage,
    /// Severities that count as findings (trivy's --severity)
    #[arg(long, default_value = "CRITICAL,HIGH", value_name = "LIST")]
    severity: String,
    /// One JSON document on stdout, trivy's report inside it
    #[arg(long)]
    json: bool,
    /// Print the trivy command and run nothing
    #[arg(long)]
    dry_run: bool,
}

#[derive(clap::Args, Debug)]
struct Push {
    /// The targets whose images the manifest list joins
    #[arg(value_name = "TARGET", required = true)]
    targets: Vec<String>,
    /// The repository to push to, REGISTRY/NAME (e.g. ghcr.io/h2oai/h2o-llmstudio)
    #[arg(long, value_name = "REG/NAME", required = true)]
    registry: String,
    /// The tag alone: the list is REG/NAME:TAG, each image REG/NAME:TAG-<alias>
    /// [default: the project's version]
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,
    /// Talk plain HTTP to the registry (docker manifest's --insecure; loopback registries)
    #[arg(long)]
    insecure: bool,
    #[command(flatten)]
    making: Making,
}

impl Making {
    fn into_opts(self, o: &mut Opts) {
        o.build_args = self.build_args;
        o.ca_bundle = self.ca_bundle;
        o.builder = self.builder;
        o.no_preflight = self.no_preflight;
        o.allow_imports = self.allow_imports;
        o.no_smoke = self.no_smoke;
        o.smoke_timeout = self.smoke_timeout;
        self.client.into_opts(o);
    }
}

impl Client {
    fn into_opts(self, o: &mut Opts) {
        o.docker = self.docker;
        o.dry_run = self.dry_run;
    }
}

impl BuildFlags {
    fn into_opts(self, o: &mut Opts) {
        o.tag = self.image.tag;
        o.platform = self.platform;
        o.push = self.push;
        self.making.into_opts(o);
    }
}

impl Run {
    fn into_opts(self, o: &mut Opts) -> (Action, Vec<String>) {
        o.tag = self.which.image.tag;
        o.platform = self.platform;
        o.port = self.port;
        o.shm_size = self.shm_size;
        o.mount_dir = self.mount_dir;
        o.detach = self.detach;
        o.wait = self.wait;
        o.wait_timeout = self.wait_timeout;
        self.client.into_opts(o);
        (Action::Run, vec![self.which.target])
    }
}

impl Docker {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let mut o = Opts::default();
        let (action, targets) = match self.action {
            None => {
                let target = match self.target.as_slice() {
                    [one] => one.clone(),
                    [] => {
                        return Err(error::usage(
                            "docker: name an action (build, run, clean, render, scan, push) and a target, or a target to build (e.g. `cargo xtask docker build amd64-cuda`)",
                        ));
                    }
                    [first, ..] => {
                        return Err(error::usage(format!(
                            "docker {first}: unknown action (choose build, run, clean, render, scan or push)"
                        )));
                    }
                };
                self.build.into_opts(&mut o);
                (Action::Build, vec![target])
            }
            Some(Sub::Build(b)) => {
                b.flags.into_opts(&mut o);
                (Action::Build, vec![b.target])
            }
            Some(Sub::Run(r)) => r.into_opts(&mut o),
            Some(Sub::Clean(c)) => {
                o.tag = c.which.image.tag;
                c.client.into_opts(&mut o);
                (Action::Clean, vec![c.which.target])
            }
            Some(Sub::Render(r)) => {
                o.tag = r.which.image.tag;
                o.platform = r.platform;
                o.build_args = r.build_args;
                (Action::Render, vec![r.which.target])
            }
            Some(Sub::Scan(s)) => {
                o.tag = s.which.image.tag;
                o.severity = s.severity;
                o.json = s.json;
                o.dry_run = s.dry_run;
                (Action::Scan, vec![s.which.target])
            }
            Some(Sub::Push(p)) => {
                if let Some(t) = &p.tag
                    && (t.contains(':') || t.contains('/') || t.is_empty())
                {
                    return Err(error::usage(format!(
                        "--tag {t}: push takes the tag alone (e.g. 1.14.9); the repository is --registry REGISTRY/NAME"
                    )));
                }
                o.registry = Some(p.registry);
                o.tag = p.tag;
                o.insecure = p.insecure;
                p.making.into_opts(&mut o);
                (Action::Push, p.targets)
            }
        };
        o.run(ctx, action, &targets)
    }
}
