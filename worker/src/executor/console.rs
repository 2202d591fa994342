//! A container's or an exec's terminal: runc creates it and sends the
//! master end over a unix socket (`--console-socket`); shoald keeps it to
//! read the output, write the input and resize it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

/// Where the console sockets go: short (a socket path has at most 107
/// bytes, a bundle path with a 64-digit ID is longer) and private to root,
/// since whoever connects first hands shoald the "terminal".
const SOCKET_DIR: &str = "/run/shoal/consoles";

/// A fresh console socket path for `tag` (an ID; its first 16 characters
/// are used), in a folder only root may enter.
pub fn socket_path(tag: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = std::path::Path::new(SOCKET_DIR);
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| format!("creating {SOCKET_DIR}: {e}"))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| format!("securing {SOCKET_DIR}: {e}"))?;
    let nonce: u32 = rand::random();
    Ok(dir.join(format!("{}-{nonce:08x}.sock", &tag[..tag.len().min(16)])))
}

/// Sets the terminal's size (rows, columns), as `docker exec -it` and
/// `docker run -it` ask when the client's window changes.
pub fn set_size(fd: &OwnedFd, rows: u16, cols: u16) -> std::io::Result<()> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Accepts runc's connection on the console socket and takes the
/// terminal's master end it sends (SCM_RIGHTS), within 10 seconds.
pub fn receive_fd(listener: &std::os::unix::net::UnixListener) -> Result<OwnedFd, String> {
    use std::os::fd::FromRawFd;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(format!("no terminal from runc: {e}")),
        }
    };
    conn.set_nonblocking(false).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let mut data = [0u8; 4096];
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
    // Room for one control message carrying one fd.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; the pointers set below stay valid for the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: a valid socket and a msghdr whose buffers outlive the call.
    let n = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(format!("receiving the terminal from runc: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: walking the control messages recvmsg filled in.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::c_int);
                return Ok(OwnedFd::from_raw_fd(fd));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Err("runc sent no terminal".into())
}
