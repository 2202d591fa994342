//! Task logs on a worker, as Docker's json-file driver keeps them.
//!
//! - `format`: the record (`{"log","stream","time"}` per line) and the line
//!   splitter (pieces of 16 KiB for longer lines).
//! - `capture`: pipes for the container's stdout and stderr, drained by one
//!   thread per container into `logs/<task>.log`.
//! - `reader`: tail/since start offsets and a cursor for following.
//! - `session`: subscriptions from the leader's log broker and the
//!   publishers that stream the files to it.
//!
//! A task's log file outlives its container: it is deleted when the store
//! no longer has the task (the node asks the leader, see
//! `session::prune_gone`), so logs of exited tasks stay readable while
//! they are in the service's history.

pub mod capture;
pub mod format;
pub mod reader;
pub mod session;

pub use session::Listener;
