//! The fork handover's wire format: a flat little-endian byte encoding of the state
//! (`Enc`/`Dec`) and a Unix stream socket carrying it, with host fds as SCM_RIGHTS.
//!
//! On the socket: a 16-byte header (number of fds, payload length), then the fds in
//! batches of at most [`FDS_PER_MSG`] (each batch rides on one byte), then the payload.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// SCM_MAX_FD is 253 on Linux.
pub const FDS_PER_MSG: usize = 250;

/// Encoder.
#[derive(Default)]
pub struct Enc(pub Vec<u8>);

impl Enc {
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u128(&mut self, v: u128) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bool(&mut self, v: bool) {
        self.u64(v as u64);
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    pub fn opt_bytes(&mut self, b: Option<&[u8]>) {
        self.bool(b.is_some());
        if let Some(b) = b {
            self.bytes(b);
        }
    }
}

/// Decoder: every read is bounds-checked (a short or corrupt handover is an error).
pub struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn short() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "truncated fork handover")
}

impl<'a> Dec<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Dec { buf, pos: 0 }
    }
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(short)?;
        let s = self.buf.get(self.pos..end).ok_or_else(short)?;
        self.pos = end;
        Ok(s)
    }
    pub fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    pub fn u128(&mut self) -> io::Result<u128> {
        Ok(u128::from_le_bytes(self.take(16)?.try_into().unwrap()))
    }
    pub fn bool(&mut self) -> io::Result<bool> {
        Ok(self.u64()? != 0)
    }
    pub fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let n = self.u64()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    pub fn opt_bytes(&mut self) -> io::Result<Option<Vec<u8>>> {
        Ok(if self.bool()? {
            Some(self.bytes()?)
        } else {
            None
        })
    }
}

/// The index of host fd `fd` among those to pass, adding it if new (an fd shared by
/// several parts of the state crosses once).
pub fn index_of(fds: &mut Vec<RawFd>, fd: RawFd) -> u64 {
    match fds.iter().position(|&f| f == fd) {
        Some(i) => i as u64,
        None => {
            fds.push(fd);
            (fds.len() - 1) as u64
        }
    }
}

/// The fds received with a payload, in order, looked up by index.
pub struct Passed(Vec<std::sync::Arc<OwnedFd>>);

impl Passed {
    pub fn new(fds: Vec<OwnedFd>) -> Passed {
        Passed(fds.into_iter().map(std::sync::Arc::new).collect())
    }

    /// Fd `i`, shared (a file mapping's backing).
    pub fn shared(&self, i: u64) -> io::Result<std::sync::Arc<OwnedFd>> {
        self.0.get(i as usize).cloned().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "fork handover: bad fd index")
        })
    }

    /// Fd `i` as an fd of its own (a dup: the received one may be shared by several
    /// parts of the state, and closes with this).
    pub fn owned(&self, i: u64) -> io::Result<OwnedFd> {
        self.shared(i)?.try_clone()
    }
}

fn send_fds(sock: &UnixStream, fds: &[RawFd]) -> io::Result<()> {
    let byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_ptr() as *mut _,
        iov_len: 1,
    };
    // SAFETY: CMSG_SPACE is pure arithmetic on its argument.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of_val(fds) as u32) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    // SAFETY: msghdr is integers and pointers, valid zeroed (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer is CMSG_SPACE bytes, enough for one header and the fds.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast::<RawFd>(), fds.len());
    }
    loop {
        // SAFETY: `msg` points at `iov` (one byte of `buf`) and at `cbuf`, the control buffer
        // sized by CMSG_SPACE, all alive across the call; `sock` is held open.
        let r = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if r == 1 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if r < 0 && e.kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return Err(e);
    }
}

fn recv_fds(sock: &UnixStream, want: usize, out: &mut Vec<OwnedFd>) -> io::Result<()> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: CMSG_SPACE is pure arithmetic on its argument.
    let space = unsafe { libc::CMSG_SPACE((want * 4) as u32) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    // SAFETY: msghdr is integers and pointers, valid zeroed (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    let r = loop {
        // SAFETY: `msg` points at `iov` (one byte of `buf`) and at `cbuf` of `space` bytes,
        // all alive and exclusively ours across the call; `sock` is held open.
        let r = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if r < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    if r != 1 {
        return Err(if r < 0 {
            io::Error::last_os_error()
        } else {
            short()
        });
    }
    let before = out.len();
    // SAFETY: walking the control messages the kernel wrote into our buffer.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let n = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                let p = libc::CMSG_DATA(c).cast::<RawFd>();
                for i in 0..n {
                    out.push(OwnedFd::from_raw_fd(p.add(i).read_unaligned()));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 || out.len() - before != want {
        return Err(io::Error::other("fork handover: fds lost in transit"));
    }
    Ok(())
}

/// Sends `payload` and `fds` (which stay open on this side).
pub fn send(sock: &mut UnixStream, payload: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let mut hdr = Enc::default();
    hdr.u64(fds.len() as u64);
    hdr.u64(payload.len() as u64);
    sock.write_all(&hdr.0)?;
    for batch in fds.chunks(FDS_PER_MSG) {
        send_fds(sock, batch)?;
    }
    sock.write_all(payload)
}

/// Receives what [`send`] sent: the payload and the fds (CLOEXEC), in order.
pub fn recv(sock: &mut UnixStream) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut hdr = [0u8; 16];
    sock.read_exact(&mut hdr)?;
    let mut d = Dec::new(&hdr);
    let (nfds, len) = (d.u64()? as usize, d.u64()? as usize);
    if nfds > 1 << 22 || len > 1 << 32 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad fork handover header",
        ));
    }
    let mut fds = Vec::with_capacity(nfds);
    let mut left = nfds;
    while left > 0 {
        let n = left.min(FDS_PER_MSG);
        recv_fds(sock, n, &mut fds)?;
        left -= n;
    }
    let mut payload = vec![0u8; len];
    sock.read_exact(&mut payload)?;
    Ok((payload, fds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_and_many_fds_cross_a_socket() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        // More fds than one SCM_RIGHTS message carries.
        let files: Vec<std::fs::File> = (0..FDS_PER_MSG + 7)
            .map(|_| std::fs::File::open("/dev/null").unwrap())
            .collect();
        let raw: Vec<RawFd> = files.iter().map(|f| f.as_raw_fd()).collect();
        let mut e = Enc::default();
        e.u64(42);
        e.bytes(b"hello");
        e.opt_bytes(None);
        e.u128(u128::MAX - 1);
        let payload = e.0.clone();
        let sender = std::thread::spawn(move || send(&mut a, &payload, &raw));
        let (got, fds) = recv(&mut b).unwrap();
        sender.join().unwrap().unwrap();
        assert_eq!(got, e.0);
        assert_eq!(fds.len(), files.len());
        let mut d = Dec::new(&got);
        assert_eq!(d.u64().unwrap(), 42);
        assert_eq!(d.bytes().unwrap(), b"hello");
        assert_eq!(d.opt_bytes().unwrap(), None);
        assert_eq!(d.u128().unwrap(), u128::MAX - 1);
        assert!(d.u64().is_err(), "reading past the end is an error");
        // SAFETY: F_GETFD takes no argument; the fd is open (owned by `fds`).
        let flags = unsafe { libc::fcntl(fds[0].as_raw_fd(), libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
    }
}
