//! The node's side of log subscriptions. One listener connection per
//! leader receives subscriptions; each subscription gets a publisher task
//! with its own connection, which reads the tasks' log files and sends
//! batches until done (non-follow) or until the subscription is closed.
//!
//! A publisher learns that its subscription ended when its channel from the
//! listener closes: the listener drops the sender on a `close` message, and
//! all of them when its connection ends (leader change, shutdown).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shoal_rpc::client;
use shoal_rpc::logs::{LogLine, LogRequest, LogResponse, SubscriptionMessage};
use shoal_rpc::{Request, Response};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;

use super::reader::Cursor;
use crate::executor::Executor;

/// How often a follower looks for new lines and new log files.
const FOLLOW_POLL: Duration = Duration::from_millis(250);
/// Bytes of log records read per file per round, and per batch sent.
const BATCH_BYTES: usize = 256 * 1024;
/// How often the node asks which kept log files' tasks are gone.
const PRUNE_EVERY: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps one listener running against the current leader.
#[derive(Default)]
pub struct Listener {
    running: Option<(String, tokio::task::JoinHandle<()>)>,
}

impl Listener {
    /// Called after each successful heartbeat to `addr`: starts a listener
    /// there unless one is already running.
    pub fn ensure(&mut self, addr: &str, tls: Arc<rustls::ClientConfig>, exec: Arc<Executor>) {
        if let Some((a, h)) = &self.running {
            if a == addr && !h.is_finished() {
                return;
            }
            h.abort();
        }
        let a = addr.to_string();
        self.running = Some((
            addr.to_string(),
            tokio::spawn(async move {
                if let Err(e) = listen(a, tls, exec).await {
                    tracing::debug!("log listener: {e}");
                }
                // The next heartbeat starts a new one; a short pause keeps a
                // refusing leader from being hammered.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }),
        ));
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some((_, h)) = self.running.take() {
            h.abort();
        }
    }
}

async fn listen(addr: String, tls: Arc<rustls::ClientConfig>, exec: Arc<Executor>) -> Result<(), String> {
    let mut conn = client::connect(&addr, tls.clone(), CONNECT_TIMEOUT).await.map_err(|e| e.to_string())?;
    conn.send(&Request::Logs(LogRequest::Listen)).await.map_err(|e| e.to_string())?;
    let mut subs: HashMap<String, mpsc::UnboundedSender<SubscriptionMessage>> = HashMap::new();
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            r = conn.recv() => {
                let m = match r {
                    Ok(Some(Response::Logs(LogResponse::Subscription(m)))) => m,
                    Ok(Some(other)) => return Err(format!("unexpected answer {other:?}")),
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(e.to_string()),
                };
                subs.retain(|_, tx| !tx.is_closed());
                if m.close {
                    subs.remove(&m.id);
                } else if let Some(tx) = subs.get(&m.id) {
                    let _ = tx.send(m);
                } else {
                    let (tx, rx) = mpsc::unbounded_channel();
                    subs.insert(m.id.clone(), tx);
                    tokio::spawn(publish(addr.clone(), tls.clone(), exec.clone(), m, rx));
                }
            }
            _ = prune.tick() => {
                let (addr, tls, exec) = (addr.clone(), tls.clone(), exec.clone());
                tokio::spawn(async move { prune_gone(&addr, tls, &exec).await });
            }
        }
    }
}

/// One subscription's publisher on this node.
async fn publish(
    addr: String,
    tls: Arc<rustls::ClientConfig>,
    exec: Arc<Executor>,
    msg: SubscriptionMessage,
    mut updates: mpsc::UnboundedReceiver<SubscriptionMessage>,
) {
    let Ok(mut conn) = client::connect(&addr, tls, CONNECT_TIMEOUT).await else { return };
    let start = Request::Logs(LogRequest::Publish { subscription_id: msg.id.clone() });
    if conn.send(&start).await.is_err() {
        return;
    }
    let opts = msg.options.clone();
    let mut files = Files { exec, opts: opts.clone(), cursors: Vec::new(), waiting: Vec::new(), known: Vec::new() };
    files.add(&msg.task_ids, false);
    loop {
        loop {
            match updates.try_recv() {
                Ok(m) => files.add(&m.task_ids, true),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        files.open_waiting();
        let mut batch: Vec<LogLine> = Vec::new();
        let mut bytes = 0usize;
        let mut more = false;
        for c in files.cursors.iter_mut() {
            match c.read_new(BATCH_BYTES) {
                Ok(lines) => {
                    more |= !lines.is_empty() && !c.exhausted();
                    bytes += lines.iter().map(|l| l.data.len() + 64).sum::<usize>();
                    batch.extend(lines);
                }
                Err(e) => tracing::debug!("reading log: {e}"),
            }
            if bytes >= BATCH_BYTES {
                more = true;
                break;
            }
        }
        if !batch.is_empty() && conn.send(&Request::Logs(LogRequest::Batch { messages: batch, done: false })).await.is_err() {
            return;
        }
        if more {
            continue;
        }
        if !opts.follow && files.cursors.iter().all(|c| c.exhausted()) {
            let _ = conn.send(&Request::Logs(LogRequest::Batch { messages: Vec::new(), done: true })).await;
            // Wait for the leader to hang up, so the last frames are read.
            let _ = tokio::time::timeout(Duration::from_secs(10), conn.recv()).await;
            return;
        }
        if opts.follow {
            // Sleep, but wake at once for a closed or extended subscription.
            tokio::select! {
                m = updates.recv() => match m {
                    Some(m) => files.add(&m.task_ids, true),
                    None => return,
                },
                _ = tokio::time::sleep(FOLLOW_POLL) => {}
            }
        }
    }
}

/// The log files one publisher reads.
struct Files {
    exec: Arc<Executor>,
    opts: shoal_rpc::logs::LogOptions,
    cursors: Vec<Cursor>,
    /// Tasks whose log file does not exist yet (followed tasks not started).
    waiting: Vec<String>,
    known: Vec<String>,
}

impl Files {
    /// `later`: tasks added to a running subscription are read from their
    /// beginning (they started after the caller asked).
    fn add(&mut self, task_ids: &[String], later: bool) {
        for t in task_ids {
            if self.known.contains(t) {
                continue;
            }
            self.known.push(t.clone());
            let path = self.exec.log_path(t);
            if path.exists() {
                self.open(t, path, later);
            } else if self.opts.follow {
                self.waiting.push(t.clone());
            }
        }
    }

    fn open_waiting(&mut self) {
        let waiting = std::mem::take(&mut self.waiting);
        for t in waiting {
            let path = self.exec.log_path(&t);
            if path.exists() {
                self.open(&t, path, true);
            } else {
                self.waiting.push(t);
            }
        }
    }

    fn open(&mut self, task: &str, path: PathBuf, from_start: bool) {
        match Cursor::open(task, &path, &self.opts, from_start) {
            Ok(mut c) => {
                if !self.opts.follow {
                    c.stop_at_current_end();
                }
                self.cursors.push(c);
            }
            Err(e) => tracing::debug!("opening {}: {e}", path.display()),
        }
    }
}

/// Deletes the kept log files of tasks the store no longer has. Files of
/// containers that still exist (their bundle is there) and of standalone
/// containers (this node's own) are not asked about.
async fn prune_gone(addr: &str, tls: Arc<rustls::ClientConfig>, exec: &Executor) {
    let Some(dir) = exec.log_path("x").parent().map(|p| p.to_path_buf()) else { return };
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    let ended: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".log").map(str::to_string))
        .filter(|id| !exec.bundle_dir(id).exists() && !crate::standalone::is_standalone_id(id))
        .collect();
    if ended.is_empty() {
        return;
    }
    let req = Request::Logs(LogRequest::Prune { task_ids: ended });
    if let Ok(Response::Logs(LogResponse::Gone(gone))) = client::call_once(addr, tls, &req, CONNECT_TIMEOUT).await {
        for id in gone {
            exec.remove_log(&id);
        }
    }
}
