//! AppArmor for containers, only on hosts where AppArmor is on (the
//! kernel exposes `/sys/kernel/security/apparmor` and `apparmor_parser`
//! is installed): shoald loads the `shoal-default` profile once and every
//! container gets it (`process.apparmorProfile`) unless its service says
//! `AppArmor.Mode: disabled`. On other hosts (SELinux distributions, or
//! kernels without AppArmor, as on the machines these tests run on)
//! nothing is loaded or set: confinement then rests on seccomp,
//! capabilities, masked paths and namespaces.
//!
//! The profile follows the spirit of Docker's `docker-default`: files,
//! network and capabilities as the other layers allow, but no mounts, no
//! writes to most of `/proc` and `/sys`, nothing from `/sys/firmware` or
//! the security file system, and ptrace only among its own processes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

pub const PROFILE_NAME: &str = "shoal-default";

/// Is AppArmor enabled here, with the tool to load profiles?
pub fn host_has_apparmor() -> bool {
    let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").map(|s| s.trim() == "Y").unwrap_or(true);
    Path::new("/sys/kernel/security/apparmor").is_dir() && enabled && parser().is_some()
}

fn parser() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).chain(["/sbin".into(), "/usr/sbin".into()]).map(|d| d.join("apparmor_parser")).find(|p| p.is_file())
}

/// The profile's text.
pub fn profile_text() -> String {
    format!(
        r#"#include <tunables/global>

profile {PROFILE_NAME} flags=(attach_disconnected,mediate_deleted) {{
  #include <abstractions/base>

  network,
  capability,
  file,
  umount,
  signal (receive) peer=unconfined,
  signal (send,receive) peer={PROFILE_NAME},

  deny mount,
  deny pivot_root,

  # /proc: nothing written at its top level, under sys except kernel/shm*, nor the trigger files.
  deny @{{PROC}}/* w,
  deny @{{PROC}}/{{[^1-9],[^1-9][^0-9],[^1-9s][^0-9y][^0-9s],[^1-9][^0-9][^0-9][^0-9/]*}}/** w,
  deny @{{PROC}}/sys/[^k]** w,
  deny @{{PROC}}/sys/kernel/{{?,??,[^s][^h][^m]**}} w,
  deny @{{PROC}}/sysrq-trigger rwklx,
  deny @{{PROC}}/kcore rwklx,

  # /sys: read-only except cgroups; firmware and the security fs not at all.
  deny /sys/[^f]*/** wklx,
  deny /sys/f[^s]*/** wklx,
  deny /sys/fs/[^c]*/** wklx,
  deny /sys/fs/c[^g]*/** wklx,
  deny /sys/fs/cg[^r]*/** wklx,
  deny /sys/firmware/** rwklx,
  deny /sys/kernel/security/** rwklx,

  ptrace (trace,read,tracedby,readby) peer={PROFILE_NAME},
}}
"#
    )
}

/// Loads (or replaces) the profile in the kernel. Called once by the
/// executor where [`host_has_apparmor`] holds.
pub fn load() -> Result<(), String> {
    let bin = parser().ok_or("apparmor_parser not found")?;
    let mut child = Command::new(&bin)
        .args(["-Kr"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    child.stdin.take().ok_or("no stdin")?.write_all(profile_text().as_bytes()).map_err(|e| format!("loading AppArmor profile: {e}"))?;
    let out = child.wait_with_output().map_err(|e| format!("loading AppArmor profile: {e}"))?;
    if !out.status.success() {
        return Err(format!("loading AppArmor profile {PROFILE_NAME}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

/// `process.apparmorProfile` for a container: `loaded` is whether
/// `shoal-default` is in the kernel (the host has AppArmor), `disabled`
/// whether the service asked for `AppArmor.Mode: disabled`.
pub fn profile_for(loaded: bool, disabled: bool) -> Option<&'static str> {
    match (loaded, disabled) {
        (false, _) => None,
        (true, true) => Some("unconfined"),
        (true, false) => Some(PROFILE_NAME),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_choice_follows_the_host_and_the_service() {
        assert_eq!(profile_for(false, false), None, "no AppArmor on the host: nothing set");
        assert_eq!(profile_for(false, true), None);
        assert_eq!(profile_for(true, false), Some("shoal-default"));
        assert_eq!(profile_for(true, true), Some("unconfined"));
        let text = profile_text();
        assert!(text.contains("profile shoal-default flags=(attach_disconnected,mediate_deleted) {"));
        assert!(text.contains("  deny mount,\n"));
        assert!(text.contains("deny /sys/firmware/** rwklx,"));
        assert_eq!(text.matches('{').count(), text.matches('}').count());
    }
}
