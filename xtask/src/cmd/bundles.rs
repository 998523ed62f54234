//! `cargo xtask bundles`: the Wave app bundle the Makefile zipped: static/, about.md and
//! app.toml (from app.toml.template with the project's version) in
//! bundles/<app name>.<version>.wave, reproducibly.

use std::io::Write as _;

use anyhow::{Context as _, Result};
use camino::{Utf8Path, Utf8PathBuf};
use zip::write::SimpleFileOptions;

use crate::ctx::Ctx;
use crate::error;
use crate::fsx;
use crate::pyproject;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Reads app.toml.template, replaces {{VERSION}} with the version in pyproject.toml, and zips it as \
app.toml with about.md and static/ into bundles/<[App] name>.<version>.wave. The bundle is \
reproducible: entries in name order, every timestamp 1980-01-01 00:00 (or $SOURCE_DATE_EPOCH), \
modes 0644/0755, so building twice gives the same bytes.

Examples:
  cargo xtask bundles
  cargo xtask bundles --out-dir dist/wave")]
pub struct Bundles {
    /// Folder for the bundle [default: <project>/bundles]
    #[arg(long, value_name = "DIR")]
    out_dir: Option<Utf8PathBuf>,
}

impl Bundles {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let project = ctx.project()?;
        let reqs = pyproject::load_requirements(project)?;
        let version = reqs.version.clone().ok_or_else(|| {
            error::usage(format!(
                "{project}/pyproject.toml has no [project] version: the bundle is named after it"
            ))
        })?;
        let template = project.join("app.toml.template");
        let text = std::fs::read_to_string(&template).map_err(|e| {
            error::usage(format!(
                "{template}: cannot read: {e} (the bundle's app.toml is made from it)"
            ))
        })?;
        let app_toml = text.replace("{{VERSION}}", &version);
        let name = app_name(&app_toml).map_err(|e| error::usage(format!("{template}: {e}")))?;
        let mut entries: Vec<(String, Option<Vec<u8>>)> =
            vec![("app.toml".into(), Some(app_toml.into_bytes()))];
        let about = project.join("about.md");
        let about_bytes = std::fs::read(&about)
            .map_err(|e| error::usage(format!("{about}: cannot read: {e}")))?;
        entries.push(("about.md".into(), Some(about_bytes)));
        let statics = project.join("static");
        if !statics.is_dir() {
            return Err(error::usage(format!(
                "{statics} is not a folder: the bundle carries the app's static files"
            )));
        }
        collect(&statics, "static", &mut entries)?;
        entries.sort_by(|a, b| a.0.cmp(&b.0));

        let bytes = zip_entries(&entries)?;
        let out_dir = self
            .out_dir
            .clone()
            .unwrap_or_else(|| project.join("bundles"));
        std::fs::create_dir_all(&out_dir)
            .map_err(|e| error::usage(format!("{out_dir}: cannot create: {e}")))?;
        let out = out_dir.join(format!("{name}.{version}.wave"));
        fsx::write_atomic(&out, &bytes)?;
        outln!(
            "{out}: {} entries, {:.1} KiB",
            entries.len(),
            bytes.len() as f64 / 1024.0
        );
        Ok(())
    }
}

/// `[App] name` of the app's manifest.
fn app_name(app_toml: &str) -> Result<String> {
    let doc: toml_edit::DocumentMut = app_toml
        .parse()
        .map_err(|e: toml_edit::TomlError| anyhow::anyhow!("not valid TOML: {}", e.message()))?;
    doc.get("App")
        .and_then(|a| a.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no [App] name (the bundle is named after it)"))
}

/// Every folder (as `name/`, no bytes) and file under `dir`, named from `prefix`.
fn collect(dir: &Utf8Path, prefix: &str, out: &mut Vec<(String, Option<Vec<u8>>)>) -> Result<()> {
    out.push((format!("{prefix}/"), None));
    for e in dir
        .read_dir_utf8()
        .with_context(|| format!("reading {dir}"))?
    {
        let e = e?;
        let name = format!("{prefix}/{}", e.file_name());
        if e.path().is_dir() {
            collect(e.path(), &name, out)?;
        } else {
            let bytes = std::fs::read(e.path()).with_context(|| format!("reading {}", e.path()))?;
            out.push((name, Some(bytes)));
        }
    }
    Ok(())
}

/// The zip, with fixed timestamps and modes.
fn zip_entries(entries: &[(String, Option<Vec<u8>>)]) -> Result<Vec<u8>> {
    let time = match std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
    {
        Some(secs) => dos_time(secs)?,
        None => zip::DateTime::default(),
    };
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        let opts = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(time);
        match bytes {
            None => w.add_directory(name.trim_end_matches('/'), opts.unix_permissions(0o755))?,
            Some(b) => {
                w.start_file(name.as_str(), opts.unix_permissions(0o644))?;
                w.write_all(b)?;
            }
        }
    }
    Ok(w.finish()?.into_inner())
}

/// A Unix time as a zip (DOS) timestamp, UTC.
fn dos_time(secs: i64) -> Result<zip::DateTime> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    zip::DateTime::from_date_and_time(
        u16::try_from(year.clamp(1980, 2107))?,
        month as u8,
        day as u8,
        (rem / 3600) as u8,
        (rem % 3600 / 60) as u8,
        (rem % 60) as u8,
    )
    .map_err(|_| {
        error::usage(format!(
            "SOURCE_DATE_EPOCH={secs}: not a time a zip can hold"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_to_dos_time() {
        let t = dos_time(1_700_000_000).unwrap(); // 2023-11-14 22:13:20 UTC
        assert_eq!(
            (
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            (2023, 11, 14, 22, 13, 20)
        );
    }

    #[test]
    fn app_name_from_the_manifest() {
        assert_eq!(
            app_name("[App]\nname = \"ai.h2o.llmstudio\"\nVersion = \"1.2\"\n").unwrap(),
            "ai.h2o.llmstudio"
        );
        assert!(app_name("[Runtime]\nPort = 1\n").is_err());
    }
}
