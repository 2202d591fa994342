//! A container's or an exec's terminal: runc creates it and sends the
//! master end over a unix socket (`--console-socket`); shoald keeps it to
//! read the output, write the input and resize it.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

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
    // The request number and struct come from libc (nix has no winsize
    // setter); the call goes through nix's ioctl wrapper.
    nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, libc::winsize);
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
    unsafe { tiocswinsz(fd.as_raw_fd(), &ws) }?;
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
    let mut iov = [std::io::IoSliceMut::new(&mut data)];
    // Room for control messages (64 bytes, as many as 12 fds); runc sends one fd.
    let mut control = nix::cmsg_space!([RawFd; 12]);
    let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut control), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(|e| format!("receiving the terminal from runc: {}", std::io::Error::from(e)))?;
    for cmsg in msg.cmsgs().into_iter().flatten() {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us; nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err("runc sent no terminal".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{IoSlice, Read, Write};

    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    use nix::sys::socket::{sendmsg, ControlMessage};

    /// A console socket in a folder of its own (removed by the test).
    fn listen(name: &str) -> (std::path::PathBuf, std::path::PathBuf, std::os::unix::net::UnixListener) {
        let dir = std::env::temp_dir().join(format!("shoal-console-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.sock");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        (dir, path, listener)
    }

    #[test]
    fn the_descriptor_runc_sends_is_received_close_on_exec() {
        let (dir, path, listener) = listen("test");
        let (r, mut w) = std::io::pipe().unwrap();
        let sender = std::thread::spawn({
            let path = path.clone();
            move || {
                let conn = std::os::unix::net::UnixStream::connect(&path).unwrap();
                let fds = [r.as_raw_fd()];
                sendmsg::<()>(conn.as_raw_fd(), &[IoSlice::new(b"x")], &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
                    .unwrap();
            }
        });
        let got = receive_fd(&listener).unwrap();
        sender.join().unwrap();
        let flags = FdFlag::from_bits_truncate(fcntl(&got, FcntlArg::F_GETFD).unwrap());
        assert!(flags.contains(FdFlag::FD_CLOEXEC));
        w.write_all(b"hi").unwrap();
        drop(w);
        let mut text = String::new();
        std::fs::File::from(got).read_to_string(&mut text).unwrap();
        assert_eq!(text, "hi", "the received end is the pipe's");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn nothing_sent_is_an_error() {
        let (dir, path, listener) = listen("none");
        let sender = std::thread::spawn({
            let path = path.clone();
            move || {
                let mut conn = std::os::unix::net::UnixStream::connect(&path).unwrap();
                conn.write_all(b"x").unwrap();
            }
        });
        assert_eq!(receive_fd(&listener).unwrap_err(), "runc sent no terminal");
        sender.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_terminal_size_is_set() {
        nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, libc::winsize);
        let master = OwnedFd::from(std::fs::OpenOptions::new().read(true).write(true).open("/dev/ptmx").unwrap());
        set_size(&master, 40, 120).unwrap();
        let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCGWINSZ writes one winsize to a valid pointer.
        unsafe { tiocgwinsz(master.as_raw_fd(), &mut ws) }.unwrap();
        assert_eq!((ws.ws_row, ws.ws_col), (40, 120));
        // Not a terminal: the system's error.
        let (r, _w) = std::io::pipe().unwrap();
        let e = set_size(&OwnedFd::from(r), 1, 1).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTTY));
    }
}
