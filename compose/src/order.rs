//! `depends_on` ordering: Shoal creates a service once what it depends on is
//! started, healthy or completed (docker ignores `depends_on`), so the
//! services need an order and a cycle is an error.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::Project;

/// A cycle as service names, first repeated at the end (`a -> b -> a`), or
/// `None`. Services are walked in name order so the answer is stable.
pub fn find_cycle(project: &Project) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(name: &str, project: &Project, marks: &mut BTreeMap<String, Mark>, stack: &mut Vec<String>) -> Option<Vec<String>> {
        match marks.get(name) {
            Some(Mark::Done) => return None,
            Some(Mark::Visiting) => {
                let start = stack.iter().position(|s| s == name).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(name.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(name.to_owned(), Mark::Visiting);
        stack.push(name.to_owned());
        if let Some(s) = project.services.get(name) {
            for dep in s.depends_on.0.keys() {
                if let Some(c) = visit(dep, project, marks, stack) {
                    return Some(c);
                }
            }
        }
        stack.pop();
        marks.insert(name.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for name in project.services.keys() {
        if let Some(c) = visit(name, project, &mut marks, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

/// Service names so that each comes after everything it depends on; among
/// services free to go, name order. Assumes no cycle (checked at load).
pub fn creation_order(project: &Project) -> Vec<String> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::with_capacity(project.services.len());
    while order.len() < project.services.len() {
        let ready: Vec<&String> = project
            .services
            .iter()
            .filter(|(n, s)| !done.contains(n.as_str()) && s.depends_on.0.keys().all(|d| done.contains(d.as_str())))
            .map(|(n, _)| n)
            .collect();
        if ready.is_empty() {
            break;
        }
        for n in ready {
            done.insert(n);
            order.push(n.clone());
        }
    }
    order
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
