//! Request bodies decoded the way Docker's daemon decodes them.
//!
//! Docker reads every Engine API body with Go's `encoding/json`, and the
//! clients people use rely on what that decoder forgives:
//!
//! - `null` is "not set". docker-py and the other SDKs send `null` for every
//!   argument the caller left out (`"Args": null`, `"Aliases": null`), and
//!   Go leaves the field at its zero value. In a struct field, Shoal leaves
//!   the field at its serde default; as an element of an array or a value of
//!   a map (where there is no field to leave alone), `null` is the element
//!   type's zero value (`""`, `0`, `false`, empty, `None`), as Go makes it.
//! - Object keys find struct fields case-insensitively, an exact match
//!   first: docker-py's `ServiceMode('replicated', 5)` is
//!   `{"replicated": {"Replicas": 5}}`, five replicas for Docker.
//! - Unknown keys are ignored.
//! - A field given twice takes its last value (serde would refuse).
//!
//! All of it is one mechanism, driven by the target type instead of by
//! per-field attributes: the body is parsed into [`Node`] (a JSON tree that
//! keeps the keys in document order), and `Node` is a serde `Deserializer`
//! that rewrites each object's keys just before the target type reads it.
//! Only there is it known whether the object is a struct (serde passes
//! `deserialize_struct` the struct's field names, the names it accepts,
//! `rename`s applied) or a map such as `Labels`, `Options` or `DriverOpts`,
//! whose keys are data and are left exactly as sent. Object-shaped enums
//! (`{"NamedResourceSpec": {...}}`) are Go structs with one field set, so
//! their variant keys are matched like field names; a string-shaped enum
//! (`"worker"`, `"on-failure"`) is a value and is matched exactly.
//!
//! Errors name the path to the offending value
//! (`TaskTemplate.ContainerSpec.Command[1]: invalid type: ...`).
//!
//! Limits, by construction: a type that derives with `#[serde(flatten)]`,
//! `#[serde(untagged)]` or an internally tagged enum is read by serde
//! through its own buffer, not through `Node`, so below such a type keys are
//! matched exactly and `null` is not dropped (`tests::no_buffered_types`
//! fails if one appears in this crate). A `serde_json::Value` field takes
//! its JSON as sent.

use std::fmt;

use serde::de::value::StringDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, Unexpected, Visitor};
use serde::Deserialize;

/// Decodes a request body as Docker's Go decoder would (see the module
/// documentation).
pub fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let tree: Node = serde_json::from_slice(body).map_err(|e| Error::msg(e.to_string()))?;
    T::deserialize(tree)
}

pub fn from_str<T: DeserializeOwned>(body: &str) -> Result<T, Error> {
    from_slice(body.as_bytes())
}

/// Why a body was refused, with the path to the value at fault when there
/// is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Innermost step first (steps are added as the error travels out).
    steps: Vec<Step>,
    msg: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

impl Error {
    fn msg(msg: String) -> Error {
        Error { steps: Vec::new(), msg }
    }

    fn at(mut self, step: Step) -> Error {
        self.steps.push(step);
        self
    }

    /// `TaskTemplate.ContainerSpec.Command[1]`; empty for the body itself.
    pub fn path(&self) -> String {
        let mut out = String::new();
        for step in self.steps.iter().rev() {
            match step {
                Step::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Step::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    /// The problem without the path.
    pub fn message(&self) -> &str {
        &self.msg
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path();
        if path.is_empty() {
            f.write_str(&self.msg)
        } else {
            write!(f, "{path}: {}", self.msg)
        }
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::msg(msg.to_string())
    }
}

/// A parsed JSON document. Unlike `serde_json::Value`, objects keep their
/// keys in document order and with duplicates, so that "the last one wins"
/// can be decided as Go decides it, after the keys are matched to fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
                Ok(Node::U64(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::I64(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::F64(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Node, E> {
                Ok(Node::Str(v))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Array(items))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Node>()? {
                    entries.push(entry);
                }
                Ok(Node::Object(entries))
            }
        }
        d.deserialize_any(NodeVisitor)
    }
}

impl Node {
    fn unexpected(&self) -> Unexpected<'_> {
        match self {
            Node::Null => Unexpected::Other("null"),
            Node::Bool(b) => Unexpected::Bool(*b),
            Node::U64(n) => Unexpected::Unsigned(*n),
            Node::I64(n) => Unexpected::Signed(*n),
            Node::F64(n) => Unexpected::Float(*n),
            Node::Str(s) => Unexpected::Str(s),
            Node::Array(_) => Unexpected::Seq,
            Node::Object(_) => Unexpected::Map,
        }
    }
}

/// Go's rule for a key naming one of `names` (struct fields, or the
/// variants of an object-shaped enum): the name spelled exactly, else the
/// first one equal to it ignoring case.
fn match_name(key: &str, names: &[&'static str]) -> Option<&'static str> {
    if let Some(exact) = names.iter().find(|n| **n == key) {
        return Some(exact);
    }
    let folded = |s: &str| s.chars().flat_map(char::to_lowercase).collect::<String>();
    let key = folded(key);
    names.iter().find(|n| folded(n) == key).copied()
}

/// A struct's keys as the struct should see them: each known key renamed to
/// the field it matches, one entry per field (the last given wins), `null`
/// entries meaning "not set". Unknown keys stay as they are, for the type to
/// ignore (or refuse, with `deny_unknown_fields`).
fn struct_entries(entries: Vec<(String, Node)>, names: &[&'static str]) -> Vec<(String, Node)> {
    let mut out: Vec<(String, Node)> = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let key = match match_name(&key, names) {
            Some(name) => name.to_string(),
            None => key,
        };
        out.retain(|(k, _)| *k != key);
        if !matches!(value, Node::Null) {
            out.push((key, value));
        }
    }
    out
}

/// A map's keys are data: kept as sent, the last of equal keys wins (as a
/// Go map assignment does).
fn map_entries(entries: Vec<(String, Node)>) -> Vec<(String, Node)> {
    let mut out: Vec<(String, Node)> = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        out.retain(|(k, _)| *k != key);
        out.push((key, value));
    }
    out
}

struct MapDe {
    entries: std::vec::IntoIter<(String, Node)>,
    value: Option<(String, Node)>,
}

impl MapDe {
    fn new(entries: Vec<(String, Node)>) -> MapDe {
        MapDe { entries: entries.into_iter(), value: None }
    }
}

impl<'de> de::MapAccess<'de> for MapDe {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else { return Ok(None) };
        let de: StringDeserializer<Error> = key.clone().into_deserializer();
        let k = seed.deserialize(de).map_err(|e| e.at(Step::Key(key.clone())))?;
        self.value = Some((key, value));
        Ok(Some(k))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (key, value) = self.value.take().ok_or_else(|| Error::msg("a map value was asked for before its key".into()))?;
        seed.deserialize(value).map_err(|e| e.at(Step::Key(key)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct SeqDe {
    items: std::iter::Enumerate<std::vec::IntoIter<Node>>,
}

impl<'de> de::SeqAccess<'de> for SeqDe {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            Some((i, item)) => seed.deserialize(item).map(Some).map_err(|e| e.at(Step::Index(i))),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

fn visit_array<'de, V: Visitor<'de>>(items: Vec<Node>, visitor: V) -> Result<V::Value, Error> {
    let len = items.len();
    let mut seq = SeqDe { items: items.into_iter().enumerate() };
    let value = visitor.visit_seq(&mut seq)?;
    // A tuple reads a fixed number of elements: more is an error, as in
    // serde_json (Go too refuses a longer array for a fixed-size one).
    if seq.items.len() != 0 {
        return Err(de::Error::invalid_length(len, &"fewer elements in array"));
    }
    Ok(value)
}

fn visit_object<'de, V: Visitor<'de>>(entries: Vec<(String, Node)>, visitor: V) -> Result<V::Value, Error> {
    visitor.visit_map(MapDe::new(entries))
}

struct EnumDe {
    variant: String,
    content: Option<Node>,
}

impl<'de> de::EnumAccess<'de> for EnumDe {
    type Error = Error;
    type Variant = VariantDe;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, VariantDe), Error> {
        let de: StringDeserializer<Error> = self.variant.clone().into_deserializer();
        let v = seed.deserialize(de)?;
        Ok((v, VariantDe { variant: self.variant, content: self.content }))
    }
}

struct VariantDe {
    variant: String,
    content: Option<Node>,
}

impl VariantDe {
    fn content(self, expected: &'static str) -> Result<(Node, String), Error> {
        match self.content {
            Some(node) => Ok((node, self.variant)),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &expected)),
        }
    }
}

impl<'de> de::VariantAccess<'de> for VariantDe {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.content {
            None | Some(Node::Null) => Ok(()),
            Some(other) => Err(de::Error::invalid_type(other.unexpected(), &"unit variant")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        let (node, variant) = self.content("newtype variant")?;
        seed.deserialize(node).map_err(|e| e.at(Step::Key(variant)))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        let (node, variant) = self.content("tuple variant")?;
        node.deserialize_tuple(len, visitor).map_err(|e| e.at(Step::Key(variant)))
    }

    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        let (node, variant) = self.content("struct variant")?;
        node.deserialize_struct("", fields, visitor).map_err(|e| e.at(Step::Key(variant)))
    }
}

/// `null` asked for as a number, string or bool: the zero value, as Go
/// leaves it; anything else goes to the visitor, which names what it wanted.
macro_rules! zero_on_null {
    ($($method:ident => $zero:expr;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                match self {
                    Node::Null => $zero(visitor),
                    other => other.deserialize_any(visitor),
                }
            }
        )*
    };
}

impl<'de> Deserializer<'de> for Node {
    type Error = Error;

    /// The JSON as it is: for `serde_json::Value` fields and the like.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Null => visitor.visit_unit(),
            Node::Bool(b) => visitor.visit_bool(b),
            Node::U64(n) => visitor.visit_u64(n),
            Node::I64(n) => visitor.visit_i64(n),
            Node::F64(n) => visitor.visit_f64(n),
            Node::Str(s) => visitor.visit_string(s),
            Node::Array(items) => visit_array(items, visitor),
            Node::Object(entries) => visit_object(map_entries(entries), visitor),
        }
    }

    zero_on_null! {
        deserialize_bool => |v: V| v.visit_bool(false);
        deserialize_i8 => |v: V| v.visit_u64(0);
        deserialize_i16 => |v: V| v.visit_u64(0);
        deserialize_i32 => |v: V| v.visit_u64(0);
        deserialize_i64 => |v: V| v.visit_u64(0);
        deserialize_i128 => |v: V| v.visit_u64(0);
        deserialize_u8 => |v: V| v.visit_u64(0);
        deserialize_u16 => |v: V| v.visit_u64(0);
        deserialize_u32 => |v: V| v.visit_u64(0);
        deserialize_u64 => |v: V| v.visit_u64(0);
        deserialize_u128 => |v: V| v.visit_u64(0);
        deserialize_f32 => |v: V| v.visit_f64(0.0);
        deserialize_f64 => |v: V| v.visit_f64(0.0);
        deserialize_str => |v: V| v.visit_str("");
        deserialize_string => |v: V| v.visit_str("");
        deserialize_bytes => |v: V| v.visit_bytes(&[]);
        deserialize_byte_buf => |v: V| v.visit_bytes(&[]);
        deserialize_unit => |v: V| v.visit_unit();
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Null => visit_array(Vec::new(), visitor),
            Node::Array(items) => visit_array(items, visitor),
            other => Err(de::Error::invalid_type(other.unexpected(), &visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(self, _name: &'static str, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    /// A map's keys are data: never renamed.
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Null => visit_object(Vec::new(), visitor),
            Node::Object(entries) => visit_object(map_entries(entries), visitor),
            other => Err(de::Error::invalid_type(other.unexpected(), &visitor)),
        }
    }

    /// The one place field names are known: keys are matched to them here.
    /// Only an object is a struct (serde would also take an array).
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self {
            Node::Null => visit_object(Vec::new(), visitor),
            Node::Object(entries) => visit_object(struct_entries(entries, fields), visitor),
            other => Err(de::Error::invalid_type(other.unexpected(), &visitor)),
        }
    }

    /// `"variant"`, or `{"Variant": content}` with the key matched like a
    /// field name (other keys may be there as `null`, Go's unset pointers).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self {
            Node::Str(variant) => visitor.visit_enum(EnumDe { variant, content: None }),
            Node::Object(entries) => {
                let mut entries = struct_entries(entries, variants);
                match entries.pop() {
                    Some((variant, content)) if entries.is_empty() => visitor.visit_enum(EnumDe { variant, content: Some(content) }),
                    _ => Err(de::Error::invalid_value(Unexpected::Map, &"an object with exactly one key set")),
                }
            }
            other => Err(de::Error::invalid_type(other.unexpected(), &visitor)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct Outer {
        #[serde(default)]
        name: String,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        #[serde(default)]
        inner: Inner,
        #[serde(default)]
        items: Vec<Inner>,
        #[serde(default)]
        maybe: Option<Inner>,
        #[serde(default, rename = "ID")]
        id: String,
        #[serde(default = "seven")]
        count: u64,
        #[serde(default)]
        words: Vec<String>,
        #[serde(default)]
        raw: serde_json::Value,
        #[serde(default)]
        kind: Option<Kind>,
        #[serde(default)]
        resources: Vec<Res>,
        #[serde(default)]
        by_name: BTreeMap<String, Inner>,
    }

    fn seven() -> u64 {
        7
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct Inner {
        #[serde(default)]
        replicas: Option<u64>,
        #[serde(default)]
        command: Vec<String>,
        #[serde(default)]
        driver_opts: BTreeMap<String, String>,
        #[serde(default)]
        flag: bool,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Worker,
        Manager,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    enum Res {
        #[serde(rename = "NamedResourceSpec")]
        Named(Inner),
        #[serde(rename = "DiscreteResourceSpec")]
        Discrete(Inner),
    }

    fn outer(body: &str) -> Outer {
        from_str(body).unwrap_or_else(|e| panic!("{body}: {e}"))
    }

    #[test]
    fn null_is_not_set_at_every_depth() {
        let o = outer(
            r#"{"Name": null, "Labels": null, "Count": null, "Maybe": null, "Words": null, "Kind": null,
                "Inner": {"Replicas": null, "Command": null, "DriverOpts": null, "Flag": null},
                "Items": [{"Command": null, "Replicas": null}]}"#,
        );
        assert_eq!(o.name, "");
        assert!(o.labels.is_empty());
        // `null` leaves a field's own default, not the type's zero.
        assert_eq!(o.count, 7);
        assert_eq!(o.maybe, None);
        assert_eq!(o.kind, None);
        assert_eq!(o.inner, Inner::default());
        assert_eq!(o.items, vec![Inner::default()]);
        // The body itself may be null: every field at its default.
        assert_eq!(from_str::<Outer>("null").unwrap().count, 7);
    }

    #[test]
    fn null_in_arrays_and_map_values_is_the_zero_value() {
        // Go appends the element's zero value; the element is not dropped,
        // so later ones keep their places.
        let o = outer(r#"{"Words": ["a", null, "c"], "Labels": {"k": null}, "Items": [null, {"Replicas": 2}]}"#);
        assert_eq!(o.words, ["a", "", "c"]);
        assert_eq!(o.labels["k"], "");
        assert_eq!(o.items, vec![Inner::default(), Inner { replicas: Some(2), ..Default::default() }]);
        let opts: Vec<Option<u64>> = from_str("[1, null]").unwrap();
        assert_eq!(opts, [Some(1), None]);
    }

    #[test]
    fn struct_fields_match_case_insensitively() {
        let o = outer(r#"{"name": "web", "INNER": {"replicas": 5, "command": ["a"]}, "id": "x1", "maybe": {"FLAG": true}}"#);
        assert_eq!(o.name, "web");
        assert_eq!(o.inner.replicas, Some(5));
        assert_eq!(o.inner.command, ["a"]);
        assert_eq!(o.id, "x1");
        assert!(o.maybe.unwrap().flag);
        // Inside arrays and map values too.
        let o = outer(r#"{"items": [{"replicas": 1}], "byname": {"a": {"replicas": 2}}}"#);
        assert_eq!(o.items[0].replicas, Some(1));
        assert_eq!(o.by_name["a"].replicas, Some(2));
    }

    #[test]
    fn map_keys_are_data() {
        let o = outer(r#"{"Labels": {"Name": "x", "name": "y", "ID": "z"}, "Inner": {"DriverOpts": {"Replicas": "1"}}}"#);
        let want: BTreeMap<String, String> =
            [("Name", "x"), ("name", "y"), ("ID", "z")].into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(o.labels, want);
        assert_eq!(o.inner.driver_opts.keys().collect::<Vec<_>>(), ["Replicas"]);
        assert_eq!(o.inner.replicas, None);
        // Keys of a map of structs stay too; the structs' own keys match.
        let o = outer(r#"{"ByName": {"REPLICAS": {"replicas": 3}}}"#);
        assert_eq!(o.by_name.keys().collect::<Vec<_>>(), ["REPLICAS"]);
        assert_eq!(o.by_name["REPLICAS"].replicas, Some(3));
    }

    #[test]
    fn raw_json_fields_keep_what_was_sent() {
        let o = outer(r#"{"Raw": {"LogDriver": {"Name": "x", "options": null}}}"#);
        assert_eq!(o.raw, serde_json::json!({"LogDriver": {"Name": "x", "options": null}}));
    }

    #[test]
    fn exact_case_wins_and_the_last_of_a_field_wins() {
        #[derive(Debug, Deserialize)]
        struct Two {
            #[serde(default, rename = "Id")]
            a: String,
            #[serde(default, rename = "ID")]
            b: String,
        }
        let t: Two = from_str(r#"{"ID": "upper", "Id": "mixed"}"#).unwrap();
        assert_eq!((t.a.as_str(), t.b.as_str()), ("mixed", "upper"));
        // No exact match: the first field that matches ignoring case.
        let t: Two = from_str(r#"{"id": "lower"}"#).unwrap();
        assert_eq!((t.a.as_str(), t.b.as_str()), ("lower", ""));
        // One field given twice (any spelling): the later value, as in Go,
        // where serde alone would refuse a duplicate field.
        assert_eq!(outer(r#"{"Name": "a", "name": "b"}"#).name, "b");
        assert_eq!(outer(r#"{"name": "a", "Name": "b"}"#).name, "b");
        assert_eq!(outer(r#"{"Labels": {"k": "1", "k": "2"}}"#).labels["k"], "2");
        assert_eq!(outer(r#"{"Name": "a", "Name": null}"#).name, "");
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let o = outer(r#"{"Name": "x", "Nope": {"deep": [1, null]}, "Inner": {"Whatever": 1, "Replicas": 2}}"#);
        assert_eq!(o.name, "x");
        assert_eq!(o.inner.replicas, Some(2));
        // A type that asks to refuse unknown keys still does (after matching).
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        struct Strict {
            #[serde(default)]
            default_action: String,
        }
        assert_eq!(from_str::<Strict>(r#"{"DefaultAction": "x"}"#).unwrap().default_action, "x");
        assert!(from_str::<Strict>(r#"{"other": 1}"#).unwrap_err().to_string().contains("unknown field `other`"));
    }

    #[test]
    fn enums_strings_are_values_and_object_keys_are_names() {
        assert_eq!(outer(r#"{"Kind": "manager"}"#).kind, Some(Kind::Manager));
        let e = from_str::<Outer>(r#"{"Kind": "Manager"}"#).unwrap_err();
        assert_eq!(e.path(), "Kind");
        assert!(e.message().contains("unknown variant `Manager`"), "{e}");
        let o = outer(
            r#"{"Resources": [{"namedResourceSpec": {"Command": ["x"]}},
                              {"DiscreteResourceSpec": {"Replicas": 2}, "NamedResourceSpec": null}]}"#,
        );
        assert_eq!(
            o.resources,
            vec![
                Res::Named(Inner { command: vec!["x".into()], ..Default::default() }),
                Res::Discrete(Inner { replicas: Some(2), ..Default::default() })
            ]
        );
        let e = from_str::<Outer>(r#"{"Resources": [{"NamedResourceSpec": {}, "DiscreteResourceSpec": {}}]}"#).unwrap_err();
        assert_eq!(e.path(), "Resources[0]");
    }

    #[test]
    fn errors_name_the_path() {
        let e = from_str::<Outer>(r#"{"Items": [{}, {"command": ["a", 5]}]}"#).unwrap_err();
        assert_eq!(e.path(), "Items[1].Command[1]");
        assert_eq!(e.to_string(), "Items[1].Command[1]: invalid type: integer `5`, expected a string");
        let e = from_str::<Outer>(r#"{"Count": "3"}"#).unwrap_err();
        assert_eq!(e.to_string(), r#"Count: invalid type: string "3", expected u64"#);
        let e = from_str::<Outer>(r#"{"Count": -1}"#).unwrap_err();
        assert_eq!(e.to_string(), "Count: invalid value: integer `-1`, expected u64");
        let e = from_str::<Outer>(r#"{"Inner": [1]}"#).unwrap_err();
        assert_eq!(e.to_string(), "Inner: invalid type: sequence, expected struct Inner");
        let e = from_str::<Outer>(r#"{"Words": "a"}"#).unwrap_err();
        assert_eq!(e.to_string(), r#"Words: invalid type: string "a", expected a sequence"#);
        let e = from_str::<Outer>(r#"{"ByName": {"x": {"Flag": 1}}}"#).unwrap_err();
        assert_eq!(e.path(), "ByName.x.Flag");
        // Malformed JSON: serde_json's message, with line and column.
        let e = from_str::<Outer>("{\"Name\": }").unwrap_err();
        assert_eq!(e.path(), "");
        assert!(e.to_string().contains("line 1 column 10"), "{e}");
        // Missing required fields are named as serde names them.
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Required {
            #[serde(rename = "Must")]
            must: String,
        }
        assert_eq!(from_str::<Required>(r#"{"must": null}"#).unwrap_err().to_string(), "missing field `Must`");
    }

    #[test]
    fn numbers_and_tuples() {
        assert_eq!(from_str::<f64>("1").unwrap(), 1.0);
        assert_eq!(from_str::<i64>("-5").unwrap(), -5);
        assert!(from_str::<u32>("1.5").is_err());
        assert!(from_str::<u8>("256").is_err());
        assert_eq!(from_str::<(u8, String)>(r#"[1, "a"]"#).unwrap(), (1, "a".to_string()));
        assert!(from_str::<(u8, String)>(r#"[1, "a", 2]"#).is_err());
        assert_eq!(from_str::<u64>("null").unwrap(), 0);
        assert_eq!(from_str::<String>("null").unwrap(), "");
    }

    /// serde reads these through its own buffer, past `Node` (see the module
    /// documentation): keys under them would be matched exactly again.
    #[test]
    fn no_buffered_types() {
        fn check(dir: &std::path::Path) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    check(&path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for line in text.lines().map(str::trim_start).filter(|l| l.starts_with("#[serde(")) {
                    let buffered = ["flatten", "untagged", "tag ="].iter().any(|b| line.contains(b));
                    assert!(!buffered, "{}: {line}: not decoded by shoal_api::lenient", path.display());
                }
            }
        }
        check(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")));
    }
}
