//! The `snap` binary: parse arguments, run, print the error once, exit.

fn main() {
    std::process::exit(snap::cli::main());
}
