//! The leader's log broker (in memory, never in Raft). An API caller's
//! request becomes a subscription; the nodes running the selected tasks
//! hear of it on their listener connection, publish batches from their log
//! files, and the broker forwards them, with Docker's context (node,
//! service, task IDs), to the caller's channel.
//!
//! A non-follow subscription ends when every node has said `done`; nodes
//! without a listener, publishers that hang up early, and nodes silent for
//! `IDLE_DEADLINE` are reported in the closing warning (Docker's "incomplete
//! log stream" text) instead of being waited for. A follow subscription
//! ends when the caller goes away; meanwhile new tasks of a followed
//! service are sent to their nodes as they appear.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_api::task::{Task, TaskState};
use shoal_api::ApiError;
use shoal_rpc::logs::{LogEvent, LogLine, LogMessage, LogOptions, LogSelector, SubscriptionMessage};
use shoal_rpc::{client, CallError};
use tokio::sync::mpsc;

use crate::cluster::Cluster;

/// A non-follow subscription gives up on nodes silent for this long.
pub const IDLE_DEADLINE: Duration = Duration::from_secs(10);
/// How often follow subscriptions look for new tasks and departed callers.
const REFRESH: Duration = Duration::from_millis(500);
/// Events buffered per caller before publishers are slowed down.
const CALLER_BUFFER: usize = 64;

/// A task a subscription reads: where it runs and its service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub node_id: String,
    pub service_id: String,
}

/// The tasks a selector picks, and the explicitly named tasks that have no
/// node yet. As in SwarmKit, a non-follow request skips a service's tasks
/// that never reached running (they have no logs).
pub fn match_tasks<'a>(tasks: impl Iterator<Item = &'a Task>, sel: &LogSelector, follow: bool) -> (BTreeMap<String, Target>, Vec<String>) {
    let mut found = BTreeMap::new();
    let mut unscheduled = Vec::new();
    for t in tasks {
        let by_task = sel.task_ids.contains(&t.id);
        let by_service = sel.service_ids.contains(&t.service_id) && (follow || t.status.state >= TaskState::Running);
        if !by_task && !by_service {
            continue;
        }
        if t.node_id.is_empty() {
            if by_task {
                unscheduled.push(t.id.clone());
            }
            continue;
        }
        found.insert(t.id.clone(), Target { node_id: t.node_id.clone(), service_id: t.service_id.clone() });
    }
    (found, unscheduled)
}

/// Docker's closing warning for what could not be read.
pub fn incomplete_warning(reasons: &[String]) -> Option<String> {
    (!reasons.is_empty()).then(|| {
        format!("warning: incomplete log stream. some logs could not be retrieved for the following reasons: {}", reasons.join(", "))
    })
}

struct Listener {
    seq: u64,
    tx: mpsc::UnboundedSender<SubscriptionMessage>,
}

struct Sub {
    selector: LogSelector,
    options: LogOptions,
    tasks: BTreeMap<String, Target>,
    /// Per node: the listener seq and task count it last got.
    sent: HashMap<String, (u64, usize)>,
    /// Non-follow: nodes whose `done` is awaited.
    pending: HashSet<String>,
    reasons: Vec<String>,
    last_activity: Instant,
    tx: mpsc::Sender<LogEvent>,
}

/// The subscriptions and the nodes' listeners, in memory.
#[derive(Default)]
pub struct Subscriptions {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_seq: u64,
    listeners: HashMap<String, Listener>,
    subs: HashMap<String, Sub>,
}

impl Inner {
    /// Sends `id` to every node of its tasks that has not had its current
    /// task list on its current listener (follow: also after the node
    /// reconnected or got new tasks). Nodes without a listener are noted;
    /// a non-follow subscription gives up on them.
    fn push(&mut self, id: &str) {
        let Some(sub) = self.subs.get_mut(id) else { return };
        let mut by_node: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (task, t) in &sub.tasks {
            by_node.entry(t.node_id.as_str()).or_default().push(task.clone());
        }
        for (node, task_ids) in by_node {
            let already = sub.sent.get(node).copied();
            if !sub.options.follow && already.is_some() {
                continue;
            }
            match self.listeners.get(node) {
                Some(l) if already != Some((l.seq, task_ids.len())) => {
                    let stamp = (l.seq, task_ids.len());
                    let msg = SubscriptionMessage { id: id.to_string(), task_ids, options: sub.options.clone(), close: false };
                    if l.tx.send(msg).is_ok() {
                        sub.sent.insert(node.to_string(), stamp);
                    }
                }
                Some(_) => {}
                None if !sub.options.follow => {
                    sub.sent.insert(node.to_string(), (0, 0));
                    sub.pending.remove(node);
                    sub.reasons.push(format!("node {node} is not available"));
                }
                None => {}
            }
        }
    }

    /// Removes a subscription and tells its nodes to stop.
    fn close(&mut self, id: &str) -> Option<Sub> {
        let sub = self.subs.remove(id)?;
        for node in sub.sent.keys() {
            if let Some(l) = self.listeners.get(node) {
                let _ =
                    l.tx.send(SubscriptionMessage { id: id.to_string(), task_ids: Vec::new(), options: sub.options.clone(), close: true });
            }
        }
        Some(sub)
    }

    /// A non-follow subscription with no node left to wait for is over.
    fn finish_if_done(&mut self, id: &str) {
        let done = self.subs.get(id).is_some_and(|s| !s.options.follow && s.pending.is_empty());
        if done {
            if let Some(sub) = self.close(id) {
                let _ = sub.tx.try_send(LogEvent::End { warning: incomplete_warning(&sub.reasons) });
            }
        }
    }
}

impl Subscriptions {
    /// Registers a subscription over the given store tasks; the caller
    /// reads events from the returned channel until `End`.
    pub fn subscribe<'a>(
        &self,
        tasks: impl Iterator<Item = &'a Task>,
        selector: LogSelector,
        options: LogOptions,
    ) -> mpsc::Receiver<LogEvent> {
        let (found, unscheduled) = match_tasks(tasks, &selector, options.follow);
        let (tx, rx) = mpsc::channel(CALLER_BUFFER);
        let id = shoal_api::id::new_id();
        let mut inner = self.inner.lock().unwrap();
        let pending = found.values().map(|t| t.node_id.clone()).collect();
        let reasons = unscheduled.iter().map(|t| format!("task {t} has not been scheduled")).collect();
        inner.subs.insert(
            id.clone(),
            Sub { selector, options, tasks: found, sent: HashMap::new(), pending, reasons, last_activity: Instant::now(), tx },
        );
        inner.push(&id);
        inner.finish_if_done(&id);
        rx
    }

    /// A node's listener connected; returns its seq and the channel of
    /// subscriptions to send it.
    fn add_listener(&self, node_id: &str) -> (u64, mpsc::UnboundedReceiver<SubscriptionMessage>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut inner = self.inner.lock().unwrap();
        inner.next_seq += 1;
        let seq = inner.next_seq;
        inner.listeners.insert(node_id.to_string(), Listener { seq, tx });
        let follows: Vec<String> = inner.subs.iter().filter(|(_, s)| s.options.follow).map(|(id, _)| id.clone()).collect();
        for id in follows {
            inner.push(&id);
        }
        (seq, rx)
    }

    fn remove_listener(&self, node_id: &str, seq: u64) {
        let mut inner = self.inner.lock().unwrap();
        if inner.listeners.get(node_id).is_some_and(|l| l.seq == seq) {
            inner.listeners.remove(node_id);
        }
    }

    /// A batch from `node_id`'s publisher. Lines of tasks the subscription
    /// does not hold on that node are dropped. `Err` when the subscription
    /// is gone (the publisher should stop).
    pub async fn publish(&self, sub_id: &str, node_id: &str, lines: Vec<LogLine>, done: bool) -> Result<(), ()> {
        let (tx, messages) = {
            let mut inner = self.inner.lock().unwrap();
            let sub = inner.subs.get_mut(sub_id).ok_or(())?;
            sub.last_activity = Instant::now();
            let messages: Vec<LogMessage> = lines
                .into_iter()
                .filter_map(|line| {
                    let t = sub.tasks.get(&line.task_id).filter(|t| t.node_id == node_id)?;
                    Some(LogMessage { node_id: node_id.to_string(), service_id: t.service_id.clone(), line })
                })
                .collect();
            (sub.tx.clone(), messages)
        };
        if !messages.is_empty() && tx.send(LogEvent::Messages(messages)).await.is_err() {
            self.inner.lock().unwrap().close(sub_id);
            return Err(());
        }
        if done {
            self.node_done(sub_id, node_id, None);
        }
        Ok(())
    }

    /// A node finished (or failed, with the reason) for a subscription.
    pub fn node_done(&self, sub_id: &str, node_id: &str, failure: Option<String>) {
        let mut inner = self.inner.lock().unwrap();
        let Some(sub) = inner.subs.get_mut(sub_id) else { return };
        if sub.pending.remove(node_id) {
            if let Some(f) = failure {
                sub.reasons.push(f);
            }
        }
        inner.finish_if_done(sub_id);
    }

    /// One round of upkeep: drop subscriptions whose caller left, extend
    /// follow subscriptions with new tasks, give up on silent nodes.
    pub fn refresh<'a>(&self, tasks: impl Iterator<Item = &'a Task> + Clone, now: Instant) {
        let mut inner = self.inner.lock().unwrap();
        let ids: Vec<String> = inner.subs.keys().cloned().collect();
        for id in ids {
            let sub = inner.subs.get_mut(&id).expect("listed");
            if sub.tx.is_closed() {
                inner.close(&id);
                continue;
            }
            if sub.options.follow {
                let (found, _) = match_tasks(tasks.clone(), &sub.selector, true);
                for (t, target) in found {
                    sub.tasks.entry(t).or_insert(target);
                }
                inner.push(&id);
            } else if now.duration_since(sub.last_activity) >= IDLE_DEADLINE {
                let mut silent: Vec<String> = sub.pending.drain().collect();
                silent.sort();
                sub.reasons.extend(silent.into_iter().map(|n| format!("node {n} is not available")));
                inner.finish_if_done(&id);
            }
        }
    }

    #[cfg(test)]
    fn subscription_count(&self) -> usize {
        self.inner.lock().unwrap().subs.len()
    }
}

/// The log broker, a controller on the cluster handle: its `run` loop on
/// every manager (subscriptions live on the leader), the log calls the
/// cluster port hands it, and `subscribe` for the API.
pub struct LogBroker {
    cluster: Cluster,
    subs: Subscriptions,
}

impl LogBroker {
    pub fn new(cluster: Cluster) -> Arc<LogBroker> {
        Arc::new(LogBroker { cluster, subs: Subscriptions::default() })
    }

    /// Runs `refresh` until its task is aborted (the manager stops).
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(REFRESH);
        loop {
            tick.tick().await;
            let st = self.cluster.store();
            self.subs.refresh(st.tasks.values(), Instant::now());
        }
    }

    /// Logs for an API caller on any manager: the leader's broker, reached
    /// over the cluster RPC from a follower.
    pub async fn subscribe(&self, selector: LogSelector, options: LogOptions) -> Result<mpsc::Receiver<LogEvent>, ApiError> {
        if self.cluster.is_leader() {
            let st = self.cluster.store();
            return Ok(self.subs.subscribe(st.tasks.values(), selector, options));
        }
        let leader = self.cluster.leader_member().ok_or_else(ApiError::no_leader)?;
        let subscribe = |c: client::Client| async move { c.log_subscribe(&selector, &options).await };
        let mut events = match self.cluster.call_peer(&leader.addr, Duration::from_secs(5), subscribe).await {
            Ok(events) => events,
            Err(CallError::NotLeader { .. }) => return Err(ApiError::no_leader()),
            Err(CallError::Api(e)) => return Err(e),
            Err(e) => return Err(ApiError::unavailable(format!("asking the leader for logs: {e}"))),
        };
        let (tx, rx) = mpsc::channel(CALLER_BUFFER);
        tokio::spawn(async move {
            loop {
                let ev = tokio::select! {
                    r = events.next() => r,
                    _ = tx.closed() => return,
                };
                let ev = match ev {
                    Ok(Some(ev)) => ev,
                    Ok(None) => LogEvent::End { warning: Some("log stream from the leader ended early".into()) },
                    Err(CallError::NotLeader { .. }) => LogEvent::End { warning: Some("the leader changed; try again".into()) },
                    Err(e) => LogEvent::End { warning: Some(format!("log stream from the leader ended: {e}")) },
                };
                let end = matches!(ev, LogEvent::End { .. });
                if tx.send(ev).await.is_err() || end {
                    return;
                }
            }
        });
        Ok(rx)
    }

    /// A node's `LogListen` stream: the subscriptions for its tasks, until
    /// the node hangs up (`out` closes) or this manager stops leading.
    pub(crate) async fn listen(&self, node_id: &str, out: mpsc::Sender<SubscriptionMessage>) {
        let (seq, mut rx) = self.subs.add_listener(node_id);
        loop {
            tokio::select! {
                m = rx.recv() => {
                    let Some(m) = m else { break };
                    if out.send(m).await.is_err() {
                        break;
                    }
                }
                _ = out.closed() => break,
            }
        }
        self.subs.remove_listener(node_id, seq);
    }

    /// A node's `LogPublish` stream for one subscription: its batches,
    /// until `done` or the stream ends.
    pub(crate) async fn publish_stream(&self, node_id: &str, mut batches: tonic::Streaming<shoal_rpc::wire::LogBatch>) {
        let mut sub_id: Option<String> = None;
        while let Ok(Some(b)) = batches.message().await {
            // The first batch names the subscription for the whole stream.
            let id = sub_id.get_or_insert_with(|| b.subscription_id.clone()).clone();
            let Ok(lines) = shoal_rpc::convert::log_lines_from_wire(b.lines) else { break };
            if self.subs.publish(&id, node_id, lines, b.done).await.is_err() || b.done {
                return;
            }
        }
        if let Some(id) = sub_id {
            self.subs.node_done(&id, node_id, Some(format!("node {node_id} is not available")));
        }
    }

    /// A follower's `LogSubscribe` stream: this leader's events for its
    /// API caller, until the end or until the follower hangs up.
    pub(crate) async fn subscribe_stream(&self, selector: LogSelector, options: LogOptions, out: mpsc::Sender<LogEvent>) {
        let mut rx = {
            let st = self.cluster.store();
            self.subs.subscribe(st.tasks.values(), selector, options)
        };
        loop {
            tokio::select! {
                ev = rx.recv() => {
                    let ev = ev.unwrap_or(LogEvent::End { warning: None });
                    let end = matches!(ev, LogEvent::End { .. });
                    if out.send(ev).await.is_err() || end {
                        return;
                    }
                }
                _ = out.closed() => return,
            }
        }
    }

    /// Which of `task_ids` the store no longer has.
    pub(crate) fn gone(&self, task_ids: Vec<String>) -> Vec<String> {
        let st = self.cluster.store();
        task_ids.into_iter().filter(|t| !st.tasks.contains_key(t)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_rpc::logs::LogStream;

    fn task(id: &str, service: &str, node: &str, state: TaskState) -> Task {
        let mut t = Task { id: id.into(), service_id: service.into(), node_id: node.into(), ..Default::default() };
        t.status.state = state;
        t
    }

    fn line(task: &str, text: &str) -> LogLine {
        LogLine { task_id: task.into(), stream: LogStream::Stdout, time: "2024-05-01T10:00:00.000000000Z".into(), data: text.into() }
    }

    fn svc(id: &str) -> LogSelector {
        LogSelector { service_ids: vec![id.into()], task_ids: vec![] }
    }

    fn opts(follow: bool) -> LogOptions {
        LogOptions { follow, stdout: true, stderr: true, ..Default::default() }
    }

    #[test]
    fn selection_follows_swarmkit() {
        let ts = [
            task("t1", "s", "n1", TaskState::Running),
            task("t2", "s", "n2", TaskState::Complete),
            task("t3", "s", "n2", TaskState::Assigned),
            task("t4", "other", "n1", TaskState::Running),
            task("t5", "s", "", TaskState::Pending),
        ];
        let (found, unscheduled) = match_tasks(ts.iter(), &svc("s"), false);
        assert_eq!(found.keys().collect::<Vec<_>>(), ["t1", "t2"], "not-yet-running tasks have no logs");
        assert!(unscheduled.is_empty());
        let (found, _) = match_tasks(ts.iter(), &svc("s"), true);
        assert_eq!(found.keys().collect::<Vec<_>>(), ["t1", "t2", "t3"]);
        let by_task = LogSelector { service_ids: vec![], task_ids: vec!["t4".into(), "t5".into()] };
        let (found, unscheduled) = match_tasks(ts.iter(), &by_task, false);
        assert_eq!(found["t4"], Target { node_id: "n1".into(), service_id: "other".into() });
        assert_eq!(unscheduled, ["t5"]);
    }

    #[tokio::test]
    async fn non_follow_ends_when_every_node_is_done() {
        let b = Subscriptions::default();
        let (_, mut l1) = b.add_listener("n1");
        let (_, mut l2) = b.add_listener("n2");
        let ts = [task("t1", "s", "n1", TaskState::Running), task("t2", "s", "n2", TaskState::Running)];
        let mut rx = b.subscribe(ts.iter(), svc("s"), opts(false));
        let m1 = l1.try_recv().unwrap();
        assert_eq!(m1.task_ids, ["t1"]);
        assert_eq!(l2.try_recv().unwrap().task_ids, ["t2"]);
        // A node may only publish its own tasks.
        b.publish(&m1.id, "n1", vec![line("t1", "hello\n"), line("t2", "forged\n")], true).await.unwrap();
        match rx.recv().await.unwrap() {
            LogEvent::Messages(ms) => {
                assert_eq!(ms.len(), 1);
                assert_eq!((ms[0].node_id.as_str(), ms[0].service_id.as_str(), ms[0].line.data.as_str()), ("n1", "s", "hello\n"));
            }
            other => panic!("{other:?}"),
        }
        assert!(rx.try_recv().is_err(), "still waiting for n2");
        b.publish(&m1.id, "n2", vec![], true).await.unwrap();
        assert_eq!(rx.recv().await.unwrap(), LogEvent::End { warning: None });
        assert_eq!(b.subscription_count(), 0);
        assert!(l1.try_recv().unwrap().close, "nodes are told the subscription ended");
    }

    #[tokio::test]
    async fn absent_and_silent_nodes_become_warnings() {
        let b = Subscriptions::default();
        let (_, _l1) = b.add_listener("n1");
        let ts = [task("t1", "s", "n1", TaskState::Running), task("t2", "s", "n2", TaskState::Running)];
        let mut rx = b.subscribe(ts.iter(), svc("s"), opts(false));
        b.refresh(ts.iter(), Instant::now());
        assert!(rx.try_recv().is_err());
        b.refresh(ts.iter(), Instant::now() + IDLE_DEADLINE);
        let LogEvent::End { warning: Some(w) } = rx.recv().await.unwrap() else { panic!() };
        assert_eq!(
            w,
            "warning: incomplete log stream. some logs could not be retrieved for the following reasons: node n2 is not available, node n1 is not available"
        );
        // No listener anywhere: the answer is immediate.
        let b = Subscriptions::default();
        let mut rx = b.subscribe(ts.iter(), svc("s"), opts(false));
        assert!(matches!(rx.try_recv().unwrap(), LogEvent::End { warning: Some(_) }));
    }

    #[tokio::test]
    async fn follow_gets_new_tasks_and_ends_when_the_caller_leaves() {
        let b = Subscriptions::default();
        let (_, mut l1) = b.add_listener("n1");
        let mut ts = vec![task("t1", "s", "n1", TaskState::Running)];
        let rx = b.subscribe(ts.iter(), svc("s"), opts(true));
        let first = l1.try_recv().unwrap();
        b.refresh(ts.iter(), Instant::now());
        assert!(l1.try_recv().is_err(), "nothing new, nothing sent");
        ts.push(task("t2", "s", "n1", TaskState::Assigned));
        b.refresh(ts.iter(), Instant::now());
        let again = l1.try_recv().unwrap();
        assert_eq!((again.id.as_str(), again.task_ids.clone()), (first.id.as_str(), vec!["t1".to_string(), "t2".to_string()]));
        // A node that reconnects gets the subscription again.
        let (_, mut l1b) = b.add_listener("n1");
        assert_eq!(l1b.try_recv().unwrap().id, first.id);
        b.refresh(ts.iter(), Instant::now() + IDLE_DEADLINE * 10);
        assert_eq!(b.subscription_count(), 1, "follow never times out");
        drop(rx);
        b.refresh(ts.iter(), Instant::now());
        assert_eq!(b.subscription_count(), 0);
        assert!(l1b.try_recv().unwrap().close);
    }
}
