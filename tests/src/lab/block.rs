//! Dropping VRRP adverts on a bridge port, to split a group without touching links.
//!
//! This kernel has neither `cls_flower` nor `act_gact`, and nftables/ebtables are not
//! installed, so the filter is a six-instruction tc program loaded with the `bpf` syscall
//! and attached through tcx (a BPF link: it detaches when its fd closes, no qdisc needed).
//! It drops frames to 01:00:5e:00:00:12 (224.0.0.18) and 33:33:00:00:00:12 (ff02::12) and
//! nothing else, so ARP, ND and unicast keep flowing.

use std::os::fd::{FromRawFd, OwnedFd};

use anyhow::{Result, bail};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
pub const BPF_TCX_INGRESS: u32 = 46;
pub const BPF_TCX_EGRESS: u32 = 47;

/// One eBPF instruction: opcode, dst/src registers, offset, immediate.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    let mut b = [0u8; 8];
    b[0] = code;
    b[1] = (src << 4) | (dst & 0x0f);
    b[2..4].copy_from_slice(&off.to_le_bytes());
    b[4..8].copy_from_slice(&imm.to_le_bytes());
    u64::from_le_bytes(b)
}

/// The filter, written against `struct __sk_buff` (data at 76, data_end at 80).
fn program() -> Vec<u64> {
    const LDXW: u8 = 0x61;
    const LDXH: u8 = 0x69;
    const MOV64X: u8 = 0xbf;
    const MOV64K: u8 = 0xb7;
    const ADD64K: u8 = 0x07;
    const JGTX: u8 = 0x2d;
    const JNEK: u8 = 0x55;
    const JEQK: u8 = 0x15;
    const EXIT: u8 = 0x95;
    // Destination MACs as loaded little-endian: first four bytes, then the last two.
    const V4_HEAD: i32 = 0x005e_0001; // 01:00:5e:00
    const V6_HEAD: i32 = 0x0000_3333; // 33:33:00:00
    const TAIL: i32 = 0x1200; // 00:12
    vec![
        insn(LDXW, 2, 1, 76, 0),      // r2 = skb->data
        insn(LDXW, 3, 1, 80, 0),      // r3 = skb->data_end
        insn(MOV64X, 4, 2, 0, 0),     // r4 = r2
        insn(ADD64K, 4, 0, 0, 6),     // r4 += 6
        insn(JGTX, 4, 3, 5, 0),       // short frame: pass
        insn(LDXH, 6, 2, 4, 0),       // r6 = dst[4..6]
        insn(JNEK, 6, 0, 3, TAIL),    // not ..:00:12: pass
        insn(LDXW, 5, 2, 0, 0),       // r5 = dst[0..4]
        insn(JEQK, 5, 0, 3, V4_HEAD), // VRRP over IPv4: drop
        insn(JEQK, 5, 0, 2, V6_HEAD), // VRRP over IPv6: drop
        insn(MOV64K, 0, 0, 0, 0),     // TCX_PASS
        insn(EXIT, 0, 0, 0, 0),
        insn(MOV64K, 0, 0, 0, 2), // TCX_DROP
        insn(EXIT, 0, 0, 0, 0),
    ]
}

fn bpf(cmd: libc::c_long, attr: &mut [u8; 128]) -> std::io::Result<OwnedFd> {
    // SAFETY: attr is a zero-padded bpf_attr of the size we pass; the kernel reads it and
    // returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a non-negative return from these commands is a fresh fd we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Loads the filter. The program fd can be attached any number of times.
pub fn load_vrrp_drop() -> Result<OwnedFd> {
    let insns = program();
    let license = c"GPL";
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&BPF_PROG_TYPE_SCHED_CLS.to_ne_bytes());
    attr[4..8].copy_from_slice(&(insns.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    let name = b"vt_drop_vrrp";
    attr[48..48 + name.len()].copy_from_slice(name);
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(fd),
        Err(e) => bail!("BPF_PROG_LOAD of the VRRP drop filter: {e}"),
    }
}

/// Attaches `prog` to `ifindex` (in the calling thread's namespace) at `attach_type`.
/// Dropping the returned link detaches it.
pub fn attach_tcx(prog: &OwnedFd, ifindex: u32, attach_type: u32) -> Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&(prog.as_raw_fd() as u32).to_ne_bytes());
    attr[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    attr[8..12].copy_from_slice(&attach_type.to_ne_bytes());
    match bpf(BPF_LINK_CREATE, &mut attr) {
        Ok(fd) => Ok(fd),
        Err(e) => bail!("BPF_LINK_CREATE tcx on ifindex {ifindex}: {e}"),
    }
}
