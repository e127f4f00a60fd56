//! Internet checksum (RFC 1071) pieces. Sums are kept in a u64 of 32-bit big-endian words
//! and folded once at the end, so no carry is ever lost.

use aya_ebpf::programs::XdpContext;

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
