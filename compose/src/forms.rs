//! The value shapes compose accepts in more than one form: a string or a list,
//! a list of `k=v` or a mapping, a duration, a byte size. Each reads every
//! form and keeps one.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::units;

/// A string or a list of strings (`dns`, `env_file`, `tmpfs`...).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StringList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringList, E> {
                Ok(StringList(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StringList, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(StringList(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `command`/`entrypoint`: a list as it is, or a string split as a shell
/// would (docker uses shlex).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShellCommand(pub Vec<String>);

impl<'de> Deserialize<'de> for ShellCommand {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ShellCommand;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ShellCommand, E> {
                shell_split(v).map(ShellCommand).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ShellCommand, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(ShellCommand(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Splits words as a POSIX shell does for quoting (no expansion): single
/// quotes are literal, double quotes allow `\"` and `\\`, a backslash outside
/// quotes escapes the next character.
pub fn shell_split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed single quote in {s:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("unclosed double quote in {s:?}")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed double quote in {s:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// `environment`: a mapping (a null value means "take it from the
/// environment") or a list of `KEY=value` / `KEY`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Environment(pub BTreeMap<String, Option<String>>);

impl<'de> Deserialize<'de> for Environment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KvVisitor { sep: '=', what: "a mapping or a list of KEY=value strings" })
            .map(|kv| Environment(kv.into_iter().collect()))
    }
}

/// `labels`, `sysctls`, `driver_opts`...: a mapping or a list of `k=v`
/// (a missing value is the empty string).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mapping(pub BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Mapping {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KvVisitor { sep: '=', what: "a mapping or a list of key=value strings" })
            .map(|kv| Mapping(kv.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect()))
    }
}

/// `extra_hosts`: a list of `host:ip` (or `host=ip`) or a mapping host → ip,
/// kept in file order as `host:ip`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostsList(pub Vec<String>);

impl<'de> Deserialize<'de> for HostsList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HostsList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of host:ip strings or a mapping of host to ip")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<HostsList, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    // `host=ip` is the newer spelling; IPv6 addresses hold colons,
                    // so only the first separator splits.
                    let entry = match s.split_once('=') {
                        Some((h, ip)) => format!("{h}:{ip}"),
                        None if s.contains(':') => s,
                        None => return Err(de::Error::custom(format!("invalid extra host {s:?}: expected host:ip"))),
                    };
                    out.push(entry);
                }
                Ok(HostsList(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HostsList, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, StringList>()? {
                    for ip in v.0 {
                        out.push(format!("{k}:{ip}"));
                    }
                }
                Ok(HostsList(out))
            }
        }
        d.deserialize_any(V)
    }
}

struct KvVisitor {
    sep: char,
    what: &'static str,
}

impl<'de> Visitor<'de> for KvVisitor {
    type Value = Vec<(String, Option<String>)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.what)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(s) = seq.next_element::<String>()? {
            match s.split_once(self.sep) {
                Some((k, v)) => out.push((k.to_owned(), Some(v.to_owned()))),
                None => out.push((s, None)),
            }
        }
        Ok(out)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Option<String>>()? {
            out.push((k, v));
        }
        Ok(out)
    }
}

/// A Go duration string, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Duration(pub i64);

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        units::parse_duration(&s).map(Duration).map_err(de::Error::custom)
    }
}

/// A byte count: an integer or a size with a unit (`512m`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bytes(pub i64);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        units::parse_bytes(&s).map(Bytes).map_err(de::Error::custom)
    }
}

/// A number that compose also accepts as a string (`cpus: "0.5"`), kept as
/// text so the conversion can read it as docker does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NumberText(pub String);

impl<'de> Deserialize<'de> for NumberText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(NumberText)
    }
}

/// `external: true`, or the legacy `external: {name: x}`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct External {
    pub external: bool,
    pub name: Option<String>,
}

impl<'de> Deserialize<'de> for External {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = External;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean or a mapping with a name")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<External, E> {
                Ok(External { external: v, name: None })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<External, E> {
                match v {
                    "true" | "True" | "TRUE" => Ok(External { external: true, name: None }),
                    "false" | "False" | "FALSE" => Ok(External::default()),
                    _ => Err(E::invalid_type(de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<External, A::Error> {
                let mut name = None;
                while let Some(k) = map.next_key::<String>()? {
                    if k != "name" {
                        return Err(de::Error::unknown_field(&k, &["name"]));
                    }
                    name = Some(map.next_value::<String>()?);
                }
                Ok(External { external: true, name })
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words() {
        assert_eq!(shell_split("sh -c 'echo hi there'").unwrap(), vec!["sh", "-c", "echo hi there"]);
        assert_eq!(shell_split(r#"a "b \"c\"" d\ e"#).unwrap(), vec!["a", "b \"c\"", "d e"]);
        assert_eq!(shell_split("  ").unwrap(), Vec::<String>::new());
        assert_eq!(shell_split("''").unwrap(), vec![""]);
        assert!(shell_split("'open").is_err());
    }
}
