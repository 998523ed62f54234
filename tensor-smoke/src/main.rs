//! tensor-smoke: run the checks of every backend built in, print a table or JSON.
//! Exit 0 when every check that ran passed (skips are listed with their reason), 1 when
//! a result was wrong, 2 for a usage error, 3 when a required backend could not run.

use clap::{Parser, ValueEnum};
use tensor_smoke::{Check, Group, Report, Sizes};

/// Run the tensor checks of every backend built in (CPU reference, CUDA, wgpu on Metal or
/// Vulkan) and print a table or JSON.
#[derive(Parser)]
#[command(
    name = "tensor-smoke",
    version,
    after_help = "Exit: 0 every check that ran passed (skips name their reason), 1 a wrong result, 2 usage, 3 a --require not met."
)]
struct Args {
    /// Run only this backend (repeatable; default: all built in).
    #[arg(long = "backend", value_enum, value_name = "BACKEND")]
    backends: Vec<Backend>,
    /// Exit 3 unless a check of this kind ran (repeatable; gpu: cuda or wgpu).
    #[arg(long, value_enum, value_name = "KIND")]
    require: Vec<Need>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Small sizes: seconds, not the full measurement.
    #[arg(long)]
    quick: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    Cpu,
    Cuda,
    Wgpu,
}

impl Backend {
    fn group(self) -> Group {
        match self {
            Backend::Cpu => Group::Cpu,
            Backend::Cuda => Group::Cuda,
            Backend::Wgpu => Group::Wgpu,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Need {
    Cuda,
    Wgpu,
    Gpu,
}

impl Need {
    fn met(self, report: &Report) -> bool {
        match self {
            Need::Cuda => report.ran(Group::Cuda),
            Need::Wgpu => report.ran(Group::Wgpu),
            Need::Gpu => report.ran(Group::Cuda) || report.ran(Group::Wgpu),
        }
    }
}

fn main() {
    std::process::exit(real_main());
}

fn real_main() -> i32 {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = e.exit_code();
            let _ = e.print();
            return code;
        }
    };
    let sizes = if args.quick {
        Sizes {
            vector: 1 << 18,
            copy_bytes: 16 << 20,
            matmul: 128,
            gemm: 1024,
        }
    } else {
        Sizes::default()
    };
    let backends: Vec<Group> = if args.backends.is_empty() {
        vec![Group::Cpu, Group::Cuda, Group::Wgpu]
    } else {
        args.backends.iter().map(|b| b.group()).collect()
    };
    let mut checks: Vec<Check> = Vec::new();
    for b in &backends {
        checks.extend(run_backend(*b, &sizes));
    }
    let report = Report::new(checks);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serialisable")
        );
    } else {
        print!("{}", report.table());
    }
    if report.failed() {
        return 1;
    }
    for r in &args.require {
        if !r.met(&report) {
            let r = r.to_possible_value().expect("no value is skipped");
            let r = r.get_name();
            eprintln!(
                "error: --require {r}: no {r} check could run on this machine (see the skips above)"
            );
            return 3;
        }
    }
    0
}

fn run_backend(b: Group, sizes: &Sizes) -> Vec<Check> {
    match b {
        Group::Cpu => tensor_smoke::cpu::run(sizes),
        #[cfg(feature = "cuda")]
        Group::Cuda => tensor_smoke::cuda::run(sizes),
        #[cfg(feature = "wgpu")]
        Group::Wgpu => tensor_smoke::wgpu_backend::run(sizes),
        other => vec![Check::skip(
            other,
            None,
            other.as_str(),
            format!("built without the {other} feature"),
        )],
    }
}
