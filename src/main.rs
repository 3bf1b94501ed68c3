//! The `hookrelay` binary: all it does is pick the allocator and hand the command line to
//! the library.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    hookrelay::cli::main()
}
