//! JSON values are `serde_json::Value`, built with serde_json's
//! `preserve_order`: objects keep their keys in the order the daemon sent
//! them, as Docker's CLI prints objects in their Go struct order
//! (`{{json .}}`, `inspect`).
//!
//! `v["key"]` is `Null` when the key is absent or `v` is not an object;
//! [`JsonExt`] adds the few helpers the CLI and the templates use on top of
//! that. [`go_json`] writes compact JSON the way Go's `encoding/json` does.
//! [`indent`] and [`compact`] reformat raw JSON text without decoding it.
//!
//! Numbers are serde_json's: integers exact within `i64`/`u64`, others an
//! `f64` that prints as the shortest text reading back to it (the
//! daemon's JSON, written by serde_json too, prints as it came).

use std::io;
use std::sync::OnceLock;

use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};
use serde_json::{Map, Number, Value};

/// Parses JSON text (objects keep their key order; a key given twice keeps
/// its first place and its last value).
pub fn parse(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// An object from `(key, value)` pairs, in that order.
pub fn object<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// A number from its decimal text (`3`, `-7`, `2.5`, `1e3`): an integer
/// when `i64` or `u64` holds it, else an `f64`; `None` for anything else or
/// a float out of range.
pub fn number(text: &str) -> Option<Value> {
    if let Ok(i) = text.parse::<i64>() {
        Some(i.into())
    } else if let Ok(u) = text.parse::<u64>() {
        Some(u.into())
    } else {
        text.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number)
    }
}

/// What the CLI and the templates ask of a value, beyond `serde_json`'s own
/// accessors.
pub trait JsonExt {
    /// Whether `key` is present in an object.
    fn has(&self, key: &str) -> bool;
    /// Follows a path of object keys (`Null` once one is missing).
    fn at(&self, path: &[&str]) -> &Value;
    /// Sets `key` in an object (replacing in place or appending). A `Null`
    /// value becomes an empty object first; other values are left alone.
    fn set(&mut self, key: &str, value: Value);
    /// Removes `key` from an object, keeping the order of the others.
    fn remove(&mut self, key: &str) -> Option<Value>;
    /// The value at `path`, creating empty objects along the way (and
    /// replacing non-objects); a new last member starts as `Null`.
    fn entry(&mut self, path: &[&str]) -> &mut Value;
    /// The string value, or "" for anything else.
    fn str(&self) -> &str;
    /// The boolean value, false for anything else.
    fn bool(&self) -> bool;
    /// The elements of an array; none for anything else.
    fn items(&self) -> &[Value];
    /// The members of an object; none for anything else.
    fn members(&self) -> &Map<String, Value>;
    /// Compact JSON as Go's encoder writes it with HTML escaping off (see
    /// [`go_json`]).
    fn to_compact(&self) -> String;
}

impl JsonExt for Value {
    fn has(&self, key: &str) -> bool {
        matches!(self, Value::Object(m) if m.contains_key(key))
    }

    fn at(&self, path: &[&str]) -> &Value {
        path.iter().fold(self, |v, k| &v[*k])
    }

    fn set(&mut self, key: &str, value: Value) {
        if self.is_null() {
            *self = Value::Object(Map::new());
        }
        if let Value::Object(m) = self {
            m.insert(key.to_string(), value);
        }
    }

    fn remove(&mut self, key: &str) -> Option<Value> {
        match self {
            // `Map::remove` would move the last member into the gap.
            Value::Object(m) => m.shift_remove(key),
            _ => None,
        }
    }

    fn entry(&mut self, path: &[&str]) -> &mut Value {
        let mut cur = self;
        for key in path {
            if !cur.is_object() {
                *cur = Value::Object(Map::new());
            }
            let Value::Object(m) = cur else { unreachable!("made an object above") };
            cur = m.entry(*key).or_insert(Value::Null);
        }
        cur
    }

    fn str(&self) -> &str {
        self.as_str().unwrap_or("")
    }

    fn bool(&self) -> bool {
        self.as_bool().unwrap_or(false)
    }

    fn items(&self) -> &[Value] {
        match self {
            Value::Array(a) => a,
            _ => &[],
        }
    }

    fn members(&self) -> &Map<String, Value> {
        static EMPTY: OnceLock<Map<String, Value>> = OnceLock::new();
        match self {
            Value::Object(m) => m,
            _ => EMPTY.get_or_init(Map::new),
        }
    }

    fn to_compact(&self) -> String {
        go_json(self, false)
    }
}

/// Compact JSON as Go's `encoding/json` writes it: U+2028 and U+2029
/// escaped, other control characters as `\u00XX` (`\n`, `\r`, `\t` and
/// `\"`, `\\` short); with `html` (`json.Marshal`, where docker's template
/// function uses an encoder with `SetEscapeHTML(false)`) also `<`, `>` and
/// `&`, as `\u003c`, `\u003e`, `\u0026`.
pub fn go_json<T: Serialize + ?Sized>(value: &T, html: bool) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter { html });
    value.serialize(&mut ser).expect("JSON values and strings always serialize");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// serde_json's compact output with Go's string escapes (see [`go_json`]).
struct GoFormatter {
    html: bool,
}

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        let escaped = |c: char| matches!(c, '\u{2028}' | '\u{2029}') || (self.html && matches!(c, '<' | '>' | '&'));
        let mut rest = fragment;
        while let Some((i, c)) = rest.char_indices().find(|&(_, c)| escaped(c)) {
            w.write_all(&rest.as_bytes()[..i])?;
            write!(w, "\\u{:04x}", c as u32)?;
            rest = &rest[i + c.len_utf8()..];
        }
        w.write_all(rest.as_bytes())
    }

    fn write_char_escape<W: ?Sized + io::Write>(&mut self, w: &mut W, escape: CharEscape) -> io::Result<()> {
        match escape {
            CharEscape::Backspace => w.write_all(b"\\u0008"),
            CharEscape::FormFeed => w.write_all(b"\\u000c"),
            other => CompactFormatter.write_char_escape(w, other),
        }
    }
}

/// Re-indents raw JSON text without decoding it, like Go's
/// `json.Indent(dst, src, "", indent)`: string contents are kept byte for
/// byte, empty arrays and objects stay `[]` / `{}`.
pub fn indent(raw: &str, indent: &str) -> String {
    reformat(raw, Some(indent))
}

/// Removes insignificant whitespace from raw JSON text (Go's `json.Compact`).
pub fn compact(raw: &str) -> String {
    reformat(raw, None)
}

fn reformat(raw: &str, indent: Option<&str>) -> String {
    let mut out = String::with_capacity(raw.len() + raw.len() / 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    // Set after `[` or `{`: the newline is delayed until we know the
    // container is not empty.
    let mut need_indent = false;
    let newline = |out: &mut String, depth: usize| {
        if let Some(ind) = indent {
            out.push('\n');
            for _ in 0..depth {
                out.push_str(ind);
            }
        }
    };
    for c in raw.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
            continue;
        }
        if need_indent && c != ']' && c != '}' {
            need_indent = false;
            depth += 1;
            newline(&mut out, depth);
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                need_indent = true;
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => {
                out.push(c);
                if indent.is_some() {
                    out.push(' ');
                }
            }
            '}' | ']' => {
                if need_indent {
                    // empty container
                    need_indent = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_keeps_order_and_numbers() {
        let v = parse(r#"{"b":1,"a":[true,null,"x\n\u00e9"],"n":-1.5e3,"big":18446744073709551615,"min":-9223372036854775808}"#).unwrap();
        // Integers print exactly; a float prints as the shortest text that
        // reads back to it (serde_json's, as the daemon writes it), not as
        // it was spelled.
        assert_eq!(
            v.to_compact(),
            "{\"b\":1,\"a\":[true,null,\"x\\né\"],\"n\":-1500.0,\"big\":18446744073709551615,\"min\":-9223372036854775808}"
        );
        assert_eq!(v["b"].as_i64(), Some(1));
        assert_eq!(v["big"].as_u64(), Some(u64::MAX));
        assert!(v["missing"].is_null() && v["b"]["deeper"].is_null());
        for text in ["[2.5,1.0,1e+21,1e-7,0.1,-0.0,1.7976931348623157e+308]", "[12345678901,4294967296,0]"] {
            assert_eq!(parse(text).unwrap().to_compact(), text);
        }
        assert_eq!(number("3"), Some(Value::from(3)));
        assert_eq!(number("18446744073709551615"), Some(Value::from(u64::MAX)));
        assert_eq!(number("1e3").unwrap().to_compact(), "1000.0");
        assert_eq!(number("1e400"), None);
    }

    #[test]
    fn surrogate_pairs() {
        let v = parse(r#""\ud83d\ude00""#).unwrap();
        assert_eq!(v.str(), "😀");
    }

    #[test]
    fn errors() {
        assert!(parse("{").is_err());
        assert!(parse("[1,]").is_err());
        assert!(parse("1 2").is_err());
        assert!(parse(&"[".repeat(1000)).is_err());
    }

    #[test]
    fn escapes_like_go() {
        let v = object([("k<&>", Value::from("<a & b>\u{2028}\u{2029}\u{8}\u{c}\u{1}\n\r\t\"\\/é"))]);
        assert_eq!(v.to_compact(), r#"{"k<&>":"<a & b>\u2028\u2029\u0008\u000c\u0001\n\r\t\"\\/é"}"#);
        assert_eq!(go_json(&v, true), r#"{"k\u003c\u0026\u003e":"\u003ca \u0026 b\u003e\u2028\u2029\u0008\u000c\u0001\n\r\t\"\\/é"}"#);
        assert_eq!(go_json("x", false), r#""x""#);
    }

    #[test]
    fn indent_like_go() {
        let raw = r#"[{"ID":"x","Spec":{"Labels":{},"Role":"manager"},"L":[],"A":[1,2],"S":"a, {b}: \"c\""}]"#;
        let want = "[\n    {\n        \"ID\": \"x\",\n        \"Spec\": {\n            \"Labels\": {},\n            \"Role\": \"manager\"\n        },\n        \"L\": [],\n        \"A\": [\n            1,\n            2\n        ],\n        \"S\": \"a, {b}: \\\"c\\\"\"\n    }\n]";
        assert_eq!(indent(raw, "    "), want);
        assert_eq!(compact(" { \"a\" : [ 1 , 2 ] } "), "{\"a\":[1,2]}");
    }

    #[test]
    fn set_and_entry() {
        let mut v = parse(r#"{"Spec":{"Role":"worker"}}"#).unwrap();
        v.entry(&["Spec", "Labels"]).set("a", "b".into());
        v.entry(&["Spec"]).set("Role", "manager".into());
        assert_eq!(v.to_compact(), r#"{"Spec":{"Role":"manager","Labels":{"a":"b"}}}"#);
        assert_eq!(v.entry(&["Spec", "Labels"]).remove("a"), Some(Value::String("b".into())));
        let mut m = parse(r#"{"a":1,"b":2,"c":3}"#).unwrap();
        assert_eq!(m.remove("a"), Some(Value::from(1)));
        assert_eq!(m.to_compact(), r#"{"b":2,"c":3}"#);
        let mut s = Value::from("x");
        s.set("a", Value::Null);
        assert_eq!(s, Value::from("x"));
        assert!(s.items().is_empty() && s.members().is_empty());
    }
}
