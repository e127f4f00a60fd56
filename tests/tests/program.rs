//! The XDP programs run on crafted frames through BPF_PROG_TEST_RUN.

use aya::{Ebpf, TestRun as _, TestRunOptions, programs::Xdp};
use vip_tests::{frames, require_root};

const XDP_PASS: u32 = 2;

fn loaded(object: &[u8], program: &str) -> Ebpf {
    let mut ebpf = Ebpf::load(object).expect("object loads");
    let prog: &mut Xdp = ebpf.program_mut(program).unwrap().try_into().unwrap();
    prog.load().expect("verifier accepts the program");
    ebpf
}

fn run(ebpf: &mut Ebpf, program: &str, frame: &[u8]) -> (u32, Vec<u8>) {
    let prog: &mut Xdp = ebpf.program_mut(program).unwrap().try_into().unwrap();
    let mut out = vec![0u8; frame.len() + 256];
    let result = prog
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..Default::default()
        })
        .expect("BPF_PROG_TEST_RUN");
    out.truncate(result.data_size_out as usize);
    (result.return_value, out)
}

#[test]
fn responder_passes_plain_and_vlan_tagged_frames_untouched() {
    require_root();
    let mut ebpf = loaded(vipd::objects::RESPONDER, vip_common::programs::RESPONDER);
    let arp = frames::arp_request([2, 0, 0, 0, 0, 1], [192, 0, 2, 100], [192, 0, 2, 200]);
    for frame in [arp.clone(), frames::vlan_tagged(&arp, 42)] {
        let (verdict, out) = run(&mut ebpf, vip_common::programs::RESPONDER, &frame);
        assert_eq!(verdict, XDP_PASS);
        assert_eq!(out, frame, "a passed frame is not modified");
    }
}

#[test]
fn pass_program_passes_everything() {
    require_root();
    let mut ebpf = loaded(vipd::objects::PASS, vip_common::programs::PASS);
    let frame = frames::arp_request([2, 0, 0, 0, 0, 1], [192, 0, 2, 100], [192, 0, 2, 200]);
    assert_eq!(run(&mut ebpf, vip_common::programs::PASS, &frame).0, XDP_PASS);
}
