//! Which peer managers answer: every manager pings the others each second
//! over a kept connection, for the Reachable/Unreachable column of `node
//! ls` and Docker's quorum guard on demotions (`membership`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_rpc::RaftMember;

use crate::cluster::Cluster;

/// A peer manager that has not answered a ping for this long is Unreachable.
pub const REACHABLE_WITHIN: Duration = Duration::from_secs(3);
/// How long one ping (or the connection it needs) may take: under the
/// one-second period, so a dead peer never holds up the next round.
const PING_TIMEOUT: Duration = Duration::from_millis(900);

/// The peer pinger, a controller on the cluster handle: its `run` loop on
/// every manager, and the answers it has heard.
pub struct Reachability {
    cluster: Cluster,
    /// Last time each peer manager (by Raft ID) answered a ping.
    last_pong: Mutex<HashMap<u64, Instant>>,
}

impl Reachability {
    pub fn new(cluster: Cluster) -> Arc<Reachability> {
        Arc::new(Reachability { cluster, last_pong: Mutex::default() })
    }

    /// Raft IDs of the members that answered a ping recently (and this one).
    pub fn reachable_members(&self) -> Vec<u64> {
        let me = self.cluster.raft_id();
        let pongs = self.last_pong.lock().unwrap();
        let st = self.cluster.store();
        st.members
            .keys()
            .copied()
            .filter(|id| *id == me || pongs.get(id).map(|t| t.elapsed() < REACHABLE_WITHIN).unwrap_or(false))
            .collect()
    }

    /// Pings every other manager each second. Runs until its task is
    /// aborted (the manager stops).
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let peers: Vec<RaftMember> = {
                let me = self.cluster.raft_id();
                let st = self.cluster.store();
                st.members.values().filter(|m| m.raft_id != me).cloned().collect()
            };
            for p in peers {
                let pong = self.cluster.call_peer(&p.addr, PING_TIMEOUT, |c| async move { c.ping(PING_TIMEOUT).await }).await;
                if pong.is_ok() {
                    self.last_pong.lock().unwrap().insert(p.raft_id, Instant::now());
                }
            }
        }
    }
}
