//! A bounded, rate-limited frame flood from a lab namespace (the attacker's): the given
//! frames in turn on an AF_PACKET socket, paced to `rate`, stopping at `max_frames` or
//! `max_time`, whichever comes first. Every bound is checked before anything is sent.

use std::{
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};

use vip_tests::lab::netns;

/// Hard limits whatever the caller asks: no flood may exceed them.
pub const MAX_RATE: u64 = 100_000;
pub const MAX_FRAMES: u64 = 1_000_000;
pub const MAX_TIME: Duration = Duration::from_secs(30);
/// Frames sent back to back before the pacer sleeps.
const BURST: u64 = 16;

pub struct Flood {
    pub ns: String,
    pub ifname: String,
    pub frames: Vec<Vec<u8>>,
    /// Frames per second.
    pub rate: u64,
    pub max_frames: u64,
    pub max_time: Duration,
}

/// What a finished flood did.
#[derive(Clone, Copy, Debug)]
pub struct Sent {
    pub frames: u64,
    pub seconds: f64,
}

pub struct Flooder {
    thread: Option<JoinHandle<Result<Sent>>>,
}

impl Flooder {
    pub fn start(f: Flood) -> Result<Flooder> {
        if f.rate == 0 || f.rate > MAX_RATE || f.max_frames > MAX_FRAMES || f.max_time > MAX_TIME {
            bail!(
                "flood out of bounds: {} frames/s, {} frames, {:?} (limits {MAX_RATE}/s, \
                 {MAX_FRAMES}, {MAX_TIME:?})",
                f.rate,
                f.max_frames,
                f.max_time
            );
        }
        if f.frames.is_empty() || f.frames.iter().any(|x| x.len() < 14) {
            bail!("flood without frames");
        }
        let thread = std::thread::Builder::new()
            .name(format!("flood-{}", f.ns))
            .spawn(move || -> Result<Sent> {
                netns::enter_netns(&f.ns)?;
                let (fd, ifindex) = open(&f.ifname)?;
                let t0 = Instant::now();
                let mut sent = 0u64;
                while sent < f.max_frames && t0.elapsed() < f.max_time {
                    for _ in 0..BURST.min(f.max_frames - sent) {
                        let frame = &f.frames[(sent % f.frames.len() as u64) as usize];
                        send(&fd, ifindex, frame);
                        sent += 1;
                    }
                    let due = t0 + Duration::from_secs_f64(sent as f64 / f.rate as f64);
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                }
                Ok(Sent {
                    frames: sent,
                    seconds: t0.elapsed().as_secs_f64(),
                })
            })?;
        Ok(Flooder {
            thread: Some(thread),
        })
    }

    /// Waits for the flood to reach its bound.
    pub fn join(mut self) -> Result<Sent> {
        self.thread
            .take()
            .expect("joined once")
            .join()
            .map_err(|_| anyhow!("flood thread panicked"))?
    }
}

impl Drop for Flooder {
    fn drop(&mut self) {
        // The flood is bounded; waiting for it keeps it from outliving its lab.
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn open(ifname: &str) -> Result<(OwnedFd, i32)> {
    let name = std::ffi::CString::new(ifname)?;
    // SAFETY: plain libc calls; return codes are checked.
    unsafe {
        let ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
        if ifindex == 0 {
            bail!("no interface {ifname}");
        }
        // Protocol 0: a send-only socket that receives nothing.
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("AF_PACKET socket");
        }
        Ok((OwnedFd::from_raw_fd(fd), ifindex))
    }
}

fn send(fd: &OwnedFd, ifindex: i32, frame: &[u8]) {
    // SAFETY: the frame and address outlive the call.
    unsafe {
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        // A full queue drops the frame: the flood is a ceiling, not a promise.
        libc::sendto(
            fd.as_raw_fd(),
            frame.as_ptr() as *const libc::c_void,
            frame.len(),
            0,
            &sll as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        );
    }
}
