//! Sending whole Ethernet frames on one interface through an AF_PACKET socket: the only
//! way to choose the source MAC (the virtual MAC in VMAC mode) of what vipd sends.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{Result, io_err};

pub struct PacketSender {
    fd: OwnedFd,
    ifindex: u32,
}

impl PacketSender {
    pub fn open(ifindex: u32) -> Result<Self> {
        // Protocol 0: this socket receives nothing, it only sends.
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            return Err(io_err("opening an AF_PACKET socket")(
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Self { fd, ifindex })
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Sends one frame. A full transmit queue (EAGAIN) is an error the caller may log and
    /// move past: the next advertisement or announcement follows shortly.
    pub fn send(&self, frame: &[u8]) -> Result<()> {
        if frame.len() < 14 {
            return Err(io_err("sending a frame shorter than an Ethernet header")(
                std::io::Error::from(std::io::ErrorKind::InvalidInput),
            ));
        }
        // SAFETY: sockaddr_ll is plain data; zero is a valid starting value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = self.ifindex as i32;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: the buffer and address are valid for the lengths passed.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if n < 0 {
            return Err(io_err(format!("sending on ifindex {}", self.ifindex))(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}
