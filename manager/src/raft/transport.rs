//! Sends Raft messages to peers: one long-lived `Managers.Raft` stream per
//! peer (over mutual TLS), fed by a bounded queue. Raft tolerates lost messages, so a full queue or a
//! broken connection drops messages rather than blocking the Raft loop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use raft::eraftpb::{Message, MessageType};
use raft::SnapshotStatus;
use shoal_rpc::client;
use tokio::sync::mpsc;

use super::node::Input;
use crate::store::Store;

const QUEUE: usize = 4096;

type RaftStream = client::Outgoing<shoal_rpc::wire::RaftPiece, shoal_rpc::wire::Empty>;

pub struct Transport {
    tls: Arc<RwLock<Arc<rustls::ClientConfig>>>,
    store: Arc<RwLock<Store>>,
    /// Addresses learned before the store knows them (a joining manager
    /// answers the leader before it has applied the membership entries).
    seeds: Mutex<HashMap<u64, String>>,
    peers: Mutex<HashMap<u64, mpsc::Sender<Message>>>,
    raft_tx: mpsc::UnboundedSender<Input>,
}

impl Transport {
    pub fn new(
        tls: Arc<RwLock<Arc<rustls::ClientConfig>>>,
        store: Arc<RwLock<Store>>,
        seeds: HashMap<u64, String>,
        raft_tx: mpsc::UnboundedSender<Input>,
    ) -> Arc<Transport> {
        Arc::new(Transport { tls, store, seeds: Mutex::new(seeds), peers: Mutex::new(HashMap::new()), raft_tx })
    }

    pub fn add_seed(&self, id: u64, addr: String) {
        self.seeds.lock().unwrap().insert(id, addr);
    }

    fn addr_of(&self, id: u64) -> Option<String> {
        if let Some(m) = self.store.read().unwrap().members.get(&id) {
            return Some(m.addr.clone());
        }
        self.seeds.lock().unwrap().get(&id).cloned()
    }

    pub fn send(self: &Arc<Self>, msgs: Vec<Message>) {
        for m in msgs {
            let to = m.to;
            let mut peers = self.peers.lock().unwrap();
            let tx = peers.entry(to).or_insert_with(|| {
                let (tx, rx) = mpsc::channel(QUEUE);
                tokio::spawn(Arc::clone(self).peer_loop(to, rx));
                tx
            });
            if tx.try_send(m).is_err() {
                // Queue full or the peer task ended: the message is dropped.
                let _ = self.raft_tx.send(Input::Unreachable(to));
            }
        }
    }

    /// Forgets a removed peer; its task ends when its queue closes.
    pub fn remove_peer(&self, id: u64) {
        self.peers.lock().unwrap().remove(&id);
    }

    async fn peer_loop(self: Arc<Self>, to: u64, mut rx: mpsc::Receiver<Message>) {
        let mut stream: Option<RaftStream> = None;
        while let Some(msg) = rx.recv().await {
            let is_snapshot = msg.get_msg_type() == MessageType::MsgSnapshot;
            let bytes = super::wire::encode(&msg);
            if stream.as_ref().is_none_or(|s| s.is_closed()) {
                stream = self.connect(to).await;
            }
            let ok = match stream.as_mut() {
                Some(s) => s.send_raft(bytes).await.is_ok(),
                None => false,
            };
            if !ok {
                stream = None;
                let _ = self.raft_tx.send(Input::Unreachable(to));
                // Drop what queued up meanwhile: it is stale, Raft resends.
                while rx.try_recv().is_ok() {}
            }
            if is_snapshot {
                let status = if ok { SnapshotStatus::Finish } else { SnapshotStatus::Failure };
                let _ = self.raft_tx.send(Input::SnapshotStatus(to, status));
            }
        }
    }

    async fn connect(&self, to: u64) -> Option<RaftStream> {
        let addr = self.addr_of(to)?;
        let tls = self.tls.read().unwrap().clone();
        let c = client::connect(&addr, tls, Duration::from_secs(2)).await.ok()?;
        Some(c.raft_stream())
    }
}
