//! Shared pieces of the end-to-end tests: the binary, tools that may be absent (with a
//! visible skip, or a failure when CI requires them), tiny wheels with real platform
//! tags, and a loopback PEP 503 index server.

#![allow(dead_code)] // each test file uses a different subset

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn xtask() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.env_remove("XTASK_PROJECT");
    c
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Whether CI said this engine must be present (`XTASK_REQUIRE=uv,docker,...`).
pub fn required(what: &str) -> bool {
    std::env::var("XTASK_REQUIRE")
        .map(|v| v.split(',').any(|x| x.trim() == what || x.trim() == "all"))
        .unwrap_or(false)
}

/// Skip (printing why) or, when required, fail.
pub fn skip_or_fail(what: &str, why: &str) {
    if required(what) {
        panic!("{what} is required here (XTASK_REQUIRE) but {why}");
    }
    eprintln!("SKIPPED: {why} (set XTASK_REQUIRE={what} to make this a failure)");
}

pub fn find_uv() -> Option<PathBuf> {
    let found = which("uv");
    if found.is_none() {
        skip_or_fail("uv", "uv is not on PATH (python3 -m pip install uv)");
    }
    found
}

pub fn which(program: &str) -> Option<PathBuf> {
    which::which(program).ok()
}

/// An interpreter of Python `X.Y`, found the way `cargo xtask platform` finds them.
pub fn python(version: &str) -> Option<PathBuf> {
    let out = xtask().args(["platform", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let prefix = format!("{version}.");
    let found = v["tools"]["pythons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["version"].as_str().unwrap().starts_with(&prefix))
        .map(|p| PathBuf::from(p["path"].as_str().unwrap()));
    if found.is_none() {
        skip_or_fail(
            "uv",
            &format!("no Python {version} interpreter on this machine"),
        );
    }
    found
}

/// A minimal valid wheel: a package folder and a .dist-info with METADATA, WHEEL and RECORD.
pub fn wheel(dir: &Path, name: &str, version: &str, tag: &str) -> String {
    use std::io::Write as _;
    let file = format!("{}-{version}-{tag}.whl", name.replace('-', "_"));
    let dist_info = format!("{}-{version}.dist-info", name.replace('-', "_"));
    let module = name.replace('-', "_");
    let files = [
        (
            format!("{module}/__init__.py"),
            format!("__version__ = {version:?}\n"),
        ),
        (
            format!("{dist_info}/METADATA"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"),
        ),
        (
            format!("{dist_info}/WHEEL"),
            format!(
                "Wheel-Version: 1.0\nGenerator: xtask-tests\nRoot-Is-Purelib: false\nTag: {tag}\n"
            ),
        ),
    ];
    let mut record: String = files.iter().map(|(n, _)| format!("{n},,\n")).collect();
    record.push_str(&format!("{dist_info}/RECORD,,\n"));
    std::fs::create_dir_all(dir).unwrap();
    let f = std::fs::File::create(dir.join(&file)).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (n, body) in files
        .iter()
        .chain([(format!("{dist_info}/RECORD"), record)].iter())
    {
        z.start_file(n.as_str(), opts).unwrap();
        z.write_all(body.as_bytes()).unwrap();
    }
    z.finish().unwrap();
    file
}

/// A folder of PEP 503 simple indexes (`<root>/<index>/<project>/index.html` linking to
/// `<root>/<index>/files/<wheel>`) served on 127.0.0.1 for the life of the test process.
pub struct Indexes {
    pub root: tempfile::TempDir,
    pub url: String,
}

impl Indexes {
    pub fn new() -> Indexes {
        let root = tempfile::tempdir().unwrap();
        let url = serve(root.path().to_path_buf());
        Indexes { root, url }
    }

    /// Add a wheel to `index` and link it from the project page.
    pub fn add(&self, index: &str, name: &str, version: &str, tag: &str) {
        let base = self.root.path().join(index);
        let file = wheel(&base.join("files"), name, version, tag);
        let page = base.join(name).join("index.html");
        std::fs::create_dir_all(page.parent().unwrap()).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(page)
            .unwrap();
        writeln!(f, "<a href=\"../files/{file}\">{file}</a><br/>").unwrap();
    }

    pub fn index_url(&self, index: &str) -> String {
        format!("{}/{index}", self.url)
    }
}

/// Serve `root` over HTTP/1.0 on an ephemeral loopback port; directories answer with
/// their index.html. Returns the base URL.
pub fn serve(root: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let root = root.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                // Drain the headers.
                let mut h = String::new();
                while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
                    h.clear();
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/");
                let path = path.split(['?', '#']).next().unwrap_or("/");
                let rel = path.trim_start_matches('/');
                let mut file = root.join(rel);
                if rel.split('/').any(|p| p == "..") {
                    file = root.join("__forbidden__");
                }
                if file.is_dir() {
                    // A PEP 691 page where the folder has one, else PEP 503 HTML.
                    file = if file.join("index.json").is_file() {
                        file.join("index.json")
                    } else {
                        file.join("index.html")
                    };
                }
                let (status, body, ctype) = match std::fs::read(&file) {
                    Ok(b) => {
                        let ctype = match file.extension().and_then(|e| e.to_str()) {
                            Some("html") => "text/html",
                            Some("json") => "application/vnd.pypi.simple.v1+json",
                            _ => "application/octet-stream",
                        };
                        ("200 OK", b, ctype)
                    }
                    Err(_) => ("404 Not Found", b"not found".to_vec(), "text/plain"),
                };
                let head = format!(
                    "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                if !line.starts_with("HEAD") {
                    let _ = stream.write_all(&body);
                }
            });
        }
    });
    url
}

/// `GET /` on a loopback port: the whole answer when an HTTP server answers, else None.
pub fn http_get(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    std::io::Read::read_to_string(&mut s, &mut body).ok()?;
    body.starts_with("HTTP/").then_some(body)
}

/// Copy a fixture folder into a fresh temporary folder.
pub fn copy_fixture(rel: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join(rel), dir.path());
    dir
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Run a command, returning its output (never panics on a non-zero exit).
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// The policy's macOS floor (`MACOSX_DEPLOYMENT_TARGET` for uv's `aarch64-apple-darwin`,
/// which otherwise assumes 13.0).
pub fn policy_macos() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/platforms.toml");
    let v: toml::Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["targets"]["macos-arm64-mps"]["macos"]
        .as_str()
        .unwrap()
        .to_string()
}
