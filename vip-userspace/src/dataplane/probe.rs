//! The kernel features the responder needs, probed at start so a kernel that lacks one
//! is named by the missing piece instead of surfacing as a verifier or attach error.
//!
//! Linux 5.18 is the oldest kernel that has them all (frags-aware XDP and
//! `bpf_xdp_get_buff_len` arrived last); vipd is tested on 6.18 only. Each piece below
//! is probed by asking the kernel (a minimal program, map or flag), except bpf_link for
//! XDP, which cannot be tried without attaching to an interface and is judged by the
//! kernel version.

use aya::{
    Ebpf,
    maps::MapType,
    programs::{ProgramType, Xdp},
    sys::{BpfHelper, is_helper_supported, is_map_supported, is_program_supported},
    util::KernelVersion,
};

use super::{DataplaneError, Result};
use crate::objects;

/// One feature and whether the running kernel has it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Feature {
    pub name: &'static str,
    /// The first Linux version that has it.
    pub since: &'static str,
    pub present: bool,
}

const HELPERS: [(BpfHelper, &str, &str); 5] = [
    (
        BpfHelper::BPF_FUNC_xdp_adjust_tail,
        "bpf_xdp_adjust_tail",
        "4.18",
    ),
    (BpfHelper::BPF_FUNC_tail_call, "bpf_tail_call", "4.2"),
    (
        BpfHelper::BPF_FUNC_ktime_get_coarse_ns,
        "bpf_ktime_get_coarse_ns",
        "5.11",
    ),
    (BpfHelper::BPF_FUNC_loop, "bpf_loop", "5.17"),
    (
        BpfHelper::BPF_FUNC_xdp_get_buff_len,
        "bpf_xdp_get_buff_len",
        "5.18",
    ),
];

const MAPS: [(MapType, &str, &str); 5] = [
    (MapType::Hash, "hash maps", "3.19"),
    (MapType::Array, "array maps", "3.19"),
    (MapType::PerCpuArray, "per-CPU array maps", "4.6"),
    (MapType::LruHash, "LRU hash maps", "4.10"),
    (MapType::ProgramArray, "program arrays (tail calls)", "4.2"),
];

/// Every feature the responder needs, probed now.
pub fn features() -> Vec<Feature> {
    let mut out = vec![Feature {
        name: "XDP programs",
        since: "4.8",
        present: is_program_supported(ProgramType::Xdp).unwrap_or(false),
    }];
    out.push(Feature {
        name: "BTF (typed maps)",
        since: "5.2",
        present: aya::features().btf().is_some(),
    });
    for (map, name, since) in MAPS {
        out.push(Feature {
            name,
            since,
            present: is_map_supported(map).unwrap_or(false),
        });
    }
    for (helper, name, since) in HELPERS {
        out.push(Feature {
            name,
            since,
            present: is_helper_supported(ProgramType::Xdp, helper).unwrap_or(false),
        });
    }
    out.push(Feature {
        name: "frags-aware XDP (BPF_F_XDP_HAS_FRAGS)",
        since: "5.18",
        present: frags_supported(),
    });
    out.push(Feature {
        name: "bpf_link for XDP (judged by version)",
        since: "5.9",
        present: KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(5, 9, 0)),
    });
    out
}

/// Fails naming every missing feature.
pub fn require() -> Result<()> {
    let missing: Vec<String> = features()
        .into_iter()
        .filter(|f| !f.present)
        .map(|f| format!("{} (Linux {})", f.name, f.since))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let running = KernelVersion::current()
        .map(|v| format!("{v:?}"))
        .unwrap_or_else(|_| "unknown".into());
    Err(DataplaneError::Kernel(format!(
        "this kernel ({running}) lacks what vipd's XDP program needs: {}; vipd needs Linux \
         5.18 or later with BPF and BTF enabled",
        missing.join(", ")
    )))
}

/// Loads the frags-aware pass program: a kernel that does not know the flag refuses it.
fn frags_supported() -> bool {
    let Ok(mut ebpf) = Ebpf::load(objects::PASS) else {
        return false;
    };
    let Some(program) = ebpf.program_mut(vip_common::programs::PASS) else {
        return false;
    };
    let program: Result<&mut Xdp, _> = program.try_into();
    program.is_ok_and(|p| p.load().is_ok())
}
