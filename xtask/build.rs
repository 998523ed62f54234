//! Records the Rust target triple this binary is built for (`platform` reports it, and a
//! `dist` bundle for another architecture names it).
fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=XTASK_BUILD_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
