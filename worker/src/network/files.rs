//! The per-task `/etc/hosts` and `/etc/resolv.conf`, written by the worker
//! and bind-mounted into the container (as Docker does).

use std::net::Ipv4Addr;

/// Docker's localhost lines, then the task's hostname on its address.
pub fn hosts(hostname: &str, addr: Option<Ipv4Addr>) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    if let Some(a) = addr {
        if !hostname.is_empty() {
            s.push_str(&format!("{a}\t{hostname}\n"));
        }
    }
    s
}

/// The host's resolv.conf without loopback nameservers (127.0.0.0/8, ::1):
/// those answer inside the host's namespace, not the container's.
pub fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            if let Some(ns) = words.next() {
                let loopback = ns
                    .parse::<std::net::IpAddr>()
                    .map(|ip| ip.is_loopback())
                    .unwrap_or(false);
                if loopback {
                    continue;
                }
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file() {
        let h = hosts("web1", Some("172.18.0.5".parse().unwrap()));
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"), "{h}");
        assert!(h.ends_with("172.18.0.5\tweb1\n"), "{h}");
        assert!(!hosts("web1", None).contains("web1"));
    }

    #[test]
    fn resolv_conf_drops_loopback_nameservers() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nnameserver ::1\nsearch lab.example\noptions edns0\n";
        assert_eq!(
            resolv_conf(host),
            "# generated\nnameserver 192.0.2.53\nsearch lab.example\noptions edns0\n"
        );
    }
}
