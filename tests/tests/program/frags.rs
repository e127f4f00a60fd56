//! Multi-buffer (jumbo) frames. The responder is frags-aware: BPF_PROG_TEST_RUN hands it
//! a frame longer than a page as several buffers, of which the program reads only the
//! first (about 3.5 KiB here), as a driver does at MTU 9000. Everything it judges in a
//! real frame sits in that first buffer; what does not is passed and counted, or for
//! IPv6 headers hidden past it, dropped like a chain too deep to see.

use vip_common::{BfdPeerKey, FAMILY_IPV4, FAMILY_IPV6, Policy, PolicyKey, v4_in_16};
use vip_tests::{
    frames,
    xdp::{Responder, TEST_IFINDEX, XDP_DROP, XDP_PASS, XDP_TX},
};

use crate::common::{CLIENT_IP, CLIENT_IP6, CLIENT_MAC, ROUTER_MAC, VIP, VIP6, moved, responder};

/// Longer than any first buffer (a page less head- and tailroom).
const JUMBO: usize = 8000;

/// `frame` padded with zeros to `len` bytes (trailing Ethernet padding: every length
/// field inside still describes the original packet).
fn padded(frame: &[u8], len: usize) -> Vec<u8> {
    let mut f = frame.to_vec();
    f.resize(len, 0);
    f
}

#[test]
fn the_test_run_really_splits_a_jumbo_frame() {
    // A frame whose only ARP request is padded past the first buffer is passed by the
    // program, where a single-buffer one of the same content is answered: the program saw
    // the frame as longer than its first buffer.
    let mut r = responder(true);
    let request = frames::arp_request(CLIENT_MAC, CLIENT_IP, VIP);
    assert_eq!(r.run(&request).0, XDP_TX);
    assert_eq!(r.run(&padded(&request, 3000)).0, XDP_TX, "one buffer");
    let (verdict, out) = r.run(&padded(&request, JUMBO));
    assert_eq!(verdict, XDP_PASS);
    // The request itself is passed unchanged (of its padding the program may have
    // trimmed some, from the last buffers).
    assert!(out.len() > 4096, "the frame still spans buffers");
    assert_eq!(
        out[..request.len()],
        request[..],
        "the request itself is untouched"
    );
    assert_eq!(
        moved(&r.counters()),
        [("arp_reply", 2), ("multi_buffer_pass", 1)]
    );
}

#[test]
fn an_arp_request_padded_past_the_first_buffer_for_a_vip_not_owned_is_still_dropped() {
    let mut r = responder(false);
    let request = padded(&frames::arp_request(CLIENT_MAC, CLIENT_IP, VIP), JUMBO);
    assert_eq!(r.run(&request).0, XDP_DROP);
    assert_eq!(moved(&r.counters()), [("vip_not_owned", 1)]);
}

#[test]
fn an_ns_padded_past_the_first_buffer_passes_for_the_kernel_to_judge() {
    let mut r = responder(true);
    let ns = frames::neighbor_solicitation(CLIENT_MAC, CLIENT_IP6, VIP6);
    assert_eq!(r.run(&ns).0, XDP_TX);
    let jumbo = padded(&ns, JUMBO);
    assert_eq!(r.run(&jumbo), (XDP_PASS, jumbo.clone()));
    assert_eq!(
        moved(&r.counters()),
        [("ns_reply", 1), ("multi_buffer_pass", 1)]
    );
}

/// A VRRPv3 IPv6 advertisement for VRID 53 with `count` addresses (one 16-byte address
/// each), checksummed, from `src`.
fn advert_v6(src: [u8; 16], count: u8) -> Vec<u8> {
    let group = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12];
    let mut body = vec![0x31, 53, 150, count, 0, 100, 0, 0];
    for i in 0..count {
        let mut a = VIP6;
        a[15] = i;
        body.extend_from_slice(&a);
    }
    let c = frames::ipv6_checksum(&src, &group, 112, &body);
    body[6..8].copy_from_slice(&c.to_be_bytes());
    frames::ipv6(
        CLIENT_MAC,
        [0x33, 0x33, 0, 0, 0, 0x12],
        src,
        group,
        112,
        255,
        &body,
    )
}

fn vrid53(r: &mut Responder) {
    r.maps()
        .set_policy(
            PolicyKey {
                ifindex: TEST_IFINDEX,
                vlan: 0,
                family: FAMILY_IPV6,
                vrid: 53,
            },
            Policy::new(3, 0),
        )
        .unwrap();
}

#[test]
fn an_advert_longer_than_the_first_buffer_passes_to_the_daemon_unjudged_and_counted() {
    let mut r = Responder::load();
    vrid53(&mut r);
    let src = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x64];
    let short = advert_v6(src, 2);
    assert_eq!(r.run(&short).0, XDP_PASS);
    assert_eq!(moved(&r.counters()), [("vrrp_pass", 1)]);
    // 255 addresses: 4,088 bytes of VRRP, past the first buffer.
    let long = advert_v6(src, 255);
    assert!(long.len() > 4096);
    assert_eq!(r.run(&long), (XDP_PASS, long.clone()));
    assert_eq!(
        moved(&r.counters()),
        [("vrrp_pass", 1), ("multi_buffer_pass", 1)]
    );
    // Its length is still checked against the frame: one that claims more than the frame
    // holds is dropped as before.
    let mut lying = long.clone();
    lying.truncate(long.len() - 16);
    assert_eq!(r.run(&lying).0, XDP_DROP);
}

#[test]
fn an_ns_behind_extension_headers_that_run_past_the_first_buffer_is_dropped_at_hop_limit_255() {
    let mut r = responder(true);
    let ns = frames::neighbor_solicitation(CLIENT_MAC, CLIENT_IP6, VIP6);
    // Two destination options headers of 2 KiB each (PadN filled): the second one, and
    // the NS after it, lie past the first buffer.
    let mut f = ns[..54].to_vec();
    let mut chain = Vec::new();
    for next in [60u8, 58] {
        // Hdr Ext Len 255: (255 + 1) × 8 bytes, filled with PadN options of at most 255
        // bytes each.
        let mut h = vec![0u8; 2048];
        h[0] = next;
        h[1] = 255;
        let mut at = 2;
        while at < 2048 {
            let len = (2048 - at - 2).min(255);
            h[at] = 1;
            h[at + 1] = len as u8;
            at += 2 + len;
        }
        chain.extend_from_slice(&h);
    }
    f[20] = 60;
    f.extend_from_slice(&chain);
    f.extend_from_slice(&ns[54..]);
    let payload = (ns.len() - 54 + chain.len()) as u16;
    f[18..20].copy_from_slice(&payload.to_be_bytes());
    assert!(f.len() > 4096);
    assert_eq!(r.run(&f).0, XDP_DROP);
    assert_eq!(moved(&r.counters()), [("ipv6_ext_too_deep", 1)]);
    // The same at another hop limit cannot be an NS the kernel would take: it passes.
    f[21] = 64;
    assert_eq!(r.run(&f).0, XDP_PASS);
}

#[test]
fn a_jumbo_bfd_echo_of_a_neighbour_is_looped_back_whole() {
    let mut r = Responder::load();
    r.maps()
        .add_bfd_peer(
            BfdPeerKey {
                ifindex: TEST_IFINDEX,
                vlan: 0,
                family: FAMILY_IPV4,
                _pad: 0,
                addr: v4_in_16(CLIENT_IP),
            },
            9,
            ROUTER_MAC,
        )
        .unwrap();
    // The neighbour's Control packet naming our session (Your Discriminator 9) teaches
    // the program its MAC: echoes are looped back only from there to our own MAC.
    let mut control = [0u8; 24];
    control[..4].copy_from_slice(&[0x20, 0x40, 3, 24]);
    control[8..12].copy_from_slice(&9u32.to_be_bytes());
    let udp = frames::udp(&CLIENT_IP, &VIP, 49152, 3784, &control);
    let learn = frames::ipv4(CLIENT_MAC, ROUTER_MAC, CLIENT_IP, VIP, 17, 255, &udp);
    assert_eq!(r.run(&learn).0, XDP_PASS);
    let payload = vec![0x5a; JUMBO - 42];
    let udp = frames::udp(&CLIENT_IP, &CLIENT_IP, 49152, 3785, &payload);
    let echo = frames::ipv4(CLIENT_MAC, ROUTER_MAC, CLIENT_IP, CLIENT_IP, 17, 255, &udp);
    assert_eq!(echo.len(), JUMBO);
    let (verdict, out) = r.run(&echo);
    assert_eq!(verdict, XDP_TX);
    let mut want = echo.clone();
    want[..6].copy_from_slice(&echo[6..12]);
    want[6..12].copy_from_slice(&echo[..6]);
    assert_eq!(
        out, want,
        "only the Ethernet addresses change, every buffer goes back"
    );
    assert_eq!(moved(&r.counters()), [("bfd_echo_reflected", 1)]);
}

#[test]
fn ordinary_jumbo_traffic_passes_untouched_and_uncounted() {
    let mut r = responder(true);
    let icmp = frames::echo_request(false, 1, 1, &vec![0xa5; JUMBO - 42]);
    let ping = frames::ipv4(CLIENT_MAC, ROUTER_MAC, CLIENT_IP, VIP, 1, 64, &icmp);
    assert_eq!(r.run(&ping), (XDP_PASS, ping.clone()));
    let icmp6 = frames::echo_request(true, 1, 1, &vec![0xa5; JUMBO - 62]);
    let ping6 = frames::ipv6(CLIENT_MAC, ROUTER_MAC, CLIENT_IP6, VIP6, 58, 64, &icmp6);
    assert_eq!(r.run(&ping6), (XDP_PASS, ping6.clone()));
    assert!(moved(&r.counters()).is_empty());
}

#[test]
fn the_copy_without_frags_support_passes_the_verifier() {
    // The copy vipd loads where it hands frames to a program without frags support. (Its
    // lack of the flag shows where it matters, at attach and in the program array; the
    // test run splits a jumbo frame whatever the flag, so it cannot show it here.)
    vip_tests::require_root();
    let mut ebpf = aya::Ebpf::load(vipd::objects::RESPONDER).expect("object loads");
    let prog: &mut aya::programs::Xdp = ebpf
        .program_mut(vip_common::programs::RESPONDER_NO_FRAGS)
        .expect("program in the object")
        .try_into()
        .unwrap();
    prog.load().expect("the verifier accepts it");
    let request = frames::arp_request(CLIENT_MAC, CLIENT_IP, VIP);
    use aya::TestRun as _;
    let r = prog
        .test_run(aya::TestRunOptions {
            data_in: Some(&request),
            ..Default::default()
        })
        .expect("test run");
    // No VIP configured in its fresh maps: the request passes.
    assert_eq!(r.return_value, XDP_PASS);
}
