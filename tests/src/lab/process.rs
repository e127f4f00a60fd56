//! Processes the lab starts, tracked so that every one of them (and whatever it forked) is
//! killed and reaped when the lab goes away, even on panic.

use std::{
    collections::HashMap,
    process::{Child, Command, ExitStatus},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use nix::{
    sys::signal::{Signal, kill, killpg},
    unistd::Pid,
};
use std::os::unix::process::CommandExt as _;

#[derive(Default)]
pub struct Registry {
    children: Mutex<HashMap<i32, (String, Child)>>,
}

/// A process the lab started. Cloning it does not duplicate the process.
#[derive(Clone)]
pub struct Proc {
    pid: i32,
    label: String,
    registry: Arc<Registry>,
}

impl std::fmt::Debug for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]", self.label, self.pid)
    }
}

impl Registry {
    /// Spawns `cmd` in a process group of its own, so a signal to the group reaches the
    /// children a daemon forks even if their parent is already gone.
    pub fn spawn(self: &Arc<Self>, label: &str, mut cmd: Command) -> Result<Proc> {
        cmd.process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawn {label}: {cmd:?}"))?;
        let pid = child.id() as i32;
        self.children
            .lock()
            .unwrap()
            .insert(pid, (label.to_string(), child));
        Ok(Proc {
            pid,
            label: label.to_string(),
            registry: Arc::clone(self),
        })
    }

    /// Takes the piped stderr of a tracked child.
    pub fn take_stderr(&self, pid: i32) -> Option<std::process::ChildStderr> {
        self.children.lock().unwrap().get_mut(&pid)?.1.stderr.take()
    }

    /// Every tracked process and its descendants, as they are right now.
    pub fn pids(&self) -> Vec<i32> {
        let roots: Vec<i32> = self.children.lock().unwrap().keys().copied().collect();
        let mut all = Vec::new();
        for r in roots {
            all.push(r);
            all.extend(descendants(r));
        }
        all
    }

    /// SIGKILLs every tracked process tree and reaps the direct children.
    pub fn kill_all(&self) {
        let pids: Vec<i32> = self.children.lock().unwrap().keys().copied().collect();
        for pid in pids {
            kill_tree(pid, Signal::SIGKILL);
            if let Err(e) = self.reap(pid, Duration::from_secs(3)) {
                eprintln!("lab: {e:#}");
            }
        }
    }

    fn reap(&self, pid: i32, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let mut map = self.children.lock().unwrap();
                let Some((label, child)) = map.get_mut(&pid) else {
                    bail!("process {pid} is not tracked (already reaped)");
                };
                if let Some(status) = child.try_wait().context("waitpid")? {
                    map.remove(&pid);
                    return Ok(status);
                }
                if Instant::now() >= deadline {
                    bail!("{label}[{pid}] still running after {timeout:?}");
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// True until the process has exited (and been reaped by us).
    pub fn is_running(&self) -> bool {
        let mut map = self.registry.children.lock().unwrap();
        match map.get_mut(&self.pid) {
            Some((_, child)) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends `sig` to this process only (a daemon's parent handles its children itself).
    pub fn signal(&self, sig: Signal) -> Result<()> {
        kill(Pid::from_raw(self.pid), sig).with_context(|| format!("kill -{sig} {self:?}"))
    }

    /// Sends `sig` to the process, its group and every descendant, parents first so a
    /// supervisor cannot restart a child it just lost.
    pub fn signal_tree(&self, sig: Signal) {
        kill_tree(self.pid, sig);
    }

    /// `kill -9` of the whole tree, then reaps it: what a crash looks like.
    pub fn kill(&self) -> Result<ExitStatus> {
        kill_tree(self.pid, Signal::SIGKILL);
        self.registry.reap(self.pid, Duration::from_secs(3))
    }

    /// Sends `sig` and waits up to `grace` for a clean exit; after that the tree is killed.
    /// Returns the exit status, and whether it exited within `grace`.
    pub fn stop(&self, sig: Signal, grace: Duration) -> Result<(ExitStatus, bool)> {
        self.signal(sig)?;
        match self.wait(grace) {
            Ok(status) => {
                // Forked children may outlive a parent that exited on its own.
                kill_tree(self.pid, Signal::SIGKILL);
                Ok((status, true))
            }
            Err(_) => Ok((self.kill()?, false)),
        }
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait(&self, timeout: Duration) -> Result<ExitStatus> {
        self.registry.reap(self.pid, timeout)
    }
}

fn kill_tree(pid: i32, sig: Signal) {
    if sig == Signal::SIGKILL {
        // Freeze the tree first: keepalived's children get SIGTERM from the kernel when their
        // parent dies (parent-death signal) and would resign cleanly in the instant before
        // their own SIGKILL lands. A stopped process dies to SIGKILL without running handlers.
        signal_all(pid, Signal::SIGSTOP);
        wait_stopped(pid, Duration::from_millis(200));
        // Then children before their parents: a parent that dies first orphans its process
        // group, and the kernel wakes the group's stopped members with SIGHUP and SIGCONT,
        // so they run their handlers after all (observed: keepalived's VRRP child resigned
        // and removed its VIPs in 3 of 10 "kill -9"s with the parent killed first).
        for p in descendants(pid).into_iter().rev() {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
    }
    signal_all(pid, sig);
}

/// Waits (bounded) until `root` and its descendants are all stopped or gone.
fn wait_stopped(root: i32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let stopped = |p: i32| match std::fs::read_to_string(format!("/proc/{p}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat.get(i + 2..i + 3))
            .is_none_or(|state| matches!(state, "T" | "t" | "Z" | "X")),
        Err(_) => true,
    };
    while Instant::now() < deadline {
        if std::iter::once(root).chain(descendants(root)).all(stopped) {
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn signal_all(pid: i32, sig: Signal) {
    let tree = descendants(pid);
    let _ = kill(Pid::from_raw(pid), sig);
    let _ = killpg(Pid::from_raw(pid), sig);
    for p in tree {
        let _ = kill(Pid::from_raw(p), sig);
    }
    // A child forked between the scan and the signal (a notify script) is caught here.
    for p in descendants(pid) {
        let _ = kill(Pid::from_raw(p), sig);
    }
}

/// Parent pid of every process, from `/proc/*/stat`.
fn parents() -> Vec<(i32, i32)> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name may contain spaces and parentheses: parse after the last ')'.
            let rest = &stat[stat.rfind(')')? + 2..];
            let ppid = rest.split(' ').nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect()
}

/// All descendants of `root`, children before grandchildren.
pub fn descendants(root: i32) -> Vec<i32> {
    let table = parents();
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid) in &table {
            if ppid == p && !out.contains(&pid) {
                out.push(pid);
                frontier.push(pid);
            }
        }
    }
    out
}

/// SIGKILLs `pid` alone (no tree walk, no freeze: for strays a lab did not start itself);
/// one already gone is not an error.
pub fn sigkill(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}

/// True if `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat.get(i + 2..i + 3))
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Pids of live processes whose network namespace is the nsfs inode `ino`.
pub fn in_namespace(ino: u64) -> Vec<i32> {
    let want = format!("net:[{ino}]");
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|l| l.to_string_lossy() == want)
        })
        .collect()
}

/// Pids of live processes whose command line mentions `needle`.
pub fn with_cmdline(needle: &str) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    rd.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me && alive(pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

/// CPU time `pid` has used, all its threads, user and system, in seconds (from
/// `/proc/PID/stat`); 0 once it is gone.
pub fn cpu_seconds(pid: i32) -> f64 {
    let (user, system) = cpu_split(pid);
    user + system
}

/// CPU time `pid` has used in user space alone, in seconds. Without
/// `CONFIG_IRQ_TIME_ACCOUNTING` (this machine's kernel) a tick that lands in a softirq is
/// charged as system time to whatever task it interrupted, so under a packet flood a
/// process's system time grows with the flood's kernel work, not its own; its user time
/// does not.
pub fn user_cpu_seconds(pid: i32) -> f64 {
    cpu_split(pid).0
}

/// User and system CPU seconds of `pid`, all its threads; zeros once it is gone.
fn cpu_split(pid: i32) -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return (0.0, 0.0);
    };
    // After the command name (which may hold spaces): utime and stime are fields 14 and
    // 15, i.e. 11 and 12 counted from the state after the ')'.
    let Some(rest) = stat.rfind(')').and_then(|i| stat.get(i + 2..)) else {
        return (0.0, 0.0);
    };
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as f64 } else { 100.0 };
    (ticks(11) / hz, ticks(12) / hz)
}

/// How many times `pid`'s threads have gone to sleep of their own accord
/// (`voluntary_ctxt_switches` summed over `/proc/PID/task/*/status`): for an event-driven
/// daemon, about how often it was woken. Unlike CPU time on a kernel without
/// `CONFIG_IRQ_TIME_ACCOUNTING`, a flood's kernel work on the same CPUs does not add to it.
pub fn wakeups(pid: i32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .filter_map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .sum()
}

/// Keeps every thread of `pid` off `cpu` (threads it starts later inherit the mask of the
/// thread that starts them). Fails on a machine with a single CPU, where nothing can be
/// kept off it.
pub fn keep_off_cpu(pid: i32, cpu: usize) -> Result<()> {
    use nix::sched::{CpuSet, sched_setaffinity};
    let cpus = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    anyhow::ensure!(
        cpus > 1 && cpu < cpus,
        "cannot keep pid {pid} off CPU {cpu} with {cpus} CPU(s)"
    );
    let mut set = CpuSet::new();
    for c in (0..cpus).filter(|&c| c != cpu) {
        set.set(c)?;
    }
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("listing the threads of pid {pid}"))?;
    for task in tasks {
        let tid: i32 = task?.file_name().to_string_lossy().parse()?;
        sched_setaffinity(Pid::from_raw(tid), &set)
            .with_context(|| format!("setting the CPU mask of thread {tid} of pid {pid}"))?;
    }
    Ok(())
}
