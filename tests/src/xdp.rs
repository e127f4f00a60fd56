//! Running the responder through BPF_PROG_TEST_RUN with its real maps, loaded the way
//! vipd loads it (pinned under a per-test directory on bpffs, removed on drop).

use std::{
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
};

use aya::{TestRun as _, TestRunOptions};
use vip_common::Counters;
use vipd::dataplane::{Dataplane, Maps};

pub const XDP_ABORTED: u32 = 0;
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;

/// The ingress ifindex BPF_PROG_TEST_RUN reports without a context: the loopback device
/// of the caller's network namespace.
pub const TEST_IFINDEX: u32 = 1;

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct Responder {
    dp: Option<Dataplane>,
    dir: PathBuf,
}

impl Responder {
    pub fn load() -> Self {
        crate::require_root();
        let dir = PathBuf::from(format!(
            "/sys/fs/bpf/vipd-prog-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let dp = Dataplane::open(&dir).expect("responder loads and verifies");
        Self { dp: Some(dp), dir }
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn maps(&mut self) -> &mut Maps {
        self.dp.as_mut().expect("loaded").maps_mut()
    }

    pub fn counters(&mut self) -> Counters {
        self.maps().counters().expect("counters readable")
    }

    /// Runs one frame; returns the verdict and the frame as the program left it.
    pub fn run(&mut self, frame: &[u8]) -> (u32, Vec<u8>) {
        let prog = self
            .dp
            .as_mut()
            .expect("loaded")
            .responder()
            .expect("program");
        let mut out = vec![0u8; frame.len() + 512];
        let result = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN on a {}-byte frame: {e}", frame.len()));
        out.truncate(result.data_size_out as usize);
        (result.return_value, out)
    }

    /// Runs one frame through the tc ingress classifier beside the responder
    /// (`vip-ebpf/src/vmac.rs`, `to_host`) on an skb of the loopback device
    /// ([`TEST_IFINDEX`]): the kernel classifies it with `eth_type_trans` against the
    /// loopback's all-zero MAC, so any other unicast destination arrives as "another
    /// host". Returns the classifier's verdict, or the kernel's refusal with `ctx`
    /// given as the `__sk_buff` context.
    pub fn run_tc(&mut self, frame: &[u8], ctx: Option<&[u8]>) -> Result<i32, String> {
        let prog = self
            .dp
            .as_mut()
            .expect("loaded")
            .to_host()
            .expect("classifier");
        let mut out = vec![0u8; frame.len() + 512];
        let result = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: ctx,
                ..Default::default()
            })
            .map_err(|e| vipd::error_chain(&e))?;
        Ok(result.return_value as i32)
    }

    /// What the kernel reports about the loaded responder (verified instructions, sizes).
    pub fn info(&mut self) -> aya::programs::ProgramInfo {
        self.dp
            .as_mut()
            .expect("loaded")
            .responder()
            .expect("program")
            .info()
            .expect("program info")
    }

    /// Runs `frame` `repeat` times in the kernel; returns the mean cost per run.
    pub fn time(&mut self, frame: &[u8], repeat: u32) -> (u32, std::time::Duration) {
        let prog = self
            .dp
            .as_mut()
            .expect("loaded")
            .responder()
            .expect("program");
        let result = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                repeat,
                ..Default::default()
            })
            .expect("BPF_PROG_TEST_RUN");
        (result.return_value, result.duration)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        drop(self.dp.take());
        let _ = Dataplane::unpin_maps(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
