//! The classic BPF socket filter on each raw VRRP socket: it admits what
//! `crate::vrrp::listen::Listen` names (the VRIDs run on the socket's interface and, per
//! VRID, the versions) and refuses everything else in the kernel, so a flood of VRRP for
//! other VRIDs never wakes the daemon.
//!
//! What the filter sees differs by family: an IPv4 raw socket gets the IP header (options
//! included, so the VRRP header is found through the IHL: `ldxb 4*([0]&0xf)` then loads
//! relative to X); an IPv6 raw socket gets the VRRP message alone. After that prologue
//! both programs are the same:
//!
//! ```text
//!   ldb [x+1]; st M[0]                VRID
//!   ldb [x+0]                          version and type: 0x31 (v3 advert) or 0x21 (v2)
//!   jeq #0x31 → v3; jeq #0x21 → v2; ret #0
//!   v3: the VRID in the 256-bit set of VRIDs read as v3? (8 words of 32 bits: the word
//!       chosen by VRID >> 5, the bit by VRID & 31) → ret #-1, else ret #0
//!   v2: the same for the v2 set (shared with v3 when the sets are equal)
//! ```
//!
//! CARP advertisements start with VRRPv2's byte (version 2, type 1: 0x21) and carry the
//! VHID where VRRP has the VRID, so a CARP virtual host's VHID is in the v2 set of its
//! family, IPv6 included (`Listen` puts it there); the daemon then tells CARP from VRRPv2
//! by layout (`vip_common::wire::classify_proto112`).
//!
//! The cost per packet is constant (about 20 instructions), whatever number of VRIDs the
//! interface runs. A packet too short for a load is refused by the kernel itself (a
//! classic filter returns 0 when a load falls outside the packet).
//!
//! Fragments: the IPv4 program refuses any packet with More Fragments or an offset. The
//! kernel reassembles IPv4 and IPv6 before it delivers to raw sockets, so on the VRRP
//! socket that test never fires (it does on a packet socket, where the lab test proves
//! it); what keeps fragmented VRRP of our VRIDs from the daemon is the XDP program, which
//! drops every fragment of them (`vrrp_drop_fragment`), so none is ever reassembled.
//! Fragmented VRRP for other VRIDs is reassembled by the kernel and then refused here by
//! its VRID.
//!
//! Hand-written rather than taken from a crate: the cBPF assemblers on crates.io are
//! unmaintained one-release projects (`bpfasm` parses text at run time; `bpf` and
//! `classic_bpf` take raw opcodes), and this generator is one fixed program shape with
//! two constant tables. The programs are proven against the real kernel in
//! `tests/tests/lab_vrrp_filter.rs`.

use socket2::SockFilter;

use crate::vrrp::{Family, Version, listen::Listen};

/// One instruction, as `struct sock_filter` holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl Insn {
    pub fn to_sock_filter(self) -> SockFilter {
        SockFilter::new(self.code, self.jt, self.jf, self.k)
    }
}

/// The VRRP version and type byte of an advertisement.
const fn ver_type(v: Version) -> u32 {
    ((v.number() as u32) << 4) | 1
}

const fn op(class: u32, rest: u32) -> u16 {
    (class | rest) as u16
}

const LDB_ABS: u16 = op(libc::BPF_LD, libc::BPF_B | libc::BPF_ABS);
const LDH_ABS: u16 = op(libc::BPF_LD, libc::BPF_H | libc::BPF_ABS);
const LDB_IND: u16 = op(libc::BPF_LD, libc::BPF_B | libc::BPF_IND);
const LD_IMM: u16 = op(libc::BPF_LD, libc::BPF_W | libc::BPF_IMM);
const LD_MEM: u16 = op(libc::BPF_LD, libc::BPF_W | libc::BPF_MEM);
const LDX_IMM: u16 = op(libc::BPF_LDX, libc::BPF_W | libc::BPF_IMM);
const LDX_MSH: u16 = op(libc::BPF_LDX, libc::BPF_B | libc::BPF_MSH);
const ST: u16 = op(libc::BPF_ST, 0);
const AND_K: u16 = op(libc::BPF_ALU, libc::BPF_AND | libc::BPF_K);
const RSH_K: u16 = op(libc::BPF_ALU, libc::BPF_RSH | libc::BPF_K);
const RSH_X: u16 = op(libc::BPF_ALU, libc::BPF_RSH | libc::BPF_X);
const JEQ_K: u16 = op(libc::BPF_JMP, libc::BPF_JEQ | libc::BPF_K);
const JSET_K: u16 = op(libc::BPF_JMP, libc::BPF_JSET | libc::BPF_K);
const JA: u16 = op(libc::BPF_JMP, libc::BPF_JA);
const TAX: u16 = op(libc::BPF_MISC, libc::BPF_TAX);
const TXA: u16 = op(libc::BPF_MISC, libc::BPF_TXA);
const RET_K: u16 = op(libc::BPF_RET, libc::BPF_K);

/// IPv4 More Fragments and fragment offset bits.
const IP_MF_OFFSET: u32 = 0x3fff;
const ACCEPT: u32 = u32::MAX;
const REFUSE: u32 = 0;

/// A jump target, resolved once the program is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Label(usize);

enum Item {
    Insn(Insn),
    /// A conditional jump: `code` with `k`, to `jt` if true, else to `jf`.
    Jump {
        code: u16,
        k: u32,
        jt: Label,
        jf: Label,
    },
    /// An unconditional jump.
    Always(Label),
    Here(Label),
}

#[derive(Default)]
struct Asm {
    items: Vec<Item>,
    labels: usize,
}

/// A generated program that cannot be expressed (a jump past 255 instructions): a bug.
#[derive(Debug, thiserror::Error)]
#[error("VRRP socket filter: {0}")]
pub struct FilterError(String);

impl Asm {
    fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    fn stmt(&mut self, code: u16, k: u32) {
        self.items.push(Item::Insn(Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        }));
    }

    fn jump(&mut self, code: u16, k: u32, jt: Label, jf: Label) {
        self.items.push(Item::Jump { code, k, jt, jf });
    }

    fn goto(&mut self, to: Label) {
        self.items.push(Item::Always(to));
    }

    fn here(&mut self, l: Label) {
        self.items.push(Item::Here(l));
    }

    fn finish(self) -> Result<Vec<Insn>, FilterError> {
        let mut at = vec![None; self.labels];
        let mut n = 0;
        for item in &self.items {
            match item {
                Item::Here(Label(l)) => at[*l] = Some(n),
                _ => n += 1,
            }
        }
        let mut out = Vec::with_capacity(n);
        for item in self.items {
            let pc = out.len();
            // Offsets count from the next instruction, forward only.
            let rel = |Label(l): Label| -> Result<u32, FilterError> {
                let to = at[l].ok_or_else(|| FilterError(format!("label {l} never placed")))?;
                (to as u32)
                    .checked_sub(pc as u32 + 1)
                    .ok_or_else(|| FilterError(format!("backward jump at {pc}")))
            };
            match item {
                Item::Insn(i) => out.push(i),
                Item::Jump { code, k, jt, jf } => {
                    let short = |x: u32| {
                        u8::try_from(x).map_err(|_| FilterError(format!("jump too long at {pc}")))
                    };
                    out.push(Insn {
                        code,
                        jt: short(rel(jt)?)?,
                        jf: short(rel(jf)?)?,
                        k,
                    });
                }
                Item::Always(to) => out.push(Insn {
                    code: JA,
                    jt: 0,
                    jf: 0,
                    k: rel(to)?,
                }),
                Item::Here(_) => {}
            }
        }
        if out.len() > libc::BPF_MAXINSNS as usize {
            return Err(FilterError(format!("{} instructions", out.len())));
        }
        Ok(out)
    }
}

/// The VRIDs of `listen` read as `version`, as 8 words of 32 bits.
fn words(listen: &Listen, version: Version) -> [u32; 8] {
    let mut w = [0u32; 8];
    for (vrid, v) in &listen.vrids {
        if v.admits(version) {
            w[(*vrid >> 5) as usize] |= 1 << (vrid & 31);
        }
    }
    w
}

/// Tests A (a VRID) against `set`: to `accept` when in it, else to `refuse`.
fn member_of(a: &mut Asm, set: [u32; 8], accept: Label, refuse: Label) {
    a.stmt(TAX, 0);
    a.stmt(RSH_K, 5);
    let mut blocks = Vec::new();
    for (i, word) in set.iter().enumerate().filter(|(_, w)| **w != 0) {
        let l = a.label();
        let next = a.label();
        a.jump(JEQ_K, i as u32, l, next);
        a.here(next);
        blocks.push((l, *word));
    }
    a.goto(refuse);
    for (l, word) in blocks {
        a.here(l);
        a.stmt(TXA, 0);
        a.stmt(AND_K, 31);
        a.stmt(TAX, 0);
        a.stmt(LD_IMM, word);
        a.stmt(RSH_X, 0);
        a.stmt(AND_K, 1);
        a.jump(JEQ_K, 1, accept, refuse);
    }
}

/// The filter for the socket of `listen.family`.
pub fn program(listen: &Listen) -> Result<Vec<Insn>, FilterError> {
    let mut a = Asm::default();
    let (accept, refuse) = (a.label(), a.label());
    if listen.vrids.is_empty() {
        a.here(refuse);
        a.stmt(RET_K, REFUSE);
        return a.finish();
    }
    match listen.family {
        Family::Ipv4 => {
            let (v4, frag_ok) = (a.label(), a.label());
            a.stmt(LDB_ABS, 0);
            a.stmt(AND_K, 0xf0);
            a.jump(JEQ_K, 0x40, v4, refuse);
            a.here(v4);
            a.stmt(LDH_ABS, 6);
            a.jump(JSET_K, IP_MF_OFFSET, refuse, frag_ok);
            a.here(frag_ok);
            // X = the IPv4 header length, options included.
            a.stmt(LDX_MSH, 0);
        }
        Family::Ipv6 => a.stmt(LDX_IMM, 0),
    }
    a.stmt(LDB_IND, 1);
    a.stmt(ST, 0);
    a.stmt(LDB_IND, 0);
    let (v3, v2) = (words(listen, Version::V3), words(listen, Version::V2));
    let (to_v3, to_v2, not_v3) = (a.label(), a.label(), a.label());
    let v2_block = if v2 == v3 { to_v3 } else { to_v2 };
    a.jump(JEQ_K, ver_type(Version::V3), to_v3, not_v3);
    a.here(not_v3);
    a.jump(JEQ_K, ver_type(Version::V2), v2_block, refuse);
    a.here(to_v3);
    a.stmt(LD_MEM, 0);
    member_of(&mut a, v3, accept, refuse);
    if v2 != v3 {
        a.here(to_v2);
        a.stmt(LD_MEM, 0);
        member_of(&mut a, v2, accept, refuse);
    }
    a.here(accept);
    a.stmt(RET_K, ACCEPT);
    a.here(refuse);
    a.stmt(RET_K, REFUSE);
    a.finish()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::vrrp::listen::Versions;

    fn listen(family: Family, vrids: &[(u8, bool, bool)]) -> Listen {
        Listen {
            family,
            vrids: vrids
                .iter()
                .map(|(id, v2, v3)| {
                    (
                        *id,
                        Versions {
                            v2: *v2,
                            v3: *v3,
                            carp: false,
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
        }
    }

    /// Every jump lands inside the program, and every path ends in a return.
    fn well_formed(p: &[Insn]) {
        for (pc, i) in p.iter().enumerate() {
            if i.code == JA {
                assert!(pc + 1 + (i.k as usize) < p.len(), "ja at {pc}");
            } else if i.code & 0x07 == libc::BPF_JMP as u16 {
                assert!(pc + 1 + (i.jt.max(i.jf) as usize) < p.len(), "jump at {pc}");
            }
        }
        assert_eq!(p.last().map(|i| i.code), Some(RET_K));
    }

    #[test]
    fn nothing_to_read_refuses_everything() {
        let p = program(&Listen::nothing(Family::Ipv4)).unwrap();
        assert_eq!(
            p,
            [Insn {
                code: RET_K,
                jt: 0,
                jf: 0,
                k: 0
            }]
        );
    }

    #[test]
    fn the_vrid_sets_are_constants_in_the_program() {
        // VRID 51 is bit 19 of word 1; 255 is bit 31 of word 7; 1 is bit 1 of word 0.
        let p = program(&listen(
            Family::Ipv4,
            &[(1, true, true), (51, true, true), (255, true, true)],
        ))
        .unwrap();
        well_formed(&p);
        let constants: Vec<u32> = p.iter().filter(|i| i.code == LD_IMM).map(|i| i.k).collect();
        assert_eq!(constants, [1 << 1, 1 << 19, 1 << 31]);
        // Equal v2 and v3 sets share one membership test.
        assert_eq!(p.iter().filter(|i| i.code == LD_MEM).count(), 1);
    }

    #[test]
    fn different_version_sets_get_a_test_each_and_ipv6_skips_the_ip_header() {
        let p = program(&listen(
            Family::Ipv6,
            &[(51, false, true), (52, true, false)],
        ))
        .unwrap();
        well_formed(&p);
        assert_eq!(p[0].code, LDX_IMM, "the VRRP message starts at 0");
        assert!(!p.iter().any(|i| i.code == LDX_MSH || i.code == JSET_K));
        let constants: Vec<u32> = p.iter().filter(|i| i.code == LD_IMM).map(|i| i.k).collect();
        assert_eq!(constants, [1 << 19, 1 << 20]);
    }

    #[test]
    fn a_carp_vhid_is_admitted_as_version_2_in_both_families() {
        use crate::vrrp::instance::{Identity, Instance};
        let cfgs = [Instance::new("c", Identity::carp("eth0", 9, Family::Ipv6))];
        let listen = Listen::of(Family::Ipv6, &cfgs);
        assert_eq!(words(&listen, Version::V2)[0], 1 << 9);
        assert_eq!(words(&listen, Version::V3), [0; 8]);
        let p = program(&listen).unwrap();
        well_formed(&p);
        assert!(p.iter().any(|i| i.k == ver_type(Version::V2)));
    }

    #[test]
    fn every_vrid_fits_in_a_small_program() {
        let all: Vec<(u8, bool, bool)> = (1..=255).map(|v| (v, v % 2 == 0, true)).collect();
        let p = program(&listen(Family::Ipv4, &all)).unwrap();
        well_formed(&p);
        assert!(p.len() < 160, "{} instructions", p.len());
    }
}
