//! Guest memory as the host sees it in a syscall: [`GuestSlice`], a checked range of
//! guest RAM reached only through raw pointers and volatile copies, never through a Rust
//! reference (`&[u8]` / `&mut [u8]`).
//!
//! Guest RAM is shared with every vCPU of the process (and, for the portable fork path's
//! memfd, with anything else mapping it): another guest thread may write a buffer while a
//! syscall reads it. A Rust reference would promise the compiler that nothing else
//! changes (or even reads) the bytes while it lives, which the guest can break at will.
//! So, as Firecracker's vm-memory does (`VolatileSlice::copy_to`/`copy_from`), the host
//! copies in and out with volatile accesses, aligned word by word where it can, and hands
//! host syscalls the raw pointer (`read(2)` into a guest buffer is no Rust reference
//! either). A racing guest sees torn data, exactly as with a kernel's
//! `copy_{from,to}_user`; the host never sees undefined behaviour.

use std::marker::PhantomData;

/// A checked, in-bounds range of guest RAM (`ptr..ptr+len`), borrowed from the RAM
/// mapping for `'a`. `Copy`: it is a pointer and a length.
#[derive(Clone, Copy, Debug)]
pub struct GuestSlice<'a> {
    ptr: *mut u8,
    len: usize,
    _ram: PhantomData<&'a super::ram::GuestRam>,
}

impl<'a> GuestSlice<'a> {
    /// The empty slice (a dangling, never dereferenced pointer).
    pub const fn empty() -> Self {
        GuestSlice {
            ptr: std::ptr::NonNull::dangling().as_ptr(),
            len: 0,
            _ram: PhantomData,
        }
    }

    /// # Safety
    /// `ptr..ptr+len` must lie inside one host mapping of guest RAM that stays mapped
    /// (readable and writable on the host side) for `'a`.
    pub unsafe fn new(ptr: *mut u8, len: usize) -> Self {
        GuestSlice {
            ptr,
            len,
            _ram: PhantomData,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The host address of the first byte, for host syscalls that read guest memory.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    /// The host address of the first byte, for host syscalls that fill guest memory.
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// A host iovec naming this range (readv/writev/sendmsg over guest buffers).
    pub fn iovec(&self) -> libc::iovec {
        libc::iovec {
            iov_base: self.ptr.cast(),
            iov_len: self.len,
        }
    }

    /// `len` bytes from `off`. Panics if that is not inside this slice.
    pub fn sub(&self, off: usize, len: usize) -> GuestSlice<'a> {
        let end = off.checked_add(len);
        assert!(
            end.is_some_and(|e| e <= self.len),
            "guest slice {off}+{len} outside {}",
            self.len
        );
        // SAFETY: `off + len <= self.len`, so the range is inside this slice's range,
        // which the constructor's contract keeps mapped for 'a.
        unsafe { GuestSlice::new(self.ptr.add(off), len) }
    }

    /// Copies the first `dst.len()` bytes of this slice into `dst`. Panics if `dst` is
    /// longer than the slice.
    pub fn copy_to(&self, dst: &mut [u8]) {
        assert!(dst.len() <= self.len, "guest slice read past its end");
        // SAFETY: the source is `dst.len() <= self.len` bytes of live guest RAM (the
        // constructor's contract), the destination a host buffer of that length that
        // cannot overlap guest RAM (no reference into guest RAM exists).
        unsafe { copy_out(dst.as_mut_ptr(), self.ptr, dst.len()) }
    }

    /// Copies `src` into the first `src.len()` bytes of this slice. Panics if `src` is
    /// longer than the slice.
    pub fn copy_from(&self, src: &[u8]) {
        assert!(src.len() <= self.len, "guest slice written past its end");
        // SAFETY: as in `copy_to`, with the roles swapped.
        unsafe { copy_in(self.ptr, src.as_ptr(), src.len()) }
    }

    /// The slice's bytes, copied out.
    pub fn to_vec(self) -> Vec<u8> {
        let mut v = vec![0u8; self.len];
        self.copy_to(&mut v);
        v
    }

    /// Sets every byte of the slice to `byte`.
    pub fn fill(&self, byte: u8) {
        let word = u64::from_ne_bytes([byte; W]);
        let mut i = 0usize;
        // SAFETY: every store is at an offset `< len` (word stores end at `i + W <= len`)
        // inside the live range; word stores only at 8-aligned addresses (checked).
        unsafe {
            while i < self.len && !(self.ptr as usize + i).is_multiple_of(W) {
                self.ptr.add(i).write_volatile(byte);
                i += 1;
            }
            while i + W <= self.len {
                self.ptr.add(i).cast::<u64>().write_volatile(word);
                i += W;
            }
            while i < self.len {
                self.ptr.add(i).write_volatile(byte);
                i += 1;
            }
        }
    }
}

const W: usize = std::mem::size_of::<u64>();

/// Copies `n` bytes of guest memory at `src` into the host buffer at `dst`. The guest
/// side is read with volatile accesses, aligned words where it can (bytes up to the
/// first 8-aligned guest address and after the last whole word); the host side, which
/// nothing else touches, with plain unaligned stores. No reference to either end is
/// made, so a concurrent writer on the guest side is no data race in the Rust sense.
///
/// # Safety
/// `src..src+n` must be readable and `dst..dst+n` writable, and the two ranges must not
/// overlap.
pub unsafe fn copy_out(dst: *mut u8, src: *const u8, n: usize) {
    let mut i = 0usize;
    // SAFETY: every access is at an offset `< n` (word accesses end at `i + W <= n`) from
    // `src`/`dst`, which the caller guarantees readable/writable; volatile word reads
    // are made only at 8-aligned guest addresses (the first loop gets there), and the
    // host-side stores are unaligned writes, valid at any address.
    unsafe {
        while i < n && !(src as usize + i).is_multiple_of(W) {
            dst.add(i).write(src.add(i).read_volatile());
            i += 1;
        }
        while i + W <= n {
            let w = src.add(i).cast::<u64>().read_volatile();
            dst.add(i).cast::<u64>().write_unaligned(w);
            i += W;
        }
        while i < n {
            dst.add(i).write(src.add(i).read_volatile());
            i += 1;
        }
    }
}

/// Copies `n` bytes from the host buffer at `src` into guest memory at `dst`: the
/// mirror of [`copy_out`] (volatile, word-aligned stores on the guest side, plain
/// unaligned loads on the host side).
///
/// # Safety
/// `src..src+n` must be readable and `dst..dst+n` writable, and the two ranges must not
/// overlap.
pub unsafe fn copy_in(dst: *mut u8, src: *const u8, n: usize) {
    let mut i = 0usize;
    // SAFETY: as in `copy_out`, with the guest side (volatile, aligned words) the
    // destination and the host side (unaligned loads) the source.
    unsafe {
        while i < n && !(dst as usize + i).is_multiple_of(W) {
            dst.add(i).write_volatile(src.add(i).read());
            i += 1;
        }
        while i + W <= n {
            let w = src.add(i).cast::<u64>().read_unaligned();
            dst.add(i).cast::<u64>().write_volatile(w);
            i += W;
        }
        while i < n {
            dst.add(i).write_volatile(src.add(i).read());
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_every_alignment() {
        let mut backing = vec![0u8; 64];
        for off in 0..9 {
            for len in 0..40 {
                backing.fill(0);
                let src: Vec<u8> = (1..=len as u8).collect();
                // SAFETY: `off + len <= 64`: inside `backing`, which outlives the slice.
                let s = unsafe { GuestSlice::new(backing.as_mut_ptr().add(off), len) };
                s.copy_from(&src);
                assert_eq!(&backing[off..off + len], &src[..]);
                let mut back = vec![0u8; len + 3];
                for h in 0..3 {
                    s.copy_to(&mut back[h..h + len]);
                    assert_eq!(&back[h..h + len], &src[..]);
                    s.sub(0, len).copy_from(&back[h..h + len]);
                    assert_eq!(&backing[off..off + len], &src[..]);
                }
                assert_eq!(s.to_vec(), src);
                s.sub(len / 2, len - len / 2).fill(0xee);
                assert!(backing[off + len / 2..off + len].iter().all(|&b| b == 0xee));
            }
        }
    }
}
