//! The node's events hub (moby's `daemon/events.Events`): the manager's
//! cluster events and the worker's container and image events arrive
//! here; the last `RING` are kept for `since`, and every subscriber of
//! `GET /events` gets the new ones that pass its filter through a bounded
//! channel. A subscriber that falls `SUBSCRIBER_QUEUE` events behind is
//! dropped (its stream ends), so a slow client never grows memory or holds
//! up a producer.

use std::collections::VecDeque;
use std::sync::Mutex;

use shoal_api::event::{EventFilter, EventSink, Message};
use tokio::sync::mpsc;

/// Events kept for `since` (Docker keeps 256; a cluster's manager sees
/// more).
pub const RING: usize = 1024;
/// Events a subscriber may have unread before it is dropped.
pub const SUBSCRIBER_QUEUE: usize = 1024;

struct Subscriber {
    filter: EventFilter,
    tx: mpsc::Sender<Message>,
}

#[derive(Default)]
struct Inner {
    ring: VecDeque<Message>,
    subscribers: Vec<Subscriber>,
}

pub struct EventHub {
    inner: Mutex<Inner>,
    ring: usize,
    queue: usize,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub::with_bounds(RING, SUBSCRIBER_QUEUE)
    }
}

impl EventHub {
    pub fn with_bounds(ring: usize, queue: usize) -> EventHub {
        EventHub { inner: Mutex::default(), ring: ring.max(1), queue: queue.max(1) }
    }

    /// The kept events between `since` and `until` (nanoseconds, inclusive)
    /// that pass `filter`, oldest first, and a receiver of the new ones. A
    /// subscription without `since` or `until` gets no past events, as in
    /// moby. Taken under one lock, so nothing falls between the two.
    pub fn subscribe(&self, since: Option<i64>, until: Option<i64>, filter: EventFilter) -> (Vec<Message>, mpsc::Receiver<Message>) {
        let mut inner = self.inner.lock().unwrap();
        let past = if since.is_none() && until.is_none() {
            Vec::new()
        } else {
            let (since, until) = (since.unwrap_or(0), until.unwrap_or(i64::MAX));
            inner.ring.iter().filter(|m| m.time_nano >= since && m.time_nano <= until && filter.matches(m)).cloned().collect()
        };
        let (tx, rx) = mpsc::channel(self.queue);
        inner.subscribers.retain(|s| !s.tx.is_closed());
        inner.subscribers.push(Subscriber { filter, tx });
        (past, rx)
    }

    #[cfg(test)]
    fn subscribers(&self) -> usize {
        self.inner.lock().unwrap().subscribers.len()
    }
}

impl EventSink for EventHub {
    fn publish(&self, m: Message) {
        let mut inner = self.inner.lock().unwrap();
        // A full queue (a slow reader) or a closed one drops the subscriber.
        inner.subscribers.retain(|s| !s.filter.matches(&m) || s.tx.try_send(m.clone()).is_ok());
        if inner.ring.len() == self.ring {
            inner.ring.pop_front();
        }
        inner.ring.push_back(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn event(kind: &str, name: &str, nanos: i64) -> Message {
        let attrs = BTreeMap::from([("name".to_string(), name.to_string())]);
        Message::local_at(kind, "create", name, attrs, nanos)
    }

    fn filter(json: &str) -> EventFilter {
        EventFilter::parse(Some(json)).unwrap()
    }

    #[test]
    fn since_and_until_select_kept_events() {
        let hub = EventHub::with_bounds(3, 8);
        for (i, n) in ["a", "b", "c", "d"].iter().enumerate() {
            hub.publish(event("container", n, (i as i64 + 1) * 10));
        }
        let names = |v: Vec<Message>| v.into_iter().map(|m| m.actor.id).collect::<Vec<_>>();
        // "a" left the ring (bounded at 3).
        assert_eq!(names(hub.subscribe(Some(0), None, EventFilter::default()).0), ["b", "c", "d"]);
        assert_eq!(names(hub.subscribe(Some(30), None, EventFilter::default()).0), ["c", "d"]);
        assert_eq!(names(hub.subscribe(Some(0), Some(30), EventFilter::default()).0), ["b", "c"]);
        assert_eq!(names(hub.subscribe(None, Some(20), EventFilter::default()).0), ["b"]);
        assert!(hub.subscribe(None, None, EventFilter::default()).0.is_empty(), "no history without since/until");
        assert_eq!(names(hub.subscribe(Some(0), None, filter(r#"{"container":{"c":true}}"#)).0), ["c"]);
    }

    #[tokio::test]
    async fn subscribers_get_new_events_that_pass_their_filter() {
        let hub = EventHub::default();
        let (_, mut services) = hub.subscribe(None, None, filter(r#"{"type":{"service":true}}"#));
        let (_, mut all) = hub.subscribe(None, None, EventFilter::default());
        hub.publish(event("container", "x", 1));
        hub.publish(event("service", "web", 2));
        assert_eq!(services.recv().await.unwrap().actor.id, "web");
        assert_eq!(all.recv().await.unwrap().actor.id, "x");
        assert_eq!(all.recv().await.unwrap().actor.id, "web");
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_dropped_and_the_others_carry_on() {
        let hub = EventHub::with_bounds(4, 2);
        let (_, mut slow) = hub.subscribe(None, None, EventFilter::default());
        let (_, mut quick) = hub.subscribe(None, None, EventFilter::default());
        for i in 0..5 {
            hub.publish(event("container", &format!("c{i}"), i));
            assert_eq!(quick.recv().await.unwrap().actor.id, format!("c{i}"));
        }
        assert_eq!(hub.subscribers(), 1, "the slow one went when its queue was full");
        // It reads what was queued, then its stream ends.
        assert_eq!(slow.recv().await.unwrap().actor.id, "c0");
        assert_eq!(slow.recv().await.unwrap().actor.id, "c1");
        assert!(slow.recv().await.is_none());
    }

    #[test]
    fn a_closed_subscriber_is_forgotten() {
        let hub = EventHub::default();
        let (_, rx) = hub.subscribe(None, None, EventFilter::default());
        drop(rx);
        hub.publish(event("container", "x", 1));
        assert_eq!(hub.subscribers(), 0);
    }
}
