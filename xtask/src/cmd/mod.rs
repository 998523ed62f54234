//! One module per command, each a clap `Args` struct with `fn run(self, ctx)`.

pub mod audit;
pub mod bench;
pub mod bundles;
pub mod ci;
pub mod clean;
pub mod dist;
pub mod docker;
pub mod docs;
pub mod fleet;
pub mod lint;
pub mod lock;
pub mod matrix;
pub mod platform;
pub mod policy;
pub mod port;
pub mod requirements;
pub mod setup;
pub mod test;
pub mod validate;
pub mod wave;
pub mod workflow;

use clap::error::ErrorKind;

use crate::error::Code;

/// `cargo xtask` with no arguments: one line per command that exists.
pub fn list(cli: &clap::Command) -> String {
    let subs: Vec<_> = cli.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    let width = subs.iter().map(|s| s.get_name().len()).max().unwrap_or(0);
    let mut out =
        String::from("cargo xtask <COMMAND> [--project DIR] [--policy FILE]\n\nCommands:\n");
    for s in subs {
        let about = s.get_about().map(|a| a.to_string()).unwrap_or_default();
        out.push_str(&format!("  {:width$}  {about}\n", s.get_name()));
    }
    out.push_str("\nRun `cargo xtask <COMMAND> --help` for a command's options.\n");
    out
}

/// Help and version go to stdout with exit 0; any parse error becomes one line on
/// stderr with exit 2, and, when `json` (the command line asked for JSON, though it did
/// not parse), the one `{"error": ...}` document on stdout.
pub fn clap_error(e: clap::Error, json: bool) -> i32 {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            Code::Ok.as_i32()
        }
        _ => {
            let line = one_line(&e.render().to_string());
            errln!("{line}");
            if json {
                let message = line.strip_prefix("error: ").unwrap_or(&line);
                error_document(Code::Usage, message);
            }
            Code::Usage.as_i32()
        }
    }
}

/// The error as the one JSON document on stdout: `{"error": {"code", "kind", "message"}}`.
pub fn error_document(code: Code, message: &str) {
    let v = serde_json::json!({"error": {"code": code.as_i32(), "kind": code, "message": message}});
    outln!("{v}");
}

/// clap's multi-line message as one line: the error, any tip, and where to look.
fn one_line(rendered: &str) -> String {
    let lines: Vec<&str> = rendered.lines().map(str::trim).collect();
    let at = lines.iter().position(|l| l.starts_with("error:"));
    let mut out = at.map_or_else(
        || "error: invalid arguments".to_string(),
        |i| lines[i].to_string(),
    );
    // "...were not provided:" lists the arguments on the lines below it.
    if let Some(i) = at
        && out.ends_with(':')
    {
        let listed: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| !l.is_empty())
            .copied()
            .collect();
        out.push(' ');
        out.push_str(&listed.join(", "));
    }
    for tip in lines.iter().filter(|l| l.starts_with("tip:")) {
        out.push_str(&format!(" ({tip})"));
    }
    out.push_str("; run `cargo xtask --help` for usage");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's exit-code table is `Code`'s, row for row.
    #[test]
    fn the_readme_lists_every_exit_status() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let table = Code::markdown_table();
        assert!(
            readme.contains(&format!("\n{table}\n")),
            "README.md's table under \"## Exit codes\" is not Code's:\n{table}"
        );
        let help = Code::help_line();
        for c in Code::ALL {
            assert!(help.contains(&format!("{} ", c.as_i32())), "{help}");
        }
        assert!(
            help.starts_with("Exit codes: 0 ok, 1 a check failed, 2 usage or input error"),
            "{help}"
        );
    }

    #[test]
    fn clap_errors_become_one_line() {
        let rendered = "error: unrecognized subcommand 'platfrom'\n\n  tip: a similar subcommand exists: 'platform'\n\nUsage: cargo xtask [OPTIONS] [COMMAND]\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(rendered),
            "error: unrecognized subcommand 'platfrom' (tip: a similar subcommand exists: 'platform'); run `cargo xtask --help` for usage"
        );
        let rendered = "error: the following required arguments were not provided:\n  --image <IMAGE>\n\nUsage: cargo xtask fleet render --scheduler <SCHEDULER> --nodes <NODES> --image <IMAGE>\n";
        assert_eq!(
            one_line(rendered),
            "error: the following required arguments were not provided: --image <IMAGE>; run `cargo xtask --help` for usage"
        );
    }
}
