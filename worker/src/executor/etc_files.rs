//! The files Docker writes for each container and bind-mounts over the
//! image's: `/etc/hostname`, `/etc/hosts` (loopback names, then the task's
//! `Hosts` entries) and `/etc/resolv.conf` (the task's `DNSConfig`, or the
//! host's file without loopback nameservers, which mean nothing inside the
//! container's own network namespace). They live in the bundle; they are
//! writable unless the root file system is read-only, as in Docker. A task
//! mount at one of these paths wins.

use std::path::Path;

use oci_spec::runtime::Mount;

use super::ContainerInput;

const LOOPBACK_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// `/etc/hosts`: Docker's loopback lines, the hostname on the task's
/// address (when it has a network), then each `Hosts` entry ("IP name
/// [aliases...]", SwarmKit's form) as one line per name.
pub fn hosts_file(c: &ContainerInput) -> String {
    let mut out = String::from(LOOPBACK_HOSTS);
    if let Some(addr) = c.address.filter(|_| !c.hostname.is_empty()) {
        out.push_str(&format!("{addr}\t{}\n", c.hostname));
    }
    for entry in &c.spec.hosts {
        let mut f = entry.split_whitespace();
        let Some(ip) = f.next() else { continue };
        for name in f {
            out.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    out
}

fn is_loopback(ns: &str) -> bool {
    ns.starts_with("127.") || ns == "::1" || ns == "0:0:0:0:0:0:0:1"
}

/// `/etc/resolv.conf`: the task's DNS settings where given, the host's
/// otherwise (loopback nameservers dropped).
pub fn resolv_conf(c: &ContainerInput, host: &str) -> String {
    let dns = c.spec.dns_config.clone().unwrap_or_default();
    let mut nameservers: Vec<String> = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    for line in host.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("nameserver") => nameservers.extend(f.next().filter(|ns| !is_loopback(ns)).map(str::to_string)),
            Some("search") | Some("domain") => search = f.map(str::to_string).collect(),
            Some("options") => options.extend(f.map(str::to_string)),
            _ => {}
        }
    }
    if !dns.nameservers.is_empty() {
        nameservers = dns.nameservers.clone();
    }
    if !dns.search.is_empty() {
        search = dns.search.iter().filter(|s| s.as_str() != ".").cloned().collect();
    }
    if !dns.options.is_empty() {
        options = dns.options.clone();
    }
    if c.embedded_dns {
        // The embedded resolver answers the swarm's names and forwards the
        // rest; Docker's `ndots:0` unless the task set its own options.
        nameservers = vec![shoal_overlay_dns_address()];
        if dns.options.is_empty() {
            options = vec!["ndots:0".into()];
        }
    }
    let mut out = String::new();
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for ns in nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

fn shoal_overlay_dns_address() -> String {
    shoal_overlay::dns::ADDRESS.to_string()
}

/// Writes the three files into `bundle` and returns their bind mounts,
/// leaving out any path a task mount covers.
pub fn write(c: &ContainerInput, bundle: &Path) -> Result<Vec<Mount>, String> {
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let files = [("hostname", format!("{}\n", c.hostname)), ("hosts", hosts_file(c)), ("resolv.conf", resolv_conf(c, &host_resolv))];
    let mut mounts = Vec::new();
    for (name, content) in files {
        let dest = format!("/etc/{name}");
        if c.spec.mounts.iter().any(|m| m.target.trim_end_matches('/') == dest) {
            continue;
        }
        let path = bundle.join(name);
        std::fs::write(&path, content).map_err(|e| format!("writing {}: {e}", path.display()))?;
        // Readable by every user in the container (shoald's umask is 077).
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .map_err(|e| format!("chmod {}: {e}", path.display()))?;
        let mut options = vec!["rbind", "rprivate"];
        if c.spec.read_only {
            options.push("ro");
        }
        mounts.push(super::spec::mount(dest, "bind", path, options));
    }
    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_api::task::{ContainerSpec, DnsConfig};

    #[test]
    fn hosts_has_loopback_then_task_entries() {
        let c = ContainerInput {
            spec: ContainerSpec { hosts: vec!["10.0.0.5 db db.local".into(), "bad".into()], ..Default::default() },
            ..Default::default()
        };
        let h = hosts_file(&c);
        assert!(h.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"));
        assert!(h.ends_with("10.0.0.5\tdb\n10.0.0.5\tdb.local\n"), "{h}");
        let c = ContainerInput { hostname: "web1".into(), address: Some("172.18.0.2".parse().unwrap()), ..c };
        assert!(hosts_file(&c).contains("ip6-allrouters\n172.18.0.2\tweb1\n10.0.0.5\tdb\n"), "the hostname on the task's address");
    }

    #[test]
    fn resolv_conf_from_host_or_task() {
        let host = "# comment\nnameserver 127.0.0.53\nnameserver 10.1.1.1\nsearch corp.example\noptions ndots:2\n";
        let c = ContainerInput::default();
        assert_eq!(resolv_conf(&c, host), "search corp.example\nnameserver 10.1.1.1\noptions ndots:2\n");
        let c = ContainerInput {
            spec: ContainerSpec {
                dns_config: Some(DnsConfig {
                    nameservers: vec!["10.9.9.9".into()],
                    search: vec!["a.test".into()],
                    options: vec!["timeout:1".into()],
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(resolv_conf(&c, host), "search a.test\nnameserver 10.9.9.9\noptions timeout:1\n");
        let c = ContainerInput { embedded_dns: true, ..Default::default() };
        assert_eq!(resolv_conf(&c, host), "search corp.example\nnameserver 127.0.0.11\noptions ndots:0\n");
    }

    #[test]
    fn task_mounts_win_and_read_only_roots_get_read_only_files() {
        let dir = std::env::temp_dir().join(format!("shoal-etc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = ContainerInput {
            hostname: "web1".into(),
            spec: ContainerSpec {
                read_only: true,
                mounts: vec![shoal_api::task::Mount {
                    r#type: "bind".into(),
                    source: "/x".into(),
                    target: "/etc/hosts".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
            ..Default::default()
        };
        let m = write(&c, &dir).unwrap();
        let dests: Vec<&Path> = m.iter().map(|m| m.destination().as_path()).collect();
        assert_eq!(dests, [Path::new("/etc/hostname"), Path::new("/etc/resolv.conf")]);
        assert_eq!(m[0].options().as_deref(), Some(&["rbind", "rprivate", "ro"].map(String::from)[..]));
        assert_eq!(std::fs::read_to_string(dir.join("hostname")).unwrap(), "web1\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
