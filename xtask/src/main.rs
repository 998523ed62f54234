//! `cargo xtask`: build orchestration for H2O LLM Studio on Linux x86_64 + CUDA,
//! Linux aarch64 + CUDA (Grace Hopper / Grace Blackwell), macOS arm64 + MPS, and
//! CPU-only hosts. This file parses flags and dispatches; nothing else.
//!
//! stdout has one owner: the `out` module (`out!`, `outln!`, a command's JSON document);
//! people's text goes through `errln!`. The print macros are refused here at build time.
#![deny(clippy::print_stdout, clippy::print_stderr)]

#[macro_use]
mod out;

mod cmd;
mod ctx;
mod elf;
mod fleet;
mod fsx;
mod imports;
mod platform;
mod process;
mod pytest;
mod report;
mod simple;
mod smoke;
mod toolchain;
mod uv;
mod waveapp;

// The Python-packaging model (its own crate: no processes); its rooms keep their paths here.
use model::{error, gpu, lock, names, pep, pins, policy, pyproject, torch, xy};

use camino::Utf8PathBuf;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Install, test, containerise and validate H2O LLM Studio on every target"
)]
struct Cli {
    /// The Python project to act on [default: this workspace's root when it holds a pyproject.toml]
    #[arg(long, global = true, env = "XTASK_PROJECT", value_name = "DIR")]
    project: Option<Utf8PathBuf>,

    /// The support matrix the commands apply [default: templates/platforms.toml]
    #[arg(long, global = true, env = "XTASK_POLICY", value_name = "FILE")]
    policy: Option<Utf8PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate this machine: platform, GPU tensor smoke test, torch, GPU tests (levels 1-4)
    Validate(cmd::validate::Validate),
    /// Validate every node of a cluster (Slurm), or render the job (Slurm, Kubernetes), then find the bad node
    Fleet(cmd::fleet::Fleet),
    /// Show what this machine is: OS, architecture, target, GPU backend and tools
    Platform(cmd::platform::Platform),
    /// Rewrite pyproject.toml so the app locks and installs on every target (indexes, sources, markers)
    Port(cmd::port::Port),
    /// Lock the project with uv, using the Python the dev loop finds (uv lock)
    Lock(cmd::lock::Lock),
    /// Check offline, from uv.lock, that every package installs on every target (wheel, build or missing)
    Audit(cmd::audit::Audit),
    /// Print the support matrix: targets, torch indexes, which packages run where and why
    Matrix(cmd::matrix::Matrix),
    /// Hold the support matrix's wheel facts against the live indexes (policy check)
    Policy(cmd::policy::PolicyCmd),
    /// Install the app's environment with its dev tools (uv sync --frozen --group dev; Makefile: setup-dev)
    SetupDev(cmd::setup::Setup),
    /// Install the app's environment without dev tools (uv sync --frozen --no-dev; Makefile: setup)
    Setup(cmd::setup::Setup),
    /// Run the app's tests with pytest, deselecting what this backend cannot run (Makefile: test)
    Test(cmd::test::Test),
    /// Run the app's unit tests (pytest -k src; Makefile: test-unit)
    TestUnit(cmd::test::Test),
    /// Run the app with reload on code changes (Makefile: wave)
    Wave(cmd::wave::Wave),
    /// Run the app without reload, showing the GPUs (Makefile: llmstudio)
    Llmstudio(cmd::wave::Wave),
    /// Run the tests matching NAME, output not captured (Makefile: test-debug)
    TestDebug(cmd::test::TestDebug),
    /// Run the Playwright UI tests; --serve starts the app, waits, tests and stops it (Makefile: test-ui*)
    TestUi(cmd::test::TestUi),
    /// Stop the app this tool started for the project, never another process (Makefile: stop-llmstudio)
    StopLlmstudio(cmd::wave::StopLlmstudio),
    /// Type-check the app with mypy, log in reports/mypy.log (Makefile: style)
    Style(cmd::lint::Style),
    /// Format and lint the app with the ruff version its lock pins; --check for CI (Makefile: format, format-check)
    Format(cmd::lint::Format),
    /// Zip static/, about.md and app.toml into bundles/<app>.<version>.wave, reproducibly (Makefile: bundles)
    Bundles(cmd::bundles::Bundles),
    /// Remove the project's .venv, data/ or output/, saying what goes (Makefile: clean-env, clean-data, clean-output)
    Clean(cmd::clean::Clean),
    /// Set up, run, build or serve the documentation site with npm (Makefile: setup-doc, run-doc, ...)
    Docs(cmd::docs::Docs),
    /// Write the app's GitHub Actions CI from the policy: native jobs per target, images, GPU runners
    Workflow(cmd::workflow::Workflow),
    /// Write per-target requirements files (or a pylock.toml) from uv.lock, with hashes (Makefile: requirements)
    Requirements(cmd::requirements::Requirements),
    /// Build, prove, run, scan, push or clean the app's Docker image per target (amd64-cuda, arm64-cuda, cpu)
    Docker(cmd::docker::Docker),
    /// Bundle xtask, tensor-smoke and templates for nodes without Rust (runs `validate` there)
    Dist(cmd::dist::Dist),
    /// Run this repository's checks: cargo fmt --check, clippy -D warnings, tests
    Ci(cmd::ci::Ci),
    /// Run this repository's benchmarks: each ratio side by side, median of N (figures, never a pass/fail)
    Bench(cmd::bench::Bench),
}

fn main() {
    error::install_panic_hook();
    process::install_signal_handlers();
    let code = match std::panic::catch_unwind(real_main) {
        Ok(code) => code,
        Err(_) => {
            let what = error::last_panic().unwrap_or_else(|| "unknown panic".into());
            errln!("error: internal error (a bug in cargo xtask, please report it): {what}");
            error::Code::Internal.as_i32()
        }
    };
    let code = match out::failure() {
        Some(e) => {
            errln!("error: cannot write the output: {e}");
            code.max(1)
        }
        None => code,
    };
    // Asked to stop: 130 for SIGINT, 143 for SIGTERM, once the work in flight is undone.
    let code = process::signal_received().map_or(code, error::Code::of_signal);
    std::process::exit(code);
}

/// The command line as parsed: the exit-status table is `--help`'s epilogue.
fn cli_command() -> clap::Command {
    Cli::command().after_help(error::Code::help_line())
}

/// Whether the command's own `--json` flag was given, from the parsed flags.
fn json_flag(m: &clap::ArgMatches) -> bool {
    match m.subcommand() {
        Some((_, sub)) => json_flag(sub),
        None => matches!(m.try_get_one::<bool>("json"), Ok(Some(true))),
    }
}

/// For a command line that did not parse: whether it holds `--json` before any `--`.
fn json_in_argv() -> bool {
    std::env::args()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

fn real_main() -> i32 {
    let parsed = cli_command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, json_flag(&m))));
    let (cli, json) = match parsed {
        Ok(p) => p,
        Err(e) => return cmd::clap_error(e, json_in_argv()),
    };
    if json {
        out::reserve_stdout();
    }
    let Some(command) = cli.command else {
        out!("{}", cmd::list(&cli_command()));
        return 0;
    };
    let result = ctx::Ctx::new(cli.project, cli.policy).and_then(|ctx| match command {
        Command::Validate(c) => c.run(&ctx),
        Command::Fleet(c) => c.run(&ctx),
        Command::Platform(c) => c.run(&ctx),
        Command::Port(c) => c.run(&ctx),
        Command::Matrix(c) => c.run(&ctx),
        Command::Policy(c) => c.run(&ctx),
        Command::Lock(c) => c.run(&ctx),
        Command::Audit(c) => c.run(&ctx),
        Command::SetupDev(c) => c.run(&ctx, cmd::setup::Deps::Dev),
        Command::Setup(c) => c.run(&ctx, cmd::setup::Deps::App),
        Command::Test(c) => c.run(&ctx, pytest::Suite::All),
        Command::TestUnit(c) => c.run(&ctx, pytest::Suite::Unit),
        Command::Wave(c) => c.run(&ctx, waveapp::Mode::Reload),
        Command::Llmstudio(c) => c.run(&ctx, waveapp::Mode::NoReload),
        Command::TestDebug(c) => c.run(&ctx),
        Command::TestUi(c) => c.run(&ctx),
        Command::StopLlmstudio(c) => c.run(&ctx),
        Command::Style(c) => c.run(&ctx),
        Command::Format(c) => c.run(&ctx),
        Command::Bundles(c) => c.run(&ctx),
        Command::Clean(c) => c.run(&ctx),
        Command::Docs(c) => c.run(&ctx),
        Command::Workflow(c) => c.run(&ctx),
        Command::Requirements(c) => c.run(&ctx),
        Command::Docker(c) => c.run(&ctx),
        Command::Dist(c) => c.run(&ctx),
        Command::Bench(c) => c.run(&ctx),
        Command::Ci(c) => c.run(&ctx),
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            let line = error::line_of(&e);
            let code = error::code_of(&e);
            if !line.is_empty() {
                errln!("error: {line}");
            }
            // Whoever asked for JSON reads stdout: give them the error there too.
            if json && !out::wrote_anything() {
                cmd::error_document(code, &line);
            }
            code.as_i32()
        }
    }
}
