//! The `vipd` binary under another name (one output name per workspace), built here so
//! lab tests find it as `CARGO_BIN_EXE_vipd-under-test`: the
//! command line lives in the library, so this is exactly what operators run.

fn main() -> std::process::ExitCode {
    vipd::cli::main()
}
