//! Daemon CPU time and memory from `/proc`.

use std::time::{Duration, Instant};

/// Clock ticks per second for `/proc/<pid>/stat` times.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// utime + stime of `pid` in seconds (0 once it is gone).
pub fn cpu_seconds(pid: i32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name, which may hold spaces: state is field 3, utime 14,
    // stime 15 (1-based), i.e. indices 11 and 12 after the ')'.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split(' ').collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (get(11) + get(12)) / ticks_per_second()
}

/// Resident memory of `pid` in KiB as its proportional share (PSS: pages shared with
/// other processes count in part), so summing a daemon's forked processes does not count
/// the pages they share twice. Falls back to VmRSS; 0 once the process is gone.
pub fn rss_kib(pid: i32) -> u64 {
    let field = |file: &str, key: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .ok()?
            .lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    field("smaps_rollup", "Pss:")
        .or_else(|| field("status", "VmRSS:"))
        .unwrap_or(0)
}

/// A process's resident memory split by what backs it, from `/proc/<pid>/smaps_rollup`
/// (KiB): proportional shares, so summing a daemon's forked processes counts the pages
/// they share once. Anonymous memory is the heap, stacks and private data a process
/// makes; file-backed memory is its executable and libraries as mapped, which other
/// processes running the same files share.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Smaps {
    pub rss: u64,
    pub pss: u64,
    pub pss_anon: u64,
    pub pss_file: u64,
    pub pss_shmem: u64,
}

impl Smaps {
    /// `pid`'s rollup; `None` once the process is gone.
    pub fn of(pid: i32) -> Option<Smaps> {
        Smaps::parse(&std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?)
    }

    /// The sum over processes `pids` (those gone count nothing).
    pub fn of_all(pids: &[i32]) -> Smaps {
        pids.iter()
            .filter_map(|p| Smaps::of(*p))
            .fold(Smaps::default(), |a, b| a.plus(&b))
    }

    fn parse(text: &str) -> Option<Smaps> {
        let field = |key: &str| -> Option<u64> {
            text.lines()
                .find(|l| l.starts_with(key))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        };
        Some(Smaps {
            rss: field("Rss:")?,
            pss: field("Pss:")?,
            pss_anon: field("Pss_Anon:")?,
            pss_file: field("Pss_File:")?,
            pss_shmem: field("Pss_Shmem:").unwrap_or(0),
        })
    }

    pub fn plus(&self, o: &Smaps) -> Smaps {
        Smaps {
            rss: self.rss + o.rss,
            pss: self.pss + o.pss,
            pss_anon: self.pss_anon + o.pss_anon,
            pss_file: self.pss_file + o.pss_file,
            pss_shmem: self.pss_shmem + o.pss_shmem,
        }
    }
}

/// CPU used by a set of processes over a window, as a percentage of one core.
pub struct CpuWindow {
    pids: Vec<i32>,
    start: Instant,
    cpu0: f64,
}

impl CpuWindow {
    pub fn start(pids: Vec<i32>) -> CpuWindow {
        let cpu0 = pids.iter().map(|p| cpu_seconds(*p)).sum();
        CpuWindow {
            pids,
            start: Instant::now(),
            cpu0,
        }
    }

    /// Percent of one core since `start`. Processes that exited in between count only up
    /// to their last reading, so callers keep the set stable across the window.
    pub fn percent(&self) -> f64 {
        let cpu1: f64 = self.pids.iter().map(|p| cpu_seconds(*p)).sum();
        let wall = self.start.elapsed().as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        ((cpu1 - self.cpu0) / wall * 100.0).max(0.0)
    }
}

/// Busy and total jiffies summed over all CPUs, from the first line of `/proc/stat`.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let idle = v.get(3)? + v.get(4).unwrap_or(&0);
    let total: u64 = v.iter().take(8).sum();
    Some((total - idle, total))
}

/// Waits until the machine is mostly idle — less than `busy_max` of all CPUs busy over a
/// quarter second — or `max` passes; returns how long it waited. A lab's namespace is
/// torn down by a kernel worker after the lab is gone (thousands of addresses take
/// seconds), and a measurement taken meanwhile measures that teardown.
pub fn wait_for_quiet(busy_max: f64, max: Duration) -> Duration {
    let start = Instant::now();
    while start.elapsed() < max {
        let Some((b0, t0)) = cpu_jiffies() else {
            break;
        };
        std::thread::sleep(Duration::from_millis(250));
        let Some((b1, t1)) = cpu_jiffies() else {
            break;
        };
        if t1 > t0 && ((b1 - b0) as f64 / (t1 - t0) as f64) < busy_max {
            break;
        }
    }
    start.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_cpu_and_rss() {
        let me = std::process::id() as i32;
        let w = CpuWindow::start(vec![me]);
        let mut x = 0u64;
        let t = Instant::now();
        while t.elapsed().as_millis() < 50 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(rss_kib(me) > 0);
        assert!(w.percent() >= 0.0);
        assert_eq!(cpu_seconds(-1), 0.0);
        let m = Smaps::of(me).expect("our own smaps_rollup");
        assert!(m.pss_anon > 0 && m.pss_file > 0);
        // Each field is rounded on its own: the parts may miss the whole by a few KiB.
        assert!(m.pss.abs_diff(m.pss_anon + m.pss_file + m.pss_shmem) <= 4);
        // A pid that is gone adds nothing; our own figures move between two reads (the
        // other tests' threads allocate), so the sum is compared within 16 MiB.
        assert_eq!(Smaps::of_all(&[-1]), Smaps::default());
        let all = Smaps::of_all(&[me, -1]);
        assert!(all.rss.abs_diff(m.rss) < 16 * 1024, "{all:?} vs {m:?}");
    }

    #[test]
    fn parses_a_rollup() {
        let text = "55c4-7ffe ---p 00000000 00:00 0  [rollup]\nRss:  1708 kB\nPss:  197 kB\n\
                    Pss_Dirty: 116 kB\nPss_Anon: 116 kB\nPss_File: 81 kB\nPss_Shmem: 0 kB\n";
        let m = Smaps::parse(text).unwrap();
        assert_eq!((m.rss, m.pss, m.pss_anon, m.pss_file), (1708, 197, 116, 81));
        assert_eq!(Smaps::parse("Rss: 1 kB\n"), None);
    }
}
