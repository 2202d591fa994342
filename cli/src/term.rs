//! The local terminal: whether a standard stream is one, its size, and
//! the modes the CLI switches it to (raw for `exec -it`, no echo for the
//! unlock key prompt), each restored on drop. Safe calls from std and nix;
//! only the window-size ioctl is a raw one (nix has no typed TIOCGWINSZ).

use std::io::IsTerminal;

use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices, Termios};

/// A standard stream, by its descriptor number (0, 1 or 2).
pub fn is_tty(fd: i32) -> bool {
    match fd {
        0 => std::io::stdin().is_terminal(),
        1 => std::io::stdout().is_terminal(),
        2 => std::io::stderr().is_terminal(),
        _ => false,
    }
}

nix::ioctl_read_bad!(window_size, libc::TIOCGWINSZ, libc::winsize);

/// The size of standard output's terminal (rows, columns); 0 × 0 when it
/// is not a terminal.
pub fn stdout_size() -> (u16, u16) {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one winsize into the one we own.
    match unsafe { window_size(1, &mut ws) } {
        Ok(_) => (ws.ws_row, ws.ws_col),
        Err(_) => (0, 0),
    }
}

/// Standard output's width, or docker's 200 when it has none.
pub fn stdout_width() -> usize {
    match stdout_size() {
        (_, 0) => 200,
        (_, w) => w as usize,
    }
}

/// Standard input in another terminal mode until dropped.
pub struct Mode {
    saved: Termios,
}

impl Mode {
    /// Raw input (moby/term's `MakeRaw`): bytes as typed, one at a time.
    pub fn raw() -> Option<Mode> {
        Mode::enter(|t| {
            termios::cfmakeraw(t);
            t.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
            t.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        })
    }

    /// No echo of what is typed, but the newline that ends it.
    pub fn no_echo() -> Option<Mode> {
        Mode::enter(|t| {
            t.local_flags.remove(LocalFlags::ECHO);
            t.local_flags.insert(LocalFlags::ECHONL);
        })
    }

    fn enter(change: impl FnOnce(&mut Termios)) -> Option<Mode> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin).ok()?;
        let mut t = saved.clone();
        change(&mut t);
        termios::tcsetattr(&stdin, SetArg::TCSANOW, &t).ok()?;
        Some(Mode { saved })
    }
}

impl Drop for Mode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_terminal_there_is_no_size_and_no_mode() {
        // Under the test harness stdin is not a terminal unless run by hand.
        if !std::io::stdin().is_terminal() {
            assert!(Mode::raw().is_none());
            assert!(Mode::no_echo().is_none());
        }
        if !std::io::stdout().is_terminal() {
            assert_eq!(stdout_size(), (0, 0));
            assert_eq!(stdout_width(), 200);
        }
        assert!(!is_tty(7));
    }
}
