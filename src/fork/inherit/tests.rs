//! The inheritance survives the spawn path's wire: what the parent captured is what the
//! child decodes, and the child's fd table keeps the parent's numbers, CLOEXEC flags and
//! dup aliases over the same host objects.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use elfuse_actors::fdtable::OpenFile;

use super::*;
use crate::fork::fds::Desc;
use crate::fork::wire;

fn pipe() -> (std::fs::File, std::fs::File) {
    let (r, w) = nix::unistd::pipe().unwrap();
    (r.into(), w.into())
}

/// A standard stream's stand-in: the descriptions' drop closes it (as a guest close()
/// closes the host's stdout), so never the test's own fd 1.
fn stdio() -> i32 {
    use std::os::fd::IntoRawFd;
    std::fs::File::open("/dev/null").unwrap().into_raw_fd()
}

fn captured(write_end: &std::fs::File, stdio: i32) -> Captured {
    let own = write_end.try_clone().unwrap();
    let file = OpenFile::host(OwnedFd::from(own), Some(b"/pipe".as_slice()));
    let raw = file.raw();
    let mut actions = [KSigaction::default(); NSIG];
    actions[10] = KSigaction {
        handler: 0x1234,
        flags: 4,
        restorer: 0x5678,
        mask: 1 << 9,
    };
    let mut rlimits = [Rlimit { cur: 1, max: 2 }; RLIM_NLIMITS];
    rlimits[3] = Rlimit {
        cur: 8 << 20,
        max: u64::MAX,
    };
    Inheritance {
        vfork: true,
        thread: ChildThread {
            comm: *b"worker\0\0\0\0\0\0\0\0\0\0",
            dumpable: false,
            rseq: Some((0x7000, 32, 0x53053053)),
            clear_child_tid: 0x9000,
            set_child_tid: 0x9008,
            sigmask: 1 << 14,
            altstack: AltStack {
                sp: 0x40000,
                size: 8192,
                flags: 0,
            },
            seccomp: Seccomp::default(),
        },
        fds: Fds {
            limits: (512, 4096),
            // fd 3 and its dup 7 (CLOEXEC) share one description; 1 is a standard stream.
            slots: vec![(1, 1, false), (3, 0, false), (7, 0, true)],
            descs: vec![
                Desc::Host {
                    fd: raw,
                    path: Some(b"/pipe".as_slice().into()),
                    urandom: false,
                    cache: false,
                },
                Desc::Stdio {
                    fd: stdio,
                    path: None,
                },
            ],
            parent: vec![file],
        },
        actions,
        fs: FsContext {
            sysroot: Some("/srv/root".into()),
            umask: 0o027,
            chroot: true,
        },
        rlimits,
        creds: Creds {
            uid: 1,
            euid: 2,
            gid: 3,
            egid: 4,
        },
        personality: 0x0040000,
        exe: (b"/bin/prog".to_vec(), "/host/bin/prog".into()),
        trace: TraceSet {
            syscalls: true,
            actors: false,
        },
        trace_sink: None,
        sigreturn_tramp: 0xabc0,
        vvar: 0xf000_0000,
    }
}

#[test]
fn an_inheritance_crosses_the_wire_whole() {
    let (mut r, w) = pipe();
    let stdio = stdio();
    let out = captured(&w, stdio);
    let mut e = wire::Enc::default();
    let mut fds = Vec::new();
    out.encode(&mut e, &mut fds);
    assert_eq!(
        fds,
        vec![out.fds.parent[0].raw()],
        "the description's fd, once"
    );

    let (mut a, mut b) = UnixStream::pair().unwrap();
    let payload = e.0.clone();
    let raw = fds.clone();
    let sender = std::thread::spawn(move || wire::send(&mut a, &payload, &raw));
    let (got, passed) = wire::recv(&mut b).unwrap();
    sender.join().unwrap().unwrap();
    let passed = wire::Passed::new(passed);
    let mut d = wire::Dec::new(&got);
    let inh = Received::decode(&mut d, &passed).unwrap();
    assert!(d.u64().is_err(), "nothing left over");

    assert!(inh.vfork);
    let t = &inh.thread;
    assert_eq!(&t.comm[..7], b"worker\0");
    assert!(!t.dumpable);
    assert_eq!(t.rseq, Some((0x7000, 32, 0x53053053)));
    assert_eq!((t.clear_child_tid, t.set_child_tid), (0x9000, 0x9008));
    assert_eq!(t.sigmask, 1 << 14);
    assert_eq!(t.altstack, out.thread.altstack);
    assert_eq!(inh.actions, out.actions);
    assert_eq!(inh.fs.sysroot.as_deref(), Some("/srv/root".as_ref()));
    assert_eq!((inh.fs.umask, inh.fs.chroot), (0o027, true));
    assert_eq!(inh.rlimits, out.rlimits);
    let c = inh.creds;
    assert_eq!((c.uid, c.euid, c.gid, c.egid), (1, 2, 3, 4));
    assert_eq!(inh.personality, 0x0040000);
    assert_eq!(inh.exe, out.exe);
    assert_eq!(inh.trace, out.trace);
    assert!(inh.trace_sink.is_none());
    assert_eq!((inh.sigreturn_tramp, inh.vvar), (0xabc0, 0xf000_0000));

    let mut signals = SignalState::default();
    let table = inh.fds.into_table(&mut signals);
    assert_eq!(table.limits(), (512, 4096));
    let snap = table.snapshot();
    let at = |n: i32| snap.iter().find(|(fd, ..)| *fd == n).cloned().unwrap();
    assert_eq!(snap.len(), 3);
    let (three, seven) = (at(3), at(7));
    assert!(
        Arc::ptr_eq(&three.1, &seven.1),
        "dup aliases stay one description"
    );
    assert!(!three.2 && seven.2, "CLOEXEC kept per fd");
    assert_eq!(three.1.path.as_deref(), Some(b"/pipe".as_slice()));
    assert_eq!(at(1).1.raw(), stdio);
    // The child's description writes into the parent's pipe.
    let mut f = std::fs::File::from(three.1.raw_dup());
    f.write_all(b"hi").unwrap();
    // Every write end closed (the received fd included): the read sees end-of-file.
    drop((f, out, w, table, snap, three, seven, passed));
    let mut s = String::new();
    r.read_to_string(&mut s).unwrap();
    assert_eq!(s, "hi");
}

trait RawDup {
    fn raw_dup(&self) -> OwnedFd;
}

impl RawDup for OpenFile {
    fn raw_dup(&self) -> OwnedFd {
        // SAFETY: F_DUPFD_CLOEXEC takes an int; the description's fd is open (owned by it).
        let fd = unsafe { libc::fcntl(self.raw(), libc::F_DUPFD_CLOEXEC, 3) };
        assert!(fd >= 0);
        // SAFETY: a fresh fd owned by nobody else.
        unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
    }
}

#[test]
fn a_corrupt_inheritance_is_an_error() {
    let (_r, w) = pipe();
    let out = captured(&w, -1);
    let mut e = wire::Enc::default();
    let mut fds = Vec::new();
    out.encode(&mut e, &mut fds);
    let passed = wire::Passed::new(vec![]);
    // No fds passed: the description's index is out of range.
    assert!(Received::decode(&mut wire::Dec::new(&e.0), &passed).is_err());
    // Truncated anywhere.
    for cut in [0, 8, e.0.len() / 2, e.0.len() - 1] {
        let passed = wire::Passed::new(vec![OwnedFd::from(w.try_clone().unwrap())]);
        let r = Received::decode(&mut wire::Dec::new(&e.0[..cut]), &passed);
        assert!(r.is_err(), "cut at {cut}");
    }
}
