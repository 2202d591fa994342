//! Generic resources (`--generic-resource gpu=1` on a service,
//! `--node-generic-resource gpu=UUID1` on a node), with SwarmKit's rules
//! (`api/genericresource`): a task reserves a count of a kind; a node offers
//! either a count (discrete) or a set of named items. A named reservation
//! takes that many distinct items, and the task is told which.
//!
//! Rather than shrinking a copy of the node's list as SwarmKit does, we keep
//! what tasks hold and compare against the node's totals, so a node update
//! needs no reconciliation.

use shoal_api::task::GenericResource;

/// What the tasks on one node hold of its generic resources.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Held {
    discrete: Vec<(String, i64)>,
    named: Vec<(String, String)>,
}

impl Held {
    fn discrete_used(&self, kind: &str) -> i64 {
        self.discrete.iter().filter(|(k, _)| k == kind).map(|(_, v)| v).sum()
    }
    fn named_taken(&self, kind: &str, value: &str) -> bool {
        self.named.iter().any(|(k, v)| k == kind && v == value)
    }

    /// Counts `assigned` as held (a task already on the node).
    pub fn hold(&mut self, assigned: &[GenericResource]) {
        for r in assigned {
            match r {
                GenericResource::Discrete(d) => match self.discrete.iter_mut().find(|(k, _)| *k == d.kind) {
                    Some((_, v)) => *v += d.value,
                    None => self.discrete.push((d.kind.clone(), d.value)),
                },
                GenericResource::Named(n) => self.named.push((n.kind.clone(), n.value.clone())),
            }
        }
    }

    /// Gives back what a task held.
    pub fn release(&mut self, assigned: &[GenericResource]) {
        for r in assigned {
            match r {
                GenericResource::Discrete(d) => {
                    if let Some((_, v)) = self.discrete.iter_mut().find(|(k, _)| *k == d.kind) {
                        *v -= d.value;
                    }
                    self.discrete.retain(|(_, v)| *v > 0);
                }
                GenericResource::Named(n) => {
                    if let Some(at) = self.named.iter().position(|(k, v)| *k == n.kind && *v == n.value) {
                        self.named.swap_remove(at);
                    }
                }
            }
        }
    }
}

/// Can the node still give `want` (which must be discrete, as SwarmKit
/// insists for task reservations)? The node's first resource of that kind
/// says whether it is counted or named; a kind with nothing left is absent.
pub(crate) fn has_enough(totals: &[GenericResource], held: &Held, want: &GenericResource) -> bool {
    let GenericResource::Discrete(w) = want else { return false };
    match totals.iter().find(|r| r.kind() == w.kind) {
        None => false,
        Some(GenericResource::Discrete(d)) => {
            let free = d.value - held.discrete_used(&w.kind);
            free > 0 && w.value <= free
        }
        Some(GenericResource::Named(_)) => {
            let free = free_named(totals, held, &w.kind).count() as i64;
            free > 0 && w.value <= free
        }
    }
}

fn free_named<'a>(totals: &'a [GenericResource], held: &'a Held, kind: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    totals.iter().filter_map(move |r| match r {
        GenericResource::Named(n) if n.kind == kind && !held.named_taken(kind, &n.value) => Some(n.value.as_str()),
        _ => None,
    })
}

/// Takes `wants` out of the node's free resources (checked with
/// `has_enough` first) and returns what the task was given.
pub(crate) fn claim(totals: &[GenericResource], held: &mut Held, wants: &[GenericResource]) -> Vec<GenericResource> {
    let mut given = Vec::new();
    for want in wants {
        let GenericResource::Discrete(w) = want else { continue };
        if w.value <= 0 {
            continue;
        }
        let this: Vec<GenericResource> = match totals.iter().find(|r| r.kind() == w.kind) {
            Some(GenericResource::Discrete(_)) => vec![GenericResource::discrete(&w.kind, w.value)],
            Some(GenericResource::Named(_)) => {
                free_named(totals, held, &w.kind).take(w.value as usize).map(|v| GenericResource::named(&w.kind, v)).collect()
            }
            None => Vec::new(),
        };
        held.hold(&this);
        given.extend(this);
    }
    given
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpus() -> Vec<GenericResource> {
        vec![GenericResource::named("gpu", "UUID1"), GenericResource::named("gpu", "UUID2"), GenericResource::discrete("ssd", 3)]
    }

    #[test]
    fn named_items_are_handed_out_once() {
        let totals = gpus();
        let mut held = Held::default();
        let one = GenericResource::discrete("gpu", 1);
        assert!(has_enough(&totals, &held, &GenericResource::discrete("gpu", 2)));
        let a = claim(&totals, &mut held, std::slice::from_ref(&one));
        assert_eq!(a, vec![GenericResource::named("gpu", "UUID1")]);
        assert!(!has_enough(&totals, &held, &GenericResource::discrete("gpu", 2)));
        let b = claim(&totals, &mut held, std::slice::from_ref(&one));
        assert_eq!(b, vec![GenericResource::named("gpu", "UUID2")]);
        assert!(!has_enough(&totals, &held, &one));
        held.release(&a);
        assert!(has_enough(&totals, &held, &one));
        assert_eq!(claim(&totals, &mut held, &[one]), a);
    }

    #[test]
    fn discrete_counts_go_down_and_up() {
        let totals = gpus();
        let mut held = Held::default();
        let two = GenericResource::discrete("ssd", 2);
        assert!(has_enough(&totals, &held, &two));
        let got = claim(&totals, &mut held, std::slice::from_ref(&two));
        assert_eq!(got, vec![two.clone()]);
        assert!(!has_enough(&totals, &held, &two));
        assert!(has_enough(&totals, &held, &GenericResource::discrete("ssd", 1)));
        held.release(&got);
        assert!(has_enough(&totals, &held, &GenericResource::discrete("ssd", 3)));
    }

    #[test]
    fn unknown_kinds_and_named_reservations_never_fit() {
        let totals = gpus();
        let held = Held::default();
        assert!(!has_enough(&totals, &held, &GenericResource::discrete("fpga", 1)));
        assert!(!has_enough(&totals, &held, &GenericResource::named("gpu", "UUID1")));
        assert!(!has_enough(&[], &held, &GenericResource::discrete("gpu", 0)));
    }
}
