//! The Python-packaging model: what the support matrix says (`policy`), how PEP 503/508/440
//! names, markers and versions read (`names`, `pep`), what a pyproject.toml asks for and
//! how it is rewritten (`pyproject`), what a uv.lock resolved and which wheel installs where
//! (`lock`), and which Python versions a project pins (`pins`). Pure data and files: this
//! crate spawns no process and makes no OS call beyond reading files, so the commands in
//! `xtask` compose it with the host adapters without parsing TOML themselves.

pub mod error;
pub mod gpu;
pub mod lock;
pub mod names;
pub mod pep;
pub mod pins;
pub mod policy;
pub mod pyproject;
pub mod torch;
pub mod xy;
