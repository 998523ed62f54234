//! The end-to-end tests of the `cargo xtask` binary, one module per area, in one test
//! binary: one link instead of one per file, and every test in one run's thread pool.

mod support;

mod audit_cli;
mod audit_uv;
mod cli;
mod devloop;
mod dist;
mod docker;
mod fleet;
mod hardening;
mod imports;
mod llmstudio;
mod makefile;
mod policy_check;
mod port_cli;
mod port_uv;
mod validate;
mod workflow;
