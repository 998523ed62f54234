//! tensor-smoke: run the checks of every backend built in, print a table or JSON.
//! Exit 0 when every check that ran passed (skips are listed with their reason), 1 when
//! a result was wrong, 2 for a usage error, 3 when a required backend could not run.

use tensor_smoke::{Check, Group, Report, Sizes};

const USAGE: &str = "usage: tensor-smoke [--backend cpu|cuda|wgpu]... [--require cuda|wgpu|gpu]... [--json] [--quick]";

fn main() {
    std::process::exit(real_main());
}

fn real_main() -> i32 {
    let mut backends: Vec<Group> = Vec::new();
    let mut require: Vec<String> = Vec::new();
    let mut json = false;
    let mut sizes = Sizes::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--backend" | "--require" => {
                let Some(v) = args.next() else {
                    eprintln!("error: {a} needs a value; {USAGE}");
                    return 2;
                };
                let known = if a == "--backend" {
                    &["cpu", "cuda", "wgpu"][..]
                } else {
                    &["cuda", "wgpu", "gpu"][..]
                };
                if !known.contains(&v.as_str()) {
                    eprintln!("error: {a} {v}: choose one of {}", known.join(", "));
                    return 2;
                }
                if a == "--backend" {
                    backends.extend(group(&v))
                } else {
                    require.push(v)
                }
            }
            "--json" => json = true,
            "--quick" => {
                sizes = Sizes {
                    vector: 1 << 18,
                    copy_bytes: 16 << 20,
                    matmul: 128,
                    gemm: 1024,
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return 0;
            }
            other => {
                eprintln!("error: unknown argument {other:?}; {USAGE}");
                return 2;
            }
        }
    }
    if backends.is_empty() {
        backends = vec![Group::Cpu, Group::Cuda, Group::Wgpu];
    }
    let mut checks: Vec<Check> = Vec::new();
    for b in &backends {
        checks.extend(run_backend(*b, &sizes));
    }
    let report = Report::new(checks);
    if json {
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
    for r in &require {
        let ran = match r.as_str() {
            "gpu" => report.ran(Group::Cuda) || report.ran(Group::Wgpu),
            other => group(other).is_some_and(|g| report.ran(g)),
        };
        if !ran {
            eprintln!(
                "error: --require {r}: no {r} check could run on this machine (see the skips above)"
            );
            return 3;
        }
    }
    0
}

/// A backend by the name the command line gives it.
fn group(name: &str) -> Option<Group> {
    [Group::Cpu, Group::Cuda, Group::Wgpu]
        .into_iter()
        .find(|g| g.as_str() == name)
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
