//! `xtask`: build-time tool that writes the man pages and shell completions of `unitwright` from
//! the clap definition of the CLI (`unitwright::cli::Cli`), so they never drift from the real
//! options. Run by `make` (see the top-level Makefile); not installed.
//!
//! * `xtask man DIR`: `unitwright.1` and `unitwright-<subcommand>.1` for every visible subcommand
//!   (clap_mangen); `docs/` in the help texts becomes `$UNITWRIGHT_DOCDIR/` (default
//!   `/usr/share/doc/unitwright`), where `make install` puts those files.
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
    // The help texts name the JSON formats as the source tree has them (docs/json.md); a page
    // names where `make install` puts them.
    let docdir = std::env::var("UNITWRIGHT_DOCDIR")
        .unwrap_or_else(|_| "/usr/share/doc/unitwright".to_owned());
    let mut out = ascii_punctuation(&String::from_utf8(out)?)
        .replace("docs/", &format!("{}/", docdir.trim_end_matches('/')))
        .into_bytes();
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
    write(
        dir,
        "unitwright.1",
        &with_examples(render(cmd.clone(), &see_also)?, "unitwright"),
    )?;
    for sub in subs {
        page_tree(dir, &sub, "unitwright", "unitwright")?;
    }
    Ok(())
}

/// Writes the page of `sub` (a subcommand of `parent`, whose page is `parent_page`) and, for
/// a command with subcommands of its own (`instance`), a page for each of them too, so that
/// every page a SEE ALSO names exists.
fn page_tree(dir: &Path, sub: &clap::Command, parent: &str, parent_page: &str) -> Result<()> {
    let name = format!("{parent_page}-{}", sub.get_name());
    let invocation = format!("{parent} {}", sub.get_name());
    let children: Vec<clap::Command> = sub
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .cloned()
        .collect();
    let mut see_also = vec![format!("{parent_page}(1)")];
    see_also.extend(
        children
            .iter()
            .map(|c| format!("{name}-{}(1)", c.get_name())),
    );
    if parent_page == "unitwright" {
        see_also.push("systemctl(1)".to_owned());
    }
    // The page shows the full invocation (`unitwright start`), with the global options.
    let page = sub
        .clone()
        .name(name.clone())
        .display_name(name.clone())
        .bin_name(invocation.clone())
        .version(env!("CARGO_PKG_VERSION"));
    write(
        dir,
        &format!("{name}.1"),
        &with_examples(render(page, &see_also)?, &name),
    )?;
    for child in &children {
        page_tree(dir, child, &invocation, &name)?;
    }
    Ok(())
}

/// Appends an EXAMPLES section to the page `name`, where there are examples for it.
fn with_examples(mut page: Vec<u8>, name: &str) -> Vec<u8> {
    let examples: &[(&str, &str)] = match name {
        "unitwright" => &[
            ("Start two units of the calling user and wait for them:", "unitwright --user start web db"),
            ("What a unit is doing, with its last journal lines:", "unitwright status web"),
            ("A unit's journal, following it:", "unitwright logs -f web"),
        ],
        "unitwright-status" => &[
            ("Like systemctl status, with the last 20 journal lines:", "unitwright status -n 20 web.service"),
            ("Memory, CPU and tasks for a script (null where not accounted):", "unitwright status --json web | jq '.[0].memory_current_bytes'"),
            ("Exit status only: 0 active, 3 not active, 4 no such unit:", "unitwright status web >/dev/null; echo $?"),
        ],
        "unitwright-logs" => &[
            ("The last 50 records of two units:", "unitwright logs -n 50 web db"),
            ("Records of the last hour, then new ones as they come (Ctrl-C ends it, exit 0):", "unitwright logs --since -1h -f web"),
            ("Records between two times (UTC):", "unitwright logs --since '2026-12-06 20:00' --until '2026-12-06 21:00' web"),
            ("One JSON object per record (all fields):", "unitwright --user logs --json 'console@a\\x2db.service'"),
        ],
        "unitwright-start" => &[
            ("Start and wait; a failure prints the unit's last output lines and what failed:", "unitwright start web"),
            ("Queue only, then wait for the job later:", "job=$(unitwright start --no-block web) && unitwright wait \"$job\""),
        ],
        "unitwright-stop" => &[
            ("In a script that must not fail on a unit that was never installed:", "unitwright stop --ignore-missing web old-web"),
        ],
        "unitwright-set-property" => &[
            ("Limit a running unit's memory and CPU, kept across reboots:", "unitwright set-property web MemoryMax=1G CPUQuota=50%"),
            ("Until the next reboot only, on an instance:", "unitwright --user set-property --runtime 'console@a\\x2db.service' TasksMax=128"),
            ("Back to no limit:", "unitwright set-property web MemoryMax=infinity CPUQuota="),
        ],
        "unitwright-is-active" => &[
            ("In a script:", "if unitwright -q is-active web; then echo up; fi"),
        ],
        "unitwright-show" => &[
            ("Selected properties:", "unitwright show -p ActiveState,MainPID web"),
            ("One value:", "unitwright show --value -p MemoryCurrent web"),
        ],
        "unitwright-enable" => &[
            ("Enable and start in one go:", "unitwright enable --now web"),
        ],
        "unitwright-sandbox" => &[
            ("A user manager with one unit; unitwright and systemctl in COMMAND talk to it:", "unitwright sandbox --unit ./web.service -- sh -c 'unitwright --user start web && systemctl --user status web'"),
            ("The system manager as PID 1 of private namespaces, with journald and the Quadlet generator:", "unitwright sandbox --system --journal --generator /usr/lib/systemd/system-generators/unitwright-generator -- ./ci-tests.sh"),
            ("A test suite whose D-Bus tests connect to DBUS_SESSION_BUS_ADDRESS:", "unitwright sandbox -- cargo test"),
            ("Keep the journal for later (its path is printed at the end):", "unitwright sandbox --journal --keep -- ./ci-tests.sh"),
        ],
        "unitwright-instance-start" => &[
            ("An instance with its own settings and a free port:", "unitwright --user instance start console@.service node-7 --set APP=demo --set PORT=auto-port"),
            ("A failure prints the unit's last output lines; with --json they are in output:", "unitwright --user instance start --json console@.service node-7 --set APP=demo | jq .output"),
        ],
        _ => &[],
    };
    if examples.is_empty() {
        return page;
    }
    page.extend_from_slice(b".SH EXAMPLES\n");
    for (what, cmd) in examples {
        let cmd = cmd.replace('\\', "\\e").replace('-', "\\-");
        page.extend_from_slice(
            format!(".PP\n{what}\n.PP\n.RS 4\n.nf\n{cmd}\n.fi\n.RE\n").as_bytes(),
        );
    }
    page
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
        let out = with_unit_names(shell, String::from_utf8(out)?);
        write(dir, file, out.as_bytes())?;
    }
    Ok(())
}

/// The verbs whose operands are unit names.
const UNIT_VERBS: &str = "start stop restart try-restart reload-or-restart reload daemon-reload \
    kill reset-failed status enable disable logs is-active is-failed is-enabled cat show mask \
    unmask wait set-property";

/// Adds unit-name completion to clap's script for `shell`: operands of the unit verbs complete
/// to the units the manager has loaded (`unitwright [--user] list --no-legend`, asked of the
/// same manager as the command line being completed: `--user` is looked for on it; without
/// `COLUMNS`, which `list` would fit long names into). Only the first word that is not a
/// global option counts as the verb, so `instance start` does not complete unit names.
#[allow(clippy::format_push_string)]
fn with_unit_names(shell: Shell, mut script: String) -> String {
    let verbs = UNIT_VERBS.split_whitespace().collect::<Vec<_>>().join(" ");
    match shell {
        Shell::Bash => {
            // A wrapper: unit names for the operands of the unit verbs, clap's completion
            // for everything else.
            script.push_str(&format!(
                r#"
_unitwright_units() {{
    local scope=
    case " ${{COMP_WORDS[*]}} " in *" --user "*) scope=--user ;; esac
    env -u COLUMNS unitwright $scope list --no-legend 2>/dev/null | while read -r unit _; do printf '%s\n' "$unit"; done
}}
_unitwright_with_units() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} verb= w
    for w in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
        case $w in -*) ;; *) verb=$w; break ;; esac
    done
    case " {verbs} " in
        *" $verb "*)
            if [[ $cur != -* ]]; then
                COMPREPLY=( $(compgen -W "$(_unitwright_units)" -- "$cur") )
                return 0
            fi ;;
    esac
    _unitwright "$@"
}}
complete -F _unitwright_with_units -o bashdefault -o default unitwright
"#
            ));
        }
        Shell::Zsh => {
            script = script.replace(":_default' \\", ":_unitwright_units' \\");
            // Only the unit operands (`units`/`targets` of the unit verbs, set-property's
            // `unit`; tests/cli_ops.rs checks each verb): other positionals keep _default.
            let mut fixed = String::new();
            for line in script.lines() {
                if line.contains(":_unitwright_units'")
                    && !(line.contains("::units --")
                        || line.contains("::targets --")
                        || line.starts_with("':unit -- The unit ("))
                {
                    fixed.push_str(&line.replace(":_unitwright_units'", ":_default'"));
                } else {
                    fixed.push_str(line);
                }
                fixed.push('\n');
            }
            script = fixed.replacen(
                "_unitwright() {",
                r#"_unitwright_units() {
    local scope=
    # The whole command line: _arguments has narrowed $words to the verb's operands.
    (( ${${(z)BUFFER}[(I)--user]} )) && scope=--user
    local -a units
    units=(${(f)"$(env -u COLUMNS unitwright $scope list --no-legend 2>/dev/null | cut -d' ' -f1)"})
    compadd -a units
}

_unitwright() {"#,
                1,
            );
        }
        Shell::Fish => {
            script.push_str(&format!(
                r#"
function __unitwright_units
    set -l scope
    contains -- --user (commandline -opc); and set scope --user
    env -u COLUMNS unitwright $scope list --no-legend 2>/dev/null | string split -f1 ' '
end
complete -c unitwright -n "__fish_unitwright_using_subcommand {verbs}" -f -a "(__unitwright_units)"
"#
            ));
        }
        _ => {}
    }
    script
}
