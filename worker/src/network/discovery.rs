//! Service discovery and VIP balancing for this node's tasks, from the
//! network views the managers send with the assignments
//! (`shoal_rpc::discovery`): each task on an overlay gets a resolver at
//! 127.0.0.11 that answers from its zone, and a balancer for the VIPs of
//! the services on its networks. A new view replaces every task's zone at
//! once and changes only the balancer rules that differ.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock};

use shoal_overlay::dns::{self, Upstream, Zone};
use shoal_overlay::vip::Balancer;
use shoal_rpc::discovery::NetworkView;

/// A service's VIP and backends, by service ID.
pub type Balancing = BTreeMap<String, (Ipv4Addr, Vec<Ipv4Addr>)>;

/// What a task on `networks` may resolve, and which VIPs it balances.
pub fn for_task(views: &[NetworkView], networks: &[String]) -> (Zone, Balancing) {
    let mut zone = Zone::default();
    let mut lb = Balancing::new();
    let mine: Vec<&NetworkView> = views.iter().filter(|v| networks.contains(&v.network_id)).collect();
    // Names that resolve nowhere here go to the node's resolvers, unless
    // every network of the task is internal.
    zone.forward = mine.is_empty() || mine.iter().any(|v| !v.internal);
    for v in mine {
        for s in &v.services {
            let addrs: Vec<Ipv4Addr> = s.tasks.iter().filter_map(|t| t.addr.parse().ok()).collect();
            let vip: Option<Ipv4Addr> = s.vip.as_deref().and_then(|a| a.parse().ok());
            for name in std::iter::once(&s.name).chain(s.aliases.iter()) {
                match vip {
                    Some(vip) => zone.add(name, vip),
                    None => addrs.iter().for_each(|a| zone.add(name, *a)),
                }
            }
            for a in &addrs {
                zone.add(&format!("tasks.{}", s.name), *a);
            }
            for t in &s.tasks {
                if let Ok(a) = t.addr.parse() {
                    zone.add(&t.name, a);
                    zone.add_reverse(a, &format!("{}.{}", t.name, v.name));
                }
            }
            if let Some(vip) = vip {
                zone.add_reverse(vip, &format!("{}.{}", s.name, v.name));
                // One balancer per service and network: a service on two of
                // the task's networks has a VIP on each.
                lb.insert(format!("{}-{}", s.id, v.network_id), (vip, addrs));
            }
        }
    }
    (zone, lb)
}

/// The resolvers and balancers of this node's tasks.
pub struct Discovery {
    views: Vec<NetworkView>,
    zones: dns::Zones,
    servers: HashMap<String, tokio::task::JoinHandle<()>>,
    balancers: HashMap<String, Balancer>,
    /// shoald's runtime, where the resolvers run (None in tests without one).
    runtime: Option<tokio::runtime::Handle>,
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery {
            views: Vec::new(),
            zones: Arc::new(RwLock::new(HashMap::new())),
            servers: HashMap::new(),
            balancers: HashMap::new(),
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }
}

impl Discovery {
    pub fn views(&self) -> &[NetworkView] {
        &self.views
    }

    pub fn set_views(&mut self, views: Vec<NetworkView>) {
        self.views = views;
    }

    /// Starts `task`'s resolver in its namespace (once).
    pub fn start(&mut self, task: &str, ns: &std::fs::File) -> Result<(), String> {
        if self.servers.contains_key(task) {
            return Ok(());
        }
        let Some(rt) = self.runtime.clone() else { return Err("no runtime for the task resolver".into()) };
        let upstream = Upstream::from_resolv_conf(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
        let _guard = rt.enter();
        let handle = dns::serve(ns, task, self.zones.clone(), upstream)?;
        self.servers.insert(task.to_string(), handle);
        Ok(())
    }

    /// Gives `task` (on `networks`, in namespace `ns`) its zone and VIP
    /// rules from the current views.
    pub fn refresh(&mut self, task: &str, networks: &[String], ns: &std::fs::File) -> Result<(), String> {
        let (zone, lb) = for_task(&self.views, networks);
        self.zones.write().unwrap().insert(task.to_string(), Arc::new(zone));
        self.balancers.entry(task.to_string()).or_default().update(ns, lb)
    }

    /// Forgets `task` (its namespace, and the nft table in it, are going).
    pub fn stop(&mut self, task: &str) {
        if let Some(h) = self.servers.remove(task) {
            h.abort();
        }
        self.zones.write().unwrap().remove(task);
        self.balancers.remove(task);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_rpc::discovery::{ServiceView, TaskEndpoint};

    fn views() -> Vec<NetworkView> {
        let ep = |name: &str, addr: &str| TaskEndpoint { name: name.into(), addr: addr.into() };
        vec![
            NetworkView {
                network_id: "n1".into(),
                name: "appnet".into(),
                services: vec![
                    ServiceView {
                        id: "s-web".into(),
                        name: "web".into(),
                        aliases: vec!["www".into()],
                        vip: Some("10.0.1.2".into()),
                        tasks: vec![ep("web.1.a", "10.0.1.3"), ep("web.2.b", "10.0.1.4")],
                    },
                    ServiceView {
                        id: "s-db".into(),
                        name: "db".into(),
                        vip: None,
                        tasks: vec![ep("db.1.c", "10.0.1.5")],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            NetworkView {
                network_id: "n2".into(),
                name: "other".into(),
                internal: true,
                services: vec![ServiceView {
                    id: "s-x".into(),
                    name: "secret-svc".into(),
                    vip: Some("10.0.2.2".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
        ]
    }

    #[test]
    fn a_service_on_two_of_the_task_s_networks_is_balanced_on_both() {
        let mut v = views();
        v[1].services[0].id = "s-web".into();
        v[1].services[0].tasks = vec![TaskEndpoint { name: "web.1.a".into(), addr: "10.0.2.3".into() }];
        let (_, lb) = for_task(&v, &["n1".to_string(), "n2".to_string()]);
        assert_eq!(lb["s-web-n1"].0, Ipv4Addr::new(10, 0, 1, 2));
        assert_eq!(lb["s-web-n2"], (Ipv4Addr::new(10, 0, 2, 2), vec![Ipv4Addr::new(10, 0, 2, 3)]));
    }

    #[test]
    fn a_task_resolves_only_what_shares_its_networks() {
        let (zone, lb) = for_task(&views(), &["n1".to_string()]);
        assert_eq!(zone.lookup("web"), Some(&[Ipv4Addr::new(10, 0, 1, 2)][..]), "a VIP service answers with its VIP");
        assert_eq!(zone.lookup("www"), zone.lookup("web"), "aliases too");
        assert_eq!(zone.lookup("tasks.web").unwrap().len(), 2);
        assert_eq!(zone.lookup("db"), Some(&[Ipv4Addr::new(10, 0, 1, 5)][..]), "dnsrr answers with task addresses");
        assert_eq!(zone.lookup("web.2.b"), Some(&[Ipv4Addr::new(10, 0, 1, 4)][..]));
        assert_eq!(zone.lookup("secret-svc"), None, "not on a network the task shares");
        assert!(zone.forward);
        assert_eq!(lb["s-web-n1"], (Ipv4Addr::new(10, 0, 1, 2), vec![Ipv4Addr::new(10, 0, 1, 3), Ipv4Addr::new(10, 0, 1, 4)]));
        assert!(!lb.contains_key("s-db-n1"), "no VIP, no balancing");

        let (internal_only, _) = for_task(&views(), &["n2".to_string()]);
        assert!(!internal_only.forward, "an internal-only task asks no outside resolver");
    }
}
