//! The cluster handle: what a controller needs of its manager, and no
//! more. A view of the replicated store with a watch on its applied
//! index, whether this manager leads, and `propose`, which writes through
//! Raft exactly once (forwarding to the leader from a follower).
//! Controllers hold a `Cluster`, not the `Manager`, so they are built and
//! tested without one (see `orchestrator::Orchestrator`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use shoal_api::ApiError;
use shoal_rpc::{client, CallError, RaftMember};
use tokio::sync::watch;

use crate::raft::{ProposeError, RaftHandle};
use crate::store::{Command, Store};

/// How long a write may wait for a leader before it is refused.
pub const PROPOSE_TIMEOUT: Duration = Duration::from_secs(8);
/// How long a follower waits for its own store to apply a write the leader
/// answered before answering its client.
const LOCAL_APPLY_WAIT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Cluster {
    raft: RaftHandle,
    /// The node's mutual-TLS client settings (replaced when its
    /// certificate is renewed), for forwarding to the leader.
    client_tls: Arc<RwLock<Arc<rustls::ClientConfig>>>,
    /// Connections to other managers, by address, kept for the calls that
    /// follow (each is one HTTP/2 connection that carries many calls).
    peers: Arc<Mutex<HashMap<String, client::Client>>>,
}

impl Cluster {
    pub fn new(raft: RaftHandle, client_tls: Arc<RwLock<Arc<rustls::ClientConfig>>>) -> Cluster {
        Cluster { raft, client_tls, peers: Arc::default() }
    }

    /// A connection to the manager at `addr`: the kept one, or a new one.
    pub async fn peer(&self, addr: &str, timeout: Duration) -> Result<client::Client, CallError> {
        if let Some(c) = self.peers.lock().unwrap().get(addr) {
            return Ok(c.clone());
        }
        let c = client::connect(addr, self.client_tls(), timeout).await?;
        self.peers.lock().unwrap().insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// Runs `call` on a connection to the manager at `addr`; a connection
    /// that failed is not kept (the next call makes a new one).
    pub async fn call_peer<T, F, Fut>(&self, addr: &str, timeout: Duration, call: F) -> Result<T, CallError>
    where
        F: FnOnce(client::Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let answer = match self.peer(addr, timeout).await {
            Ok(c) => call(c).await,
            Err(e) => Err(e),
        };
        if let Err(CallError::Transport(_)) = &answer {
            self.peers.lock().unwrap().remove(addr);
        }
        answer
    }

    /// The store as this manager has applied it.
    pub fn store(&self) -> RwLockReadGuard<'_, Store> {
        self.raft.store.read().unwrap()
    }

    /// The store itself, for work off the async threads.
    pub fn shared_store(&self) -> Arc<RwLock<Store>> {
        self.raft.store.clone()
    }

    /// Changes whenever an entry is applied here.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.raft.applied.clone()
    }

    pub fn is_leader(&self) -> bool {
        self.raft.status.borrow().is_leader
    }

    pub fn leader_member(&self) -> Option<RaftMember> {
        let leader = self.raft.status.borrow().leader;
        self.store().members.get(&leader).cloned()
    }

    pub fn client_tls(&self) -> Arc<rustls::ClientConfig> {
        self.client_tls.read().unwrap().clone()
    }

    /// Waits until this manager's store holds every write committed before
    /// the call (Raft's ReadIndex); see `RaftHandle::read_barrier`.
    pub async fn read_barrier(&self, timeout: Duration) -> Result<u64, ProposeError> {
        self.raft.read_barrier(timeout).await
    }

    /// What this manager knows of Raft now (leader, term, voters).
    pub fn status(&self) -> crate::raft::Status {
        self.raft.status.borrow().clone()
    }

    /// This manager was removed from the Raft membership.
    pub fn removed(&self) -> bool {
        self.raft.status.borrow().removed
    }

    /// This manager's Raft ID.
    pub fn raft_id(&self) -> u64 {
        self.raft.id()
    }

    /// Seals this manager's Raft WAL and snapshot under `key` from now on
    /// (a WAL key rotation, see `autolock`).
    pub(crate) async fn rekey(&self, key: &crate::datakey::DataKey) -> Result<(), String> {
        self.raft.rekey(crate::keyfiles::wal_key_of(key)).await
    }

    /// Asks Raft to move leadership to the most up-to-date other voter.
    pub fn hand_over_leadership(&self) {
        let st = self.raft.status.borrow().clone();
        if let Some(to) = st.up_to_date.iter().copied().find(|id| *id != st.id) {
            self.raft.transfer_leader(to);
        }
    }

    /// Steps a Raft message from a peer into this node.
    pub(crate) fn step(&self, m: ::raft::eraftpb::Message) {
        self.raft.step(m)
    }

    /// Proposes on this node (the leader) under a proposal ID a follower
    /// chose (`Managers.Propose`).
    pub(crate) async fn propose_as(&self, proposal: u64, command: Command) -> Result<serde_json::Value, ProposeError> {
        self.raft.propose_as(proposal, command, PROPOSE_TIMEOUT).await
    }

    /// Adds a Raft member (on the leader), unless it is one already;
    /// answers the members.
    pub(crate) async fn add_member(&self, member: RaftMember) -> Result<Vec<RaftMember>, ApiError> {
        let already = self.store().members.contains_key(&member.raft_id);
        if !already {
            tracing::info!("adding raft member {:x} ({}) at {}", member.raft_id, member.node_id, member.addr);
            self.raft.transport.add_seed(member.raft_id, member.addr.clone());
            let r = self
                .raft
                .change_membership(::raft::eraftpb::ConfChangeType::AddNode, member, PROPOSE_TIMEOUT)
                .await
                .map_err(ApiError::from);
            tracing::info!("raft membership change: {r:?}");
            r?;
        }
        Ok(self.store().members.values().cloned().collect())
    }

    /// Removes a Raft member (on the leader). A leader never removes itself
    /// (raft-rs cannot take it, see `raft::core`): it hands leadership on
    /// first, and the new leader removes it.
    pub async fn remove_member(&self, raft_id: u64) -> Result<(), ApiError> {
        let member = self.store().members.get(&raft_id).cloned();
        let Some(member) = member else { return Ok(()) };
        if raft_id == self.raft_id() {
            self.hand_over_leadership();
            return Err(ApiError::unavailable("leadership is being transferred; retry"));
        }
        self.raft
            .change_membership(::raft::eraftpb::ConfChangeType::RemoveNode, member, PROPOSE_TIMEOUT)
            .await
            .map(|_| ())
            .map_err(ApiError::from)
    }

    /// Proposes a command through Raft, on this node if it leads, else by
    /// forwarding it to the leader; waits until it is applied.
    ///
    /// Exactly once: the proposal ID is chosen here, once, and every retry
    /// (after a lost answer, a leader change, a forwarding error) carries
    /// it, so the write is applied at most once and a retry gets the first
    /// attempt's answer, never a conflict with itself. When the deadline
    /// passes after an attempt that may have reached a leader, the outcome
    /// is unknown and said so.
    pub async fn propose(&self, command: Command) -> Result<serde_json::Value, WriteError> {
        let proposal = crate::raft::new_proposal_id();
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        let mut maybe_applied = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(if maybe_applied { WriteError::OutcomeUnknown } else { WriteError::NoLeader });
            }
            if self.is_leader() {
                maybe_applied = true;
                match self.raft.propose_as(proposal, command.clone(), left).await {
                    Ok(v) => return Ok(v),
                    // Leadership moved (or this node's Raft stopped):
                    // again, through whoever leads now.
                    Err(ProposeError::NotLeader | ProposeError::Stopped | ProposeError::Timeout) => {}
                    Err(ProposeError::Applied(e)) => return Err(WriteError::Refused(e)),
                    Err(e @ ProposeError::Refused(_)) => return Err(WriteError::Answered(e.into())),
                }
            } else if let Some(leader) = self.leader_member() {
                let command = serde_json::to_vec(&command).expect("command serialises");
                let answer = self.call_peer(&leader.addr, left, |c| async move { c.propose(proposal, command, left).await }).await;
                match answer {
                    Ok(result) => {
                        self.await_local_apply(proposal).await;
                        return Ok(result);
                    }
                    // The state machine's answer: final.
                    Err(CallError::Api(e)) => return Err(WriteError::Answered(e)),
                    // A manager that is not (or no longer) the leader.
                    Err(CallError::NotLeader { .. }) => {}
                    // No answer (the leader's own attempt timed out or its
                    // Raft stopped, the connection broke, the deadline
                    // passed): the proposal may be in the log.
                    Err(CallError::Transport(_)) => maybe_applied = true,
                }
            }
            self.wait_for_leader_change(Duration::from_millis(100)).await;
        }
    }

    /// Waits (briefly) until this follower's store has applied a proposal
    /// the leader has answered, so a client reads its own write here next,
    /// as it would through Docker's managers (which proxy to the leader).
    async fn await_local_apply(&self, proposal: u64) {
        let deadline = tokio::time::Instant::now() + LOCAL_APPLY_WAIT;
        let mut applied = self.applied();
        loop {
            if self.store().recent.get(proposal).is_some() {
                return;
            }
            if !matches!(tokio::time::timeout_at(deadline, applied.changed()).await, Ok(Ok(()))) {
                tracing::debug!("proposal {proposal}: applied by the leader, not yet here");
                return;
            }
        }
    }

    /// Takes the Raft member `raft_id` (this manager) out of the
    /// membership, through the leader.
    pub async fn leave_raft(&self, raft_id: u64) -> Result<(), ApiError> {
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        loop {
            if Instant::now() >= deadline {
                return Err(ApiError::no_leader());
            }
            if let Some(leader) = self.leader_member() {
                let left = deadline.saturating_duration_since(Instant::now());
                let answer = self.call_peer(&leader.addr, left, |c| async move { c.leave_raft(raft_id, left).await }).await;
                match answer {
                    Ok(()) => return Ok(()),
                    Err(CallError::Api(e)) => return Err(e),
                    Err(_) => {}
                }
            }
            self.wait_for_leader_change(Duration::from_millis(100)).await;
        }
    }

    async fn wait_for_leader_change(&self, at_most: Duration) {
        let mut rx = self.raft.status.clone();
        let _ = tokio::time::timeout(at_most, rx.changed()).await;
    }
}

/// Why a write through `Cluster::propose` has no result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// No leader took the write before the deadline: nothing was written.
    NoLeader,
    /// A leader may have taken it: it applies at most once, or not at all.
    OutcomeUnknown,
    /// This manager's state machine refused it.
    Refused(crate::store::StoreError),
    /// The leader it was forwarded to refused it (its state machine or its
    /// Raft), as that leader's answer says.
    Answered(ApiError),
}

/// Docker's status and words for each, at the API's edge.
impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> ApiError {
        match e {
            WriteError::NoLeader => ApiError::no_leader(),
            // gRPC's words for a deadline passed, as Docker passes them on.
            WriteError::OutcomeUnknown => ApiError::new(500, "rpc error: code = DeadlineExceeded desc = context deadline exceeded"),
            WriteError::Refused(e) => e.into(),
            WriteError::Answered(e) => e,
        }
    }
}

/// For an answer to a node's call.
impl From<WriteError> for CallError {
    fn from(e: WriteError) -> CallError {
        CallError::Api(e.into())
    }
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&ApiError::from(self.clone()).message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_errors_read_as_docker_words_them() {
        assert_eq!(ApiError::from(WriteError::NoLeader), ApiError::no_leader());
        let unknown = ApiError::from(WriteError::OutcomeUnknown);
        assert_eq!(
            (unknown.status, unknown.message.as_str()),
            (500, "rpc error: code = DeadlineExceeded desc = context deadline exceeded")
        );
        let stale = WriteError::Refused(crate::store::StoreError::OutOfSequence);
        assert_eq!(ApiError::from(stale.clone()), ApiError::out_of_sequence());
        assert_eq!(CallError::from(stale), CallError::Api(ApiError::out_of_sequence()));
    }
}
