//! A serde `Deserializer` over the positioned YAML tree, so the typed model
//! can be derived while every error still names its file, line and key path.
//!
//! The innermost node that sees an error without a position gives it its own,
//! so "invalid type" lands on the scalar and "unknown key" on the key. Like
//! docker's loader (which casts interpolated strings by schema path), a string
//! that reads as a number or boolean is accepted where one is expected, so
//! `replicas: ${N}` works; `replicas: two` does not.

use std::fmt;

use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeSeed, Error as _, IntoDeserializer, Visitor};

use crate::error::{index, join, Error, Files, Pos};
use crate::yaml::{Key, Node, Value};

/// A serde error on its way out, with the position of the node it belongs to
/// once one has claimed it.
#[derive(Debug)]
pub struct DeError {
    message: String,
    at: Option<(Pos, String)>,
}

impl DeError {
    pub fn into_error(self, files: &Files) -> Error {
        match self.at {
            Some((pos, path)) => files.error(pos, path, self.message),
            None => Error::plain(self.message),
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError { message: msg.to_string(), at: None }
    }

    /// Docker's schema validation words it this way.
    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> Self {
        DeError { message: format!("additional property {field} is not allowed"), at: None }
    }
}

/// Deserializes `T` from `node`, whose key path is `path`.
pub fn from_node<'de, T: de::Deserialize<'de>>(node: &'de Node, path: &str, files: &Files) -> Result<T, Error> {
    T::deserialize(NodeDe { node, path: path.to_owned() }).map_err(|e| e.into_error(files))
}

pub struct NodeDe<'a> {
    node: &'a Node,
    path: String,
}

impl<'a> NodeDe<'a> {
    fn claim<T>(&self, r: Result<T, DeError>) -> Result<T, DeError> {
        r.map_err(|mut e| {
            if e.at.is_none() {
                e.at = Some((self.node.pos, self.path.clone()));
            }
            e
        })
    }

    fn invalid(&self, expected: &str) -> DeError {
        DeError { message: format!("invalid type: {}, expected {expected}", self.node.describe()), at: None }
    }

    fn int(&self) -> Result<i128, DeError> {
        match &self.node.value {
            Value::Int(n) => Ok(*n as i128),
            Value::Float(f) if f.fract() == 0.0 => Ok(*f as i128),
            Value::Str(s) => s.trim().parse::<i128>().map_err(|_| self.invalid("an integer")),
            _ => Err(self.invalid("an integer")),
        }
    }

    fn float(&self) -> Result<f64, DeError> {
        match &self.node.value {
            Value::Int(n) => Ok(*n as f64),
            Value::Float(f) => Ok(*f),
            Value::Str(s) => s.trim().parse::<f64>().map_err(|_| self.invalid("a number")),
            _ => Err(self.invalid("a number")),
        }
    }
}

macro_rules! integer {
    ($method:ident, $ty:ty, $visit:ident) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let r = self
                .int()
                .and_then(|n| <$ty>::try_from(n).map_err(|_| DeError::custom(format!("{n} is out of range for {}", stringify!($ty)))));
            let r = r.and_then(|n| visitor.$visit(n));
            self.claim(r)
        }
    };
}

impl<'de> de::Deserializer<'de> for NodeDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(n) => visitor.visit_i64(*n),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_borrowed_str(s),
            Value::Seq(items) => visitor.visit_seq(SeqDe { items: items.iter(), path: &self.path, i: 0 }),
            Value::Map(entries) => visitor.visit_map(MapDe::new(entries, &self.path, false)),
        };
        self.claim(r)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let b = match &self.node.value {
            Value::Bool(b) => Ok(*b),
            Value::Str(s) if s.eq_ignore_ascii_case("true") => Ok(true),
            Value::Str(s) if s.eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(self.invalid("a boolean")),
        };
        let r = b.and_then(|b| visitor.visit_bool(b));
        self.claim(r)
    }

    integer!(deserialize_i8, i8, visit_i8);
    integer!(deserialize_i16, i16, visit_i16);
    integer!(deserialize_i32, i32, visit_i32);
    integer!(deserialize_i64, i64, visit_i64);
    integer!(deserialize_u8, u8, visit_u8);
    integer!(deserialize_u16, u16, visit_u16);
    integer!(deserialize_u32, u32, visit_u32);
    integer!(deserialize_u64, u64, visit_u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = self.float().and_then(|f| visitor.visit_f32(f as f32));
        self.claim(r)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = self.float().and_then(|f| visitor.visit_f64(f));
        self.claim(r)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Str(s) => visitor.visit_borrowed_str(s),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => visitor.visit_string(self.node.scalar_text().unwrap_or_default()),
            _ => Err(self.invalid("a string")),
        };
        self.claim(r)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.value {
            Value::Null => self.claim(visitor.visit_none()),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.claim(visitor.visit_unit())
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Seq(items) => visitor.visit_seq(SeqDe { items: items.iter(), path: &self.path, i: 0 }),
            _ => Err(self.invalid("a sequence")),
        };
        self.claim(r)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(self, _name: &'static str, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Map(entries) => visitor.visit_map(MapDe::new(entries, &self.path, false)),
            // `labels:` with nothing under it is an empty mapping.
            Value::Null => visitor.visit_map(MapDe::new(&[], &self.path, false)),
            _ => Err(self.invalid("a mapping")),
        };
        self.claim(r)
    }

    /// Structs skip `x-` extension keys, which compose allows in every object.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Map(entries) => visitor.visit_map(MapDe::new(entries, &self.path, true)),
            // `volumes: {data: }`: a null object is an empty one.
            Value::Null => visitor.visit_map(MapDe::new(&[], &self.path, true)),
            _ => Err(self.invalid("a mapping")),
        };
        self.claim(r)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Str(s) => {
                let d: StrDeserializer<DeError> = s.as_str().into_deserializer();
                visitor.visit_enum(d)
            }
            _ => Err(self.invalid("a string")),
        };
        self.claim(r)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

fn claim_for(mut e: DeError, node: &Node, path: String) -> DeError {
    if e.at.is_none() {
        e.at = Some((node.pos, path));
    }
    e
}

struct SeqDe<'a, I> {
    items: I,
    path: &'a str,
    i: usize,
}

impl<'de, I: Iterator<Item = &'de Node>> de::SeqAccess<'de> for SeqDe<'_, I> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.next() else { return Ok(None) };
        let path = index(self.path, self.i);
        self.i += 1;
        let de = NodeDe { node, path: path.clone() };
        // A type that reads a string and then rejects it (a duration, say)
        // fails after the node is done: the error is still this node's.
        seed.deserialize(de).map(Some).map_err(|e| claim_for(e, node, path))
    }
}

struct MapDe<'de, 'p> {
    entries: &'de [(Key, Node)],
    path: &'p str,
    skip_extensions: bool,
    value: Option<(&'de Node, String)>,
}

impl<'de, 'p> MapDe<'de, 'p> {
    fn new(entries: &'de [(Key, Node)], path: &'p str, skip_extensions: bool) -> Self {
        MapDe { entries, path, skip_extensions, value: None }
    }
}

impl<'de> de::MapAccess<'de> for MapDe<'de, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        loop {
            let Some(((key, value), rest)) = self.entries.split_first() else { return Ok(None) };
            self.entries = rest;
            if self.skip_extensions && key.name.starts_with("x-") {
                continue;
            }
            let d: StrDeserializer<DeError> = key.name.as_str().into_deserializer();
            // An unknown key is reported at the key, under its parent's path.
            let k = seed.deserialize(d).map_err(|mut e| {
                if e.at.is_none() {
                    e.at = Some((key.pos, self.path.to_owned()));
                }
                e
            })?;
            self.value = Some((value, join(self.path, &key.name)));
            return Ok(Some(k));
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (node, path) = self.value.take().expect("next_value before next_key");
        seed.deserialize(NodeDe { node, path: path.clone() }).map_err(|e| claim_for(e, node, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Deploy {
        replicas: Option<u64>,
        #[serde(default)]
        labels: std::collections::BTreeMap<String, String>,
        mode: Option<Mode>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "kebab-case")]
    enum Mode {
        Replicated,
        Global,
    }

    fn load<T: for<'a> Deserialize<'a>>(text: &str) -> Result<T, Error> {
        let mut files = Files::default();
        let f = files.add("docker-compose.yml".into());
        let node = crate::yaml::parse(text, f, "docker-compose.yml").unwrap();
        let node: &'static Node = Box::leak(Box::new(node));
        from_node(node, "services.web.deploy", &files)
    }

    #[test]
    fn wrong_type_names_file_line_and_path() {
        let e = load::<Deploy>("mode: global\n\nreplicas: two\n").unwrap_err();
        assert_eq!(e.to_string(), "docker-compose.yml:3: services.web.deploy.replicas: invalid type: string \"two\", expected an integer");
    }

    #[test]
    fn numbers_in_strings_are_cast_as_docker_does() {
        let d = load::<Deploy>("replicas: \"3\"\nlabels: {a: 1, b: true}\nx-note: ignored\n").unwrap();
        assert_eq!(d.replicas, Some(3));
        assert_eq!(d.labels["a"], "1");
        assert_eq!(d.labels["b"], "true");
    }

    #[test]
    fn unknown_keys_are_errors_at_the_key() {
        let e = load::<Deploy>("replicas: 1\nreplicaz: 2\n").unwrap_err();
        assert_eq!(e.to_string(), "docker-compose.yml:2: services.web.deploy: additional property replicaz is not allowed");
    }

    #[test]
    fn bad_enum_value_is_positioned() {
        let e = load::<Deploy>("mode: sometimes\n").unwrap_err();
        assert!(e.to_string().starts_with("docker-compose.yml:1: services.web.deploy.mode: unknown variant `sometimes`"), "{e}");
        assert_eq!(load::<Deploy>("mode: global\n").unwrap().mode, Some(Mode::Global));
    }

    #[test]
    fn negative_for_unsigned_is_an_error() {
        let e = load::<Deploy>("replicas: -1\n").unwrap_err();
        assert!(e.to_string().contains("replicas: -1 is out of range"), "{e}");
    }

    #[test]
    fn null_struct_is_empty() {
        let d = load::<Deploy>("").unwrap();
        assert!(d.replicas.is_none());
    }
}
