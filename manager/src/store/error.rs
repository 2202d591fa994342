//! Why the state machine refused a command: a typed answer, replicated
//! (the dedup table keeps it, see `RecentProposals`), and turned into
//! Docker's status and words in one place, `From<StoreError> for ApiError`.

use serde::{Deserialize, Serialize};
use shoal_api::ApiError;

/// The gRPC codes SwarmKit's control API refuses with: Docker shows its
/// refusals as `rpc error: code = <code> desc = <text>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Code {
    AlreadyExists,
    NotFound,
    InvalidArgument,
    FailedPrecondition,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreError {
    /// A refusal SwarmKit makes in its control API (name conflicts,
    /// references to missing or used secrets, no previous spec).
    Rpc { code: Code, desc: String },
    /// An object with this ID exists (`what`: "node x").
    Exists(String),
    /// No such object (`what`: "service x").
    NotFound(String),
    /// A write based on an older version of the object than the store's.
    OutOfSequence,
    /// No swarm yet.
    NotInSwarm,
    /// The command cannot apply to the object as it is.
    Invalid(String),
    /// A refusal recorded by an earlier version of Shoal (as its HTTP
    /// status and text), read back from a snapshot.
    Recorded { status: u16, message: String },
}

impl StoreError {
    pub fn rpc(code: Code, desc: impl Into<String>) -> StoreError {
        StoreError::Rpc { code, desc: desc.into() }
    }

    pub fn not_found(what: impl std::fmt::Display) -> StoreError {
        StoreError::NotFound(format!("{what} not found"))
    }
}

/// Docker's text for the refusal.
impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&ApiError::from(self.clone()).message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Rpc { code, desc } => {
                let status = match code {
                    Code::AlreadyExists => 409,
                    Code::NotFound => 404,
                    Code::InvalidArgument | Code::FailedPrecondition => 400,
                };
                ApiError::new(status, format!("rpc error: code = {code:?} desc = {desc}"))
            }
            StoreError::Exists(m) => ApiError::conflict(m),
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::OutOfSequence => ApiError::out_of_sequence(),
            StoreError::NotInSwarm => ApiError::not_in_swarm(),
            StoreError::Invalid(m) => ApiError::bad_request(m),
            StoreError::Recorded { status, message } => ApiError::new(status, message),
        }
    }
}

/// The allocator's refusals of a network create or removal.
impl From<crate::allocator::Refusal> for StoreError {
    fn from(r: crate::allocator::Refusal) -> StoreError {
        use crate::allocator::Refusal;
        match r {
            Refusal::Taken(m) => StoreError::Exists(m),
            Refusal::NotFound(m) => StoreError::NotFound(m),
            Refusal::InUse(m) => StoreError::rpc(Code::FailedPrecondition, m),
            Refusal::Invalid(m) => StoreError::Invalid(m),
        }
    }
}

/// A result as the dedup table keeps it; one recorded by an earlier
/// version (an HTTP status and text) still reads.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum Recorded {
    Typed(StoreError),
    Legacy(u16, String),
}

impl From<Recorded> for StoreError {
    fn from(r: Recorded) -> StoreError {
        match r {
            Recorded::Typed(e) => e,
            Recorded::Legacy(status, message) => StoreError::Recorded { status, message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_docker_words_them() {
        let e: ApiError = StoreError::rpc(Code::AlreadyExists, "name conflicts with an existing object: service web already exists").into();
        assert_eq!(
            e,
            ApiError::conflict("rpc error: code = AlreadyExists desc = name conflicts with an existing object: service web already exists")
        );
        let e: ApiError = StoreError::rpc(Code::FailedPrecondition, "service s does not have a previous spec").into();
        assert_eq!(e, ApiError::bad_request("rpc error: code = FailedPrecondition desc = service s does not have a previous spec"));
        assert_eq!(ApiError::from(StoreError::OutOfSequence), ApiError::out_of_sequence());
        assert_eq!(ApiError::from(StoreError::not_found("node n")), ApiError::not_found("node n not found"));
    }

    #[test]
    fn results_recorded_by_an_earlier_version_still_read() {
        let old: Recorded = serde_json::from_str(r#"[404,"node n not found"]"#).unwrap();
        assert_eq!(StoreError::from(old), StoreError::Recorded { status: 404, message: "node n not found".into() });
        // A snapshot's dedup table as an earlier version wrote it.
        let table: crate::store::RecentProposals =
            serde_json::from_str(r#"[[7,{"Err":[404,"node n not found"]}],[8,{"Ok":null}]]"#).unwrap();
        assert_eq!(table.get(7), Some(&Err(StoreError::Recorded { status: 404, message: "node n not found".into() })));
        assert_eq!(ApiError::from(table.get(7).unwrap().clone().unwrap_err()), ApiError::not_found("node n not found"));
        assert_eq!(table.get(8), Some(&Ok(serde_json::Value::Null)));
        let typed = serde_json::to_string(&Recorded::Typed(StoreError::OutOfSequence)).unwrap();
        let back: Recorded = serde_json::from_str(&typed).unwrap();
        assert_eq!(StoreError::from(back), StoreError::OutOfSequence);
    }
}
