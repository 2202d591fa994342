//! A compose file as a tree of YAML nodes that remember their file and line.
//!
//! serde-saphyr parses the text (anchors, aliases and `<<` merge keys are
//! resolved by it); every node is read through its `Spanned` wrapper, so the
//! line survives interpolation and the merging of several files, and an error
//! found much later (a wrong type, an unknown key) still names where it was
//! written.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::error::{Error, Pos};

/// One YAML node and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// In file order; keys are unique (the parser refuses duplicates).
    Map(Vec<(Key, Node)>),
}

/// A mapping key: always text (YAML `80:` becomes `"80"`), with its line.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

impl Node {
    pub fn new(value: Value, pos: Pos) -> Node {
        Node { value, pos }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[(Key, Node)] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A scalar as text, the way compose reads `KEY: 1` in an environment map.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(n) => Some(n.to_string()),
            Value::Float(f) => Some(format_float(*f)),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// How serde's messages describe this node ("string \"two\"", "a sequence").
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Null => "null".into(),
            Value::Bool(b) => format!("boolean `{b}`"),
            Value::Int(n) => format!("integer `{n}`"),
            Value::Float(f) => format!("floating point `{}`", format_float(*f)),
            Value::Str(s) => format!("string {s:?}"),
            Value::Seq(_) => "a sequence".into(),
            Value::Map(_) => "a mapping".into(),
        }
    }

    fn set_file(&mut self, file: u16) {
        self.pos.file = file;
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| n.set_file(file)),
            Value::Map(entries) => {
                for (k, v) in entries {
                    k.pos.file = file;
                    v.set_file(file);
                }
            }
            _ => {}
        }
    }
}

/// Go's `%v` of a float64 for the values that appear in compose files
/// (`version: 3.8`, `cpus: 0.5`).
pub fn format_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// Parse one file. `file` is the index of the file's name in the loader's table,
/// used for positions in later errors; `name` is used for errors found here.
pub fn parse(text: &str, file: u16, name: &str) -> Result<Node, Error> {
    // One anchor merged into every service is how compose files share
    // settings, so the alias/anchor ratio heuristic is off; the limits on
    // replayed events, aliases and nodes still stop alias bombs.
    let mut budget = serde_saphyr::Budget::default();
    budget.enforce_alias_anchor_ratio = false;
    let options = serde_saphyr::options! {
        budget: Some(budget),
        // `mode: 0440` is octal in compose files, as Go's YAML reads it.
        legacy_octal_numbers: true,
        // `yes`/`no`/`on`/`off` stay strings (YAML 1.2, as docker's yaml.v3).
        strict_booleans: true,
        with_snippet: false,
    };
    let parsed: Result<Option<Node>, _> = serde_saphyr::from_str_with_options(text, options);
    let mut node = match parsed {
        Ok(Some(node)) => node,
        Ok(None) => Node::new(Value::Null, Pos { file, line: 1 }),
        Err(e) => {
            let line = e.location().map(|l| l.line() as u32).unwrap_or(0);
            return Err(Error::at_name(name, line, "", yaml_message(&e)));
        }
    };
    node.set_file(file);
    Ok(node)
}

/// serde-saphyr's message without the position it appends (ours goes in front).
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    let cut = first.find(" at line ").map(|i| &first[..i]).unwrap_or(first);
    let cut = cut.strip_prefix("error: ").unwrap_or(cut);
    // The library's advice to its caller is not for the user.
    let cut = cut.split(", set DuplicateKeyPolicy").next().unwrap_or(cut);
    format!("invalid YAML: {}", cut.trim_end_matches(':'))
}

fn pos_of<T>(s: &Spanned<T>) -> Pos {
    Pos { file: 0, line: s.referenced.line() as u32 }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        let spanned: Spanned<Value> = Spanned::deserialize(d)?;
        let pos = pos_of(&spanned);
        Ok(Node { value: spanned.value, pos })
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        let spanned: Spanned<KeyText> = Spanned::deserialize(d)?;
        let pos = pos_of(&spanned);
        Ok(Key { name: spanned.value.0, pos })
    }
}

struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyText, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = KeyText;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a scalar mapping key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
        Ok(KeyText(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<KeyText, E> {
        Ok(KeyText(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
        Ok(KeyText(format_float(v)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
        Ok(KeyText("null".into()))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map(Value::Int).unwrap_or(Value::Float(v as f64)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries: Vec<(Key, Node)> = Vec::new();
        while let Some(key) = map.next_key::<Key>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Node {
        parse(text, 0, "f.yml").unwrap()
    }

    #[test]
    fn scalars_keep_their_types_and_lines() {
        let n = parse_ok("a: 1\nb: two\nc: true\nd:\ne: 0440\nf: 1.5\ng: \"3\"\nh: yes\n");
        assert_eq!(n.get("a").unwrap().value, Value::Int(1));
        assert_eq!(n.get("b").unwrap().value, Value::Str("two".into()));
        assert_eq!(n.get("b").unwrap().pos.line, 2);
        assert_eq!(n.get("c").unwrap().value, Value::Bool(true));
        assert_eq!(n.get("d").unwrap().value, Value::Null);
        assert_eq!(n.get("e").unwrap().value, Value::Int(0o440));
        assert_eq!(n.get("f").unwrap().value, Value::Float(1.5));
        assert_eq!(n.get("g").unwrap().value, Value::Str("3".into()));
        assert_eq!(n.get("h").unwrap().value, Value::Str("yes".into()));
        assert_eq!(n.entries()[3].0.pos.line, 4);
    }

    #[test]
    fn anchors_aliases_and_merge_keys_resolve() {
        let n = parse_ok(
            "x-base: &base\n  image: busybox\n  environment:\n    A: 1\nservices:\n  web:\n    <<: *base\n    image: nginx\n  db: *base\n",
        );
        let web = n.get("services").unwrap().get("web").unwrap();
        assert_eq!(web.get("image").unwrap().as_str(), Some("nginx"));
        assert_eq!(web.get("environment").unwrap().get("A").unwrap().value, Value::Int(1));
        assert!(web.get("<<").is_none());
        let db = n.get("services").unwrap().get("db").unwrap();
        assert_eq!(db.get("image").unwrap().as_str(), Some("busybox"));
    }

    #[test]
    fn broken_indentation_names_the_line() {
        let e = parse("services:\n  web:\n    image: x\n   ports: []\n", 0, "f.yml").unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert!(e.to_string().starts_with("f.yml:4: invalid YAML"), "{e}");
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = parse("a: 1\nb: 2\na: 3\n", 0, "f.yml").unwrap_err();
        assert_eq!(e.to_string(), "f.yml:3: invalid YAML: duplicate mapping key: a");
    }

    #[test]
    fn empty_file_is_null() {
        assert_eq!(parse_ok("").value, Value::Null);
        assert_eq!(parse_ok("# only a comment\n").value, Value::Null);
    }
}
