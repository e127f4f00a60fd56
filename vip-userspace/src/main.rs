//! `vipd`: the command operators run (see `vipd --help` and the README).

fn main() -> std::process::ExitCode {
    vipd::cli::main()
}
