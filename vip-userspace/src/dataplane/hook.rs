//! An interface's XDP hook as the kernel reports it, and the atomic replace vipd uses to
//! take the hook from another program and to give it back.
//!
//! Both go through rtnetlink (`IFLA_XDP`): the replace carries `XDP_FLAGS_REPLACE` with
//! the program expected on the hook, so it fails instead of overwriting a program that
//! changed meanwhile, and there is no instant without a program. A program attached
//! through a bpf_link cannot be replaced this way (the kernel answers EBUSY); [`holder`]
//! finds such a link so vipd can say so.

use std::{
    io,
    os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd},
};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{LinkAttribute, LinkMessage, LinkXdp, XdpAttached},
};

/// `XDP_FLAGS_*` from linux/if_link.h.
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
const XDP_FLAGS_REPLACE: u32 = 1 << 4;

/// The mode a program runs in on the hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HookMode {
    /// In the driver (native XDP).
    Native,
    /// In the stack, on socket buffers (generic XDP).
    Generic,
    /// On the NIC.
    Offload,
}

impl HookMode {
    fn flags(self) -> u32 {
        match self {
            Self::Native => XDP_FLAGS_DRV_MODE,
            Self::Generic => XDP_FLAGS_SKB_MODE,
            Self::Offload => 1 << 3,
        }
    }
}

/// What holds an interface's XDP hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hook {
    pub prog_id: u32,
    pub mode: HookMode,
}

/// The program on `ifindex`'s hook, if any. With programs in two modes at once (the
/// kernel allows native and offload together) the native one is reported.
pub fn query(ifindex: u32) -> io::Result<Option<Hook>> {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    let reply = request(RouteNetlinkMessage::GetLink(msg), NLM_F_REQUEST)?;
    let Some(RouteNetlinkMessage::NewLink(link)) = reply else {
        return Err(io::Error::other("no link in the kernel's answer"));
    };
    let mut attached = None;
    let (mut prog, mut drv, mut skb, mut hw) = (None, None, None, None);
    for a in &link.attributes {
        if let LinkAttribute::Xdp(xdp) = a {
            for x in xdp {
                match x {
                    LinkXdp::Attached(m) => attached = Some(*m),
                    LinkXdp::ProgId(id) => prog = Some(*id),
                    LinkXdp::DrvProgId(id) => drv = Some(*id),
                    LinkXdp::SkbProgId(id) => skb = Some(*id),
                    LinkXdp::HwProgId(id) => hw = Some(*id),
                    _ => {}
                }
            }
        }
    }
    Ok(match attached {
        None | Some(XdpAttached::None) => None,
        Some(XdpAttached::Driver) => prog.map(|id| Hook {
            prog_id: id,
            mode: HookMode::Native,
        }),
        Some(XdpAttached::SocketBuffer) => prog.map(|id| Hook {
            prog_id: id,
            mode: HookMode::Generic,
        }),
        Some(XdpAttached::Hardware) => prog.map(|id| Hook {
            prog_id: id,
            mode: HookMode::Offload,
        }),
        Some(_) => drv
            .map(|id| (id, HookMode::Native))
            .or(skb.map(|id| (id, HookMode::Generic)))
            .or(hw.map(|id| (id, HookMode::Offload)))
            .map(|(prog_id, mode)| Hook { prog_id, mode }),
    })
}

/// Puts `new` on `ifindex`'s hook in `mode`, in place of `expected` (atomically: the
/// kernel refuses when another program holds the hook by then), or where the hook is
/// empty when `expected` is `None`.
pub fn replace(
    ifindex: u32,
    new: BorrowedFd<'_>,
    expected: Option<BorrowedFd<'_>>,
    mode: HookMode,
) -> io::Result<()> {
    let mut xdp = vec![LinkXdp::Fd(new.as_raw_fd())];
    let mut flags = mode.flags();
    if let Some(old) = expected {
        flags |= XDP_FLAGS_REPLACE;
        xdp.push(LinkXdp::ExpectedFd(old.as_raw_fd() as u32));
    } else {
        // XDP_FLAGS_UPDATE_IF_NOEXIST: never overwrite a program that appeared meanwhile.
        flags |= 1;
    }
    xdp.push(LinkXdp::Flags(flags));
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    msg.attributes.push(LinkAttribute::Xdp(xdp));
    request(RouteNetlinkMessage::SetLink(msg), NLM_F_REQUEST | NLM_F_ACK).map(|_| ())
}

/// Every link in this network namespace (RTM_GETLINK dump).
pub fn links() -> io::Result<Vec<LinkMessage>> {
    let sock = socket()?;
    send(
        &sock,
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        NLM_F_REQUEST | NLM_F_DUMP,
    )?;
    let mut out = Vec::new();
    let mut answer = vec![0u8; 64 * 1024];
    // Bounded: a namespace with a million links would still end; each round reads one
    // datagram of several messages.
    for _ in 0..100_000 {
        let n = recv(&sock, &mut answer)?;
        let mut at = 0;
        while at < n {
            let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&answer[at..n])
                .map_err(|e| io::Error::other(format!("decoding the kernel's answer: {e}")))?;
            let len = reply.header.length as usize;
            match reply.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => out.push(l),
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                _ => {}
            }
            if len == 0 {
                break;
            }
            // Messages are 4-byte aligned.
            at += len.div_ceil(4) * 4;
        }
    }
    Err(io::Error::other("link dump did not end"))
}

/// One request on a fresh NETLINK_ROUTE socket in this network namespace; the answer's
/// message, `None` for a bare acknowledgement.
fn request(msg: RouteNetlinkMessage, flags: u16) -> io::Result<Option<RouteNetlinkMessage>> {
    let sock = socket()?;
    send(&sock, msg, flags)?;
    let mut answer = vec![0u8; 64 * 1024];
    let n = recv(&sock, &mut answer)?;
    let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&answer[..n])
        .map_err(|e| io::Error::other(format!("decoding the kernel's answer: {e}")))?;
    match reply.payload {
        NetlinkPayload::InnerMessage(m) => Ok(Some(m)),
        NetlinkPayload::Error(e) if e.code.is_none() => Ok(None),
        NetlinkPayload::Error(e) => Err(e.to_io()),
        NetlinkPayload::Done(_) | NetlinkPayload::Noop => Ok(None),
        _ => Err(io::Error::other("unexpected netlink answer")),
    }
}

fn socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a new, valid descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // Without this a netlink error comes back with the request echoed, not needed here.
    let one: libc::c_int = 1;
    // SAFETY: a valid int option on a valid socket.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_NETLINK,
            libc::NETLINK_CAP_ACK,
            &one as *const _ as *const libc::c_void,
            size_of::<libc::c_int>() as u32,
        );
    }
    Ok(sock)
}

fn send(sock: &OwnedFd, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = 1;
    let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    nl.finalize();
    let mut buf = vec![0u8; nl.buffer_len()];
    nl.serialize(&mut buf);
    // SAFETY: a zeroed sockaddr_nl addresses the kernel (pid 0).
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: buf and kernel outlive the call; lengths are theirs.
    let sent = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            buf.as_ptr() as *const libc::c_void,
            buf.len(),
            0,
            &kernel as *const _ as *const libc::sockaddr,
            size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn recv(sock: &OwnedFd, answer: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: answer outlives the call; the length is its own.
        let n = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                answer.as_mut_ptr() as *mut libc::c_void,
                answer.len(),
                0,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(n as usize);
    }
}

/// A bpf_link that attaches program `prog_id` to the XDP hook of `ifindex`, if there is
/// one: such a hook belongs to whoever holds the link, and no netlink request may replace
/// its program. (Link ifindexes are per network namespace, so the program id decides.)
pub fn holder(ifindex: u32, prog_id: u32) -> Option<u32> {
    let mut id = 0u32;
    // Bounded: link ids are finite, and this stops at the first error (ENOENT at the end).
    for _ in 0..65_536 {
        id = bpf::next_link_id(id)?;
        if let Some((kind, link_prog, link_ifindex)) = bpf::link_info(id)
            && kind == bpf::BPF_LINK_TYPE_XDP
            && link_prog == prog_id
            && link_ifindex == ifindex
        {
            return Some(id);
        }
    }
    None
}

/// Pins the BPF object `fd` at `path` (aya pins only objects it loaded itself).
pub fn obj_pin(fd: BorrowedFd<'_>, path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt as _;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::other("a NUL in the pin path"))?;
    bpf::obj_pin(fd.as_raw_fd() as u32, &c)
}

/// The few bpf(2) commands aya does not expose: link iteration and pinning an object it
/// did not load.
mod bpf {
    use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

    const BPF_OBJ_PIN: libc::c_long = 6;
    const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    const BPF_LINK_GET_FD_BY_ID: libc::c_long = 30;
    const BPF_LINK_GET_NEXT_ID: libc::c_long = 31;
    pub const BPF_LINK_TYPE_XDP: u32 = 6;

    fn sys(cmd: libc::c_long, attr: &mut [u8; 128]) -> libc::c_long {
        // SAFETY: attr is a zero-padded bpf_attr of the size passed.
        unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) }
    }

    pub fn obj_pin(fd: u32, path: &std::ffi::CStr) -> std::io::Result<()> {
        let mut attr = [0u8; 128];
        attr[0..8].copy_from_slice(&(path.as_ptr() as u64).to_ne_bytes());
        attr[8..12].copy_from_slice(&fd.to_ne_bytes());
        if sys(BPF_OBJ_PIN, &mut attr) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn next_link_id(start: u32) -> Option<u32> {
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&start.to_ne_bytes());
        if sys(BPF_LINK_GET_NEXT_ID, &mut attr) != 0 {
            return None;
        }
        Some(u32::from_ne_bytes(attr[4..8].try_into().ok()?))
    }

    /// The link's type, program id and (for an XDP link) interface index.
    pub fn link_info(id: u32) -> Option<(u32, u32, u32)> {
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&id.to_ne_bytes());
        let fd = sys(BPF_LINK_GET_FD_BY_ID, &mut attr);
        if fd < 0 {
            return None;
        }
        // SAFETY: the kernel just returned this new descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        // struct bpf_link_info: type, id, prog_id, then a union (8-aligned) whose XDP
        // member starts with the ifindex.
        let mut info = [0u8; 64];
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&(fd.as_raw_fd() as u32).to_ne_bytes());
        attr[4..8].copy_from_slice(&(info.len() as u32).to_ne_bytes());
        attr[8..16].copy_from_slice(&(info.as_mut_ptr() as u64).to_ne_bytes());
        if sys(BPF_OBJ_GET_INFO_BY_FD, &mut attr) != 0 {
            return None;
        }
        let word = |at: usize| u32::from_ne_bytes(info[at..at + 4].try_into().unwrap_or([0; 4]));
        Some((word(0), word(8), word(16)))
    }
}
