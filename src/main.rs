//! The `unitwright` command line: a thin shell over [`unitwright::cli`].

fn main() -> std::process::ExitCode {
    unitwright::cli::main()
}
