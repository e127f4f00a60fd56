//! `cargo xtask package`: the Debian package, and the test `cargo xtask test` runs on it.
//!
//! Building: the release `vipd` (its build must print no warning), the manual pages and
//! completions generated from the sources (`vip-dist generate`), then cargo-deb with
//! `--no-build` over `dist/Cargo.toml`'s `[package.metadata.deb]`. The package lands in
//! `target/debian/vipd_<version>-1_<arch>.deb`.
//!
//! Testing (root; it installs the package on this machine and purges it again, and
//! refuses to start if a vipd package is already installed): the blocks of
//! `docs/operations.md` marked `sh test=package` are run as written, from the workspace
//! root (they build and install the package as an operator would); then the installed
//! files, the conffile, `vipd check` of the packaged configuration, `systemd-analyze
//! verify` of the installed unit, the manual pages (`man` renders them without a
//! warning) and the bash completion are checked; the guide's `sh test=remove` blocks
//! (`dpkg -r`) must leave nothing but the conffile, its `sh test=purge` blocks
//! (`dpkg -P`) nothing at all.

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail, ensure};

use crate::cmd::{cargo, output, render, run, workspace_root};

/// The Debian package's name (`dist/Cargo.toml`).
const PACKAGE: &str = "vipd";

/// Runs `cmd` streaming its stderr, and fails if any line of it is a warning: a clean
/// build of vipd prints none (the nested eBPF build's progress is not relayed, see
/// `vip-build`), so one that does has a real problem to show.
pub fn build_quietly(cmd: &mut Command) -> Result<()> {
    eprintln!("+ {}", render(cmd));
    let mut child = cmd
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", render(cmd)))?;
    let mut warnings = Vec::new();
    for line in BufReader::new(child.stderr.take().expect("piped")).lines() {
        let line = line?;
        eprintln!("{line}");
        if line.trim_start().starts_with("warning") {
            warnings.push(line);
        }
    }
    let status = child.wait()?;
    ensure!(status.success(), "{} failed: {status}", render(cmd));
    if !warnings.is_empty() {
        bail!(
            "{} printed {} warning line(s); a clean build prints none:\n{}",
            render(cmd),
            warnings.len(),
            warnings.join("\n")
        );
    }
    eprintln!("quiet build: no warning");
    Ok(())
}

/// Builds the package; returns its path.
pub fn package() -> Result<PathBuf> {
    let root = workspace_root();
    let target = root.join("target");
    build_quietly(&mut release_vipd())?;
    // Reproducible dates in the pages and the archive: the last commit's time.
    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok().or_else(|| {
        output(
            Command::new("git")
                .current_dir(&root)
                .args(["log", "-1", "--format=%ct"]),
        )
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
    });
    let generated = target.join("release/vipd-dist");
    if generated.exists() {
        std::fs::remove_dir_all(&generated)?;
    }
    // Built first and run by path: ring's build script tracks SOURCE_DATE_EPOCH, so a
    // `cargo run` with it set rebuilt ring, rustls and vipd for the generator, and the
    // next plain `cargo build` rebuilt them back (about 20 s each way).
    run(cargo().args([
        "build",
        "--quiet",
        "--package",
        "vip-dist",
        "--bin",
        "vip-dist",
    ]))?;
    let mut gen_cmd = Command::new(target.join("debug/vip-dist"));
    gen_cmd
        .arg("generate")
        .arg(&generated)
        .stdout(Stdio::null());
    if let Some(e) = &epoch {
        gen_cmd.env("SOURCE_DATE_EPOCH", e);
    }
    run(&mut gen_cmd)?;
    // Debian compresses manual pages; -n keeps the archive free of time stamps.
    for page in std::fs::read_dir(generated.join("man"))? {
        run(Command::new("gzip").args(["-9nf"]).arg(page?.path()))?;
    }
    let mut deb = cargo();
    deb.args(["deb", "--package", "vip-dist", "--no-build"])
        .stdout(Stdio::piped());
    if let Some(e) = &epoch {
        deb.env("SOURCE_DATE_EPOCH", e);
    }
    eprintln!("+ {}", render(&deb));
    let out = deb
        .output()
        .context("running cargo deb (cargo xtask setup installs it)")?;
    if !out.status.success() {
        bail!(
            "cargo deb failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let path = String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with(".deb"))
        .map(|l| PathBuf::from(l.trim()))
        .context("cargo deb named no package")?;
    println!("{}", path.display());
    Ok(path)
}

/// The fenced blocks of `docs/operations.md` marked `sh test=KIND` (`package`,
/// `remove`, `purge`), each with the expected output block right after it, if any.
fn guide_blocks(guide: &str, kind: &str) -> Vec<(String, Option<String>)> {
    let marker = format!("test={kind}");
    let mut blocks: Vec<(String, Option<String>)> = Vec::new();
    // Whether the last block was one of ours, with only blank lines since.
    let mut after_ours = false;
    let mut lines = guide.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            if !line.trim().is_empty() {
                after_ours = false;
            }
            continue;
        };
        let mut body = String::new();
        for l in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        let words: Vec<&str> = info.split_whitespace().collect();
        if words.first() == Some(&"sh") && words.contains(&marker.as_str()) {
            blocks.push((body, None));
            after_ours = true;
            continue;
        }
        if words.first() == Some(&"text")
            && after_ours
            && let Some(last) = blocks.last_mut()
        {
            last.1 = Some(body);
        }
        after_ours = false;
    }
    blocks
}

/// Runs the guide's `test=KIND` blocks from the workspace root, as an operator would
/// from a clone; there must be at least one.
fn run_guide(guide: &str, kind: &str) -> Result<()> {
    let blocks = guide_blocks(guide, kind);
    ensure!(
        !blocks.is_empty(),
        "docs/operations.md has no `sh test={kind}` block"
    );
    for (script, expected) in &blocks {
        eprintln!("package test: running from docs/operations.md:\n{script}");
        let mut sh = Command::new("sh");
        // The guide's commands run as in a user's shell: without the cargo variables of
        // the xtask running them, which build scripts such as ring's track.
        crate::cmd::forget_package_env(&mut sh);
        let out = sh
            .args(["-ec", &format!("exec 2>&1\n{script}")])
            .current_dir(workspace_root())
            .stderr(Stdio::inherit())
            .output()
            .context("running sh")?;
        let said = String::from_utf8_lossy(&out.stdout);
        eprint!("{said}");
        ensure!(
            out.status.success(),
            "the guide's block failed ({}):\n{script}",
            out.status
        );
        if let Some(pattern) = expected {
            ensure!(
                matches(pattern, &said),
                "the guide's block printed\n{said}\nnot what the guide shows:\n{pattern}"
            );
        }
    }
    Ok(())
}

/// `text` matches `pattern`, where `...` stands for anything (lines included).
fn matches(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.trim_end().split("...").collect();
    let text = text.trim_end();
    let (first, rest) = parts.split_first().expect("split yields one part at least");
    let Some(mut at) = text.strip_prefix(first).map(|_| first.len()) else {
        return false;
    };
    for (i, part) in rest.iter().enumerate() {
        let last = i + 1 == rest.len();
        if last {
            return text[at..].ends_with(part);
        }
        match text[at..].find(part) {
            Some(j) => at += j + part.len(),
            None => return false,
        }
    }
    at == text.len()
}

fn installed() -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", PACKAGE]))
        .is_some_and(|s| s.contains("ok installed") || s.contains("config-files"))
}

fn dpkg(args: &[&str]) -> Result<String> {
    let out = Command::new("dpkg")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .context("running dpkg")?;
    ensure!(
        out.status.success(),
        "dpkg {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Purges the package when dropped, so a failed check leaves no vipd behind.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        if installed() {
            eprintln!("package test: purging {PACKAGE}");
            let _ = dpkg(&["--purge", PACKAGE]);
        }
    }
}

/// The package test (see the module documentation).
pub fn test() -> Result<()> {
    let root = workspace_root();
    if installed() {
        bail!(
            "a {PACKAGE} package is installed on this machine; the package test installs and \
             purges its own: remove it first (dpkg -P {PACKAGE})"
        );
    }
    let guide = std::fs::read_to_string(root.join("docs/operations.md"))
        .context("reading docs/operations.md")?;
    let _purge = Purge;
    run_guide(&guide, "package")?;
    ensure!(
        installed(),
        "the guide's package blocks did not install {PACKAGE}"
    );
    let listed: Vec<PathBuf> = dpkg(&["-L", PACKAGE])?.lines().map(PathBuf::from).collect();
    // The package's own files, as they should be.
    for want in [
        "/usr/sbin/vipd",
        "/usr/lib/systemd/system/vipd.service",
        "/etc/vipd/vipd.toml",
        "/usr/share/doc/vipd/copyright",
        "/usr/share/doc/vipd/examples/vipd.toml",
        "/usr/share/doc/vipd/operations.md",
        "/usr/share/doc/vipd/grafana/vipd.json",
        "/usr/share/doc/vipd/prometheus/vipd.rules.yml",
        "/usr/share/man/man8/vipd.8.gz",
        "/usr/share/man/man8/vipd-run.8.gz",
        "/usr/share/man/man5/vipd.toml.5.gz",
        "/usr/share/bash-completion/completions/vipd",
        "/usr/share/zsh/vendor-completions/_vipd",
        "/usr/share/fish/vendor_completions.d/vipd.fish",
    ] {
        ensure!(
            listed.iter().any(|p| p == Path::new(want)),
            "{want} is not in the package: {listed:?}"
        );
    }
    let conffiles = output(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", PACKAGE]))
        .unwrap_or_default();
    ensure!(
        conffiles.contains("/etc/vipd/vipd.toml"),
        "/etc/vipd/vipd.toml is not a conffile: {conffiles:?}"
    );
    // The packaged file loads here, script user included, without a warning.
    let check = Command::new("/usr/sbin/vipd")
        .args(["check", "--config", CONFIG])
        .output()
        .context("running the installed vipd")?;
    ensure!(
        check.status.success() && check.stderr.is_empty(),
        "vipd check of the packaged configuration: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let version = output(Command::new("/usr/sbin/vipd").arg("--version")).unwrap_or_default();
    ensure!(version.starts_with("vipd "), "vipd --version: {version:?}");
    verify_unit()?;
    check_unit_security(&root)?;
    check_pages(&listed)?;
    check_bash_completion()?;
    check_config_mode()?;
    let user = script_user()?.context("the postinst created no vipd-script user")?;
    ensure!(
        user.gecos.split(',').next() == Some(SCRIPT_USER_GECOS)
            && user.uid < 1000
            && user.home == "/nonexistent"
            && user.shell == "/usr/sbin/nologin",
        "the script user is not a system user without home or shell: {user:?}"
    );
    ensure!(
        output(Command::new("getent").args(["group", SCRIPT_USER])).is_some(),
        "no {SCRIPT_USER} group"
    );
    // Someone made the file world-readable: a reinstall (as an upgrade would) tightens it.
    let deb = built_package(&root)?;
    run(Command::new("chmod").args(["0644", CONFIG]))?;
    dpkg(&["-i", &deb.to_string_lossy()])?;
    check_config_mode()?;
    // Removal, as the guide says: only the conffile (and its directory) may stay.
    run_guide(&guide, "remove")?;
    let left: Vec<&PathBuf> = listed
        .iter()
        .filter(|p| leftover(p))
        .filter(|p| !matches!(p.to_str(), Some("/etc/vipd" | "/etc/vipd/vipd.toml")))
        .collect();
    ensure!(left.is_empty(), "dpkg -r left behind: {left:?}");
    ensure!(
        Path::new("/etc/vipd/vipd.toml").exists(),
        "dpkg -r removed the conffile /etc/vipd/vipd.toml"
    );
    ensure!(
        script_user()?.is_some(),
        "dpkg -r removed the script user (the configuration that names it stays)"
    );
    run_guide(&guide, "purge")?;
    ensure!(
        script_user()?.is_none()
            && output(Command::new("getent").args(["group", SCRIPT_USER])).is_none(),
        "dpkg -P left the {SCRIPT_USER} user or group behind"
    );
    ensure!(
        !installed(),
        "the guide's purge left {PACKAGE} known to dpkg"
    );
    let left: Vec<&PathBuf> = listed.iter().filter(|p| leftover(p)).collect();
    ensure!(left.is_empty(), "dpkg -P left behind: {left:?}");
    for trace in [
        "/etc/systemd/system/vipd.service",
        "/etc/systemd/system/multi-user.target.wants/vipd.service",
        "/var/lib/systemd/deb-systemd-helper-enabled/vipd.service.dsh-also",
        "/var/lib/systemd/deb-systemd-helper-masked/vipd.service",
    ] {
        ensure!(
            std::fs::symlink_metadata(trace).is_err(),
            "dpkg -P left {trace} behind"
        );
    }
    admins_script_user_survives_a_purge(&deb)?;
    eprintln!(
        "package test: installed, checked, removed (conffile kept), purged (nothing left); \
         an administrator's {SCRIPT_USER} kept"
    );
    Ok(())
}

const CONFIG: &str = "/etc/vipd/vipd.toml";
/// The packaged configuration's `script_user` and the mark its postinst gives it
/// (`dist/debian/postinst`).
const SCRIPT_USER: &str = "vipd-script";
const SCRIPT_USER_GECOS: &str = "vipd track scripts and hooks";

#[derive(Debug)]
struct Passwd {
    uid: u32,
    gecos: String,
    home: String,
    shell: String,
}

/// The script user's passwd entry, if there is one.
fn script_user() -> Result<Option<Passwd>> {
    let Some(line) = output(Command::new("getent").args(["passwd", SCRIPT_USER])) else {
        return Ok(None);
    };
    let f: Vec<&str> = line.trim_end().split(':').collect();
    ensure!(f.len() == 7, "getent passwd {SCRIPT_USER}: {line:?}");
    Ok(Some(Passwd {
        uid: f[2].parse()?,
        gecos: f[4].to_owned(),
        home: f[5].to_owned(),
        shell: f[6].to_owned(),
    }))
}

/// The configuration may hold a VRRPv2 password: root's alone.
fn check_config_mode() -> Result<()> {
    let meta = std::fs::metadata(CONFIG).context(CONFIG)?;
    use std::os::unix::fs::MetadataExt as _;
    ensure!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()) == (0o640, 0, 0),
        "{CONFIG} is mode {:o}, owner {}:{}; expected 0640 root:root",
        meta.mode() & 0o7777,
        meta.uid(),
        meta.gid()
    );
    Ok(())
}

/// The package the guide's blocks built.
fn built_package(root: &Path) -> Result<PathBuf> {
    let mut debs: Vec<PathBuf> = std::fs::read_dir(root.join("target/debian"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    ensure!(debs.len() == 1, "target/debian holds {debs:?}");
    Ok(debs.remove(0))
}

/// Deletes the user it names when dropped.
struct DeleteUser(&'static str);

impl Drop for DeleteUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(self.0).status();
        // userdel takes the user's own group with it, unless something kept it.
        if output(Command::new("getent").args(["group", self.0])).is_some() {
            let _ = Command::new("groupdel").arg(self.0).status();
        }
    }
}

/// A `vipd-script` made by an administrator before the package came is used as it is,
/// and a purge leaves it alone: the postrm removes only the user its postinst made.
fn admins_script_user_survives_a_purge(deb: &Path) -> Result<()> {
    ensure!(
        script_user()?.is_none(),
        "{SCRIPT_USER} exists before the test"
    );
    run(Command::new("adduser").args([
        "--system",
        "--group",
        "--quiet",
        "--no-create-home",
        "--gecos",
        "the site's own",
        SCRIPT_USER,
    ]))?;
    let _cleanup = DeleteUser(SCRIPT_USER);
    dpkg(&["-i", &deb.to_string_lossy()])?;
    dpkg(&["--purge", PACKAGE])?;
    let user = script_user()?.context("dpkg -P removed the administrator's user")?;
    ensure!(
        user.gecos.split(',').next() == Some("the site's own"),
        "the package changed the administrator's user: {user:?}"
    );
    Ok(())
}

/// `systemd-analyze security` of the installed unit gives the exposure the README quotes.
fn check_unit_security(root: &Path) -> Result<()> {
    let out = Command::new("systemd-analyze")
        .args([
            "security",
            "--offline=yes",
            "--no-pager",
            "/usr/lib/systemd/system/vipd.service",
        ])
        .output()
        .context("running systemd-analyze")?;
    let table = String::from_utf8_lossy(&out.stdout);
    let overall = table
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for vipd.service: "))
        .map(|(_, rest)| rest.split_whitespace().take(2).collect::<Vec<_>>())
        .with_context(|| format!("systemd-analyze security printed:\n{table}"))?;
    let quoted = format!("rates the unit's exposure {} ({})", overall[0], overall[1]);
    let readme = std::fs::read_to_string(root.join("README.md"))?;
    ensure!(
        readme.contains(&quoted),
        "the installed unit's exposure is {overall:?}; the README does not say \"{quoted}\""
    );
    eprintln!(
        "package test: systemd-analyze security: {}",
        overall.join(" ")
    );
    Ok(())
}

/// A path of the package still there after it was removed: any file, or a directory no
/// other package owns and nothing else fills (dpkg keeps shared directories such as
/// /usr/share/man/man8 or zsh's vendor-completions).
fn leftover(p: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(p) else {
        return false;
    };
    if !meta.is_dir() {
        return true;
    }
    let filled = std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_some());
    let owned = output(Command::new("dpkg-query").arg("-S").arg(p)).is_some();
    !filled && !owned
}

/// systemd's checker on the installed unit, with the installed binary and manual pages:
/// exit 0 and not a word.
fn verify_unit() -> Result<()> {
    let out = Command::new("systemd-analyze")
        .args(["verify", "/usr/lib/systemd/system/vipd.service"])
        .output()
        .context("running systemd-analyze (cargo xtask setup installs it)")?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify of the installed unit:\n{said}"
    );
    Ok(())
}

/// Every installed page is found by name and renders without a warning.
fn check_pages(listed: &[PathBuf]) -> Result<()> {
    let pages: Vec<&PathBuf> = listed
        .iter()
        .filter(|p| p.starts_with("/usr/share/man") && p.is_file())
        .collect();
    ensure!(pages.len() >= 10, "manual pages installed: {pages:?}");
    for page in pages {
        let out = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(page)
            .env("MANWIDTH", "80")
            .env("PAGER", "cat")
            .output()?;
        ensure!(
            out.status.success() && out.stderr.is_empty() && out.stdout.len() > 500,
            "man -l {}: {}",
            page.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (section, name) in [("8", "vipd"), ("5", "vipd.toml")] {
        let found = output(Command::new("man").args(["-w", section, name])).unwrap_or_default();
        ensure!(
            found.trim_end().ends_with(".gz"),
            "man -w {section} {name} finds no page: {found:?}"
        );
    }
    Ok(())
}

/// The installed bash completion, as bash-completion would load it, completes the
/// subcommands.
fn check_bash_completion() -> Result<()> {
    let program = "source /usr/share/bash-completion/completions/vipd; \
                   COMP_WORDS=(vipd ''); COMP_CWORD=1; COMP_LINE='vipd '; COMP_POINT=5; \
                   _vipd vipd '' vipd; printf '%s\\n' \"${COMPREPLY[@]}\"";
    let said = output(Command::new("bash").args(["--norc", "-c", program])).unwrap_or_default();
    for want in ["run", "check", "status"] {
        ensure!(
            said.lines().any(|l| l.trim() == want),
            "the installed bash completion does not offer {want}: {said:?}"
        );
    }
    Ok(())
}

/// `cargo build --release` of the `vipd` binary the package ships (and the CPU-bound labs
/// run, `cargo xtask test` building it before the tests).
pub fn release_vipd() -> Command {
    let mut c = cargo();
    c.args([
        "build",
        "--release",
        "--package",
        "vip-userspace",
        "--bin",
        "vipd",
    ]);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ellipsis_matches_anything() {
        assert!(matches("a...c", "abbbc"));
        assert!(matches("a\n...\nc\n", "a\nx\ny\nc"));
        assert!(matches("exact", "exact\n"));
        assert!(!matches("exact", "exactly"));
        assert!(!matches("a...c", "abd"));
        assert!(matches("...", "anything"));
    }

    #[test]
    fn package_blocks_and_their_outputs_are_found() {
        let guide = "x\n```sh test=package\ncargo xtask package\n```\n\n```text\nok...\n```\n\
                     ```sh test=lab on=r1\nvipd status\n```\n```text\nnot this\n```\n\
                     ```sh test=package\ndpkg -i x.deb\n```\nProse.\n```text\nnor this\n```\n\
                     ```sh test=remove\ndpkg -r vipd\n```\n";
        assert_eq!(
            guide_blocks(guide, "remove"),
            vec![("dpkg -r vipd\n".to_owned(), None)]
        );
        assert_eq!(
            guide_blocks(guide, "package"),
            vec![
                (
                    "cargo xtask package\n".to_owned(),
                    Some("ok...\n".to_owned())
                ),
                ("dpkg -i x.deb\n".to_owned(), None),
            ]
        );
    }
}
