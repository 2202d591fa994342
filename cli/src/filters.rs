//! `--filter key=value` flags and their Engine API encoding:
//! `filters={"key":{"value":true}}`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::json::JsonExt;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    map: BTreeMap<String, BTreeMap<String, bool>>,
}

impl Filters {
    pub fn new() -> Filters {
        Filters::default()
    }

    /// Parses `-f` values as docker does (key lower-cased, both sides trimmed).
    pub fn from_flags(values: &[String]) -> Result<Filters, String> {
        let mut f = Filters::new();
        for v in values {
            f.parse_add(v)?;
        }
        Ok(f)
    }

    pub fn parse_add(&mut self, value: &str) -> Result<(), String> {
        if value.is_empty() {
            return Ok(());
        }
        let Some((name, val)) = value.split_once('=') else {
            return Err("bad format of filter (expected name=value)".into());
        };
        self.add(&name.trim().to_lowercase(), val.trim());
        Ok(())
    }

    pub fn add(&mut self, key: &str, value: &str) {
        self.map.entry(key.to_string()).or_default().insert(value.to_string(), true);
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get(&self, key: &str) -> Vec<&str> {
        self.map.get(key).map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default()
    }

    /// Drops every value of `key`.
    pub fn remove(&mut self, key: &str) {
        self.map.remove(key);
    }

    /// The JSON text of the `filters` query parameter.
    pub fn to_json(&self) -> String {
        Value::Object(
            self.map
                .iter()
                .map(|(k, vals)| (k.clone(), Value::Object(vals.iter().map(|(v, b)| (v.clone(), Value::Bool(*b))).collect())))
                .collect(),
        )
        .to_compact()
    }

    /// `?filters=...` or "" when empty.
    pub fn query(&self) -> String {
        if self.is_empty() {
            String::new()
        } else {
            crate::client::query(&[("filters", self.to_json())])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_docker() {
        let f = Filters::from_flags(&["role=manager".into(), " Name = node-1 ".into(), "name=node-2".into()]).unwrap();
        assert_eq!(f.to_json(), r#"{"name":{"node-1":true,"node-2":true},"role":{"manager":true}}"#);
        assert_eq!(
            f.query(),
            "?filters=%7B%22name%22%3A%7B%22node-1%22%3Atrue%2C%22node-2%22%3Atrue%7D%2C%22role%22%3A%7B%22manager%22%3Atrue%7D%7D"
        );
        assert_eq!(Filters::new().query(), "");
        assert_eq!(f.get("name"), vec!["node-1", "node-2"]);
        let mut g = f.clone();
        g.remove("name");
        assert_eq!(g.to_json(), r#"{"role":{"manager":true}}"#);
    }

    #[test]
    fn rejects_bad_format() {
        assert_eq!(Filters::from_flags(&["role".into()]).unwrap_err(), "bad format of filter (expected name=value)");
        assert!(Filters::from_flags(&["".into()]).unwrap().is_empty());
    }
}
