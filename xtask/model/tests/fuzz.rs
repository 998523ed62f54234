//! The in-tree fuzzer, run by `cargo xtask ci` (as unit tests, in-process: no process
//! per input). Seeds are the fixtures; mutations are the kinds of input that broke the
//! tool before: requirement names ending in separators, compact and non-ASCII markers,
//! quoting, inline and dotted layouts, CRLF and BOMs, and plain byte damage.
//!
//! `XTASK_FUZZ_SEED` replays a run (the seed is printed); `XTASK_FUZZ_PORT` and
//! `XTASK_FUZZ_AUDIT` set the number of inputs (100,000 and 20,000 by default).
//!
//! Properties for `port`: no panic; an error has a code of the contract (1 or 2); a
//! result parses as TOML; porting the result again changes no byte (so `--check` after
//! `port` is 0); every dependency of the result keeps the requirement text of one of
//! the input's. For `audit`: no panic, and an error has a code of the contract.

use std::time::Instant;

use camino::Utf8PathBuf;

use model::error::{self, Code};
use model::lock::{self, Selection, audit::Auditor};
use model::pep;
use model::policy::Policy;
use model::pyproject;

const POLICY: &str = include_str!("../../../templates/platforms.toml");
const PORT_SEEDS: &[&str] = &[
    include_str!("../../tests/fixtures/port/main/pyproject.toml"),
    include_str!("../../tests/fixtures/port/arm64-attempt/pyproject.toml"),
    include_str!("../../tests/fixtures/port/odd/pyproject.toml"),
    include_str!("../../tests/fixtures/llmstudio/app/pyproject.toml"),
    include_str!("../../tests/fixtures/fuzz/pyproject.toml"),
];
const AUDIT_PYPROJECT: &str = include_str!("../../tests/fixtures/fuzz/pyproject.toml");
const AUDIT_LOCK: &str = include_str!("../../tests/fixtures/fuzz/uv.lock");

/// Pieces the mutations insert: the syntax and the values that matter here.
const TOKENS: &[&str] = &[
    "\"",
    "'",
    "[",
    "]",
    "{",
    "}",
    "=",
    ",",
    "\n",
    "\r\n",
    "#",
    ";",
    " ",
    "(",
    ")",
    "é",
    "\u{feff}",
    "-",
    "_",
    ".",
    "@",
    "%",
    "%2B",
    "%é",
    "==",
    ">=",
    "<",
    "!=",
    "~=",
    " or ",
    " and ",
    "or",
    "and",
    "sys_platform == 'darwin'",
    "sys_platform=='linux'",
    "platform_machine == 'aarch64'",
    "platform_machine=='x86_64'",
    "python_version >= '3.12'",
    "extra == 'flash'",
    "not",
    "[tool.uv]\n",
    "[tool.uv.sources]\n",
    "[[tool.uv.index]]\n",
    "[tool.pytest.ini_options]\n",
    "torch = { index = \"pytorch\" }\n",
    "tool.uv.sources = { torch = { index = \"pytorch\" } }\n",
    "[tool]\nuv = { sources = {} }\n",
    "markers = [\"slow: x\"]\n",
    "dependencies = []\n",
    "requires-python = \"==3.12.*\"\n",
    "name = \"pytorch\"\nurl = \"https://x.invalid/\"\n",
    "nvidia-cublas-cu12",
    "bitsandbytes",
    "flash-attn",
    "deepspeed",
    "triton",
    "torch",
    "3",
    "0.46",
];

/// Requirement-shaped strings (besides `pep::PANICKING`): compact markers, unicode,
/// extras, URLs, the policy's packages.
const REQUIREMENTS: &[&str] = &[
    "bitsandbytes>=0.46; sys_platform=='darwin'or platform_machine=='x86_64'",
    "bitsandbytes==0.45.5",
    "bitsandbytes",
    "flash-attn==2.8.3 ; python_version >= '3.10'",
    "deepspeed>=0.17 ; (sys_platform == 'linux')",
    "triton",
    "torch==2.8.0",
    "torch[opt]>=2.7,<2.9 ; extra == 'gpu'",
    "torchvision",
    "nvidia-cudnn-cu12==9.10",
    "nvidia-ml-py",
    "six @ https://x.invalid/six-1.17.0-py2.py3-none-any.whl",
    "a ; sys_platform != 'darwin' or platform_machine != 'arm64'",
    "b ; (sys_platform == 'darwin')and(platform_machine == 'arm64')",
    "c[x,y] ; python_full_version >= '3.12.1'",
    "",
    " ",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len())]
    }
}

fn seed() -> u64 {
    let s = std::env::var("XTASK_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    s.max(1)
}

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A char boundary at or before `i`.
fn floor(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A requirement-shaped string, quotes made single so it fits in a TOML string.
fn requirement(rng: &mut Rng) -> String {
    let list = if rng.below(3) == 0 {
        pep::PANICKING
    } else {
        REQUIREMENTS
    };
    rng.pick(list).replace('"', "'")
}

/// One to three mutations of `text`.
fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut s = text.to_string();
    for _ in 0..=rng.below(3) {
        let len = s.len();
        match rng.below(10) {
            // Insert a token anywhere.
            0 | 1 => {
                let at = floor(&s, rng.below(len + 1));
                s.insert_str(at, rng.pick(TOKENS));
            }
            // Delete a short range.
            2 => {
                let a = floor(&s, rng.below(len + 1));
                let b = floor(&s, a + rng.below(12));
                s.replace_range(a..b, "");
            }
            // Duplicate a range somewhere else.
            3 => {
                let a = floor(&s, rng.below(len + 1));
                let b = floor(&s, a + rng.below(40));
                let piece = s[a..b].to_string();
                let at = floor(&s, rng.below(len + 1));
                s.insert_str(at, &piece);
            }
            // Replace a quoted string with a requirement-shaped one (keeps TOML valid).
            4..=6 => {
                let quotes: Vec<usize> = s.match_indices('"').map(|(i, _)| i).collect();
                if quotes.len() >= 2 {
                    let k = rng.below(quotes.len() / 2) * 2;
                    let (a, b) = (quotes[k], quotes[k + 1]);
                    if a < b {
                        let req = requirement(rng);
                        s.replace_range(a + 1..b, &req);
                    }
                }
            }
            // Append a requirement to the first list that looks like dependencies.
            7 => {
                if let Some(i) = s.find("dependencies = [") {
                    let at = i + "dependencies = [".len();
                    let req = requirement(rng);
                    s.insert_str(at, &format!("\"{req}\", "));
                }
            }
            // Line endings and BOM.
            8 => s = s.replace("\r\n", "\n").replace('\n', "\r\n"),
            _ => {
                if !s.starts_with('\u{feff}') {
                    s.insert(0, '\u{feff}');
                }
            }
        }
    }
    s
}

/// The requirement texts (before any marker) of `[project] dependencies`.
fn requirement_bases(doc: &toml_edit::DocumentMut) -> Vec<String> {
    pyproject::requirements(doc)
        .dependencies
        .iter()
        .map(|d| pep::split_marker(d).0.trim().to_string())
        .collect()
}

fn code_ok(e: &anyhow::Error) -> bool {
    matches!(error::code_of(e), Code::Usage | Code::Failed)
}

/// Catch a panic of `f`, naming the input on failure.
fn no_panic<T>(what: &str, input: &str, f: impl FnOnce() -> T) -> T {
    match error::quietly(f) {
        Some(v) => v,
        None => panic!("{what} panicked on input:\n{input:?}"),
    }
}

fn check_port(policy: &Policy, input: &str) {
    let Some((new, _)) = no_panic("port", input, || {
        match pyproject::port("pyproject.toml", input, policy) {
            Ok(r) => Some(r),
            Err(e) => {
                assert!(
                    code_ok(&e),
                    "port: exit code {:?} for {input:?}: {e:#}",
                    error::code_of(&e)
                );
                None
            }
        }
    }) else {
        return;
    };
    let doc = pyproject::parse("pyproject.toml", &new).unwrap_or_else(|e| {
        panic!("port wrote invalid TOML ({e:#}) from:\n{input:?}\nto:\n{new:?}")
    });
    let (again, changes) = no_panic("port (second run)", &new, || {
        pyproject::port("pyproject.toml", &new, policy)
    })
    .unwrap_or_else(|e| panic!("port refused its own output ({e:#}):\n{new:?}"));
    assert!(
        again == new,
        "a second port changed {} place(s): {changes:?}\nfrom input:\n{input:?}",
        changes.len()
    );
    if let Ok(old) = pyproject::parse("pyproject.toml", input) {
        let before = requirement_bases(&old);
        for base in requirement_bases(&doc) {
            assert!(
                before.contains(&base),
                "port changed the requirement text {base:?} (input had {before:?})\ninput:\n{input:?}"
            );
        }
    }
}

fn check_audit(policy: &Policy, lock_text: &str, py_text: &str) {
    no_panic("audit", lock_text, || {
        let proj = match lock::Project::from_texts(
            Utf8PathBuf::from("uv.lock"),
            lock_text,
            "pyproject.toml",
            py_text,
        ) {
            Ok(p) => p,
            Err(e) => {
                assert!(code_ok(&e), "audit load: {:?}: {e:#}", error::code_of(&e));
                return;
            }
        };
        let _ = proj.stale();
        let Ok(python) = proj.python() else { return };
        let auditor = Auditor::new(&proj, policy);
        let sel = Selection {
            default_groups: proj.reqs.default_groups.clone(),
            ..Selection::default()
        };
        for t in &policy.targets {
            if let Err(e) = auditor.target(t, python, &sel) {
                assert!(
                    code_ok(&e),
                    "audit {}: {:?}: {e:#}",
                    t.name,
                    error::code_of(&e)
                );
            }
        }
    });
}

#[test]
fn fuzz_port() {
    error::quiet_panics_in_tests();
    let policy = Policy::parse(POLICY).unwrap();
    let seed = seed();
    let n = count("XTASK_FUZZ_PORT", 100_000);
    eprintln!("fuzz port: seed {seed} (XTASK_FUZZ_SEED={seed} replays it), {n} inputs");
    let mut rng = Rng(seed);
    let started = Instant::now();
    for seed_text in PORT_SEEDS {
        check_port(&policy, seed_text);
    }
    let mut valid = 0usize;
    for _ in 0..n {
        let base = PORT_SEEDS[rng.below(PORT_SEEDS.len())];
        let input = mutate(&mut rng, base);
        if pyproject::parse("pyproject.toml", &input).is_ok() {
            valid += 1;
        }
        check_port(&policy, &input);
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "fuzz port: {n} inputs ({valid} valid TOML) in {secs:.1} s, {:.0} inputs/s",
        n as f64 / secs
    );
}

#[test]
fn fuzz_audit() {
    error::quiet_panics_in_tests();
    let policy = Policy::parse(POLICY).unwrap();
    let seed = seed().wrapping_add(1);
    let n = count("XTASK_FUZZ_AUDIT", 20_000);
    eprintln!("fuzz audit: seed {seed}, {n} inputs");
    let mut rng = Rng(seed);
    let started = Instant::now();
    check_audit(&policy, AUDIT_LOCK, AUDIT_PYPROJECT);
    let mut valid = 0usize;
    for _ in 0..n {
        // Mostly the lock; sometimes the project beside it.
        let (lock_text, py_text) = if rng.below(5) == 0 {
            (AUDIT_LOCK.to_string(), mutate(&mut rng, AUDIT_PYPROJECT))
        } else {
            (mutate(&mut rng, AUDIT_LOCK), AUDIT_PYPROJECT.to_string())
        };
        if lock::parse("uv.lock", &lock_text).is_ok() {
            valid += 1;
        }
        check_audit(&policy, &lock_text, &py_text);
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "fuzz audit: {n} inputs ({valid} valid locks) in {secs:.1} s, {:.0} inputs/s",
        n as f64 / secs
    );
}
