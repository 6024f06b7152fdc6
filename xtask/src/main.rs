//! `xtask`: build-time tool that writes the man pages and shell completions of `unitwright` from
//! the clap definition of the CLI (`unitwright::cli::Cli`), so they never drift from the real
//! options. Run by `make` (see the top-level Makefile); not installed.
//!
//! * `xtask man DIR`: `unitwright.1` and `unitwright-<subcommand>.1` for every visible subcommand
//!   (clap_mangen).
//! * `xtask completions DIR`: `unitwright.bash`, `_unitwright` (zsh), `unitwright.fish`
//!   (clap_complete).
//!
//! The hand-written pages (`unitwright-generator(8)`, `unitwright.quadlet(5)`) are in `doc/man/`.
//! The generator crate does not depend on this tool or on clap.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::CommandFactory as _;
use clap_complete::Shell;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, dir] if cmd == "man" => man(Path::new(dir)),
        [cmd, dir] if cmd == "completions" => completions(Path::new(dir)),
        _ => bail!("usage: xtask man DIR | xtask completions DIR"),
    }
}

/// Writes `bytes` to `dir/name` through a temporary file and a rename.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(path)
}

/// The page of `cmd`, with a SEE ALSO section naming `see_also` (`name(section)` each).
fn render(cmd: clap::Command, see_also: &[String]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .section("1")
        .manual("unitwright")
        .source(format!("unitwright {}", env!("CARGO_PKG_VERSION")))
        .render(&mut out)?;
    let mut out = ascii_punctuation(&String::from_utf8(out)?).into_bytes();
    out.extend_from_slice(b".SH \"SEE ALSO\"\n");
    let refs: Vec<String> = see_also
        .iter()
        .map(|r| {
            let (name, section) = r.trim_end_matches(')').split_once('(').unwrap_or((r, "1"));
            format!(".BR {name} ({section})")
        })
        .collect();
    out.extend_from_slice(refs.join(",\n").as_bytes());
    out.push(b'\n');
    Ok(out)
}

/// Replaces typographic punctuation that the help texts may contain by what every groff
/// output device has: the ASCII device (`man` in the C locale) cannot draw `\[u2026]` and
/// warns.
fn ascii_punctuation(roff: &str) -> String {
    [
        ("\\[u2026]", "..."),
        ("\u{2026}", "..."),
        ("\\[u2014]", "\\(em"),
        ("\u{2014}", "\\(em"),
        ("\\[u2013]", "\\(en"),
        ("\u{2013}", "\\(en"),
        ("\\[u2018]", "'"),
        ("\\[u2019]", "'"),
        ("\u{2018}", "'"),
        ("\u{2019}", "'"),
        ("\\[u201C]", "\""),
        ("\\[u201D]", "\""),
        ("\u{201c}", "\""),
        ("\u{201d}", "\""),
    ]
    .iter()
    .fold(roff.to_owned(), |s, (from, to)| s.replace(from, to))
}

fn man(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = unitwright::cli::Cli::command();
    // Propagates the global options (--user, --system, -v) into the subcommands.
    cmd.build();
    let subs: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .cloned()
        .collect();
    let mut see_also: Vec<String> = subs
        .iter()
        .map(|s| format!("unitwright-{}(1)", s.get_name()))
        .collect();
    see_also.extend(
        [
            "unitwright-generator(8)",
            "unitwright.quadlet(5)",
            "systemctl(1)",
            "systemd-escape(1)",
        ]
        .map(str::to_owned),
    );
    write(dir, "unitwright.1", &render(cmd.clone(), &see_also)?)?;
    for sub in subs {
        let name = format!("unitwright-{}", sub.get_name());
        // The page shows the full invocation (`unitwright start`), with the global options.
        let page = sub
            .clone()
            .name(name.clone())
            .display_name(name.clone())
            .bin_name(format!("unitwright {}", sub.get_name()))
            .version(env!("CARGO_PKG_VERSION"));
        write(
            dir,
            &format!("{name}.1"),
            &render(page, &["unitwright(1)".to_owned()])?,
        )?;
    }
    Ok(())
}

fn completions(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (shell, file) in [
        (Shell::Bash, "unitwright.bash"),
        (Shell::Zsh, "_unitwright"),
        (Shell::Fish, "unitwright.fish"),
    ] {
        let mut cmd = unitwright::cli::Cli::command();
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd, "unitwright", &mut out);
        write(dir, file, &out)?;
    }
    Ok(())
}
