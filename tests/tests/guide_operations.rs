//! `docs/operations.md`, run: every command in the operator's guide is run by a test, so
//! the guide cannot rot.
//!
//! The guide marks its fenced blocks:
//!
//! - ```` ```sh test=lab on=edge1[,edge2] [background] [fails] [retry=10s] ````: run here,
//!   in a namespace lab, on the named machines, in order. `background` leaves it running
//!   (a daemon started in the foreground of a terminal); `fails` expects a non-zero exit;
//!   `retry` runs it again until it passes or the time is up (a state that takes a
//!   moment). A ```` ```text ```` block right after it is the output expected, where
//!   `...` stands for anything (several lines included).
//! - ```` ```toml file=/etc/vipd/vipd.toml on=edge1 ````: the file is written there.
//! - `<!-- lab nodes: edge1 edge2 client -->` starts a fresh lab: routers named in order
//!   (r1, r2, ... at 192.0.2.11, .12, ...) and, with `client`, a client at 192.0.2.100.
//! - ```` ```sh test=package ````, `test=remove`, `test=purge`: run by the package test of
//!   `cargo xtask test` (xtask/src/package.rs), which installs the package for real.
//! - ```` ```sh test=systemd ````: systemctl and journalctl only; systemd is not PID 1 on
//!   the test machines. The unit they drive is checked by `dist/tests/unit.rs`,
//!   `tests/tests/lab_service.rs` and the package test.
//!
//! `VIPD_GUIDE_SHOW=1 cargo test --test guide_operations -- --nocapture` prints what
//! every block printed: what to paste when a block's output changes on purpose.
//!
//! Each lab machine is a router namespace of the lab plus a mount and a PID namespace of
//! its own, so the guide's real paths work as on a host: `/etc` is an overlay (files
//! written there vanish with the lab), `/run` a fresh tmpfs, `/sys/fs/bpf` a fresh bpffs,
//! and `pidof vipd` sees that machine's vipd only. `vipd` on the PATH is the binary under
//! test.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use vip_tests::{
    lab::{Lab, Node, Proc, wait_until},
    require_root,
};

const GUIDE: &str = include_str!("../../docs/operations.md");
const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Lab,
    Package,
    Remove,
    Purge,
    Systemd,
}

#[derive(Debug, Clone)]
struct Shell {
    line: usize,
    kind: Kind,
    on: Vec<String>,
    background: bool,
    fails: bool,
    retry: Option<Duration>,
    body: String,
    expect: Option<String>,
}

#[derive(Debug, Clone)]
enum Step {
    Lab {
        line: usize,
        nodes: Vec<String>,
    },
    Shell(Shell),
    File {
        line: usize,
        path: String,
        on: Vec<String>,
        body: String,
    },
}

fn parse(guide: &str) -> Result<Vec<Step>> {
    let mut steps: Vec<Step> = Vec::new();
    let lines: Vec<&str> = guide.lines().collect();
    let mut i = 0;
    // The line after the last closing fence of a shell block, to pair it with an
    // expected output that follows with nothing but blank lines between.
    let mut after_shell: Option<usize> = None;
    while i < lines.len() {
        let line = lines[i];
        if let Some(rest) = line.strip_prefix("<!-- lab nodes:") {
            let nodes = rest.trim_end_matches("-->").split_whitespace();
            steps.push(Step::Lab {
                line: i + 1,
                nodes: nodes.map(str::to_owned).collect(),
            });
            i += 1;
            continue;
        }
        let Some(info) = line.strip_prefix("```") else {
            if !line.trim().is_empty() {
                after_shell = None;
            }
            i += 1;
            continue;
        };
        let start = i + 1;
        let mut body = String::new();
        i += 1;
        while i < lines.len() && !lines[i].starts_with("```") {
            body.push_str(lines[i]);
            body.push('\n');
            i += 1;
        }
        ensure!(i < lines.len(), "line {start}: unclosed code block");
        i += 1;
        let mut words = info.split_whitespace();
        let lang = words.next().unwrap_or_default();
        let attrs: Vec<&str> = words.collect();
        let attr = |key: &str| {
            attrs
                .iter()
                .find_map(|a| a.strip_prefix(key)?.strip_prefix('='))
        };
        let on: Vec<String> = attr("on")
            .map(|v| v.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        match lang {
            "sh" => {
                let kind = match attr("test") {
                    Some("lab") => Kind::Lab,
                    Some("package") => Kind::Package,
                    Some("remove") => Kind::Remove,
                    Some("purge") => Kind::Purge,
                    Some("systemd") => Kind::Systemd,
                    other => bail!(
                        "line {start}: a sh block must say how it is tested \
                         (test=lab|package|remove|purge|systemd), not {other:?}"
                    ),
                };
                let retry = match attr("retry") {
                    Some(v) => Some(Duration::from_secs(
                        v.trim_end_matches('s')
                            .parse()
                            .with_context(|| format!("line {start}: retry={v}"))?,
                    )),
                    None => None,
                };
                steps.push(Step::Shell(Shell {
                    line: start,
                    kind,
                    on,
                    background: attrs.contains(&"background"),
                    fails: attrs.contains(&"fails"),
                    retry,
                    body,
                    expect: None,
                }));
                after_shell = Some(i);
                continue;
            }
            "toml" | "ini" | "yaml" | "text" if attr("file").is_some() => {
                steps.push(Step::File {
                    line: start,
                    path: attr("file").unwrap_or_default().to_owned(),
                    on,
                    body,
                });
            }
            "text" if after_shell.is_some() => {
                if let Some(Step::Shell(s)) = steps.last_mut()
                    && s.expect.is_none()
                {
                    s.expect = Some(body);
                }
            }
            _ => {}
        }
        after_shell = None;
    }
    Ok(steps)
}

/// `text` matches `pattern`, line ends trimmed, where `...` stands for anything.
fn matches(pattern: &str, text: &str) -> bool {
    let norm = |s: &str| {
        s.lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
            .trim_end()
            .to_owned()
    };
    let (pattern, text) = (norm(pattern), norm(text));
    let parts: Vec<&str> = pattern.split("...").collect();
    let (first, rest) = parts.split_first().expect("one part at least");
    if !text.starts_with(first) {
        return false;
    }
    let mut at = first.len();
    for (i, part) in rest.iter().enumerate() {
        if i + 1 == rest.len() {
            return text[at..].ends_with(part);
        }
        match text[at..].find(part) {
            Some(j) => at += j + part.len(),
            None => return false,
        }
    }
    at == text.len()
}

/// A lab node made to look like a host of its own (see the module documentation).
struct Machine {
    name: String,
    /// Host pid of the init of the machine's PID namespace.
    init: i32,
    _holder: Proc,
    bin: PathBuf,
    dir: PathBuf,
    daemons: Vec<(Proc, PathBuf, usize)>,
}

impl Machine {
    fn start(lab: &Lab, node: &Node, name: &str) -> Result<Machine> {
        let dir = lab.scratch(&format!("guide-{name}"))?;
        let (upper, work, bin) = (dir.join("upper"), dir.join("work"), dir.join("bin"));
        for d in [&upper, &work, &bin] {
            std::fs::create_dir_all(d)?;
        }
        std::os::unix::fs::symlink(VIPD, bin.join("vipd"))?;
        let ready = dir.join("ready");
        let setup = format!(
            "set -e\n\
             mount -t overlay overlay -o lowerdir=/etc,upperdir={},workdir={} /etc\n\
             mount -t tmpfs -o mode=755 tmpfs /run\n\
             mount -t bpf bpf /sys/fs/bpf\n\
             touch {}\n\
             exec sleep infinity",
            upper.display(),
            work.display(),
            ready.display()
        );
        let holder = lab.spawn(
            node,
            &[
                "unshare",
                "--mount",
                "--pid",
                "--fork",
                "--mount-proc",
                "--propagation",
                "private",
                "sh",
                "-c",
                &setup,
            ],
        )?;
        wait_until(
            &format!("machine {name} to mount its /etc, /run and bpffs"),
            Duration::from_secs(5),
            Duration::from_millis(10),
            || {
                ensure!(holder.is_running(), "its namespace holder exited");
                Ok(ready.exists())
            },
        )?;
        let pid = holder.pid();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))?;
        let init: i32 = children
            .split_whitespace()
            .next()
            .context("unshare forked no init")?
            .parse()?;
        Ok(Machine {
            name: name.to_owned(),
            init,
            _holder: holder,
            bin,
            dir,
            daemons: Vec::new(),
        })
    }

    /// `sh -c script` inside the machine, stderr merged into stdout as on a terminal.
    fn shell(&self, script: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args([
            "--target",
            &self.init.to_string(),
            "--mount",
            "--pid",
            "--net",
        ])
        .args(["--", "/bin/sh", "-c"])
        .arg(format!("exec 2>&1\nset -e\n{script}"))
        .env_clear()
        .env(
            "PATH",
            format!(
                "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                self.bin.display()
            ),
        )
        .env("HOME", "/root")
        .env("LANG", "C.UTF-8")
        .env("TERM", "dumb")
        .current_dir("/");
        c
    }

    fn write(&self, path: &str, body: &str) -> Result<()> {
        let mut c = self.shell(&format!("mkdir -p \"$(dirname {path})\"; cat > {path}"));
        let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(body.as_bytes())?;
        let out = child.wait_with_output()?;
        ensure!(
            out.status.success(),
            "writing {path} on {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stdout)
        );
        Ok(())
    }

    fn logs(&self) -> String {
        self.daemons
            .iter()
            .map(|(p, log, line)| {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                format!(
                    "--- {} background block of line {line} ({}) ---\n{}",
                    self.name,
                    if p.is_running() { "running" } else { "exited" },
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A foreground block that runs longer than this is stuck (a daemon that should have
/// failed to start, say), not slow.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `cmd` to completion, killing it (and failing) after `timeout`.
fn finish(mut cmd: Command, timeout: Duration) -> Result<std::process::Output> {
    use std::os::unix::process::CommandExt as _;
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut { stdout }, &mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            // The whole group: nsenter, the shell and what it started.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
            let said = reader.join().unwrap_or_default();
            bail!(
                "still running after {timeout:?}; it printed:\n{}",
                String::from_utf8_lossy(&said)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))?;
    Ok(std::process::Output {
        status,
        stdout,
        stderr: Vec::new(),
    })
}

fn run_shell(lab: &Lab, machines: &mut [Machine], s: &Shell) -> Result<()> {
    ensure!(!s.on.is_empty(), "line {}: on= names no machine", s.line);
    for name in &s.on {
        let m = machines
            .iter_mut()
            .find(|m| &m.name == name)
            .with_context(|| format!("line {}: no machine {name} in this lab", s.line))?;
        if s.background {
            let log = m.dir.join(format!("background-{}.log", s.line));
            let file = std::fs::File::create(&log)?;
            let mut c = m.shell(&s.body);
            c.stdout(file.try_clone()?).stderr(file);
            let p = lab.spawn_command(&format!("{name}: line {}", s.line), c)?;
            m.daemons.push((p, log, s.line));
            continue;
        }
        let deadline = Instant::now() + s.retry.unwrap_or_default();
        loop {
            let out = finish(m.shell(&s.body), BLOCK_TIMEOUT)
                .with_context(|| format!("docs/operations.md line {} on {name}", s.line))?;
            let said = String::from_utf8_lossy(&out.stdout).into_owned();
            let status_ok = out.status.success() != s.fails;
            let output_ok = s.expect.as_deref().is_none_or(|e| matches(e, &said));
            if std::env::var_os("VIPD_GUIDE_SHOW").is_some() {
                println!("--- line {} on {name}: {}\n{said}---", s.line, out.status);
            }
            if status_ok && output_ok {
                println!("  line {} on {name}: ok", s.line);
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "docs/operations.md line {} on {name}:\n{}\nexited {} (expected {}), and printed:\n{said}\n{}{}",
                    s.line,
                    s.body.trim_end(),
                    out.status,
                    if s.fails { "a failure" } else { "success" },
                    match (&s.expect, output_ok) {
                        (Some(e), false) =>
                            format!("which does not match what the guide shows:\n{e}\n"),
                        _ => String::new(),
                    },
                    m.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

#[test]
fn every_sh_block_of_the_guide_is_tested() -> Result<()> {
    let steps = parse(GUIDE)?;
    let mut in_lab: Option<Vec<String>> = None;
    let mut kinds = Vec::new();
    for step in &steps {
        match step {
            Step::Lab { nodes, .. } => in_lab = Some(nodes.clone()),
            Step::File { line, on, .. } => {
                let nodes = in_lab
                    .as_ref()
                    .with_context(|| format!("line {line}: a file outside a lab"))?;
                ensure!(
                    !on.is_empty() && on.iter().all(|n| nodes.contains(n)),
                    "line {line}: on={on:?}"
                );
            }
            Step::Shell(s) => {
                kinds.push(s.kind);
                match s.kind {
                    Kind::Lab => {
                        let nodes = in_lab
                            .as_ref()
                            .with_context(|| format!("line {}: test=lab outside a lab", s.line))?;
                        ensure!(
                            !s.on.is_empty() && s.on.iter().all(|n| nodes.contains(n)),
                            "line {}: on={:?} not in {nodes:?}",
                            s.line,
                            s.on
                        );
                    }
                    Kind::Systemd => {
                        for l in s.body.lines().map(str::trim) {
                            ensure!(
                                l.is_empty()
                                    || l.starts_with('#')
                                    || l.starts_with("systemctl ")
                                    || l.starts_with("journalctl "),
                                "line {}: test=systemd blocks hold systemctl and journalctl only, \
                                 everything else must run in a test: {l}",
                                s.line
                            );
                        }
                    }
                    Kind::Package | Kind::Remove | Kind::Purge => {}
                }
            }
        }
    }
    for k in [
        Kind::Lab,
        Kind::Package,
        Kind::Remove,
        Kind::Purge,
        Kind::Systemd,
    ] {
        ensure!(kinds.contains(&k), "the guide has no {k:?} block");
    }
    Ok(())
}

#[test]
fn the_guide_runs_in_a_lab() -> Result<()> {
    require_root();
    let steps = parse(GUIDE)?;
    let mut sections: Vec<(usize, Vec<String>, Vec<Step>)> = Vec::new();
    for step in steps {
        match step {
            Step::Lab { line, nodes } => sections.push((line, nodes, Vec::new())),
            other => {
                if let Some((_, _, s)) = sections.last_mut() {
                    s.push(other);
                }
            }
        }
    }
    ensure!(!sections.is_empty(), "no lab in the guide");
    let started = Instant::now();
    let mut blocks = 0;
    for (line, nodes, steps) in sections {
        let routers = nodes.iter().filter(|n| *n != "client").count();
        let mut b = Lab::builder().routers(routers);
        if nodes.iter().any(|n| n == "client") {
            b = b.client();
        }
        let lab = b.build()?;
        let mut machines = Vec::new();
        let mut r = 0;
        for name in &nodes {
            let node = if name == "client" {
                lab.client().clone()
            } else {
                r += 1;
                lab.router(r).clone()
            };
            machines.push(Machine::start(&lab, &node, name)?);
        }
        println!("lab of line {line} ({}): {}", lab.prefix, nodes.join(" "));
        for step in &steps {
            match step {
                Step::File {
                    path,
                    on,
                    body,
                    line,
                } => {
                    for name in on {
                        let m = machines
                            .iter()
                            .find(|m| &m.name == name)
                            .with_context(|| format!("line {line}: no machine {name}"))?;
                        m.write(path, body)
                            .with_context(|| format!("docs/operations.md line {line}"))?;
                    }
                }
                Step::Shell(s) if s.kind == Kind::Lab => {
                    run_shell(&lab, &mut machines, s)?;
                    blocks += 1;
                }
                _ => {}
            }
        }
    }
    println!(
        "{blocks} blocks of docs/operations.md ran in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[test]
fn ellipsis_matching() {
    assert!(matches("a ... c", "a b c"));
    assert!(matches("x\n...\nz", "x\n1\n2\nz\n"));
    assert!(matches("trailing  \nspaces", "trailing\nspaces  "));
    assert!(!matches("a", "ab"));
    assert!(!matches("a...c...e", "a c"));
}

#[test]
fn blocks_and_their_outputs_are_paired() -> Result<()> {
    let md = "<!-- lab nodes: edge1 client -->\n\
              ```sh test=lab on=edge1 retry=5s\nvipd status\n```\n\n```text\nvipd ...\n```\n\
              Prose.\n\n```text\nnot an output\n```\n\
              ```toml file=/etc/vipd/vipd.toml on=edge1\n[global]\n```\n\
              ```sh test=systemd\nsystemctl reload vipd\n```\n";
    let steps = parse(md)?;
    assert_eq!(steps.len(), 4);
    let Step::Shell(s) = &steps[1] else {
        panic!("{steps:?}")
    };
    assert_eq!(s.expect.as_deref(), Some("vipd ...\n"));
    assert_eq!(s.retry, Some(Duration::from_secs(5)));
    assert!(matches!(&steps[2], Step::File { path, .. } if path == "/etc/vipd/vipd.toml"));
    assert!(parse("```sh\nls\n```\n").is_err(), "an unmarked sh block");
    Ok(())
}
