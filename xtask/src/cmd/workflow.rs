//! `cargo xtask workflow`: the app's GitHub Actions CI, generated from the policy: one
//! job per target on its native hosted runner, an image per architecture built natively
//! and joined under one multi-arch tag, and GPU validation on self-hosted runners.

use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use crate::ctx::{Ctx, OutputArgs};
use crate::error;
use crate::fsx::{self, Mode};
use crate::policy::{Policy, Target};

const FILE: &str = ".github/workflows/xtask.yml";
const ACTIONLINT: &str = ".github/actionlint.yaml";

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Writes .github/workflows/xtask.yml in the project from templates/platforms.toml:
  - per target, on its hosted runner (the target's `runner`): port --check, audit, setup-dev, \
test-unit, validate --level 3 (report uploaded), and the dist bundle for that OS and \
architecture (uploaded: the aarch64 one is what a Grace Hopper cluster runs); cargo and uv \
caches keyed by Cargo.lock and uv.lock;
  - on pushes, each target's image built natively (no QEMU) and pushed to [workflow] registry, \
then one job joining them under one multi-arch tag;
  - per --gpu-runner (or the policy's [workflow] gpu-runners), validate --level 4 --require cuda \
on that self-hosted runner.
Every action is pinned to a commit ([workflow.actions]); permissions are read-only except for \
the image jobs (packages: write); runs of one ref cancel older ones on pull requests.

A re-run with nothing changed writes nothing; --check exits 1 when the file differs (for the \
app's own CI); --diff shows how.

Examples:
  cargo xtask workflow
  cargo xtask workflow --gpu-runner 'self-hosted,linux,arm64,gpu'
  cargo xtask workflow --check")]
pub struct Workflow {
    /// Write nothing; exit 1 when the file differs from what the policy gives
    #[arg(long, conflicts_with = "diff")]
    check: bool,
    /// Print a unified diff of what would change; write nothing
    #[arg(long)]
    diff: bool,
    /// Labels of a self-hosted GPU runner, comma-separated; repeatable
    #[arg(long = "gpu-runner", value_name = "LABELS")]
    gpu_runners: Vec<String>,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Serialize)]
struct Report<'a> {
    file: &'a str,
    changed: bool,
    written: bool,
    jobs: Vec<String>,
}

impl Workflow {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        self.out.preflight(ctx)?;
        let project = ctx.project()?;
        let policy = ctx.policy()?;
        let gpu: Vec<Vec<String>> = if self.gpu_runners.is_empty() {
            policy.workflow.gpu_runners.clone()
        } else {
            self.gpu_runners
                .iter()
                .map(|l| labels(l))
                .collect::<Result<_>>()?
        };
        let (text, jobs) = render(policy, &gpu)?;
        let mut files = vec![(FILE, text)];
        if let Some(cfg) = actionlint_config(&gpu) {
            files.push((ACTIONLINT, cfg));
        }
        let mode = Mode::of(self.check, self.diff);
        let mut changed_files = Vec::new();
        let mut diffs = String::new();
        for (rel, text) in &files {
            let path = project.join(rel);
            let old = std::fs::read_to_string(&path).unwrap_or_default();
            let ensured = fsx::ensure_file(&path, rel, &old, text, mode)?;
            if ensured.changed {
                changed_files.push(path.to_string());
                diffs.push_str(&ensured.diff);
            }
        }
        let written = !changed_files.is_empty() && mode == Mode::Write;
        let main = project.join(FILE);
        let report = Report {
            file: main.as_str(),
            changed: !changed_files.is_empty(),
            written,
            jobs,
        };
        self.out.emit(&report, || {
            if mode == Mode::Diff {
                return diffs.clone();
            }
            match (report.changed, written) {
                (false, _) => format!("{main}: up to date ({} jobs)\n", report.jobs.len()),
                (true, true) => format!(
                    "written: {} ({} jobs: {})\n",
                    changed_files.join(", "),
                    report.jobs.len(),
                    report.jobs.join(", ")
                ),
                (true, false) => format!(
                    "differs from what the policy gives: {}\n",
                    changed_files.join(", ")
                ),
            }
        })?;
        if mode == Mode::Check && report.changed {
            return Err(error::failed(format!(
                "{} differ(s) from what the policy gives; run `cargo xtask workflow`",
                changed_files.join(", ")
            )));
        }
        Ok(())
    }
}

/// actionlint's configuration naming the self-hosted runners' own labels (it knows the
/// hosted ones and the standard self-hosted ones), so the generated file lints clean.
fn actionlint_config(gpu: &[Vec<String>]) -> Option<String> {
    const KNOWN: &[&str] = &[
        "self-hosted",
        "linux",
        "macos",
        "windows",
        "x64",
        "arm",
        "arm64",
    ];
    let mut custom: Vec<&str> = gpu
        .iter()
        .flatten()
        .map(String::as_str)
        .filter(|l| !KNOWN.contains(&l.to_ascii_lowercase().as_str()))
        .collect();
    custom.sort_unstable();
    custom.dedup();
    if custom.is_empty() {
        return None;
    }
    let mut s = String::from(
        "# Generated by `cargo xtask workflow`: the labels of the self-hosted GPU runners.\nself-hosted-runner:\n  labels:\n",
    );
    for l in custom {
        let _ = writeln!(s, "    - {l}");
    }
    Some(s)
}

/// `self-hosted,linux,arm64,gpu` as labels.
fn labels(list: &str) -> Result<Vec<String>> {
    let l: Vec<String> = list
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let bad = l.iter().find(|s| {
        !s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    });
    match (l.is_empty(), bad) {
        (true, _) => Err(error::usage(format!(
            "--gpu-runner {list:?}: give runner labels, e.g. self-hosted,linux,arm64,gpu"
        ))),
        (_, Some(b)) => Err(error::usage(format!(
            "--gpu-runner {list:?}: {b:?} is not a runner label"
        ))),
        _ => Ok(l),
    }
}

/// The pinned `uses:` of an action role.
fn uses<'a>(policy: &'a Policy, role: &str) -> Result<&'a str> {
    policy
        .workflow
        .actions
        .get(role)
        .map(String::as_str)
        .ok_or_else(|| error::usage(format!("the policy has no [workflow.actions] {role}")))
}

/// The workflow's text and its job ids.
fn render(policy: &Policy, gpu: &[Vec<String>]) -> Result<(String, Vec<String>)> {
    let mut w = Writer {
        policy,
        y: String::new(),
        jobs: Vec::new(),
    };
    w.header();
    let hosted: Vec<&Target> = policy
        .targets
        .iter()
        .filter(|t| t.runner.is_some())
        .collect();
    for t in &hosted {
        w.test_job(t)?;
    }
    let images: Vec<&Target> = hosted
        .into_iter()
        .filter(|t| t.docker_platform.is_some() && t.docker_alias.is_some())
        .collect();
    for t in &images {
        w.image_job(t)?;
    }
    if !images.is_empty() {
        w.multiarch_job(&images)?;
    }
    for labels in gpu {
        w.gpu_job(labels)?;
    }
    Ok((w.y, w.jobs))
}

/// The workflow being written: its YAML and the ids of its jobs.
struct Writer<'p> {
    policy: &'p Policy,
    y: String,
    jobs: Vec<String>,
}

impl Writer<'_> {
    /// The pinned `uses:` of an action role.
    fn uses(&self, role: &str) -> Result<&str> {
        uses(self.policy, role)
    }

    fn header(&mut self) {
        self.y.push_str(
            "\
# Generated by `cargo xtask workflow` from templates/platforms.toml: edit the policy and run it
# again (`cargo xtask workflow --check` fails when this file and the policy disagree).
name: xtask

on:
  push:
    branches: [main]
  pull_request:
  workflow_dispatch:

permissions:
  contents: read

concurrency:
  group: ${{ github.workflow }}-${{ github.ref }}
  cancel-in-progress: ${{ github.event_name == 'pull_request' }}

jobs:
",
        );
    }

    /// Checkout, the cargo cache and uv: the first steps of a job that runs xtask.
    fn setup(&mut self) -> Result<()> {
        let uv = &self.policy.uv.version;
        let (checkout, cache, setup_uv) = (
            self.uses("checkout")?.to_string(),
            self.uses("cache")?.to_string(),
            self.uses("setup-uv")?.to_string(),
        );
        let _ = write!(
            self.y,
            "      - uses: {checkout}
        with:
          persist-credentials: false
      - uses: {cache}
        with:
          path: |
            ~/.cargo/registry/index
            ~/.cargo/registry/cache
            ~/.cargo/git/db
            target
          key: cargo-${{{{ runner.os }}}}-${{{{ runner.arch }}}}-${{{{ hashFiles('Cargo.lock') }}}}
      - uses: {setup_uv}
        with:
          version: \"{uv}\"
          enable-cache: true
          cache-dependency-glob: uv.lock
",
        );
        Ok(())
    }

    /// Logging in to the registry images are pushed to.
    fn login(&mut self) -> Result<()> {
        let login = self.uses("login")?.to_string();
        let registry = &self.policy.workflow.registry;
        let _ = write!(
            self.y,
            "      - uses: {login}
        with:
          registry: {registry}
          username: ${{{{ github.actor }}}}
          password: ${{{{ secrets.GITHUB_TOKEN }}}}
",
        );
        Ok(())
    }

    /// A hosted target's tests, validation and dist bundle.
    fn test_job(&mut self, t: &Target) -> Result<()> {
        let id = format!("test-{}", t.name);
        let runner = t.runner.as_deref().unwrap_or_default();
        let _ = write!(
            self.y,
            "  {id}:\n    name: {} ({runner})\n    runs-on: {runner}\n    timeout-minutes: 90\n    steps:\n",
            t.name
        );
        self.setup()?;
        let report = format!("validate-{}.json", t.name);
        let upload = self.uses("upload-artifact")?.to_string();
        let _ = write!(
            self.y,
            "      - run: cargo xtask port --check
      - run: cargo xtask audit --target {name}
      - run: cargo xtask setup-dev
      - run: cargo xtask test-unit
      - run: cargo xtask validate --level 3 --json --output {report}
      - run: cargo xtask dist
      - uses: {upload}
        if: always()
        with:
          name: validate-{name}
          path: {report}
          if-no-files-found: ignore
      - uses: {upload}
        with:
          name: bundle-{name}
          path: dist/*.tar.gz
",
            name = t.name,
        );
        self.jobs.push(id);
        Ok(())
    }

    /// A target's image, built natively on its runner and pushed by digest.
    fn image_job(&mut self, t: &Target) -> Result<()> {
        let alias = t.docker_alias.as_deref().unwrap_or_default();
        let runner = t.runner.as_deref().unwrap_or_default();
        let id = format!("image-{alias}");
        let (checkout, buildx) = (
            self.uses("checkout")?.to_string(),
            self.uses("setup-buildx")?.to_string(),
        );
        let _ = write!(
            self.y,
            "  {id}:\n    name: image {alias} ({runner}, native)\n    if: github.event_name == 'push'\n    needs: test-{name}\n    runs-on: {runner}\n    timeout-minutes: 120\n    permissions:\n      contents: read\n      packages: write\n    outputs:\n      digest: ${{{{ steps.push.outputs.digest }}}}\n    steps:\n      - uses: {checkout}\n        with:\n          persist-credentials: false\n      - uses: {buildx}\n",
            name = t.name,
        );
        self.login()?;
        let registry = &self.policy.workflow.registry;
        let _ = write!(
            self.y,
            "      - name: build, prove and push {alias}
        id: push
        # The preflight audits the target first; the start proof runs the image here,
        # natively, before it is pushed.
        run: |
          image=\"{registry}/${{GITHUB_REPOSITORY,,}}\"
          cargo xtask docker build {alias} --push --tag \"$image:{alias}-$GITHUB_SHA\"
          digest=$(docker buildx imagetools inspect \"$image:{alias}-$GITHUB_SHA\" --format '{{{{json .Manifest.Digest}}}}' | tr -d '\"')
          echo \"digest=$digest\" >> \"$GITHUB_OUTPUT\"
"
        );
        self.jobs.push(id);
        Ok(())
    }

    /// One multi-architecture tag over the images' digests.
    fn multiarch_job(&mut self, images: &[&Target]) -> Result<()> {
        let aliases: Vec<&str> = images
            .iter()
            .map(|t| t.docker_alias.as_deref().unwrap_or_default())
            .collect();
        let needs: Vec<String> = aliases.iter().map(|a| format!("image-{a}")).collect();
        let vars: Vec<String> = aliases
            .iter()
            .map(|a| a.replace('-', "_").to_ascii_uppercase())
            .collect();
        let env: String = aliases
            .iter()
            .zip(&vars)
            .map(|(a, v)| format!("          {v}: ${{{{ needs.image-{a}.outputs.digest }}}}\n"))
            .collect();
        let refs: Vec<String> = vars.iter().map(|v| format!("\"$image@${v}\"")).collect();
        let buildx = self.uses("setup-buildx")?.to_string();
        let _ = write!(
            self.y,
            "  image-multiarch:\n    name: one multi-arch image\n    if: github.event_name == 'push'\n    needs: [{}]\n    runs-on: ubuntu-24.04\n    timeout-minutes: 30\n    permissions:\n      contents: read\n      packages: write\n    steps:\n      - uses: {buildx}\n",
            needs.join(", "),
        );
        self.login()?;
        let registry = &self.policy.workflow.registry;
        let _ = write!(
            self.y,
            "      - name: join the architectures (by digest) under one tag
        env:
{env}        run: |
          image=\"{registry}/${{GITHUB_REPOSITORY,,}}\"
          docker buildx imagetools create --tag \"$image:$GITHUB_SHA\" --tag \"$image:latest\" \\
            {}
          docker buildx imagetools inspect \"$image:$GITHUB_SHA\"
",
            refs.join(" ")
        );
        self.jobs.push("image-multiarch".into());
        Ok(())
    }

    /// Validation on a self-hosted GPU runner with these labels.
    fn gpu_job(&mut self, labels: &[String]) -> Result<()> {
        let slug = labels.join("-");
        let id = format!("gpu-{slug}");
        let report = format!("validate-gpu-{slug}.json");
        let _ = write!(
            self.y,
            "  {id}:\n    name: GPU validation ({})\n    runs-on: [{}]\n    timeout-minutes: 120\n    steps:\n",
            labels.join(", "),
            labels.join(", ")
        );
        self.setup()?;
        let upload = self.uses("upload-artifact")?.to_string();
        let _ = write!(
            self.y,
            "      - run: cargo xtask setup-dev
      - run: cargo xtask validate --level 4 --require cuda --json --output {report}
      - uses: {upload}
        if: always()
        with:
          name: validate-gpu-{slug}
          path: {report}
          if-no-files-found: ignore
",
        );
        self.jobs.push(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_gets_its_runner_and_pinned_actions() {
        let policy = Policy::parse(include_str!("../../../templates/platforms.toml")).unwrap();
        let (y, jobs) = render(&policy, &[labels("self-hosted,linux,arm64,gpu").unwrap()]).unwrap();
        assert_eq!(
            jobs,
            [
                "test-linux-x86_64-cuda",
                "test-linux-aarch64-cuda",
                "test-macos-arm64-mps",
                "image-amd64-cuda",
                "image-arm64-cuda",
                "image-multiarch",
                "gpu-self-hosted-linux-arm64-gpu"
            ]
        );
        assert!(y.contains("runs-on: ubuntu-24.04-arm\n"));
        assert!(y.contains("runs-on: [self-hosted, linux, arm64, gpu]"));
        for line in y.lines().filter(|l| l.trim_start().starts_with("- uses:")) {
            let pin = line.split("@").nth(1).unwrap_or("");
            assert!(
                pin.len() > 40 && pin[..40].chars().all(|c| c.is_ascii_hexdigit()),
                "{line}"
            );
        }
        assert!(!y.contains("pull_request_target"));
        assert!(labels("a b").is_err());
    }
}
