//! Secrets and configs of the tasks on this node.
//!
//! The dispatcher sends, with each complete set of assignments, the
//! payloads those tasks reference; they are kept in memory only. When a
//! task starts, its files are written to a tmpfs of its own,
//! `<exec-root>/secrets/<task>` (mode 0700, owned by shoald), one file per
//! reference with the reference's uid, gid and mode, and each file is
//! bind-mounted read-only into the container: secrets at `/run/secrets/<name>`
//! (or an absolute target), configs at `/<name>` (or an absolute target).
//! Nothing of a secret is ever written to disk. The tmpfs is unmounted and
//! its directory removed when the task ends, on daemon shutdown, and at
//! start for whatever a killed daemon left.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::mount::{MntFlags, MsFlags};
use shoal_api::secret::{Config, FileTarget, Secret};
use shoal_api::task::ContainerSpec;

use crate::executor::ExtraMount;
use crate::templating::TaskContext;

pub struct TaskFiles {
    /// `<exec-root>/secrets`: one tmpfs mount point per task below it.
    root: PathBuf,
    secrets: Mutex<HashMap<String, Secret>>,
    configs: Mutex<HashMap<String, Config>>,
}

/// One file to write: its name in the tmpfs, content, owner and mode, and
/// where it goes in the container.
struct Planned {
    secret: bool,
    file: String,
    /// Wiped from memory once written (secrets live only on the tmpfs).
    data: zeroize::Zeroizing<Vec<u8>>,
    target: FileTarget,
    destination: String,
}

impl TaskFiles {
    pub fn new(root: PathBuf) -> TaskFiles {
        TaskFiles { root, secrets: Mutex::new(HashMap::new()), configs: Mutex::new(HashMap::new()) }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The payloads sent with the latest assignments (the complete set:
    /// what is no longer referenced is dropped from memory).
    pub fn update(&self, secrets: Vec<Secret>, configs: Vec<Config>) {
        *self.secrets.lock().unwrap() = secrets.into_iter().map(|s| (s.id.clone(), s)).collect();
        *self.configs.lock().unwrap() = configs.into_iter().map(|c| (c.id.clone(), c)).collect();
    }

    /// What `spec` needs, or the first reference this node was not sent.
    /// Templated payloads (`--template-driver golang`) are expanded for
    /// the task (`ctx`); their `secret`/`config` functions read the raw
    /// payloads of the task's own references, by target name.
    fn plan(&self, spec: &ContainerSpec, ctx: &TaskContext) -> Result<Vec<Planned>, String> {
        let mut out = Vec::new();
        let secrets = self.secrets.lock().unwrap();
        let configs = self.configs.lock().unwrap();
        let lookup = |secret: bool, target: &str| -> Result<Vec<u8>, String> {
            if secret {
                let r = spec.secrets.iter().find(|r| r.file.as_ref().is_some_and(|f| f.name == target));
                r.and_then(|r| secrets.get(&r.secret_id))
                    .and_then(|s| s.spec.data.clone())
                    .ok_or_else(|| format!("secret target {target} not found"))
            } else {
                let r = spec.configs.iter().find(|r| r.file.as_ref().is_some_and(|f| f.name == target));
                r.and_then(|r| configs.get(&r.config_id))
                    .and_then(|c| c.spec.data.clone())
                    .ok_or_else(|| format!("config target {target} not found"))
            }
        };
        let expand = |data: Vec<u8>, templating: Option<&shoal_api::task::Driver>, what: &str| -> Result<Vec<u8>, String> {
            match templating.filter(|d| !d.name.is_empty()) {
                None => Ok(data),
                Some(d) if d.name == crate::templating::GOLANG => {
                    let data = zeroize::Zeroizing::new(data);
                    ctx.expand_payload(&data, spec, &lookup)
                        .map(|(out, _)| out)
                        .map_err(|e| format!("failed to expand templated {what}: {e}"))
                }
                Some(d) => Err(format!("{what}: unknown templating driver {:?}", d.name)),
            }
        };
        for (i, r) in spec.secrets.iter().enumerate() {
            let (Some(target), Some(destination)) = (r.file.clone(), r.target_path()) else { continue };
            let s =
                secrets.get(&r.secret_id).filter(|s| s.spec.data.is_some()).ok_or_else(|| format!("secret {} not found", r.secret_name))?;
            let data = expand(s.spec.data.clone().unwrap_or_default(), s.spec.templating.as_ref(), &format!("secret {}", r.secret_name))?;
            out.push(Planned { secret: true, file: format!("secret-{i}"), data: data.into(), target, destination });
        }
        for (i, r) in spec.configs.iter().enumerate() {
            let (Some(target), Some(destination)) = (r.file.clone(), r.target_path()) else { continue };
            let c =
                configs.get(&r.config_id).filter(|c| c.spec.data.is_some()).ok_or_else(|| format!("config {} not found", r.config_name))?;
            let data = expand(c.spec.data.clone().unwrap_or_default(), c.spec.templating.as_ref(), &format!("config {}", r.config_name))?;
            out.push(Planned { secret: false, file: format!("config-{i}"), data: data.into(), target, destination });
        }
        Ok(out)
    }

    /// Mounts the task's tmpfs, writes its files and returns the container's
    /// bind mounts. A task that references nothing gets nothing mounted.
    pub fn prepare(&self, task_id: &str, spec: &ContainerSpec, ctx: &TaskContext) -> Result<Vec<ExtraMount>, String> {
        let planned = self.plan(spec, ctx)?;
        if planned.is_empty() {
            return Ok(Vec::new());
        }
        if task_id.is_empty() || task_id.contains('/') || task_id.starts_with('.') {
            return Err(format!("invalid task id {task_id:?}"));
        }
        let dir = self.root.join(task_id);
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        // Room for the data plus a page per file; tmpfs only uses what it holds.
        let size: usize = planned.iter().map(|p| p.data.len() + 4096).sum::<usize>() + 64 * 1024;
        if let Err(e) = mount_tmpfs(&dir, size) {
            let _ = std::fs::remove_dir(&dir);
            return Err(e);
        }
        let mut mounts = Vec::new();
        for p in &planned {
            let path = dir.join(&p.file);
            if let Err(e) = write_file(&path, &p.data, &p.target) {
                self.release(task_id);
                return Err(e);
            }
            mounts.push(ExtraMount { source: path, destination: p.destination.clone(), read_only: true, noexec: p.secret });
        }
        Ok(mounts)
    }

    /// Unmounts the task's tmpfs and removes its mount point.
    pub fn release(&self, task_id: &str) {
        if task_id.is_empty() || task_id.contains('/') || task_id.starts_with('.') {
            return;
        }
        let dir = self.root.join(task_id);
        if !dir.exists() {
            return;
        }
        if is_mount_point(&dir) {
            if let Err(e) = unmount(&dir) {
                tracing::warn!("{e}");
                return;
            }
        }
        if let Err(e) = std::fs::remove_dir(&dir) {
            tracing::warn!("removing {}: {e}", dir.display());
        }
    }

    /// Releases every task's files (daemon shutdown, and at start for what
    /// a killed daemon left).
    pub fn release_all(&self) {
        self.release_all_but(&[]);
    }

    /// As `release_all`, keeping the files of the tasks in `keep` (their
    /// containers outlived a daemon restart and still mount them).
    pub fn release_all_but(&self, keep: &[String]) {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) {
                self.release(&name);
            }
        }
    }
}

fn write_file(path: &Path, data: &[u8], target: &FileTarget) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let err = |e: std::io::Error| format!("writing {}: {e}", path.display());
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(err)?;
    f.write_all(data).map_err(err)?;
    let (uid, gid) = target.owner();
    std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).map_err(err)?;
    // After chown, which may clear set-id bits.
    f.set_permissions(std::fs::Permissions::from_mode(target.mode & 0o7777)).map_err(err)
}

fn cstr(p: &Path) -> Result<std::ffi::CString, String> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|_| format!("bad path {}", p.display()))
}

fn mount_tmpfs(dir: &Path, size: usize) -> Result<(), String> {
    let target = cstr(dir)?;
    let data = std::ffi::CString::new(format!("mode=0700,size={size}")).expect("no NUL");
    // Not noexec here: a config may be a script; each secret's bind mount
    // into the container is noexec.
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    nix::mount::mount(Some(c"tmpfs"), target.as_c_str(), Some(c"tmpfs"), flags, Some(data.as_c_str()))
        .map_err(|e| format!("mounting a tmpfs on {}: {}", dir.display(), std::io::Error::from(e)))
}

fn unmount(dir: &Path) -> Result<(), String> {
    let target = cstr(dir)?;
    // Detached, so a straggler holding it open does not keep the secret's
    // mount point busy.
    nix::mount::umount2(target.as_c_str(), MntFlags::MNT_DETACH)
        .map_err(|e| format!("unmounting {}: {}", dir.display(), std::io::Error::from(e)))
}

/// Whether `dir` is a mount point in our mount namespace.
pub fn is_mount_point(dir: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    let want = dir.to_string_lossy();
    info.lines().filter_map(|l| l.split(' ').nth(4)).any(|m| unescape_mount_path(m) == want)
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mount_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_api::secret::{ConfigReference, ConfigSpec, SecretReference, SecretSpec};

    fn secret(id: &str, name: &str, data: &[u8]) -> Secret {
        Secret {
            id: id.into(),
            spec: SecretSpec { name: name.into(), data: Some(data.to_vec()), ..Default::default() },
            ..Default::default()
        }
    }

    fn file(name: &str, uid: &str, mode: u32) -> Option<FileTarget> {
        Some(FileTarget { name: name.into(), uid: uid.into(), gid: "0".into(), mode })
    }

    /// Real tmpfs, real mounts (needs root, as the worker does).
    #[test]
    fn files_live_on_a_tmpfs_of_their_own_and_go_with_the_task() {
        let root = std::env::temp_dir().join(format!("shoal-taskfiles-{}", std::process::id()));
        let files = TaskFiles::new(root.clone());
        let config = Config {
            id: "c1".into(),
            spec: ConfigSpec { name: "site".into(), data: Some(b"listen 80;".to_vec()), ..Default::default() },
            ..Default::default()
        };
        files.update(vec![secret("s1", "db_pw", b"s3cret")], vec![config]);
        let spec = ContainerSpec {
            secrets: vec![SecretReference { file: file("db_pw", "33", 0o400), secret_id: "s1".into(), secret_name: "db_pw".into() }],
            configs: vec![ConfigReference {
                file: file("/etc/site.conf", "0", 0o444),
                config_id: "c1".into(),
                config_name: "site".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mounts = files.prepare("task1", &spec, &crate::templating::TaskContext::default()).unwrap();
        let dir = root.join("task1");
        let cleanup = scopeguard(|| {
            files.release_all();
            let _ = std::fs::remove_dir_all(&root);
        });
        assert!(is_mount_point(&dir));
        let fs_type = std::fs::read_to_string("/proc/self/mounts")
            .unwrap()
            .lines()
            .find(|l| l.split(' ').nth(1) == Some(dir.to_str().unwrap()))
            .map(|l| l.split(' ').nth(2).unwrap().to_string());
        assert_eq!(fs_type.as_deref(), Some("tmpfs"));
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[0].destination, "/run/secrets/db_pw");
        assert_eq!(mounts[1].destination, "/etc/site.conf");
        assert!(mounts.iter().all(|m| m.read_only && m.source.starts_with(&dir)));
        assert!(mounts[0].noexec && !mounts[1].noexec, "secrets are noexec, configs may be scripts");
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&mounts[0].source).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o7777), (33, 0o400));
        assert_eq!(std::fs::read(&mounts[0].source).unwrap(), b"s3cret");
        assert_eq!(std::fs::read(&mounts[1].source).unwrap(), b"listen 80;");

        files.release("task1");
        assert!(!is_mount_point(&dir) && !dir.exists(), "the task's tmpfs is gone with it");
        drop(cleanup);
    }

    #[test]
    fn a_reference_this_node_was_not_sent_refuses_the_task_and_mounts_nothing() {
        let root = std::env::temp_dir().join(format!("shoal-taskfiles-missing-{}", std::process::id()));
        let files = TaskFiles::new(root.clone());
        let spec = ContainerSpec {
            secrets: vec![SecretReference { file: file("x", "0", 0o444), secret_id: "nope".into(), secret_name: "xyz".into() }],
            ..Default::default()
        };
        assert_eq!(files.prepare("t", &spec, &crate::templating::TaskContext::default()).unwrap_err(), "secret xyz not found");
        assert!(!root.join("t").exists());
        assert!(
            files.prepare("t", &ContainerSpec::default(), &crate::templating::TaskContext::default()).unwrap().is_empty(),
            "nothing referenced, nothing mounted"
        );
        assert!(!root.exists());
    }

    #[test]
    fn mountinfo_paths_unescape() {
        assert_eq!(unescape_mount_path(r"/a\040b"), "/a b");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
    }

    /// Runs `f` on drop, so a failed assertion still cleans up mounts.
    fn scopeguard<F: FnMut()>(f: F) -> impl Drop {
        struct G<F: FnMut()>(F);
        impl<F: FnMut()> Drop for G<F> {
            fn drop(&mut self) {
                (self.0)()
            }
        }
        G(f)
    }
}
