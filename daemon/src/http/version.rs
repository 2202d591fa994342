//! The API version a request names (`/v1.41/...`), and what dockerd does
//! differently for the older ones Shoal serves (1.24 up to 1.44): it
//! clears the service spec fields an older client cannot have meant
//! (moby's `adjustForAPIVersion`), reads `?status` on `GET /services` from
//! 1.41, sends log and attach streams as `raw-stream` before 1.42, and
//! writes images' `VirtualSize` before 1.44 and `<none>:<none>` tags
//! before 1.43. Responses of the swarm endpoints do not change.

use shoal_api::service::{ServiceMode, ServiceSpec};

/// `major.minor`; a request without a version prefix is the latest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    pub fn latest() -> ApiVersion {
        ApiVersion::parse(shoal_api::API_VERSION).expect("a valid constant")
    }

    pub fn parse(v: &str) -> Option<ApiVersion> {
        let (a, b) = v.split_once('.')?;
        Some(ApiVersion(a.parse().ok()?, b.parse().ok()?))
    }

    /// Older than `major.minor`.
    pub fn before(self, major: u32, minor: u32) -> bool {
        self < ApiVersion(major, minor)
    }
}

impl Default for ApiVersion {
    fn default() -> Self {
        ApiVersion::latest()
    }
}

/// An image summary (`/images/json`, `/system/df`) as a client of `v`
/// reads it: `<none>:<none>` and `<none>@<none>` for an untagged image
/// before 1.43, `VirtualSize` (the size) before 1.44.
pub fn image_summary(j: &mut serde_json::Value, v: ApiVersion) {
    if v.before(1, 43) {
        for (key, none) in [("RepoTags", "<none>:<none>"), ("RepoDigests", "<none>@<none>")] {
            if j[key].as_array().is_none_or(|a| a.is_empty()) {
                j[key] = serde_json::json!([none]);
            }
        }
    }
    if v.before(1, 44) {
        j["VirtualSize"] = j["Size"].clone();
    }
}

/// An image inspect as a client of `v` reads it: `VirtualSize` before 1.44,
/// and Go's zero time for an image without a creation time.
pub fn image_inspect(j: &mut serde_json::Value, v: ApiVersion) {
    if v.before(1, 44) {
        j["VirtualSize"] = j["Size"].clone();
        if j["Created"].as_str().is_none_or(str::is_empty) {
            j["Created"] = "0001-01-01T00:00:00Z".into();
        }
    }
}

/// The `Content-Type` of a log, attach or exec stream: multiplexed frames
/// (no terminal) are labelled as such from 1.42, `raw-stream` before.
pub fn stream_type(multiplexed: bool, v: ApiVersion) -> &'static str {
    if multiplexed && !v.before(1, 42) {
        "application/vnd.docker.multiplexed-stream"
    } else {
        "application/vnd.docker.raw-stream"
    }
}

/// A service spec as dockerd takes it from a client of version `v`: the
/// fields that version did not have are cleared (an older client that
/// sends them, from a spec it read, did not mean them).
pub fn adjust_service_spec(spec: &mut ServiceSpec, v: ApiVersion) {
    let Some(c) = spec.task_template.container_spec.as_mut() else { return };
    if v.before(1, 40) {
        c.sysctls.clear();
        if let Some(cs) = c.privileges.as_mut().and_then(|p| p.credential_spec.as_mut()) {
            cs.config.clear();
        }
        c.configs.iter_mut().for_each(|r| r.runtime = None);
        if let Some(p) = spec.task_template.placement.as_mut() {
            p.max_replicas = 0;
        }
    }
    if v.before(1, 41) {
        c.capability_add.clear();
        c.capability_drop.clear();
        c.ulimits.clear();
        if let Some(l) = spec.task_template.resources.as_mut().and_then(|r| r.limits.as_mut()) {
            l.pids = 0;
        }
        if spec.mode.is_job() {
            // A job a client of that version cannot have asked for: as
            // dockerd, what is left is the default mode.
            spec.mode = ServiceMode::default();
        }
    }
    if v.before(1, 44) {
        if let Some(p) = c.privileges.as_mut() {
            p.seccomp = None;
            p.app_armor = None;
            p.no_new_privileges = false;
        }
        if let Some(h) = c.healthcheck.as_mut() {
            h.start_interval = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ServiceSpec {
        serde_json::from_str(
            r#"{"Name": "s", "Mode": {"ReplicatedJob": {"TotalCompletions": 2}},
                "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "CapabilityAdd": ["CAP_NET_ADMIN"], "CapabilityDrop": ["CAP_CHOWN"],
                    "Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 20}], "Sysctls": {"net.ipv4.ip_forward": "1"},
                    "Privileges": {"NoNewPrivileges": true, "Seccomp": {"Mode": "unconfined"}, "AppArmor": {"Mode": "disabled"}},
                    "Healthcheck": {"Test": ["CMD", "true"], "StartInterval": 1000000000}},
                 "Resources": {"Limits": {"Pids": 100}}}}"#,
        )
        .unwrap()
    }

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(ApiVersion::parse("1.41"), Some(ApiVersion(1, 41)));
        assert!(ApiVersion(1, 40).before(1, 41) && !ApiVersion(1, 44).before(1, 44));
        assert_eq!(ApiVersion::default(), ApiVersion(1, 44));
        assert_eq!(ApiVersion::parse("x"), None);
    }

    #[test]
    fn the_latest_version_keeps_everything() {
        let mut s = spec();
        adjust_service_spec(&mut s, ApiVersion::latest());
        assert_eq!(s, spec());
    }

    #[test]
    fn older_clients_lose_the_fields_their_version_did_not_have() {
        let mut s = spec();
        adjust_service_spec(&mut s, ApiVersion(1, 43));
        let c = s.task_template.container_spec.as_ref().unwrap();
        let p = c.privileges.as_ref().unwrap();
        assert!(p.seccomp.is_none() && p.app_armor.is_none() && !p.no_new_privileges);
        assert_eq!(c.healthcheck.as_ref().unwrap().start_interval, 0);
        assert_eq!(c.capability_add, ["CAP_NET_ADMIN"], "1.41 fields stay");
        assert!(s.mode.is_job());

        let mut s = spec();
        adjust_service_spec(&mut s, ApiVersion(1, 40));
        let c = s.task_template.container_spec.as_ref().unwrap();
        assert!(c.capability_add.is_empty() && c.capability_drop.is_empty() && c.ulimits.is_empty());
        assert_eq!(s.task_template.resources.as_ref().unwrap().limits.as_ref().unwrap().pids, 0);
        assert_eq!(s.mode, ServiceMode::default(), "no jobs before 1.41");
        assert!(!c.sysctls.is_empty(), "1.40 has sysctls");

        let mut s = spec();
        adjust_service_spec(&mut s, ApiVersion(1, 39));
        assert!(s.task_template.container_spec.as_ref().unwrap().sysctls.is_empty());
    }
}

#[cfg(test)]
mod shape_tests {
    use super::*;

    #[test]
    fn image_shapes_follow_the_version() {
        let base = serde_json::json!({"Id": "sha256:x", "RepoTags": [], "RepoDigests": [], "Size": 42, "Created": ""});
        let mut latest = base.clone();
        image_summary(&mut latest, ApiVersion::latest());
        assert_eq!(latest, base, "1.44: as it is");
        let mut v143 = base.clone();
        image_summary(&mut v143, ApiVersion(1, 43));
        assert_eq!((v143["VirtualSize"].clone(), v143["RepoTags"].clone()), (serde_json::json!(42), serde_json::json!([])));
        let mut v142 = base.clone();
        image_summary(&mut v142, ApiVersion(1, 42));
        assert_eq!(v142["RepoTags"], serde_json::json!(["<none>:<none>"]));
        assert_eq!(v142["RepoDigests"], serde_json::json!(["<none>@<none>"]));
        let mut inspect = base.clone();
        image_inspect(&mut inspect, ApiVersion(1, 43));
        assert_eq!(
            (inspect["VirtualSize"].clone(), inspect["Created"].clone()),
            (serde_json::json!(42), serde_json::json!("0001-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn multiplexed_streams_are_labelled_so_from_1_42() {
        assert_eq!(stream_type(true, ApiVersion(1, 42)), "application/vnd.docker.multiplexed-stream");
        assert_eq!(stream_type(true, ApiVersion(1, 41)), "application/vnd.docker.raw-stream");
        assert_eq!(stream_type(false, ApiVersion(1, 44)), "application/vnd.docker.raw-stream");
    }
}
