//! Docker's image reference rules as the CLI applies them (distribution's
//! `ParseNormalizedNamed`, `FamiliarName`, `FamiliarString`,
//! `TagNameOnly`): `busybox` is `docker.io/library/busybox`, shown as
//! `busybox`.

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub domain: String,
    /// The path after the domain (`library/busybox`).
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// `ParseNormalizedNamed`, with its error texts for the common cases.
    pub fn parse_normalized(s: &str) -> Result<Reference, String> {
        if s.is_empty() {
            return Err("invalid reference format".into());
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !d.contains(':') {
                    return Err("invalid reference format".into());
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(rest[last_slash + i + 1..].to_string())),
            None => (rest, None),
        };
        if name.is_empty() || tag.as_deref() == Some("") {
            return Err("invalid reference format".into());
        }
        let (domain, path) = split_domain(name);
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!("invalid reference format: repository name ({path}) must be lowercase"));
        }
        let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c);
        if !path.chars().all(ok) || path.starts_with('/') || path.ends_with('/') || path.contains("//") {
            return Err("invalid reference format".into());
        }
        Ok(Reference { domain, path, tag, digest })
    }

    /// The full name without tag or digest (`docker.io/library/busybox`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// `TagNameOnly`: `latest` when neither tag nor digest is given.
    pub fn with_default_tag(mut self) -> Reference {
        if self.is_name_only() {
            self.tag = Some("latest".into());
        }
        self
    }

    /// `FamiliarName`: `busybox`, `user/app`, `host:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    fn suffix(&self) -> String {
        let mut s = String::new();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// `FamiliarString`: the familiar name with tag and digest.
    pub fn familiar_string(&self) -> String {
        self.familiar_name() + &self.suffix()
    }
}

impl std::fmt::Display for Reference {
    /// The full reference (`docker.io/library/busybox:latest`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.name(), self.suffix())
    }
}

fn split_domain(name: &str) -> (String, String) {
    let (mut domain, mut rest) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first => {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !rest.contains('/') {
        rest = format!("{OFFICIAL_PREFIX}{rest}");
    }
    (domain, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_familiarizes_like_distribution() {
        let r = Reference::parse_normalized("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox");
        assert_eq!(r.clone().with_default_tag().to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.familiar_name(), "busybox");
        let r = Reference::parse_normalized("192.168.77.11:5000/busy:1@sha256:abcd").unwrap();
        assert_eq!((r.domain.as_str(), r.path.as_str(), r.tag.as_deref()), ("192.168.77.11:5000", "busy", Some("1")));
        assert_eq!(r.familiar_string(), "192.168.77.11:5000/busy:1@sha256:abcd");
        assert_eq!(r.name(), "192.168.77.11:5000/busy");
        let r = Reference::parse_normalized("index.docker.io/user/app:2").unwrap();
        assert_eq!((r.to_string(), r.familiar_string()), ("docker.io/user/app:2".to_string(), "user/app:2".to_string()));
        assert_eq!(Reference::parse_normalized("docker.io/library/a/b").unwrap().familiar_name(), "library/a/b");
        assert_eq!(Reference::parse_normalized("localhost/x").unwrap().familiar_name(), "localhost/x");
        assert!(Reference::parse_normalized("Busybox").unwrap_err().contains("must be lowercase"));
        assert!(Reference::parse_normalized("a:").is_err());
    }
}
