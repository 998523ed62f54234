//! Hostile input and hostile surroundings: no panic reaches the user, a closed pipe
//! ends quietly, a full disk is one line and non-zero.

use std::process::{Command, Stdio};

#[cfg(unix)]
use rustix::process::{Pid, Signal};
#[cfg(target_os = "linux")]
use rustix::process::{WaitId, WaitIdOptions, waitid};

use crate::support::*;

/// `matrix` with this text as the policy; it must exit with `code`.
fn matrix_with_policy(text: &str, code: i32) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, text).unwrap();
    Test::new(["matrix"]).policy(&file).expect(code)
}

/// Run with stdout a pipe whose reader is already gone.
fn closed_pipe(cmd: &mut Command) -> (Option<i32>, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    (o.status.code(), text(&o.stderr))
}

#[test]
fn a_closed_pipe_ends_quietly_with_the_commands_own_code() {
    let dir = copy_fixture("port/main");
    for args in [
        vec!["matrix", "--json"],
        vec!["platform", "--json"],
        vec!["port", "--diff"],
    ] {
        let (code, err) = closed_pipe(xtask().arg("--project").arg(dir.path()).args(&args));
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("error"),
            "{args:?}: {err}"
        );
    }
    // `--check` still says the file differs (exit 1) although nobody reads the list.
    let (code, err) = closed_pipe(
        xtask()
            .arg("--project")
            .arg(dir.path())
            .args(["port", "--check"]),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The rewrite itself succeeds and says so by its exit code.
    let before = std::fs::read_to_string(dir.path().join("pyproject.toml")).unwrap();
    let (code, err) = closed_pipe(xtask().arg("--project").arg(dir.path()).arg("port"));
    assert_eq!(code, Some(0), "{err}");
    assert_ne!(
        std::fs::read_to_string(dir.path().join("pyproject.toml")).unwrap(),
        before
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_one_line_and_non_zero() {
    let dir = copy_fixture("port/main");
    for args in [vec!["matrix"], vec!["platform", "--json"], vec!["port"]] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut cmd = xtask();
        cmd.arg("--project")
            .arg(dir.path())
            .args(&args)
            .stdout(full);
        let err = Test::from(cmd).expect(1).stderr();
        let last = err.lines().last().unwrap_or("");
        assert_eq!(
            last, "error: cannot write the output: No space left on device (os error 28)",
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// Requirement names that made pep508_rs panic (a name ending in `-`, `_` or `.`
/// before a space, `;`, `[`, `@` or a non-ASCII character; a non-ASCII character after
/// a quoted marker value) are one line naming the file, exit 2, from every command that
/// reads dependencies, and from the policy.
#[test]
fn parser_panics_become_one_line() {
    for dep in model::pep::PANICKING {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("pyproject.toml"),
            format!(
                "[project]\nname = \"x\"\nversion = \"1\"\nrequires-python = \"==3.12.*\"\ndependencies = [{dep:?}]\n"
            ),
        )
        .unwrap();
        for cmd in ["port", "requirements"] {
            let ran = Test::in_project(dir.path(), [cmd]).run();
            ran.err_lacks("panicked");
            assert!(matches!(ran.code(), Some(1 | 2)), "{cmd} {dep}: {ran:?}");
        }
        port_in(dir.path())
            .expect(2)
            .one_line_error("pyproject.toml");
    }
}

#[test]
fn a_policy_marker_that_panicked_the_parser_is_one_line() {
    let policy = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/platforms.toml"),
    )
    .unwrap();
    let bad = policy.replacen(
        "marker = \"sys_platform != 'darwin'\"",
        "marker = \"sys_platform != 'darwin'\u{e9}\"",
        1,
    );
    assert_ne!(bad, policy);
    matrix_with_policy(&bad, 2)
        .one_line_error("policy.toml")
        .err_lacks("panicked");
}

/// A CRLF file keeps its line ends and a BOM file its BOM; `--check` on the ported file
/// is 0 and a second port changes no byte.
#[test]
fn crlf_and_bom_survive_port() {
    let base = std::fs::read_to_string(fixtures().join("port/main/pyproject.toml")).unwrap();
    for (name, original) in [
        ("crlf", base.replace('\n', "\r\n")),
        ("bom", format!("\u{feff}{base}")),
        ("both", format!("\u{feff}{}", base.replace('\n', "\r\n"))),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pyproject.toml");
        std::fs::write(&file, &original).unwrap();
        port_in(dir.path()).expect(0);
        let ported = std::fs::read_to_string(&file).unwrap();
        assert_ne!(ported, original, "{name}");
        assert_eq!(
            ported.starts_with('\u{feff}'),
            original.starts_with('\u{feff}'),
            "{name}: BOM"
        );
        if original.contains("\r\n") {
            assert_eq!(
                ported.matches('\n').count(),
                ported.matches("\r\n").count(),
                "{name}: every line ends in CRLF"
            );
        } else {
            assert!(!ported.contains('\r'), "{name}");
        }
        port_in(dir.path()).arg("--check").expect(0);
        port_in(dir.path()).expect(0);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), ported, "{name}");
    }
}

/// `xtask --project DIR port`, to be run.
fn port_in(dir: &std::path::Path) -> Test {
    Test::in_project(dir, ["port"])
}

/// A symlinked pyproject.toml: the target is ported, the link stays a link. As root, the
/// user's ownership survives; a read-only file is refused and left as it was.
#[cfg(unix)]
#[test]
fn file_identity_is_kept() {
    use std::os::unix::fs::MetadataExt;
    let base = std::fs::read_to_string(fixtures().join("port/main/pyproject.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::write(real.join("pyproject.toml"), &base).unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::os::unix::fs::symlink("../real/pyproject.toml", app.join("pyproject.toml")).unwrap();
    port_in(&app).expect(0);
    assert!(
        std::fs::symlink_metadata(app.join("pyproject.toml"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_ne!(
        std::fs::read_to_string(real.join("pyproject.toml")).unwrap(),
        base
    );

    if rustix::process::geteuid().is_root() {
        let own = tempfile::tempdir().unwrap();
        let file = own.path().join("pyproject.toml");
        std::fs::write(&file, &base).unwrap();
        std::os::unix::fs::chown(&file, Some(1234), Some(2345)).unwrap();
        port_in(own.path()).expect(0);
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (1234, 2345));
        assert_ne!(std::fs::read_to_string(&file).unwrap(), base);
    }

    // A hard link: the rewrite is atomic, so this name gets a new file; it says so.
    let hl = tempfile::tempdir().unwrap();
    let file = hl.path().join("pyproject.toml");
    std::fs::write(&file, &base).unwrap();
    std::fs::hard_link(&file, hl.path().join("pyproject.backup.toml")).unwrap();
    port_in(hl.path()).expect(0).err_has("has 2 hard links");
    assert_eq!(
        std::fs::read_to_string(hl.path().join("pyproject.backup.toml")).unwrap(),
        base
    );

    let ro = tempfile::tempdir().unwrap();
    let file = ro.path().join("pyproject.toml");
    std::fs::write(&file, &base).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
    }
    port_in(ro.path()).expect(2);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), base);
}

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".xtask"))
        .collect()
}

/// SIGKILL and SIGINT at random moments of a port: the file is always whole (the old
/// or the new text), SIGINT exits 130 (or 0 when it came too late) and leaves nothing,
/// and what a SIGKILL left is gone after the next run.
#[cfg(unix)]
#[test]
fn kill_loop_leaves_whole_files_and_no_leftovers() {
    // A big file, so a port takes long enough to be hit mid-way.
    let mut big = std::fs::read_to_string(fixtures().join("port/main/pyproject.toml")).unwrap();
    big.push_str("\n[tool.filler]\n");
    for i in 0..20_000 {
        big.push_str(&format!("key{i} = \"{}\"\n", "x".repeat(40)));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pyproject.toml");
    std::fs::write(&file, &big).unwrap();
    port_in(dir.path()).expect(0);
    let ported = std::fs::read_to_string(&file).unwrap();
    let started = std::time::Instant::now();
    port_in(dir.path()).run();
    let took = started.elapsed();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id());
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    eprintln!("kill loop: a port takes {took:?}");
    let (mut hit_int, mut hit_kill) = (0, 0);
    for round in 0..40 {
        std::fs::write(&file, &big).unwrap();
        let kill = round % 2 == 0;
        let mut child = xtask()
            .arg("--project")
            .arg(dir.path())
            .arg("port")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Past the first 30 ms: before main() installs its handlers, SIGINT's default
        // action would end the process (as it does for any program).
        let delay = 30_000 + next() % (took.as_micros() as u64 + 1);
        std::thread::sleep(std::time::Duration::from_micros(delay));
        signal(&child, if kill { Signal::KILL } else { Signal::INT });
        let status = child.wait().unwrap();
        let now = std::fs::read_to_string(&file).unwrap();
        assert!(now == big || now == ported, "round {round}: a torn file");
        if kill {
            hit_kill += usize::from(status.code().is_none());
        } else {
            let code = status.code();
            assert!(
                matches!(code, Some(0 | 130)),
                "round {round}: SIGINT gave {status:?}"
            );
            hit_int += usize::from(code == Some(130));
            // Nothing of its own (a SIGKILLed round's file waits for the next write).
            let mine = format!(".xtask-tmp-{}-", child.id());
            let left = leftovers(dir.path());
            assert!(!left.iter().any(|n| n.starts_with(&mine)), "{left:?}");
        }
    }
    assert!(hit_int > 0 && hit_kill > 0, "no signal landed mid-run");
    // The next run removes what the SIGKILLs left.
    std::fs::write(&file, &big).unwrap();
    port_in(dir.path()).expect(0);
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

/// SIGTERM to the tool alone (what a scheduler or `timeout` sends) while validate runs
/// its tensor smoke test: the child is stopped with it, and the exit is 143.
#[cfg(unix)]
#[test]
fn a_signal_to_validate_stops_its_child() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let stub = dir.path().join("tensor-smoke");
    std::fs::write(
        &stub,
        format!(
            "#!/bin/sh\necho $$ > '{}'\nexec sleep 300\n",
            pidfile.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut child = xtask()
        .args(["validate", "--level", "2", "--smoke-bin"])
        .arg(&stub)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !pidfile.is_file() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    signal(&child, Signal::TERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    let alive = Pid::from_raw(pid).is_some_and(|p| rustix::process::test_kill_process(p).is_ok());
    assert!(!alive, "tensor-smoke (pid {pid}) outlived the tool");
}

fn pyproject_with(body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pyproject.toml"),
        format!("[project]\nname = \"x\"\nversion = \"1\"\nrequires-python = \"==3.12.*\"\n{body}"),
    )
    .unwrap();
    dir
}

/// Fields of the wrong type are one line naming the file and the field, exit 2.
#[test]
fn wrong_types_are_refused_not_skipped() {
    for (body, needle) in [
        (
            "dependencies = \"torch\"\n",
            "[project] dependencies must be a list of strings (found a string)",
        ),
        (
            "dependencies = {torch = 1}\n",
            "[project] dependencies must be a list of strings (found a table)",
        ),
        ("dependencies = 3\n", "(found a number)"),
        (
            "dependencies = [\"six\", 3]\n",
            "(found a number as item 2)",
        ),
        (
            "[dependency-groups]\ndev = \"pytest\"\n",
            "[dependency-groups] dev must be a list of strings",
        ),
    ] {
        let dir = pyproject_with(body);
        std::fs::write(
            dir.path().join("uv.lock"),
            "version = 1\nrevision = 3\nrequires-python = \"==3.12.*\"\n",
        )
        .unwrap();
        for cmd in ["port", "audit"] {
            Test::in_project(dir.path(), [cmd])
                .expect(2)
                .one_line_error(needle)
                .err_has("pyproject.toml: ");
        }
    }
}

/// `--output` naming one of the command's own inputs is refused before anything runs.
#[test]
fn output_never_overwrites_an_input() {
    let dir = copy_fixture("port/main");
    let py = dir.path().join("pyproject.toml");
    let before = std::fs::read_to_string(&py).unwrap();
    port_in(dir.path())
        .args(["--check", "--output"])
        .arg(&py)
        .expect(2)
        .err_has("which this command reads");
    assert_eq!(std::fs::read_to_string(&py).unwrap(), before);
}

/// A lock marker that does not parse: exit 2, and with --json an error object on stdout.
#[test]
fn json_errors_are_json() {
    let dir = pyproject_with("dependencies = [\"six\"]\n");
    std::fs::write(
        dir.path().join("uv.lock"),
        "version = 1\nrevision = 3\nrequires-python = \"==3.12.*\"\n\n[[package]]\nname = \"x\"\nversion = \"1\"\nsource = { virtual = \".\" }\ndependencies = [{ name = \"six\", marker = \"sys_platform ==\" }]\n\n[package.metadata]\nrequires-dist = [{ name = \"six\" }]\n\n[[package]]\nname = \"six\"\nversion = \"1.17.0\"\nsource = { registry = \"https://registry.invalid/simple\" }\n",
    )
    .unwrap();
    let v = Test::in_project(dir.path(), ["audit", "--json"])
        .expect(2)
        .json();
    assert_eq!(v["error"]["code"], 2);
    assert_eq!(v["error"]["kind"], "usage");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("uv.lock: marker"),
        "{v}"
    );
}

/// Policy values uv or pytest would reject are refused when the policy loads.
#[test]
fn bad_policy_values_are_exit_2() {
    let policy = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/platforms.toml"),
    )
    .unwrap();
    for (from, to, needle) in [
        (
            "url = \"https://download.pytorch.org/whl/cu128\"",
            "url = \"download.pytorch.org/whl/cu128\"",
            "is not a URL",
        ),
        (
            "[indexes.pytorch-cu130]",
            "[indexes.\"pytorch cu130\"]",
            "is not an index name",
        ),
        (
            "x86_64 = \"tests for x86_64\"",
            "x86_64 = \"tests for x86_64\"\n\"bad name\" = \"x\"",
            "is not a marker name",
        ),
    ] {
        let bad = policy.replacen(from, to, 1);
        assert_ne!(bad, policy, "{from}");
        matrix_with_policy(&bad, 2).one_line_error(needle);
    }
}

/// Valid input that was refused: compact markers, and inline or dotted layouts of the
/// tables port writes to. Each ports (exit 0), stays valid TOML with torch sourced per
/// platform, and `--check` is 0 afterwards.
#[test]
fn compact_markers_and_inline_layouts_port() {
    for (layout, before, after) in [
        (
            "compact marker",
            "",
            "dependencies = [\"bitsandbytes>=0.46; sys_platform=='darwin'or platform_machine=='x86_64'\", \"torch==2.8.0\"]\n",
        ),
        (
            "inline ini_options",
            "",
            "dependencies = [\"torch==2.8.0\"]\n\n[tool.pytest]\nini_options = { markers = [\"slow: long\"] }\n",
        ),
        (
            "inline tool",
            "",
            "dependencies = [\"torch==2.8.0\"]\n\n[tool]\nuv = { sources = { torch = { index = \"pytorch\" } } }\n",
        ),
        (
            "inline sources",
            "",
            "dependencies = [\"torch==2.8.0\"]\n\n[tool.uv]\nsources = { torch = { index = \"pytorch\" } }\n",
        ),
        (
            // Found by the fuzzer: toml_edit spelled new headers like the first one.
            "space in a header key",
            "",
            "dependencies = [\"torch==2.8.0\"]\n\n[tool.uv .sources]\ntorch = { index = \"pytorch\" }\n",
        ),
        (
            "dotted at the root",
            "tool.uv.sources = { torch = { index = \"pytorch\" } }\n\n",
            "dependencies = [\"torch==2.8.0\"]\n",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pyproject.toml");
        std::fs::write(
            &file,
            format!("{before}[project]\nname = \"x\"\nversion = \"1\"\nrequires-python = \"==3.12.*\"\n{after}"),
        )
        .unwrap();
        port_in(dir.path()).expect(0);
        port_in(dir.path()).arg("--check").expect(0);
        let v: toml::Value = toml::from_str(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{layout}: {e}"));
        let torch = v["tool"]["uv"]["sources"]["torch"].as_array().unwrap();
        // torch 2.8.0: the cu128 index on both Linux targets (one entry), PyPI on macOS.
        assert_eq!(torch.len(), 1, "{layout}: {v}");
        assert_eq!(
            torch[0]["index"].as_str(),
            Some("pytorch-cu128"),
            "{layout}: {v}"
        );
        assert_eq!(
            torch[0]["marker"].as_str(),
            Some("sys_platform == 'linux'"),
            "{layout}: {v}"
        );
        if layout == "compact marker" {
            let deps = v["project"]["dependencies"].as_array().unwrap();
            assert!(
                deps[0]
                    .as_str()
                    .unwrap()
                    .contains("(sys_platform=='darwin'or platform_machine=='x86_64') and ("),
                "{layout}: {deps:?}"
            );
        }
    }
}

/// Comments survive: the one after the last item of a list port appends to stays on
/// that item's line, and a replaced torch source keeps its trailing comment.
#[test]
fn comments_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pyproject.toml");
    std::fs::write(
        &file,
        "[project]\nname = \"x\"\nversion = \"1\"\nrequires-python = \"==3.12.*\"\ndependencies = [\"torch==2.8.0\"]\n\n[tool.pytest.ini_options]\nmarkers = [\n    \"slow: long tests\",  # keep me\n]\n\n[tool.uv.sources]\ntorch = { index = \"pytorch\" }  # chosen by the team\n",
    )
    .unwrap();
    port_in(dir.path()).expect(0);
    let ported = std::fs::read_to_string(&file).unwrap();
    assert!(
        ported.contains("    \"slow: long tests\",  # keep me\n    \"arm64_cuda: "),
        "{ported}"
    );
    assert!(ported.contains("]  # chosen by the team\n"), "{ported}");
    assert_eq!(ported.matches('#').count(), 2, "{ported}");
}

/// The signal contract under early signals: SIGINT at a random moment in the first 10 ms
/// of `port`, `requirements`, `bundles` and `workflow`. A run that received it ends 130
/// (or, before main() installed its handler, dies by SIGINT as any program does); never 0.
/// Whether it was received is exact: the child is stopped first (SIGSTOP), and only a
/// child that stopped rather than exited gets the SIGINT, then SIGCONT.
#[cfg(target_os = "linux")]
#[test]
fn a_received_sigint_never_ends_0() {
    use std::os::unix::process::ExitStatusExt;
    let runs: usize = std::env::var("XTASK_SIGNAL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().unwrap();
    let fuzz = fixtures().join("fuzz");
    let app = dir.path().join("app");
    copy_dir(&fixtures().join("llmstudio/app"), &app);
    let lockdir = dir.path().join("locked");
    copy_dir(&fuzz, &lockdir);
    let pyproject = std::fs::read(fixtures().join("port/main/pyproject.toml")).unwrap();
    let portdir = dir.path().join("port");
    std::fs::create_dir(&portdir).unwrap();
    let commands: [(&str, &std::path::Path); 4] = [
        ("port", &portdir),
        ("requirements", &lockdir),
        ("bundles", &app),
        ("workflow", &lockdir),
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d ^ u64::from(std::process::id());
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (command, project) in commands {
        let (mut received, mut handled, mut before_main, mut done_first) = (0, 0, 0, 0);
        for round in 0..runs {
            std::fs::write(portdir.join("pyproject.toml"), &pyproject).unwrap();
            let mut cmd = xtask();
            cmd.arg("--project")
                .arg(project)
                .arg(command)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // As from a terminal: a test run in a background job inherits SIGINT ignored
            // (POSIX shells do that without job control), and exec keeps it so until main().
            // SAFETY: signal(2) is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(|| {
                    libc::signal(libc::SIGINT, libc::SIG_DFL);
                    Ok(())
                });
            }
            let mut child = cmd.spawn().unwrap();
            let delay = 500 + next() % 9_500;
            std::thread::sleep(std::time::Duration::from_micros(delay));
            // Our own unreaped child; waitid with WNOWAIT leaves its state for
            // child.wait() below.
            signal(&child, Signal::STOP);
            let flags = WaitIdOptions::STOPPED | WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
            let stopped = waitid(WaitId::Pid(Pid::from_child(&child)), flags)
                .unwrap()
                .is_some_and(|s| s.stopped());
            if stopped {
                // The SIGINT waits until the child runs again.
                signal(&child, Signal::INT);
                signal(&child, Signal::CONT);
            }
            let status = child.wait().unwrap();
            if !stopped {
                done_first += 1;
                assert_eq!(
                    status.code(),
                    Some(0),
                    "{command} round {round}: {status:?}"
                );
                continue;
            }
            received += 1;
            match (status.code(), status.signal()) {
                (Some(130), _) => handled += 1,
                (None, Some(sig)) if sig == Signal::INT.as_raw() => before_main += 1,
                other => panic!(
                    "{command} round {round}: SIGINT received {delay} us in, then {other:?} (must be 130)"
                ),
            }
        }
        eprintln!(
            "{command}: {runs} runs, {received} received SIGINT ({handled} exit 130, {before_main} died before main), {done_first} had finished"
        );
        assert!(
            handled > 0,
            "{command}: no SIGINT landed after main() started"
        );
    }
}
