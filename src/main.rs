//! The `hookrelay` binary: all it does is hand the command line to the library.

fn main() -> std::process::ExitCode {
    hookrelay::cli::main()
}
