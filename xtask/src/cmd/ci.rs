//! `cargo xtask ci`: the checks that make this repository's CI green, run locally.

use anyhow::Result;

use crate::ctx::Ctx;
use crate::error;
use crate::process::{self, Cmd};

#[derive(clap::Args, Debug)]
pub struct Ci {
    /// Stop at the first failing step instead of running all three
    #[arg(long)]
    fail_fast: bool,
}

impl Ci {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let cargo = process::cargo().unwrap_or_else(|| "cargo".into());
        let steps: [(&str, &[&str]); 3] = [
            ("fmt", &["fmt", "--all", "--check"]),
            (
                "clippy",
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--all-features",
                    "--",
                    "-D",
                    "warnings",
                ],
            ),
            ("test", &["test", "--workspace", "--all-features"]),
        ];
        let mut failed = Vec::new();
        for (name, args) in steps {
            let result = Cmd::new(&cargo)
                .args(args)
                .dir(ctx.workspace.as_std_path())
                .run_shown();
            match result {
                Ok(()) => errln!("ci: {name} ok"),
                Err(e) if error::code_of(&e) == error::Code::Interrupted => return Err(e),
                Err(e) => {
                    errln!("ci: {name} FAILED: {}", error::line_of(&e));
                    failed.push(name);
                    if self.fail_fast {
                        break;
                    }
                }
            }
        }
        if failed.is_empty() {
            errln!("ci: all checks passed");
            Ok(())
        } else {
            Err(error::failed(format!("ci: failed: {}", failed.join(", "))))
        }
    }
}
