//! The real server's half of the load balancer's tunnel method in a lab: the kernel here
//! has no `ipip` / `ip6tnl` device to take the outer header off, so a small XDP program
//! (`vip-ebpf/src/bin/vip-decap.rs`, built by this crate's `build.rs`) does it on the
//! server's interface and counts what it decapsulated.

use anyhow::{Context, Result};
use aya::{
    Ebpf,
    maps::PerCpuArray,
    programs::{Xdp, XdpMode},
};

use super::{Lab, Node, in_netns};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vip-decap"));
const PROGRAM: &str = "vipd_test_decap";
const SEEN: &str = "DECAP_SEEN";

/// The decapsulating program on one node's interface; detached when dropped.
pub struct Decap {
    ebpf: Ebpf,
}

/// What a [`Decap`] saw, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecapSeen {
    /// Packets whose outer IPv4 header it removed.
    pub v4: u64,
    /// Packets whose outer IPv6 header it removed.
    pub v6: u64,
    /// Frames it passed as they were.
    pub other: u64,
}

impl Lab {
    /// Attaches the decapsulating program (native mode) to `ifname` on `node`.
    pub fn decap(&self, node: &Node, ifname: &str) -> Result<Decap> {
        let mut ebpf = Ebpf::load(OBJECT).context("load the decap object")?;
        let prog: &mut Xdp = ebpf
            .program_mut(PROGRAM)
            .context("decap program missing from its object")?
            .try_into()?;
        prog.load().context("load the decap program")?;
        // The name resolves, and the link is made, in the calling thread's namespace.
        in_netns(&node.ns, || prog.attach(ifname, XdpMode::Driver))?
            .with_context(|| format!("attach the decap program to {ifname} on {}", node.label))?;
        Ok(Decap { ebpf })
    }
}

impl Decap {
    pub fn seen(&self) -> Result<DecapSeen> {
        let map: PerCpuArray<_, [u64; 3]> =
            PerCpuArray::try_from(self.ebpf.map(SEEN).context("DECAP_SEEN missing")?)?;
        let mut sum = DecapSeen::default();
        for cpu in map.get(&0, 0)?.iter() {
            sum.v4 += cpu[0];
            sum.v6 += cpu[1];
            sum.other += cpu[2];
        }
        Ok(sum)
    }
}
