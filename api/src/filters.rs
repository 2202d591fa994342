//! Docker's `filters` query parameter: JSON `{"key": {"value": true}}`, or the
//! older `{"key": ["value"]}`. Unknown keys are an error, as in Docker.

use std::collections::BTreeMap;

use crate::ApiError;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    map: BTreeMap<String, Vec<String>>,
}

impl Filters {
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Filters, ApiError> {
        let mut f = Filters::default();
        let Some(raw) = raw.filter(|s| !s.is_empty()) else {
            return Ok(f);
        };
        let v: serde_json::Value = serde_json::from_str(raw).map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
        let obj = v.as_object().ok_or_else(|| ApiError::bad_request("invalid filter: not an object"))?;
        for (k, vals) in obj {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
            }
            let list: Vec<String> = match vals {
                serde_json::Value::Object(m) => m.keys().cloned().collect(),
                serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
                _ => return Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
            };
            f.map.insert(k.clone(), list);
        }
        Ok(f)
    }

    pub fn get(&self, key: &str) -> &[String] {
        self.map.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// True when the key is absent, or any of its values satisfies `pred`.
    pub fn any(&self, key: &str, pred: impl Fn(&str) -> bool) -> bool {
        match self.map.get(key) {
            None => true,
            Some(vals) => vals.iter().any(|v| pred(v)),
        }
    }

    /// Label filters (`label=k` or `label=k=v`): every one must match.
    pub fn labels_match(&self, key: &str, labels: &BTreeMap<String, String>) -> bool {
        self.get(key).iter().all(|want| match want.split_once('=') {
            Some((k, v)) => labels.get(k).map(|x| x == v).unwrap_or(false),
            None => labels.contains_key(want.as_str()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_encodings() {
        let f = Filters::parse(Some(r#"{"role":{"manager":true}}"#), &["role"]).unwrap();
        assert_eq!(f.get("role"), ["manager"]);
        let f = Filters::parse(Some(r#"{"role":["worker"]}"#), &["role"]).unwrap();
        assert!(f.any("role", |v| v == "worker"));
        assert!(f.any("name", |_| false), "absent key matches everything");
    }

    #[test]
    fn unknown_key_is_refused() {
        let e = Filters::parse(Some(r#"{"colour":{"red":true}}"#), &["role"]).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("colour"));
    }

    #[test]
    fn label_filters() {
        let mut l = BTreeMap::new();
        l.insert("zone".to_string(), "east".to_string());
        let f = Filters::parse(Some(r#"{"node.label":{"zone=east":true}}"#), &["node.label"]).unwrap();
        assert!(f.labels_match("node.label", &l));
        let f = Filters::parse(Some(r#"{"node.label":{"zone=west":true}}"#), &["node.label"]).unwrap();
        assert!(!f.labels_match("node.label", &l));
    }
}
