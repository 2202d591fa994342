//! Errors across the cluster protocol. A manager's refusal is an `ApiError`
//! (an HTTP status and Docker's text, passed on to API callers as is); on
//! the wire it is a gRPC status whose code fits the HTTP one, with the
//! exact HTTP status in the `shoal-http-status` metadata. "Not the leader"
//! is its own answer, with the leader's address when known.

use shoal_api::ApiError;
use tonic::{Code, Status};

const HTTP_STATUS: &str = "shoal-http-status";
const LEADER: &str = "shoal-leader";
const NOT_LEADER: &str = "not the leader";

/// Why a call did not return its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The manager refused or failed the call.
    Api(ApiError),
    /// Only the leader serves this call; it is at `leader_addr` if known.
    NotLeader { leader_addr: Option<String> },
    /// No answer: the connection failed or broke, or the deadline passed.
    Transport(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Api(e) => f.write_str(&e.message),
            CallError::NotLeader { leader_addr: Some(a) } => write!(f, "{NOT_LEADER} (the leader is at {a})"),
            CallError::NotLeader { leader_addr: None } => write!(f, "{NOT_LEADER} (no leader known)"),
            CallError::Transport(e) => f.write_str(e),
        }
    }
}

impl From<ApiError> for CallError {
    fn from(e: ApiError) -> Self {
        CallError::Api(e)
    }
}

/// An answer that is not the one asked for, for the wire.
pub fn from_call_error(e: CallError) -> Status {
    match e {
        CallError::Api(e) => from_api(e),
        CallError::NotLeader { leader_addr } => not_leader(leader_addr),
        CallError::Transport(e) => Status::unavailable(e),
    }
}

/// A refusal, for the wire.
pub fn from_api(e: ApiError) -> Status {
    let code = match e.status {
        400 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        409 => Code::AlreadyExists,
        412 => Code::FailedPrecondition,
        503 => Code::Unavailable,
        504 => Code::DeadlineExceeded,
        _ => Code::Unknown,
    };
    let mut s = Status::new(code, e.message);
    s.metadata_mut().insert(HTTP_STATUS, e.status.into());
    s
}

/// "Not the leader; it is at `leader_addr`", for the wire.
pub fn not_leader(leader_addr: Option<String>) -> Status {
    let mut s = Status::failed_precondition(NOT_LEADER);
    if let Some(v) = leader_addr.and_then(|a| a.parse().ok()) {
        s.metadata_mut().insert(LEADER, v);
    }
    s
}

/// What a status from the wire means. A status without our metadata comes
/// from the gRPC layer itself (a message over its cap, an unknown method,
/// a broken connection) and keeps gRPC's words.
pub fn to_call_error(s: Status) -> CallError {
    if let Some(status) = s.metadata().get(HTTP_STATUS).and_then(|v| v.to_str().ok()?.parse().ok()) {
        return CallError::Api(ApiError::new(status, s.message()));
    }
    if s.code() == Code::FailedPrecondition && s.message() == NOT_LEADER {
        let leader_addr = s.metadata().get(LEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
        return CallError::NotLeader { leader_addr };
    }
    match s.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
            CallError::Transport(format!("rpc error: code = {:?} desc = {}", s.code(), s.message()))
        }
        code => CallError::Api(ApiError::new(http_of(code), format!("rpc error: code = {code:?} desc = {}", s.message()))),
    }
}

fn http_of(code: Code) -> u16 {
    match code {
        Code::InvalidArgument | Code::OutOfRange => 400,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::NotFound | Code::Unimplemented => 404,
        Code::AlreadyExists => 409,
        Code::FailedPrecondition => 412,
        Code::ResourceExhausted => 413,
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_and_redirects_cross_the_wire_unchanged() {
        for e in [
            ApiError::new(403, "node m2 is not a manager"),
            ApiError::no_leader(),
            ApiError::new(409, "name conflicts"),
            ApiError::new(418, "odd"),
        ] {
            assert_eq!(to_call_error(from_api(e.clone())), CallError::Api(e));
        }
        let addr = Some("10.1.2.3:2377".to_string());
        assert_eq!(to_call_error(not_leader(addr.clone())), CallError::NotLeader { leader_addr: addr });
        assert_eq!(to_call_error(not_leader(None)), CallError::NotLeader { leader_addr: None });
    }

    #[test]
    fn the_grpc_layers_own_errors_keep_its_words() {
        let big = to_call_error(Status::out_of_range("decoded message length too large"));
        assert_eq!(big, CallError::Api(ApiError::new(400, "rpc error: code = OutOfRange desc = decoded message length too large")));
        assert!(matches!(to_call_error(Status::unavailable("connection reset")), CallError::Transport(_)));
    }
}
