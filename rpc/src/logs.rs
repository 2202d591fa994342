//! Log streaming between the API caller's manager, the leader's log broker
//! and the workers that hold the log files, as gRPC streams:
//!
//! - `Dispatcher.LogListen` (worker → leader): the leader streams
//!   subscriptions for this node as API callers ask for logs, and
//!   `close: true` ones when a subscription ends.
//! - `Dispatcher.LogPublish` (worker → leader): a stream of batches of one
//!   subscription's lines, the last one with `done` (non-follow
//!   subscriptions).
//! - `Managers.LogSubscribe` (a follower manager → leader): the leader
//!   streams events until `LogEvent::End`.
//! - `Dispatcher.LogPrune` (worker → leader): a plain call; the node
//!   deletes the log files of tasks the store no longer has (Docker keeps a
//!   task's logs as long as the task exists).

use serde::{Deserialize, Serialize};

/// What an API caller asked for, resolved to IDs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSelector {
    pub service_ids: Vec<String>,
    pub task_ids: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogOptions {
    pub follow: bool,
    /// The last N lines of each task; `None` for all.
    pub tail: Option<u64>,
    /// Only lines at or after this time (nanoseconds since the epoch).
    pub since_unix_nanos: Option<i128>,
    pub stdout: bool,
    pub stderr: bool,
}

/// Sent to a node: publish these tasks' logs. The same ID comes again with
/// more tasks when a followed service gets new tasks there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionMessage {
    pub id: String,
    pub task_ids: Vec<String>,
    pub options: LogOptions,
    pub close: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One line (or a piece of a long line) as the worker read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub task_id: String,
    pub stream: LogStream,
    /// RFC 3339 with nanoseconds, UTC.
    pub time: String,
    /// The text, with its `\n` when the line was complete.
    pub data: String,
}

/// A line with the context the leader adds (Docker's details).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogMessage {
    pub node_id: String,
    pub service_id: String,
    pub line: LogLine,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogEvent {
    Messages(Vec<LogMessage>),
    /// The subscription is over; `warning` lists what could not be read.
    End {
        warning: Option<String>,
    },
}
