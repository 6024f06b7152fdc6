//! `unitwright render TEMPLATE [--values FILE] [--set K=V]... [-o FILE] [--mode MODE]`: renders
//! a tera template with [`crate::render::Renderer`] (every value escaped for its unit-file
//! context, every result checked) to stdout or, atomically, to a file.
//!
//! Values come from a JSON object (`--values`) and `--set KEY=VALUE` (strings; a dotted key
//! `a.b=v` sets a nested map entry); later ones win. With `-o`, the unit is written to a
//! temporary file in the target directory, synced, given its mode, and renamed over the
//! target, so readers never see half a unit.
//!
//! The mode is `--mode` if given; otherwise the output is never more readable than what it was
//! made from: 0644 without the group or other read permission that the template or the
//! `--values` file lacks. A 0600 template holding a password, or a 0600 values file, gives a
//! 0600 unit (a secret must not become world-readable by being rendered); values given with
//! `--set` on the command line are visible in the process list anyway and do not count.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::{Map, Value};

use super::Failure;
use crate::render::Renderer;

/// Arguments of `unitwright render`.
#[derive(clap::Args)]
pub struct Args {
    /// The tera template (`NAME.service.tera`, `NAME.container.tera`, …; the name before `.tera`
    /// tells systemd unit from Quadlet file).
    pub template: PathBuf,
    /// A JSON file with the values (an object).
    #[arg(long, value_name = "FILE")]
    pub values: Option<PathBuf>,
    /// Set one value (a string); repeatable, later wins over earlier and over --values.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
    /// Write the unit to FILE atomically instead of to stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// File mode of the unit written with -o, in octal. Default: 0644, without the group and
    /// other read permissions the template or the --values file lacks (a 0600 source gives a
    /// 0600 unit).
    #[arg(long, value_name = "MODE", value_parser = parse_mode, requires = "output")]
    pub mode: Option<u32>,
}

/// Shows the `--set` keys only: `cli::run` logs the parsed command at debug level, and the
/// values may be secrets.
impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.set.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Args")
            .field("template", &self.template)
            .field("values", &self.values)
            .field("set_keys", &keys)
            .field("output", &self.output)
            .field("mode", &self.mode.map(|m| format!("{m:04o}")))
            .finish()
    }
}

fn parse_set(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))?;
    if k.is_empty() || k.split('.').any(str::is_empty) {
        return Err(format!("{k:?} is not a key (names separated by dots)"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{s:?} is not an octal file mode such as 0644"))
}

/// Sets `value` at the dotted `key` in `root`, creating maps on the way.
fn set_dotted(root: &mut Map<String, Value>, key: &str, value: String) {
    match key.split_once('.') {
        None => {
            root.insert(key.to_owned(), Value::String(value));
        }
        Some((head, rest)) => {
            let entry = root
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Value::Object(map) = entry {
                set_dotted(map, rest, value);
            }
        }
    }
}

fn values(args: &Args) -> anyhow::Result<Value> {
    let mut root = match &args.values {
        None => Map::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            match serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", path.display()))?
            {
                Value::Object(map) => map,
                _ => anyhow::bail!("{} must hold a JSON object", path.display()),
            }
        }
    };
    for (k, v) in &args.set {
        set_dotted(&mut root, k, v.clone());
    }
    Ok(Value::Object(root))
}

/// The mode of the output when `--mode` is not given: 0644 without the group or other read
/// permission that any of `sources` (the template, the values file) lacks.
fn default_mode(sources: &[&Path]) -> std::io::Result<u32> {
    let mut mode = 0o644;
    for source in sources {
        let m = std::fs::metadata(source)?.permissions().mode();
        if m & 0o040 == 0 {
            mode &= !0o040;
        }
        if m & 0o004 == 0 {
            mode &= !0o004;
        }
    }
    Ok(mode)
}

/// Writes `text` to `path` through a temporary file in the same directory and a rename.
fn write_atomically(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".unitwright-render-")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Runs `unitwright render`. (`args` by value: the dispatcher's contract for every command.)
#[allow(clippy::needless_pass_by_value)]
pub fn run(_global: &super::Global, args: Args) -> anyhow::Result<ExitCode> {
    let what = format!("rendering {}", args.template.display());
    let fail = |why: String| Failure {
        what: what.clone(),
        why,
    };
    let values = values(&args).map_err(|e| fail(format!("{e:#}")))?;
    let mut renderer = Renderer::new();
    // The output's name, when given, tells a Quadlet file from a systemd unit.
    let text = renderer
        .add_template_file(&args.template)
        .and_then(|name| {
            let file_name = args
                .output
                .as_deref()
                .and_then(Path::file_name)
                .map_or_else(|| name.clone(), |n| n.to_string_lossy().into_owned());
            renderer.render_as(&name, &values, &file_name)
        })
        .map_err(|e| fail(e.detail()))?;
    match &args.output {
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| fail(format!("writing to stdout: {e}")))?;
        }
        Some(path) => {
            let mode = if let Some(m) = args.mode {
                m
            } else {
                let mut sources = vec![args.template.as_path()];
                sources.extend(args.values.as_deref());
                default_mode(&sources)
                    .map_err(|e| fail(format!("reading the mode of the sources: {e}")))?
            };
            write_atomically(path, &text, mode)
                .map_err(|e| fail(format!("writing {}: {e}", path.display())))?;
            let template = args.template.to_string_lossy();
            let output = path.to_string_lossy();
            super::log::record(
                ::log::Level::Info,
                &[
                    (super::log::TEMPLATE, &template),
                    (super::log::PATH, &output),
                ],
                &format!("rendered {template} to {output}"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
