#![no_std]
// Intentionally empty: see the [lib] comment in Cargo.toml. The programs are the binaries.
