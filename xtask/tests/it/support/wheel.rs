//! Tiny wheels with real platform tags: test data for the loopback indexes.

use std::path::Path;

/// A minimal valid wheel: a package folder and a .dist-info with METADATA, WHEEL and RECORD.
pub fn wheel(dir: &Path, name: &str, version: &str, tag: &str) -> String {
    let init = format!("__version__ = {version:?}\n");
    wheel_with(dir, name, version, tag, &init)
}

/// [`wheel`] whose package's `__init__.py` is `init`.
pub fn wheel_with(dir: &Path, name: &str, version: &str, tag: &str, init: &str) -> String {
    use std::io::Write as _;
    let file = format!("{}-{version}-{tag}.whl", name.replace('-', "_"));
    let dist_info = format!("{}-{version}.dist-info", name.replace('-', "_"));
    let module = name.replace('-', "_");
    let files = [
        (format!("{module}/__init__.py"), init.to_string()),
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
