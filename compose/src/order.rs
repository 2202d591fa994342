//! `depends_on` ordering: Shoal creates a service once what it depends on is
//! started, healthy or completed (docker ignores `depends_on`), so the
//! services need an order and a cycle is an error.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::Project;

/// A cycle as service names, first repeated at the end (`a -> b -> a`), or
/// `None`. Services are walked in name order so the answer is stable.
pub fn find_cycle(project: &Project) -> Option<Vec<String>> {
    let waves = waves(project);
    if waves.iter().map(Vec::len).sum::<usize>() == project.services.len() {
        return None;
    }
    // Only services on or behind a cycle are left: walk them until a name repeats.
    let placed: BTreeSet<&str> = waves.iter().flatten().map(String::as_str).collect();
    let start = project.services.keys().find(|n| !placed.contains(n.as_str()))?;
    let mut path: Vec<String> = vec![start.clone()];
    loop {
        let current = path.last()?;
        let next = project.services[current].depends_on.0.keys().find(|d| !placed.contains(d.as_str()))?;
        if let Some(i) = path.iter().position(|p| p == next) {
            let mut cycle = path.split_off(i);
            cycle.push(next.clone());
            return Some(cycle);
        }
        path.push(next.clone());
    }
}

/// Service names so that each comes after everything it depends on: all
/// services free to go first (in name order), then those they free, and so
/// on. A cycle is reported at load, so every service is placed.
pub fn creation_order(project: &Project) -> Vec<String> {
    waves(project).into_iter().flatten().collect()
}

/// Kahn's algorithm one wave at a time; services on a cycle are left out.
fn waves(project: &Project) -> Vec<Vec<String>> {
    let mut waiting: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, s) in &project.services {
        let deps: BTreeSet<&str> = s.depends_on.0.keys().map(String::as_str).filter(|d| project.services.contains_key(*d)).collect();
        waiting.insert(name, deps.len());
        for d in deps {
            dependents.entry(d).or_default().push(name);
        }
    }
    let mut wave: Vec<&str> = waiting.iter().filter(|(_, n)| **n == 0).map(|(name, _)| *name).collect();
    let mut out = Vec::new();
    while !wave.is_empty() {
        let mut next = Vec::new();
        for name in &wave {
            for d in dependents.get(name).map(Vec::as_slice).unwrap_or_default() {
                let n = waiting.get_mut(d).expect("dependent is a service");
                *n -= 1;
                if *n == 0 {
                    next.push(*d);
                }
            }
        }
        next.sort_unstable();
        out.push(wave.iter().map(|s| s.to_string()).collect());
        wave = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::load::tests::load_str;

    #[test]
    fn order_puts_dependencies_first() {
        let l = load_str(
            "services:\n  web: {image: x, depends_on: [api]}\n  api: {image: x, depends_on: {db: {condition: service_healthy}}}\n  db: {image: x}\n  aaa: {image: x}\n",
        )
        .unwrap();
        assert_eq!(super::creation_order(&l.project), vec!["aaa", "db", "api", "web"]);
    }

    #[test]
    fn a_cycle_is_an_error_that_names_it() {
        let e = load_str(
            "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on:\n      c: {condition: service_started}\n  c:\n    image: x\n    depends_on: [a]\n",
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "docker-compose.yml:4: services.a.depends_on: dependency cycle: a -> b -> c -> a");
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let e = load_str("services:\n  a:\n    image: x\n    depends_on: [a]\n").unwrap_err();
        assert!(e.to_string().ends_with("dependency cycle: a -> a"), "{e}");
    }
}
