//! The node's side of log subscriptions. One listener stream per leader
//! (`Dispatcher.LogListen`, on the agent's connection) receives
//! subscriptions; each subscription gets a publisher task with a stream of
//! its own (`Dispatcher.LogPublish`), which reads the tasks' log files and
//! sends batches until done (non-follow) or until the subscription is
//! closed.
//!
//! A publisher learns that its subscription ended when its channel from the
//! listener closes: the listener drops the sender on a `close` message, and
//! all of them when its stream ends (leader change, shutdown).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shoal_rpc::client::Client;
use shoal_rpc::logs::{LogLine, SubscriptionMessage};
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
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps one listener running against the current leader.
#[derive(Default)]
pub struct Listener {
    running: Option<(String, tokio::task::JoinHandle<()>)>,
}

impl Listener {
    /// Called after each successful heartbeat to `addr` over `conn`: starts
    /// a listener there unless one is already running.
    pub fn ensure(&mut self, addr: &str, conn: &Client, exec: Arc<Executor>) {
        if let Some((a, h)) = &self.running {
            if a == addr && !h.is_finished() {
                return;
            }
            h.abort();
        }
        let conn = conn.clone();
        self.running = Some((
            addr.to_string(),
            tokio::spawn(async move {
                if let Err(e) = listen(conn, exec).await {
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

async fn listen(conn: Client, exec: Arc<Executor>) -> Result<(), String> {
    let mut incoming = conn.log_listen().await.map_err(|e| e.to_string())?;
    let mut subs: HashMap<String, mpsc::UnboundedSender<SubscriptionMessage>> = HashMap::new();
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            r = incoming.next() => {
                let m = match r {
                    Ok(Some(m)) => m,
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
                    tokio::spawn(publish(conn.clone(), exec.clone(), m, rx));
                }
            }
            _ = prune.tick() => {
                let (conn, exec) = (conn.clone(), exec.clone());
                tokio::spawn(async move { prune_gone(&conn, &exec).await });
            }
        }
    }
}

/// One subscription's publisher on this node.
async fn publish(conn: Client, exec: Arc<Executor>, msg: SubscriptionMessage, mut updates: mpsc::UnboundedReceiver<SubscriptionMessage>) {
    let mut out = conn.log_publish(&msg.id);
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
        if !batch.is_empty() && out.send_lines(&batch, false).await.is_err() {
            return;
        }
        if more {
            continue;
        }
        if !opts.follow && files.cursors.iter().all(|c| c.exhausted()) {
            if out.send_lines(&[], true).await.is_ok() {
                // Wait for the leader's answer, so the last batches are read.
                let _ = out.finish(Duration::from_secs(10)).await;
            }
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
async fn prune_gone(conn: &Client, exec: &Executor) {
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
    if let Ok(gone) = conn.log_prune(ended, CALL_TIMEOUT).await {
        for id in gone {
            exec.remove_log(&id);
        }
    }
}
