//! A loopback HTTP server for PEP 503/691 indexes, and a client for the servers the
//! tests start (`wave`).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;

use super::wheel;

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
        let init = format!("__version__ = {version:?}\n");
        self.add_with(index, name, version, tag, &init);
    }

    /// [`Self::add`] with the package's `__init__.py` given.
    pub fn add_with(&self, index: &str, name: &str, version: &str, tag: &str, init: &str) {
        let base = self.root.path().join(index);
        let file = wheel::wheel_with(&base.join("files"), name, version, tag, init);
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

/// A loopback port free right now (the OS's pick), for a server a test starts.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
