//! `--with-registry-auth`: the credentials the docker CLI would send for an
//! image's registry, from the client's `config.json` (`$DOCKER_CONFIG`, or
//! `~/.docker`), encoded for the `X-Registry-Auth` header. Credential
//! helpers (`credsStore`, `credHelpers`) are programs this CLI does not
//! run; only credentials stored in `auths` are found.

use std::path::PathBuf;

use crate::error::{CliError, CliResult};
use serde_json::Value;

use crate::json::{self, JsonExt};

/// Docker Hub's key in `auths`.
const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// The registry part of an image reference, as the `auths` key names it.
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first.to_string(),
        _ => DOCKER_HUB.to_string(),
    }
}

fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// The header value for `image`'s registry, or `None` without credentials.
pub fn header_for(image: &str) -> CliResult<Option<String>> {
    let Some(path) = config_path() else { return Ok(None) };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CliError::new(format!("loading config file {}: {e}", path.display()))),
    };
    let config = json::parse(&text).map_err(|e| CliError::new(format!("loading config file {}: {e}", path.display())))?;
    Ok(header_from_config(&config, &registry_of(image)))
}

/// Looks `registry` up in a parsed `config.json` (also under its
/// `https://` form, as `docker login` may have written it).
pub fn header_from_config(config: &Value, registry: &str) -> Option<String> {
    let auths = &config["auths"];
    let entry = [registry.to_string(), format!("https://{registry}"), format!("http://{registry}")]
        .iter()
        .map(|k| &auths[k])
        .find(|e| !e.is_null())?
        .clone();
    let (user, password) = match entry["auth"].as_str().filter(|a| !a.is_empty()) {
        Some(b64) => {
            let raw = shoal_api::base64::decode_any(b64).ok()?;
            let text = String::from_utf8(raw).ok()?;
            let (u, p) = text.split_once(':')?;
            (u.to_string(), p.to_string())
        }
        None => (entry["username"].str().to_string(), entry["password"].str().to_string()),
    };
    if user.is_empty() && entry["identitytoken"].str().is_empty() {
        return None;
    }
    let auth = json::object(vec![
        ("username", Value::from(user.as_str())),
        ("password", Value::from(password.as_str())),
        ("identitytoken", Value::from(entry["identitytoken"].str())),
        ("serveraddress", Value::from(registry)),
    ]);
    // base64url with padding, as the docker CLI encodes it.
    Some(shoal_api::base64::encode_url(auth.to_compact().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_named_as_docker_does() {
        assert_eq!(registry_of("busybox"), DOCKER_HUB);
        assert_eq!(registry_of("library/busybox:1"), DOCKER_HUB);
        assert_eq!(registry_of("127.0.0.1:5000/web:1"), "127.0.0.1:5000");
        assert_eq!(registry_of("localhost/web"), "localhost");
        assert_eq!(registry_of("registry.example/team/web"), "registry.example");
    }

    #[test]
    fn credentials_come_from_auths() {
        let cfg = json::parse(r#"{"auths":{"127.0.0.1:5000":{"auth":"dXNlcjpwYXNz"}}}"#).unwrap();
        let h = header_from_config(&cfg, "127.0.0.1:5000").unwrap();
        let json = shoal_api::base64::decode_any(&h).unwrap();
        let json = json::parse(std::str::from_utf8(&json).unwrap()).unwrap();
        assert_eq!(json["username"].str(), "user");
        assert_eq!(json["password"].str(), "pass");
        assert_eq!(json["serveraddress"].str(), "127.0.0.1:5000");
        assert!(header_from_config(&cfg, "other:5000").is_none());
        let https = json::parse(r#"{"auths":{"https://reg.example":{"username":"u","password":"p"}}}"#).unwrap();
        assert!(header_from_config(&https, "reg.example").is_some());
    }
}
