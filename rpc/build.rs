//! Generates the gRPC service code of the cluster protocol (`src/wire.rs`
//! holds its messages). The services are declared here, in Rust, with
//! tonic-build's manual builder, so the build needs no `protoc`: the
//! messages are prost structs written by hand with their field numbers.
//!
//! Three services, by who may call them; each has its own message size cap
//! (see `src/server.rs`):
//! - `Join`: the only one served to a caller without a certificate;
//! - `Dispatcher`: any node of the swarm (its agent's session);
//! - `Managers`: managers only (Raft, forwarded writes, keys).

use tonic_build::manual::{Builder, Method, Service};

/// (name, route, input, output, client streaming, server streaming)
type Rpc = (&'static str, &'static str, &'static str, &'static str, bool, bool);

const JOIN: &[Rpc] = &[("join", "Join", "JoinRequest", "JoinResponse", false, false)];

const DISPATCHER: &[Rpc] = &[
    ("heartbeat", "Heartbeat", "HeartbeatRequest", "HeartbeatResponse", false, false),
    ("renew_cert", "RenewCert", "RenewCertRequest", "CertResponse", false, false),
    ("assignments", "Assignments", "AssignmentsRequest", "Assignments", false, false),
    ("task_status", "TaskStatus", "TaskStatusRequest", "Empty", false, false),
    ("attach_network", "AttachNetwork", "AttachNetworkRequest", "Attachment", false, false),
    ("detach_network", "DetachNetwork", "DetachNetworkRequest", "Empty", false, false),
    ("log_listen", "LogListen", "Empty", "LogSubscription", false, true),
    ("log_publish", "LogPublish", "LogBatch", "Empty", true, false),
    ("log_prune", "LogPrune", "LogPruneRequest", "LogPruneResponse", false, false),
];

const MANAGERS: &[Rpc] = &[
    ("propose", "Propose", "ProposeRequest", "ProposeResponse", false, false),
    ("join_raft", "JoinRaft", "JoinRaftRequest", "Members", false, false),
    ("leave_raft", "LeaveRaft", "LeaveRaftRequest", "Empty", false, false),
    ("ping", "Ping", "Empty", "Pong", false, false),
    ("secrets_key", "SecretsKey", "Empty", "SecretsKeyResponse", false, false),
    ("raft", "Raft", "RaftPiece", "Empty", true, false),
    ("log_subscribe", "LogSubscribe", "LogSubscribeRequest", "LogEvent", false, true),
];

fn service(name: &str, rpcs: &[Rpc]) -> Service {
    let mut s = Service::builder().name(name).package("shoal.cluster.v1");
    for &(method, route, input, output, client_streaming, server_streaming) in rpcs {
        let mut m = Method::builder()
            .name(method)
            .route_name(route)
            .input_type(format!("crate::wire::{input}"))
            .output_type(format!("crate::wire::{output}"))
            .codec_path("tonic_prost::ProstCodec");
        if client_streaming {
            m = m.client_streaming();
        }
        if server_streaming {
            m = m.server_streaming();
        }
        s = s.method(m.build());
    }
    s.build()
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    Builder::new().build_transport(false).compile(&[
        service("Join", JOIN),
        service("Dispatcher", DISPATCHER),
        service("Managers", MANAGERS),
    ]);
}
