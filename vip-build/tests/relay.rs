//! A real nested build of a small BPF crate through [`Nested::run`], the path
//! `vip-userspace/build.rs` takes for `vip-ebpf`: a clean crate relays nothing (so a clean
//! vipd build prints no warning), and a warning in the crate still surfaces, with its
//! location.

use std::path::{Path, PathBuf};

use vip_build::Nested;

/// A minimal XDP program, in the shape of `vip-ebpf`'s binaries (no_std, no_main, a
/// panic handler, a license section), without aya-ebpf so the fixture needs no registry.
const PROGRAM: &str = r#"#![no_std]
#![no_main]

#[unsafe(no_mangle)]
#[unsafe(link_section = "xdp")]
pub extern "C" fn fixture_pass(_ctx: *mut core::ffi::c_void) -> u32 {
    2
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
"#;

/// Writes the fixture crate `name` (outside any workspace) and returns its directory.
fn fixture(name: &str, extra: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("relay-fixtures");
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [[bin]]\nname = \"{name}\"\npath = \"src/main.rs\"\n\n[workspace]\n"
        ),
    )
    .unwrap();
    let main = format!("{PROGRAM}{extra}");
    // Rewritten only when it differs, so a second run reuses the build.
    if std::fs::read_to_string(dir.join("src/main.rs"))
        .ok()
        .as_deref()
        != Some(&main)
    {
        std::fs::write(dir.join("src/main.rs"), main).unwrap();
    }
    dir
}

fn nested(name: &str, dir: PathBuf) -> Nested {
    Nested {
        package: name.to_owned(),
        bins: Vec::new(),
        root_dir: dir,
        target: "bpfel-unknown-none".into(),
        target_arch: std::env::consts::ARCH.into(),
        // Shared by both fixtures (each has its own name): core is built once.
        target_dir: Path::new(env!("CARGO_TARGET_TMPDIR")).join("relay-target"),
    }
}

#[test]
fn a_clean_bpf_crate_builds_and_relays_nothing() {
    let dir = fixture("relay-clean", "");
    let out = nested("relay-clean", dir)
        .run()
        .expect("the nested build ran");
    assert!(out.success, "build failed:\n{}", out.stderr.join("\n"));
    assert_eq!(
        out.relayed,
        Vec::<String>::new(),
        "a clean build relayed lines (cargo would print them as warnings); its stderr was:\n{}",
        out.stderr.join("\n")
    );
    assert!(
        out.stderr.iter().any(|l| l.contains("Finished")),
        "cargo reported progress, which was held back: {:?}",
        out.stderr
    );
    let names: Vec<&str> = out.executables.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["relay-clean"]);
}

#[test]
fn a_warning_in_the_bpf_crate_surfaces_with_its_location() {
    let dir = fixture("relay-warn", "\nfn never_called() {}\n");
    let out = nested("relay-warn", dir)
        .run()
        .expect("the nested build ran");
    assert!(out.success, "build failed:\n{}", out.stderr.join("\n"));
    let text = out.relayed.join("\n");
    assert!(
        text.contains("warning: function `never_called` is never used"),
        "the warning was not relayed:\n{text}"
    );
    assert!(text.contains("src/main.rs:"), "no location:\n{text}");
    assert!(
        !out.relayed.iter().any(|l| vip_build::is_progress(l)),
        "progress relayed:\n{text}"
    );
}
