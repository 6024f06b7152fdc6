//! `unitwright escape`: systemd-escape(1) of systemd 252, option parsing included.
//!
//! Behaves exactly like `/usr/bin/systemd-escape` 252 (`src/escape/escape.c`): same stdout and
//! exit status for every input, same stderr messages. Options are parsed by hand with glibc
//! `getopt_long(argc, argv, "hump", …)` semantics on the raw arguments (options after operands,
//! `--`, a lone `-` operand, `--suffix x`/`--suffix=x`, unambiguous long prefixes, bundled short
//! options, `POSIXLY_CORRECT`), because clap cannot reproduce them byte for byte.
//!
//! Output: results separated by single spaces and one final newline; on an error at operand k,
//! the results of operands before k are still written, without a newline, and the exit status
//! is 1. Messages go to stderr the way systemd's logger writes them to a console: cut to 2047
//! bytes and split into lines at every `\n` and `\r`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use crate::escape::{self, Kinds, UnitType};

/// Program name used in getopt's messages (glibc uses `argv[0]`).
const PROGRAM: &str = "unitwright escape";

/// Raw arguments, parsed by hand with GNU getopt_long semantics.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

/// Runs `unitwright escape` with the arguments clap collected (after `escape`).
// Same signature as every other subcommand's `run`, for the dispatcher in `cli::run`.
#[allow(clippy::needless_pass_by_value)]
pub fn run(_global: &super::Global, args: Args) -> anyhow::Result<ExitCode> {
    Ok(run_raw(&args.args))
}

/// Runs `unitwright escape ARGS...`, `args` being everything after `escape`.
pub fn run_raw(args: &[OsString]) -> ExitCode {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    let posixly_correct = std::env::var_os("POSIXLY_CORRECT").is_some();
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    let code = match parse(&args, posixly_correct) {
        Parsed::Exit {
            code,
            stdout: out,
            stderr: err,
        } => {
            // Write errors (a closed pipe) are ignored, as systemd-escape does.
            let _ = stdout.write_all(&out);
            let _ = stderr.write_all(&err);
            code
        }
        Parsed::Run(options) => {
            let output = execute(&options);
            let _ = stdout.write_all(&output.stdout);
            let _ = stderr.write_all(&output.stderr);
            output.code
        }
    };
    let _ = stdout.flush();
    ExitCode::from(code)
}

/// What to do with each operand (`-u` and `-m` set it; the last one wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// Escape (the default).
    #[default]
    Escape,
    /// `-u`, `--unescape`.
    Unescape,
    /// `-m`, `--mangle`.
    Mangle,
}

/// The parsed command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `-u` / `-m`.
    pub action: Action,
    /// `-p`, `--path`.
    pub path: bool,
    /// `--instance`.
    pub instance: bool,
    /// `--suffix=TYPE` (without the dot), already validated.
    pub suffix: Option<Vec<u8>>,
    /// `--template=NAME@.TYPE`, already validated.
    pub template: Option<Vec<u8>>,
    /// The strings to process.
    pub operands: Vec<Vec<u8>>,
}

/// Result of option parsing: run, or exit at once with some output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Process the operands.
    Run(Options),
    /// Exit with `code` after writing `stdout` and `stderr` (help, version, usage errors).
    Exit {
        /// Exit status.
        code: u8,
        /// Bytes for stdout.
        stdout: Vec<u8>,
        /// Bytes for stderr.
        stderr: Vec<u8>,
    },
}

impl Parsed {
    fn error(stderr: Vec<u8>) -> Parsed {
        Parsed::Exit {
            code: 1,
            stdout: Vec::new(),
            stderr,
        }
    }
}

/// The long options, in systemd-escape's order: (name, takes an argument).
const LONG_OPTIONS: [(&str, bool); 8] = [
    ("help", false),
    ("version", false),
    ("suffix", true),
    ("template", true),
    ("unescape", false),
    ("mangle", false),
    ("path", false),
    ("instance", false),
];

fn help() -> String {
    format!(
        "{PROGRAM} [OPTIONS...] [NAME...]\n\
         \n\
         Escape strings for use in systemd unit names, exactly like systemd-escape(1) of systemd 252.\n\
         \n\
         \x20 -h --help               Show this help\n\
         \x20    --version            Show package version\n\
         \x20    --suffix=SUFFIX      Unit type to append to escaped strings (without the dot)\n\
         \x20    --template=TEMPLATE  Insert strings as instance into TEMPLATE (foo@.service)\n\
         \x20    --instance           With --unescape, print just the unescaped instance part\n\
         \x20 -u --unescape           Unescape strings\n\
         \x20 -m --mangle             Mangle strings into unit names\n\
         \x20 -p --path               When escaping/unescaping assume the string is a path\n\
         \n\
         See systemd-escape(1) for details.\n"
    )
}

fn version() -> String {
    format!(
        "unitwright {} (systemd-escape 252 compatible)\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Applies one option as systemd-escape's `parse_argv` does, in order. `Some` ends parsing.
fn apply(options: &mut Options, name: &str, arg: Option<&[u8]>) -> Option<Parsed> {
    let arg = arg.unwrap_or_default();
    match name {
        "help" => {
            return Some(Parsed::Exit {
                code: 0,
                stdout: help().into_bytes(),
                stderr: Vec::new(),
            })
        }
        "version" => {
            return Some(Parsed::Exit {
                code: 0,
                stdout: version().into_bytes(),
                stderr: Vec::new(),
            })
        }
        "suffix" => {
            if UnitType::from_bytes(arg).is_none() {
                return Some(Parsed::error(log_bytes(&cat(&[
                    b"Invalid unit suffix type \"",
                    arg,
                    b"\".",
                ]))));
            }
            options.suffix = Some(arg.to_vec());
        }
        "template" => {
            if !escape::is_valid(arg, Kinds::TEMPLATE) {
                return Some(Parsed::error(log_bytes(&cat(&[
                    b"Template name ",
                    arg,
                    b" is not valid.",
                ]))));
            }
            options.template = Some(arg.to_vec());
        }
        "unescape" => options.action = Action::Unescape,
        "mangle" => options.action = Action::Mangle,
        "path" => options.path = true,
        _ => options.instance = true,
    }
    None
}

/// A getopt message (`PROGRAM: …`), as glibc prints it.
fn getopt_error(message: &[u8]) -> Parsed {
    let mut s = format!("{PROGRAM}: ").into_bytes();
    s.extend_from_slice(message);
    s.push(b'\n');
    Parsed::error(s)
}

/// Parses `args` (everything after the program name) like glibc `getopt_long` with optstring
/// `"hump"` and systemd-escape's long options, then runs systemd-escape's checks after parsing.
pub fn parse(args: &[&[u8]], posixly_correct: bool) -> Parsed {
    let mut options = Options::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i];
        i += 1;
        if arg == b"--" {
            options
                .operands
                .extend(args[i..].iter().map(|a| a.to_vec()));
            break;
        }
        if let Some(long) = arg.strip_prefix(b"--") {
            let (name, value) = match long.iter().position(|&b| b == b'=') {
                Some(eq) => (&long[..eq], Some(&long[eq + 1..])),
                None => (long, None),
            };
            let exact = LONG_OPTIONS.iter().find(|(n, _)| n.as_bytes() == name);
            let matches: Vec<_> = LONG_OPTIONS
                .iter()
                .filter(|(n, _)| n.as_bytes().starts_with(name))
                .collect();
            let (opt, takes_arg) = match (exact, matches.as_slice()) {
                (Some(&found), _) | (None, &[&found]) => found,
                (None, []) => {
                    return getopt_error(&cat(&[b"unrecognized option '", arg, b"'"]));
                }
                (None, several) => {
                    let list = several.iter().fold(String::new(), |mut list, (n, _)| {
                        let _ = write!(list, " '--{n}'");
                        list
                    });
                    return getopt_error(&cat(&[
                        b"option '",
                        arg,
                        b"' is ambiguous; possibilities:",
                        list.as_bytes(),
                    ]));
                }
            };
            let value = match (takes_arg, value) {
                (false, Some(_)) => {
                    return getopt_error(
                        format!("option '--{opt}' doesn't allow an argument").as_bytes(),
                    );
                }
                (false, None) => None,
                (true, Some(v)) => Some(v),
                (true, None) => {
                    let Some(&next) = args.get(i) else {
                        return getopt_error(
                            format!("option '--{opt}' requires an argument").as_bytes(),
                        );
                    };
                    i += 1;
                    Some(next)
                }
            };
            if let Some(done) = apply(&mut options, opt, value) {
                return done;
            }
        } else if arg.len() > 1 && arg[0] == b'-' {
            for &c in &arg[1..] {
                let name = match c {
                    b'h' => "help",
                    b'u' => "unescape",
                    b'm' => "mangle",
                    b'p' => "path",
                    _ => return getopt_error(&cat(&[b"invalid option -- '", &[c], b"'"])),
                };
                if let Some(done) = apply(&mut options, name, None) {
                    return done;
                }
            }
        } else {
            options.operands.push(arg.to_vec());
            if posixly_correct {
                options
                    .operands
                    .extend(args[i..].iter().map(|a| a.to_vec()));
                break;
            }
        }
    }
    check(options)
}

/// systemd-escape's checks after parsing, in its order.
fn check(options: Options) -> Parsed {
    let affixed = options.suffix.is_some() || options.template.is_some();
    let message = if options.operands.is_empty() {
        "Not enough arguments."
    } else if options.suffix.is_some() && options.template.is_some() {
        "--suffix= and --template= may not be combined."
    } else if affixed && options.action == Action::Mangle {
        "--suffix= and --template= are not compatible with --mangle."
    } else if options.suffix.is_some() && options.action == Action::Unescape {
        "--suffix is not compatible with --unescape."
    } else if options.path && options.action == Action::Mangle {
        "--path may not be combined with --mangle."
    } else if options.instance && options.action != Action::Unescape {
        "--instance must be used in conjunction with --unescape."
    } else if options.instance && options.template.is_some() {
        "--instance may not be combined with --template."
    } else {
        return Parsed::Run(options);
    };
    Parsed::error(log_bytes(message.as_bytes()))
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// What running the operands produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit status.
    pub code: u8,
    /// Bytes for stdout.
    pub stdout: Vec<u8>,
    /// Bytes for stderr.
    pub stderr: Vec<u8>,
}

/// Processes each operand as systemd-escape's main loop does, stopping at the first error.
pub fn execute(options: &Options) -> Output {
    let mut out = Output::default();
    for (k, operand) in options.operands.iter().enumerate() {
        let mut warnings = Vec::new();
        let result = process(options, operand, &mut warnings);
        for w in warnings {
            out.stderr.extend_from_slice(&log_bytes(&w));
        }
        match result {
            Ok(e) => {
                if k > 0 {
                    out.stdout.push(b' ');
                }
                out.stdout.extend_from_slice(&e);
            }
            Err(message) => {
                out.stderr.extend_from_slice(&log_bytes(&message));
                out.code = 1;
                return out;
            }
        }
    }
    out.stdout.push(b'\n');
    out
}

/// Formats a message the way systemd's logger writes it to a non-TTY console: cut to
/// `LINE_MAX - 1` (2047) bytes, split at every `\n` and `\r`, empty pieces dropped, each piece
/// followed by `\n`. Bytes are kept as they are (operands need not be UTF-8).
fn log_bytes(message: &[u8]) -> Vec<u8> {
    let message = &message[..message.len().min(2047)];
    let mut out = Vec::with_capacity(message.len() + 1);
    for piece in message.split(|&b| b == b'\n' || b == b'\r') {
        if !piece.is_empty() {
            out.extend_from_slice(piece);
            out.push(b'\n');
        }
    }
    out
}

const EINVAL: &[u8] = b"Invalid argument";

/// One operand: the result bytes, or the error message. Warnings are pushed to `warnings`.
fn process(options: &Options, arg: &[u8], warnings: &mut Vec<Vec<u8>>) -> Result<Vec<u8>, Vec<u8>> {
    match options.action {
        Action::Escape => {
            let mut e = if options.path {
                let Ok(e) = escape::escape_path(arg) else {
                    let why: &[u8] = if !escape::path::is_valid(arg) {
                        b"is not a valid file system path, failed to escape."
                    } else if !escape::path::is_absolute(arg) {
                        b"is not an absolute file system path, failed to escape."
                    } else if !escape::path::is_normalized(arg) {
                        b"is not a normalized file system path, failed to escape."
                    } else {
                        return Err(cat(&[b"Failed to escape string: ", EINVAL]));
                    };
                    return Err(cat(&[b"Input '", arg, b"' ", why]));
                };
                if !escape::path::is_valid(arg) {
                    warnings.push(cat(&[
                        b"Input '",
                        arg,
                        b"' is not a valid file system path, escaping is likely not going be reversible.",
                    ]));
                } else if !escape::path::is_absolute(arg) {
                    warnings.push(cat(&[
                        b"Input '",
                        arg,
                        b"' is not an absolute file system path, escaping is likely not going to be reversible.",
                    ]));
                }
                e.into_owned().into_bytes()
            } else {
                escape::escape(arg).into_owned().into_bytes()
            };
            if let Some(template) = &options.template {
                e = escape::replace_instance(template.as_slice(), e.as_slice())
                    .map_err(|_| cat(&[b"Failed to replace instance: ", EINVAL]))?
                    .into_bytes();
            } else if let Some(suffix) = &options.suffix {
                e.push(b'.');
                e.extend_from_slice(suffix);
            }
            Ok(e)
        }
        Action::Unescape => {
            let name: &[u8] = if options.template.is_some() || options.instance {
                let (_, instance) = escape::to_instance(arg)
                    .map_err(|_| cat(&[b"Failed to extract instance: ", EINVAL]))?;
                let instance = instance.unwrap_or_default();
                if instance.is_empty() {
                    return Err(cat(&[b"Unit ", arg, b" is missing the instance name."]));
                }
                let template = escape::template_of(arg)
                    .map_err(|_| cat(&[b"Failed to extract template: ", EINVAL]))?;
                if let Some(wanted) = &options.template {
                    if template.as_bytes() != wanted.as_slice() {
                        return Err(cat(&[
                            b"Unit ",
                            arg,
                            b" template ",
                            template.as_bytes(),
                            b" does not match specified template ",
                            wanted,
                            b".",
                        ]));
                    }
                }
                instance.as_bytes()
            } else {
                arg
            };
            let unescaped = if options.path {
                escape::unescape_path(name)
            } else {
                escape::unescape(name).map(std::borrow::Cow::into_owned)
            };
            unescaped.map_err(|_| cat(&[b"Failed to unescape string: ", EINVAL]))
        }
        Action::Mangle => escape::mangle(arg)
            .map(|m| m.into_owned().into_bytes())
            .map_err(|_| cat(&[b"Failed to mangle name: ", EINVAL])),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Parsed {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        parse(&args, false)
    }

    fn run_strs(args: &[&str]) -> (u8, String) {
        match parse_strs(args) {
            Parsed::Exit { code, stdout, .. } => (code, String::from_utf8(stdout).unwrap()),
            Parsed::Run(o) => {
                let out = execute(&o);
                (out.code, String::from_utf8(out.stdout).unwrap())
            }
        }
    }

    #[test]
    fn options_may_follow_operands() {
        assert_eq!(run_strs(&["a/b", "--path"]), (0, "a-b\n".into()));
    }

    #[test]
    fn double_dash_ends_options_and_lone_dash_is_an_operand() {
        assert_eq!(
            run_strs(&["--", "-p", "-"]),
            (0, r"\x2dp \x2d".to_string() + "\n")
        );
    }

    #[test]
    fn required_arguments_come_attached_or_separate() {
        assert_eq!(
            run_strs(&["--suffix", "mount", "a"]),
            (0, "a.mount\n".into())
        );
        assert_eq!(run_strs(&["--suf=mount", "a"]), (0, "a.mount\n".into()));
        assert_eq!(run_strs(&["a", "--suffix"]).0, 1);
    }

    #[test]
    fn bundled_short_options_and_last_action_wins() {
        assert_eq!(run_strs(&["-pu", "a-b"]), (0, "/a/b\n".into()));
        assert_eq!(run_strs(&["-u", "-m", "a"]), (0, "a.service\n".into()));
        assert_eq!(run_strs(&["-m", "-u", "a"]), (0, "a\n".into()));
    }

    #[test]
    fn help_exits_at_once_in_option_order() {
        assert_eq!(run_strs(&["--help", "--bogus"]).0, 0);
        assert_eq!(run_strs(&["--bogus", "--help"]).0, 1);
        assert_eq!(run_strs(&["-ph"]).0, 0);
        assert_eq!(run_strs(&["-i"]).0, 1);
    }

    #[test]
    fn getopt_messages_name_the_full_option() {
        let Parsed::Exit { stderr, .. } = parse_strs(&["--pa=1"]) else {
            panic!()
        };
        assert_eq!(
            stderr,
            b"unitwright escape: option '--path' doesn't allow an argument\n"
        );
        let Parsed::Exit { stderr, .. } = parse_strs(&["-v"]) else {
            panic!()
        };
        assert_eq!(stderr, b"unitwright escape: invalid option -- 'v'\n");
    }

    #[test]
    fn checks_after_parsing_come_in_systemds_order() {
        let msg = |args: &[&str]| match parse_strs(args) {
            Parsed::Exit { stderr, .. } => String::from_utf8(stderr).unwrap(),
            Parsed::Run(_) => String::new(),
        };
        assert_eq!(
            msg(&["--template=x@.service", "--suffix=mount"]),
            "Not enough arguments.\n"
        );
        assert_eq!(
            msg(&["--template=x@.service", "--suffix=mount", "a"]),
            "--suffix= and --template= may not be combined.\n"
        );
        assert_eq!(
            msg(&["--instance", "a"]),
            "--instance must be used in conjunction with --unescape.\n"
        );
        assert_eq!(
            msg(&["--suffix=foo", "a"]),
            "Invalid unit suffix type \"foo\".\n"
        );
    }

    #[test]
    fn an_error_keeps_earlier_results_without_a_newline() {
        assert_eq!(run_strs(&["-u", "a", r"b\x", "c"]), (1, "a".into()));
    }

    #[test]
    fn messages_are_split_at_carriage_returns() {
        assert_eq!(log_bytes(b"a\rb\n\nc"), b"a\nb\nc\n");
    }
}
