//! What shoald writes is private to root.
//!
//! The data root holds the Raft log (the cluster's state, with the CA key
//! and join-token secrets sealed), node keys, layers, container root
//! filesystems and volumes. Any local user who can read it can impersonate
//! the node; any who can reach a container's rootfs can run its setuid
//! binaries from outside (the CVE-2021-41091 class). So:
//!
//! - the process umask is 077 before anything is created, so every file and
//!   folder shoald makes is 0600 / 0700 unless a mode is asked for (files
//!   that containers see, such as `/etc/hosts` or a volume's `_data`, set
//!   theirs explicitly, and containers get Docker's 022 back through the
//!   runtime spec's `umask`);
//! - the data root and the exec root are 0700 (runc runs as root, so no
//!   runtime needs to traverse them as another user);
//! - a data root left by an older shoald with loose modes is tightened at
//!   start: the roots and their top-level folders become 0700, and shoald's
//!   own state under `swarm/` becomes 0700 folders and 0600 files. Folders
//!   holding content (layers, root filesystems, volume data) keep the modes
//!   the image gave them: they sit below a 0700 folder, where no other user
//!   reaches them.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Sets the process umask to 077 (for the daemon and what it spawns; the
/// container process gets its own umask from the runtime spec).
pub fn restrict_umask() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
}

/// Creates `root` if needed and makes it, its top-level folders and the
/// swarm state below it private.
pub fn secure_root(root: &Path) -> io::Result<()> {
    fs::create_dir_all(root)?;
    chmod(root, DIR_MODE)?;
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() && !meta.file_type().is_symlink() {
            chmod(&entry.path(), DIR_MODE)?;
        }
    }
    let swarm = root.join("swarm");
    if swarm.is_dir() {
        tighten_tree(&swarm)?;
    }
    Ok(())
}

/// Every folder under `dir` 0700 and every regular file 0600 (symlinks are
/// neither followed nor changed).
fn tighten_tree(dir: &Path) -> io::Result<()> {
    chmod(dir, DIR_MODE)?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_dir() {
            tighten_tree(&entry.path())?;
        } else if ft.is_file() {
            chmod(&entry.path(), FILE_MODE)?;
        }
    }
    Ok(())
}

fn chmod(path: &Path, mode: u32) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.permissions().mode() & 0o7777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| io::Error::new(e.kind(), format!("chmod {:o} {}: {e}", mode, path.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn loose_data_root_is_tightened_and_content_keeps_its_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        let raft = root.join("swarm/raft");
        let layer = root.join("image/layers/sha256/abc/usr/bin");
        fs::create_dir_all(&raft).unwrap();
        fs::create_dir_all(&layer).unwrap();
        fs::write(raft.join("wal.log"), b"entries").unwrap();
        fs::write(layer.join("tool"), b"#!").unwrap();
        for p in [&root, &root.join("swarm"), &raft, &root.join("image"), &layer] {
            fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::set_permissions(raft.join("wal.log"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(layer.join("tool"), fs::Permissions::from_mode(0o4755)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("swarm/link")).unwrap();

        secure_root(&root).unwrap();

        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("swarm")), 0o700);
        assert_eq!(mode(&raft), 0o700);
        assert_eq!(mode(&raft.join("wal.log")), 0o600);
        assert_eq!(mode(&root.join("image")), 0o700);
        // Content below a private folder keeps the image's modes.
        assert_eq!(mode(&layer), 0o755);
        assert_eq!(mode(&layer.join("tool")), 0o4755);
        // A symlink is not followed.
        assert_ne!(mode(Path::new("/etc/passwd")), 0o600);
    }

    #[test]
    fn a_missing_root_is_made_private() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("a/b");
        secure_root(&root).unwrap();
        assert_eq!(mode(&root), 0o700);
    }
}
