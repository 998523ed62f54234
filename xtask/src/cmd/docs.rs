//! `cargo xtask docs <action>`: the app's documentation site (npm in documentation/),
//! the Makefile's setup-doc, run-doc, build-doc-locally, serve-doc-locally and
//! update-documentation-infrastructure.

use anyhow::Result;
use camino::Utf8PathBuf;

use crate::ctx::Ctx;
use crate::error;
use crate::process::{Cmd, find};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    /// npm install (Makefile: setup-doc)
    Setup,
    /// npm start: the site with live reload (Makefile: run-doc)
    Start,
    /// npm run build: static files for production (Makefile: build-doc-locally)
    Build,
    /// npm run serve: serve the built site (Makefile: serve-doc-locally)
    Serve,
    /// npm update @h2oai/makersaurus, then npm ls (Makefile: update-documentation-infrastructure)
    Update,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Runs npm in the project's documentation/ folder. Needs Node.js with npm (exit 3 naming them when \
absent).

Examples:
  cargo xtask docs setup && cargo xtask docs build
  cargo xtask docs start")]
pub struct Docs {
    #[arg(value_enum)]
    action: Action,
    /// The documentation folder [default: <project>/documentation]
    #[arg(long, value_name = "DIR")]
    dir: Option<Utf8PathBuf>,
}

impl Docs {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let dir = match &self.dir {
            Some(d) => d.clone(),
            None => ctx.project()?.join("documentation"),
        };
        if !dir.join("package.json").is_file() {
            return Err(error::usage(format!(
                "{dir}: no package.json (the documentation site lives in the app's documentation/; pass --dir)"
            )));
        }
        for tool in ["node", "npm"] {
            if find(tool).is_none() {
                return Err(error::absent(format!(
                    "{tool} not found on PATH: install Node.js with npm (e.g. `apt-get install nodejs npm`) to build the documentation"
                )));
            }
        }
        let npm = |args: &[&str]| {
            Cmd::new("npm")
                .args(args)
                .dir(dir.as_std_path())
                .run_shown()
        };
        match self.action {
            Action::Setup => npm(&["install"]),
            Action::Start => npm(&["start"]),
            Action::Build => npm(&["run", "build"]),
            Action::Serve => npm(&["run", "serve"]),
            Action::Update => {
                npm(&["update", "@h2oai/makersaurus"])?;
                npm(&["ls"])
            }
        }
    }
}
