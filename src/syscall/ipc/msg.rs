//! msgget, msgsnd, msgrcv, msgctl: the host's message queues. `struct msgbuf` (a long
//! type, then the text), `msqid64_ds` and `msginfo` are the same bytes on AArch64 and
//! x86_64; MSG_NOERROR, MSG_EXCEPT, MSG_COPY and IPC_NOWAIT are the host's.

use super::{blocking, call, host, read_struct};
use crate::errno::Errno;
use crate::syscall::{Ctx, SysResult};

const IPC_RMID: i32 = 0;
const IPC_SET: i32 = 1;
const IPC_STAT: i32 = 2;
const IPC_INFO: i32 = 3;
const MSG_STAT: i32 = 11;
const MSG_INFO: i32 = 12;
const MSG_STAT_ANY: i32 = 13;

/// sizeof(struct msqid64_ds), sizeof(struct msginfo).
const MSQID_DS: usize = 120;
const MSGINFO: usize = 32;
/// Message lengths up to this size a host buffer without asking the host's limits.
const SMALL: u64 = 64 * 1024;

pub fn msgget(_ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    call(
        host::SYS_msgget,
        [a[0] as i32 as u64, a[1] as i32 as u64, 0, 0, 0, 0],
    )
}

/// The host's MSGMAX and MSGMNB (IPC_INFO): no message is longer than the larger.
fn limits() -> Result<(u64, u64), Errno> {
    let mut mi = [0i32; MSGINFO / 4];
    call(
        host::SYS_msgctl,
        [0, IPC_INFO as u64, mi.as_mut_ptr() as u64, 0, 0, 0],
    )?;
    Ok((mi[2].max(0) as u64, mi[3].max(0) as u64))
}

pub fn msgsnd(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (id, msgp, sz, flg) = (a[0] as i32, a[1], a[2], a[3] as i32);
    // ksys_msgsnd's order: the type is read first (EFAULT), then the sizes are checked.
    let mtype = i64::from_le_bytes(read_struct::<8>(ctx, msgp)?);
    if (sz as i64) < 0 || id < 0 || mtype < 1 {
        return Err(Errno::EINVAL);
    }
    // Longer than MSGMAX is EINVAL before the text is read. The host checks it too: the
    // limit is only asked here when the length could size a large copy, or when the
    // text cannot be read (EINVAL comes before EFAULT).
    let too_long = || Ok::<bool, Errno>(sz > limits()?.0);
    if sz > SMALL && too_long()? {
        return Err(Errno::EINVAL);
    }
    let msg = match ctx.read_bytes(msgp, 8 + sz as usize) {
        Err(Errno::EFAULT) if too_long()? => return Err(Errno::EINVAL),
        r => r?,
    };
    blocking(ctx, Errno::ERESTARTNOHAND, || {
        host::call(
            host::SYS_msgsnd,
            [id as u64, msg.as_ptr() as u64, sz, flg as u64, 0, 0],
        )
    })
}

pub fn msgrcv(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (id, msgp, sz, typ, flg) = (a[0] as i32, a[1], a[2], a[3], a[4] as i32);
    if id < 0 || (sz as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    // A host buffer as long as the longest message there can be.
    let cap = match sz {
        0..=SMALL => sz,
        _ => {
            let (msgmax, msgmnb) = limits()?;
            sz.min(msgmax.max(msgmnb))
        }
    };
    let mut buf = vec![0u8; 8 + cap as usize];
    let n = blocking(ctx, Errno::ERESTARTNOHAND, || {
        host::call(
            host::SYS_msgrcv,
            [id as u64, buf.as_mut_ptr() as u64, cap, typ, flg as u64, 0],
        )
    })?;
    // Received: a guest buffer that cannot take it is EFAULT, the message gone (Linux).
    ctx.write_bytes(msgp, &buf[..8 + n as usize])?;
    Ok(n)
}

pub fn msgctl(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (id, cmd, buf) = (a[0] as i32, a[1] as i32, a[2]);
    let mut host_buf = [0u8; 128];
    let out = match cmd {
        IPC_RMID => 0,
        IPC_SET => {
            host_buf[..MSQID_DS].copy_from_slice(&read_struct::<MSQID_DS>(ctx, buf)?);
            0
        }
        IPC_STAT | MSG_STAT | MSG_STAT_ANY => MSQID_DS,
        IPC_INFO | MSG_INFO => MSGINFO,
        // Unknown commands (IPC_64 included): the host's EINVAL.
        _ => return call(host::SYS_msgctl, [id as u64, cmd as u64, 0, 0, 0, 0]),
    };
    let p = if cmd == IPC_RMID {
        0
    } else {
        host_buf.as_mut_ptr() as u64
    };
    let r = call(host::SYS_msgctl, [id as u64, cmd as u64, p, 0, 0, 0])?;
    if out == MSQID_DS {
        let lrpid = i32::from_le_bytes(host_buf[100..104].try_into().unwrap());
        host_buf[100..104].copy_from_slice(&super::guest_pid(lrpid).to_le_bytes());
    }
    if out > 0 {
        ctx.write_bytes(buf, &host_buf[..out])?;
    }
    Ok(r)
}
