//! Internet checksum (RFC 1071) pieces. Sums are kept in a u64 of 32-bit big-endian words
//! and folded once at the end, so no carry is ever lost.

use core::ffi::c_void;

use aya_ebpf::{helpers::generated::bpf_loop, programs::XdpContext};

use crate::frame::ptr_at;

/// Adds the bytes of `b` (length a multiple of 4) as big-endian 32-bit words.
#[inline(always)]
pub fn add<const N: usize>(mut acc: u64, b: &[u8; N]) -> u64 {
    let mut i = 0;
    while i + 4 <= N {
        acc += u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as u64;
        i += 4;
    }
    acc
}

/// Folds a sum of 32-bit words to the 16-bit one's complement sum.
#[inline(always)]
pub fn fold(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// Adds `len` bytes of the frame starting at `offset`. `len` must be a multiple of 4 and
/// at most `4 * MAX_WORDS`; `None` if the bytes are not all inside the frame.
#[inline(always)]
pub fn add_frame<const MAX_WORDS: usize>(
    ctx: &XdpContext,
    mut acc: u64,
    offset: usize,
    len: usize,
) -> Option<u64> {
    let words = len / 4;
    let mut i = 0;
    while i < MAX_WORDS {
        if i >= words {
            break;
        }
        // SAFETY: ptr_at proved the word is inside the frame.
        let w = unsafe { *ptr_at::<[u8; 4]>(ctx, offset + i * 4)? };
        acc += u32::from_be_bytes(w) as u64;
        i += 1;
    }
    Some(acc)
}

/// What [`add_frame_long`] hands each round of its loop.
#[repr(C)]
struct LongSum {
    /// The frame's data and data_end, as the program sees them.
    data: usize,
    end: usize,
    offset: usize,
    acc: u64,
    /// Set when a word ran past the end of the frame.
    short: u64,
}

/// Like [`add_frame`], for messages up to `MAX_WORDS` words long (VRRP: up to 4 KiB), as
/// a `bpf_loop`: the verifier checks the loop body once per call instead of once per
/// word on every path that reaches it, which for a thousand words on each of the paths
/// through VRRP admission would exhaust its budget.
#[inline(always)]
pub fn add_frame_long<const MAX_WORDS: usize>(
    ctx: &XdpContext,
    acc: u64,
    offset: usize,
    len: usize,
) -> Option<u64> {
    const { assert!(MAX_WORDS <= LONG_MAX_WORDS) };
    let words = len / 4;
    if words > MAX_WORDS {
        return None;
    }
    let mut s = LongSum {
        data: ctx.data(),
        end: ctx.data_end(),
        offset,
        acc,
        short: 0,
    };
    // SAFETY: `long_sum_word` has the callback signature bpf_loop expects and reads only
    // the `LongSum` passed with it, which outlives the call.
    let done = unsafe {
        bpf_loop(
            words as u32,
            long_sum_word as *mut c_void,
            &mut s as *mut LongSum as *mut c_void,
            0,
        )
    };
    if done != words as i64 || s.short != 0 {
        return None;
    }
    Some(s.acc)
}

/// The most words [`add_frame_long`] can sum; the index is masked to it so the verifier
/// knows every offset is bounded.
const LONG_MAX_WORDS: usize = 1024;

extern "C" fn long_sum_word(index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the pointer add_frame_long gave it.
    let s = unsafe { &mut *(ctx as *mut LongSum) };
    let at = s.data + s.offset + (index as usize & (LONG_MAX_WORDS - 1)) * 4;
    if at + 4 > s.end {
        s.short = 1;
        return 1;
    }
    // SAFETY: the check above proved the word is inside the frame.
    let w = unsafe { *(at as *const [u8; 4]) };
    s.acc += u32::from_be_bytes(w) as u64;
    0
}
