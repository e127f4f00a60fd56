//! The XDP programs run on crafted frames through BPF_PROG_TEST_RUN, with the maps
//! written through vipd's own dataplane API.

mod admission;
mod arp;
mod bfd;
mod carp;
mod common;
mod conflicts;
mod frags;
mod fuzz;
mod lb;
mod maps;
mod ndp;
mod shared;
mod truncation;
mod vmac;
mod vrrp;

use aya::{Ebpf, TestRun as _, TestRunOptions, programs::Xdp};
use vip_tests::{frames, require_root, xdp::XDP_PASS};

#[test]
fn pass_program_passes_everything() {
    require_root();
    let mut ebpf = Ebpf::load(vipd::objects::PASS).expect("object loads");
    let prog: &mut Xdp = ebpf
        .program_mut(vip_common::programs::PASS)
        .unwrap()
        .try_into()
        .unwrap();
    prog.load().expect("verifier accepts the pass program");
    let frame = frames::arp_request([2, 0, 0, 0, 0, 1], [192, 0, 2, 100], [192, 0, 2, 200]);
    let r = prog
        .test_run(TestRunOptions {
            data_in: Some(&frame),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.return_value, XDP_PASS);
}
