//! Every BPF map and program a daemon holds, with the memory each locks.
//!
//! The set is the union of what the daemon's processes hold open (the `map_id` and
//! `prog_id` lines of `/proc/<pid>/fdinfo/*`), the maps pinned under its pin directory and
//! the programs attached to its namespace's interfaces, each counted once by id. A map's
//! locked memory is the `memlock` line of its fdinfo (the kernel's own estimate, the
//! figure `bpftool map show` prints as `bytes_memlock`), read through a descriptor this
//! process opens by id; a program's is `memory_locked` from `BPF_OBJ_GET_INFO_BY_FD`.

use std::{
    collections::BTreeSet,
    os::fd::{AsFd as _, AsRawFd as _},
    path::Path,
};

use serde_json::{Value, json};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BpfObject {
    /// `map` or `program`.
    pub kind: &'static str,
    pub id: u32,
    pub name: String,
    /// The map or program type, as aya names it.
    pub detail: String,
    /// Entries for a map (0 for a program).
    pub max_entries: u32,
    pub memlock_bytes: u64,
}

impl BpfObject {
    pub fn json(&self) -> Value {
        json!({
            "kind": self.kind, "id": self.id, "name": self.name, "type": self.detail,
            "max_entries": self.max_entries, "memlock_bytes": self.memlock_bytes,
        })
    }
}

/// The value of `key:` in an fdinfo text.
fn fdinfo_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

/// Map and program ids the processes `pids` hold descriptors of.
fn held_ids(pids: &[i32]) -> (BTreeSet<u32>, BTreeSet<u32>) {
    let (mut maps, mut progs) = (BTreeSet::new(), BTreeSet::new());
    for pid in pids {
        let dir = format!("/proc/{pid}/fdinfo");
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(text) = std::fs::read_to_string(e.path()) else {
                continue;
            };
            if let Some(id) = fdinfo_field(&text, "map_id") {
                maps.insert(id as u32);
            } else if let Some(id) = fdinfo_field(&text, "prog_id") {
                progs.insert(id as u32);
            }
        }
    }
    (maps, progs)
}

fn map(id: u32) -> Option<BpfObject> {
    let info = aya::maps::MapInfo::from_id(id).ok()?;
    let fd = info.fd().ok()?;
    let text =
        std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_fd().as_raw_fd())).ok()?;
    Some(BpfObject {
        kind: "map",
        id,
        name: info.name_as_str().unwrap_or("").to_string(),
        detail: info
            .map_type()
            .map_or_else(|_| "unknown".into(), |t| format!("{t:?}")),
        max_entries: info.max_entries(),
        memlock_bytes: fdinfo_field(&text, "memlock")?,
    })
}

fn programs(ids: &BTreeSet<u32>) -> Vec<BpfObject> {
    // aya 0.14 opens a program's info by id only through the list of all of them.
    aya::programs::loaded_programs()
        .filter_map(|p| p.ok())
        .filter(|p| ids.contains(&p.id()))
        .filter_map(|p| program(&p))
        .collect()
}

fn program(info: &aya::programs::ProgramInfo) -> Option<BpfObject> {
    let id = info.id();
    Some(BpfObject {
        kind: "program",
        id,
        name: info.name_as_str().unwrap_or("").to_string(),
        detail: format!("{:?}", info.program_type()),
        max_entries: 0,
        memlock_bytes: u64::from(info.memory_locked().ok()?),
    })
}

/// Every map and program of a daemon: those its processes `pids` hold, those pinned under
/// `pin` (vipd's directory; `None` for a daemon without one) and the attached programs
/// `attached`. Sorted by kind, then name.
pub fn inventory(pids: &[i32], pin: Option<&Path>, attached: &[u32]) -> Vec<BpfObject> {
    let (mut maps, mut progs) = held_ids(pids);
    for e in pin
        .and_then(|p| std::fs::read_dir(p).ok())
        .into_iter()
        .flatten()
        .flatten()
    {
        // Links pinned beside the maps are attachments, not memory of their own.
        if e.file_name().to_string_lossy().starts_with("link_") || !e.path().is_file() {
            continue;
        }
        if let Ok(info) = aya::maps::MapInfo::from_pin(e.path()) {
            maps.insert(info.id());
        }
    }
    progs.extend(attached);
    let mut v: Vec<BpfObject> = maps
        .into_iter()
        .filter_map(map)
        .chain(programs(&progs))
        .collect();
    v.sort_by(|a, b| (a.kind, &a.name, a.id).cmp(&(b.kind, &b.name, b.id)));
    v
}

/// Locked memory of all of `objects`, KiB.
pub fn total_kib(objects: &[BpfObject]) -> u64 {
    objects.iter().map(|o| o.memlock_bytes).sum::<u64>() / 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fdinfo_fields() {
        let text = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t2061\nmap_type:\t1\n\
                    key_size:\t4\nvalue_size:\t8\nmax_entries:\t64\nmap_flags:\t0x1\n\
                    map_extra:\t0x0\nmemlock:\t3456\nmap_id:\t42\nfrozen:\t0\n";
        assert_eq!(fdinfo_field(text, "memlock"), Some(3456));
        assert_eq!(fdinfo_field(text, "map_id"), Some(42));
        assert_eq!(fdinfo_field(text, "prog_id"), None);
        // `map_type` must not be read as `map`: the key ends at the colon.
        assert_eq!(fdinfo_field(text, "map"), None);
    }

    #[test]
    fn a_process_without_bpf_objects_has_none() {
        // This test process holds no map or program descriptors (keepalived's case).
        let me = std::process::id() as i32;
        let (maps, progs) = held_ids(&[me]);
        assert!(maps.is_empty() && progs.is_empty());
        assert!(inventory(&[me], None, &[]).is_empty());
    }
}
