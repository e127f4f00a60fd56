//! `cargo xtask setup`: installs what building and testing vipd need, idempotently, and
//! says what it found and what it did. Every other task calls it first.

use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::cmd::{is_root, output, run};

/// bpf-linker releases after 0.10.0 need LLVM 23; 0.10.0 links with rustc's own LLVM 22.
const BPF_LINKER_VERSION: &str = "0.10.0";

/// cargo-deb builds the Debian package (`cargo xtask package`); pinned so a new release
/// never changes the package or needs a newer rustc than these machines have (3.8.0
/// wants 1.85).
const CARGO_DEB_VERSION: &str = "3.8.0";

/// cargo-fuzz builds and runs the fuzz targets in tests/fuzz (`cargo xtask fuzz`, the
/// last step of `cargo xtask test`); pinned: 0.13.2 builds with rustc 1.95 (`--locked`).
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Debian packages the lab, the tests and the benchmarks use.
const PACKAGES: &[(&str, &str)] = &[
    ("iproute2", "ip, bridge: namespaces, veth, addresses"),
    (
        "util-linux",
        "nsenter: run vipd in a namespace without remounting /sys",
    ),
    ("procps", "pgrep / ps for the lab and benchmarks"),
    ("bpftool", "inspect pinned maps and programs"),
    ("keepalived", "interop peer and benchmark baseline"),
    (
        "ucarp",
        "CARP interop peer; its adverts are the tests/vectors/ucarp-* captures",
    ),
    (
        "frr",
        "vrrpd interop peer; zebra and bgpd for the /32 recipe",
    ),
    ("nftables", "NAT gateway recipe: SNAT to the upstream VIP"),
    (
        "conntrackd",
        "NAT gateway recipe: connection state sync between the routers",
    ),
    (
        "conntrack",
        "NAT gateway recipe: inspecting the kernel's connection table",
    ),
    ("tcpdump", "captures in lab tests"),
    (
        "xdp-tools",
        "xdp-filter: another XDP program on vipd's interface (tests/tests/lab_neighbour.rs)",
    ),
    ("netsniff-ng", "trafgen floods"),
    ("iputils-arping", "ARP probes"),
    ("iputils-ping", "ICMP probes"),
    ("python3-scapy", "crafting frames"),
    (
        "openssl",
        "lab_checks: a self-signed certificate for the TLS health-check server",
    ),
    (
        "ethtool",
        "lab_lb: checksum offload off on veth senders whose frames XDP forwards",
    ),
    (
        "python3",
        "lab_track_process.rs: a process that forks on a signal, under a name of its own",
    ),
    (
        "systemd",
        "systemd-analyze verify checks dist/vipd.service (systemd need not be running)",
    ),
    (
        "prometheus",
        "promtool checks and unit-tests the alerting rules in dist/prometheus/",
    ),
    ("man-db", "man -l renders the generated manual pages"),
    (
        "dpkg-dev",
        "dpkg-shlibdeps: the package's library dependencies",
    ),
    (
        "curl",
        "docs/operations.md reads the metrics endpoint with it",
    ),
    (
        "libcap2-bin",
        "capsh: docs/operations.md shows a capability error with it",
    ),
    (
        "strace",
        "tests/tests/lab_service.rs traces vipd's system calls against the unit's SystemCallFilter=",
    ),
    (
        "g++",
        "libfuzzer-sys compiles libFuzzer (C++) into the fuzz targets",
    ),
    ("zsh", "zsh -n checks the generated zsh completion"),
    ("fish", "fish runs the generated fish completion"),
];

/// Packages whose installation would start a daemon nobody asked for: only their tools
/// are used (promtool), so their services are neither started nor enabled.
const NO_SERVICE: &[&str] = &["prometheus"];

/// Services that a package on the list drags in through a dependency, kept from starting
/// and disabled at boot the same way: ucarp depends on ifupdown, whose `networking`
/// service would otherwise bring up whatever /etc/network/interfaces says at every boot.
const DEPENDENCY_SERVICES: &[(&str, &str)] = &[("ucarp", "networking")];

pub fn setup() -> Result<()> {
    let mut did = Vec::new();
    nightly(&mut did)?;
    bpf_linker(&mut did)?;
    cargo_deb(&mut did)?;
    cargo_fuzz(&mut did)?;
    packages(&mut did)?;
    bpffs(&mut did)?;
    if did.is_empty() {
        eprintln!("setup: everything already in place");
    } else {
        for d in &did {
            eprintln!("setup: {d}");
        }
    }
    Ok(())
}

fn nightly(did: &mut Vec<String>) -> Result<()> {
    let toolchains = output(Command::new("rustup").args(["toolchain", "list"]))
        .context("rustup is required (the eBPF program builds on the nightly toolchain)")?;
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        eprintln!("setup: installing the nightly toolchain (the eBPF crate needs -Z build-std)");
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
        did.push("installed the nightly toolchain".into());
    }
    let installed = output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))
    .unwrap_or_default();
    if !installed.lines().any(|l| l.starts_with("rust-src")) {
        eprintln!("setup: adding rust-src to nightly (needed for -Z build-std=core)");
        run(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
        did.push("added rust-src to the nightly toolchain".into());
    }
    Ok(())
}

fn bpf_linker(did: &mut Vec<String>) -> Result<()> {
    let version = output(Command::new("bpf-linker").arg("--version")).unwrap_or_default();
    if version.split_whitespace().any(|w| w == BPF_LINKER_VERSION) {
        return Ok(());
    }
    if version.is_empty() {
        eprintln!("setup: installing bpf-linker {BPF_LINKER_VERSION} (about a minute)");
    } else {
        eprintln!(
            "setup: replacing {} with bpf-linker {BPF_LINKER_VERSION} (newer ones need LLVM 23)",
            version.trim()
        );
    }
    run(
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())).args([
            "install",
            &format!("bpf-linker@{BPF_LINKER_VERSION}"),
            "--locked",
            "--force",
        ]),
    )?;
    did.push(format!("installed bpf-linker {BPF_LINKER_VERSION}"));
    Ok(())
}

fn cargo_deb(did: &mut Vec<String>) -> Result<()> {
    let version = output(cargo_cmd().args(["deb", "--version"])).unwrap_or_default();
    if version.split_whitespace().any(|w| w == CARGO_DEB_VERSION) {
        return Ok(());
    }
    if version.is_empty() {
        eprintln!(
            "setup: installing cargo-deb {CARGO_DEB_VERSION} (builds the Debian package; a few minutes)"
        );
    } else {
        eprintln!(
            "setup: replacing {} with cargo-deb {CARGO_DEB_VERSION}",
            version.trim()
        );
    }
    run(cargo_cmd().args([
        "install",
        &format!("cargo-deb@{CARGO_DEB_VERSION}"),
        "--locked",
        "--force",
    ]))?;
    did.push(format!("installed cargo-deb {CARGO_DEB_VERSION}"));
    Ok(())
}

fn cargo_fuzz(did: &mut Vec<String>) -> Result<()> {
    let version = output(cargo_cmd().args(["fuzz", "--version"])).unwrap_or_default();
    if version.split_whitespace().any(|w| w == CARGO_FUZZ_VERSION) {
        return Ok(());
    }
    if version.is_empty() {
        eprintln!(
            "setup: installing cargo-fuzz {CARGO_FUZZ_VERSION} (runs the fuzz targets; about a minute)"
        );
    } else {
        eprintln!(
            "setup: replacing {} with cargo-fuzz {CARGO_FUZZ_VERSION}",
            version.trim()
        );
    }
    run(cargo_cmd().args([
        "install",
        &format!("cargo-fuzz@{CARGO_FUZZ_VERSION}"),
        "--locked",
        "--force",
    ]))?;
    did.push(format!("installed cargo-fuzz {CARGO_FUZZ_VERSION}"));
    Ok(())
}

fn cargo_cmd() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn installed(package: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|s| s.contains("install ok installed"))
}

fn packages(did: &mut Vec<String>) -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(p, _)| !installed(p))
        .map(|(p, _)| *p)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    for (p, why) in PACKAGES.iter().filter(|(p, _)| missing.contains(p)) {
        eprintln!("setup: missing Debian package {p} ({why})");
    }
    if !is_root() {
        bail!(
            "installing {} needs root: run `sudo cargo xtask setup` (the lab and tests need root anyway)",
            missing.join(" ")
        );
    }
    run(Command::new("apt-get").args(["update", "-q"]))?;
    let quiet: Vec<&str> = NO_SERVICE
        .iter()
        .copied()
        .filter(|p| missing.contains(p))
        .collect();
    let dragged: Vec<(&str, &str)> = DEPENDENCY_SERVICES
        .iter()
        .copied()
        .filter(|(p, _)| missing.contains(p))
        .collect();
    {
        let _guard = if quiet.is_empty() && dragged.is_empty() {
            None
        } else {
            Some(DenyServiceStarts::new()?)
        };
        run(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing))?;
    }
    for p in &quiet {
        // Installed for a tool: its daemon stays off at boot too.
        let _ = output(Command::new("update-rc.d").args([p, "disable"]));
        let _ =
            output(Command::new("deb-systemd-helper").args(["disable", &format!("{p}.service")]));
        did.push(format!(
            "{p}: its service was not started and is disabled at boot"
        ));
    }
    for (p, service) in &dragged {
        let _ = output(Command::new("update-rc.d").args([service, "disable"]));
        let _ = output(
            Command::new("deb-systemd-helper").args(["disable", &format!("{service}.service")]),
        );
        did.push(format!(
            "{p}: the {service} service it depends on was not started and is disabled at boot"
        ));
    }
    did.push(format!("installed {}", missing.join(", ")));
    Ok(())
}

/// Debian's policy-rc.d convention: while it exists and exits 101, package scripts start
/// no service (invoke-rc.d and deb-systemd-invoke ask it). An existing policy file is
/// left as it is; one made here is removed when the guard drops, even on error.
struct DenyServiceStarts(Option<&'static str>);

impl DenyServiceStarts {
    const PATH: &'static str = "/usr/sbin/policy-rc.d";

    fn new() -> Result<Self> {
        use std::os::unix::fs::PermissionsExt as _;
        if std::path::Path::new(Self::PATH).exists() {
            return Ok(Self(None));
        }
        std::fs::write(
            Self::PATH,
            "#!/bin/sh\n# Written by `cargo xtask setup` for one apt-get install; removed after it.\nexit 101\n",
        )
        .with_context(|| format!("writing {}", Self::PATH))?;
        std::fs::set_permissions(Self::PATH, std::fs::Permissions::from_mode(0o755))?;
        Ok(Self(Some(Self::PATH)))
    }
}

impl Drop for DenyServiceStarts {
    fn drop(&mut self) {
        if let Some(p) = self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn bpffs(did: &mut Vec<String>) -> Result<()> {
    let mounted = std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| {
            let mut f = l.split_whitespace();
            let (_src, target, fstype) = (f.next(), f.next(), f.next());
            target == Some("/sys/fs/bpf") && fstype == Some("bpf")
        });
    if mounted {
        return Ok(());
    }
    if !is_root() {
        bail!("/sys/fs/bpf is not a bpf filesystem and mounting one needs root");
    }
    run(Command::new("mount").args(["-t", "bpf", "bpf", "/sys/fs/bpf"]))?;
    did.push("mounted bpffs on /sys/fs/bpf (pinned maps and links live there)".into());
    Ok(())
}
