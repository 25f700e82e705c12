//! Gzip decompression with libdeflate, every member, with a hard size limit.
//!
//! libdeflate decompresses a whole member into a buffer in one call (≈ 4 GB/s), much
//! faster than a streaming inflater. Its plain `gzip_decompress` silently ignores what
//! follows the first member, which would lose the records of a multi-member file; this
//! module uses the `_ex` entry point, which reports how much input a member consumed,
//! and loops over all members. The output buffer is sized from the trailer's ISIZE
//! (a hint, capped by the limit) and doubled on `INSUFFICIENT_SPACE` up to the limit:
//! a gzip bomb stops at the limit with [`ObjectError::TooLarge`].

use std::ffi::c_void;
use std::ptr::NonNull;

use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_decompressor, libdeflate_free_decompressor,
    libdeflate_gzip_decompress_ex, libdeflate_result_LIBDEFLATE_BAD_DATA,
    libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE, libdeflate_result_LIBDEFLATE_SUCCESS,
};

use crate::error::ObjectError;

/// Default limit of one object's decompressed size.
pub const DEFAULT_MAX_DECOMPRESSED: u64 = 512 << 20;

/// Whether `data` starts with the gzip magic bytes.
pub fn is_gzip(data: &[u8]) -> bool {
    data.len() >= 2 && data[0] == 0x1f && data[1] == 0x8b
}

/// An owned libdeflate decompressor (not thread-safe; one per thread).
pub struct Gunzip {
    ptr: NonNull<libdeflate_decompressor>,
}

// SAFETY: a libdeflate decompressor holds no thread-bound state; it may move between
// threads as long as it is used by one thread at a time, which `&mut self` enforces.
unsafe impl Send for Gunzip {}

impl Gunzip {
    /// Allocates a decompressor; `None` when the allocation fails.
    pub fn new() -> Option<Self> {
        // SAFETY: plain allocation call with no arguments.
        let raw = unsafe { libdeflate_alloc_decompressor() };
        NonNull::new(raw).map(|ptr| Self { ptr })
    }

    /// Decompresses all members of `input` into `out` (cleared first).
    pub fn decompress(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: u64,
    ) -> Result<(), ObjectError> {
        out.clear();
        if input.is_empty() {
            return Err(ObjectError::Gzip("no data".into()));
        }
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut offset = 0usize;
        let mut member = 0usize;
        while offset < input.len() {
            let rest = &input[offset..];
            if !is_gzip(rest) {
                return Err(ObjectError::Gzip(format!(
                    "{} bytes of trailing data after gzip member {member} (at byte {offset})",
                    rest.len()
                )));
            }
            // ISIZE of the last member: a hint for the first (usually only) member.
            let hint = if member == 0 && input.len() >= 4 {
                let t = &input[input.len() - 4..];
                u32::from_le_bytes([t[0], t[1], t[2], t[3]]) as usize
            } else {
                rest.len().saturating_mul(8)
            };
            let mut want = hint.max(rest.len().saturating_mul(2)).max(4096);
            loop {
                let start = out.len();
                let avail = want.min(limit.saturating_sub(start));
                out.reserve(avail);
                let mut in_used = 0usize;
                let mut out_used = 0usize;
                // SAFETY: `rest` is a valid slice; the output pointer points at `avail`
                // bytes of reserved (uninitialised) capacity after `start`, which
                // libdeflate writes and never reads; `out_used` bytes are initialised
                // when it returns SUCCESS, and only then is the length extended.
                let ret = unsafe {
                    libdeflate_gzip_decompress_ex(
                        self.ptr.as_ptr(),
                        rest.as_ptr() as *const c_void,
                        rest.len(),
                        out.as_mut_ptr().add(start) as *mut c_void,
                        avail,
                        &mut in_used,
                        &mut out_used,
                    )
                };
                if ret == libdeflate_result_LIBDEFLATE_SUCCESS {
                    // SAFETY: see above; out_used <= avail bytes were written.
                    unsafe { out.set_len(start + out_used.min(avail)) };
                    offset += in_used.max(1);
                    member += 1;
                    break;
                } else if ret == libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE {
                    if start + avail >= limit {
                        return Err(ObjectError::TooLarge {
                            limit: limit as u64,
                        });
                    }
                    want = avail.saturating_mul(2);
                } else if ret == libdeflate_result_LIBDEFLATE_BAD_DATA {
                    return Err(ObjectError::Gzip(format!(
                        "bad or truncated deflate data in member {member} (at byte {offset})"
                    )));
                } else {
                    return Err(ObjectError::Gzip(format!(
                        "libdeflate result {ret} in member {member}"
                    )));
                }
            }
        }
        Ok(())
    }
}

impl Drop for Gunzip {
    fn drop(&mut self) {
        // SAFETY: the pointer came from libdeflate_alloc_decompressor and is freed once.
        unsafe { libdeflate_free_decompressor(self.ptr.as_ptr()) }
    }
}

/// Compresses `data` as one gzip member (deterministic: no timestamp in the header).
pub fn gzip(data: &[u8], level: i32) -> Vec<u8> {
    let lvl = libdeflater::CompressionLvl::new(level).unwrap_or_default();
    let mut c = libdeflater::Compressor::new(lvl);
    let mut out = vec![0u8; c.gzip_compress_bound(data.len())];
    match c.gzip_compress(data, &mut out) {
        Ok(n) => {
            out.truncate(n);
            out
        }
        // The bound guarantees space; an empty result makes the caller's check fail loudly.
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gun(input: &[u8], limit: u64) -> Result<Vec<u8>, ObjectError> {
        let mut g = Gunzip::new().ok_or_else(|| ObjectError::Io("alloc".into()))?;
        let mut out = Vec::new();
        g.decompress(input, &mut out, limit).map(|_| out)
    }

    #[test]
    fn round_trip_and_multi_member() {
        let a = gzip(b"hello ", 6);
        let b = gzip(b"world", 6);
        assert_eq!(gun(&a, 1 << 20).ok(), Some(b"hello ".to_vec()));
        let mut both = a.clone();
        both.extend_from_slice(&b);
        assert_eq!(gun(&both, 1 << 20).ok(), Some(b"hello world".to_vec()));
    }

    #[test]
    fn truncated_and_garbage_are_errors() {
        let a = gzip(&vec![b'x'; 100_000], 6);
        assert!(matches!(
            gun(&a[..a.len() / 2], 1 << 20),
            Err(ObjectError::Gzip(_))
        ));
        let mut g = a.clone();
        g.extend_from_slice(b"junk");
        assert!(matches!(gun(&g, 1 << 20), Err(ObjectError::Gzip(_))));
    }

    #[test]
    fn bomb_stops_at_limit() {
        let a = gzip(&vec![0u8; 10 << 20], 9);
        assert!(a.len() < 100_000);
        assert_eq!(
            gun(&a, 1 << 20),
            Err(ObjectError::TooLarge { limit: 1 << 20 })
        );
    }

    #[test]
    fn lying_isize_still_decompresses() {
        let mut a = gzip(&vec![b'y'; 50_000], 6);
        let n = a.len();
        // Corrupt the trailer's ISIZE: libdeflate then reports bad data, never a crash.
        a[n - 4..].copy_from_slice(&7u32.to_le_bytes());
        assert!(gun(&a, 1 << 20).is_err());
    }
}
