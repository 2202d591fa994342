//! `stack config`: the merged, interpolated file printed as YAML.
//!
//! Strings are written double-quoted (JSON's escapes are YAML's), and `$` as
//! `$$`, so the output loads again to the same project.

use crate::yaml::{format_float, Node, Value};

/// The tree as block YAML.
pub fn to_yaml(node: &Node) -> String {
    let mut out = String::new();
    match &node.value {
        Value::Map(entries) if !entries.is_empty() => write_map(&mut out, entries, 0),
        _ => {
            out.push_str(&inline(node));
            out.push('\n');
        }
    }
    out
}

fn write_map(out: &mut String, entries: &[(crate::yaml::Key, Node)], indent: usize) {
    for (k, v) in entries {
        out.push_str(&" ".repeat(indent));
        out.push_str(&key(&k.name));
        out.push(':');
        write_value(out, v, indent);
    }
}

fn write_value(out: &mut String, v: &Node, indent: usize) {
    match &v.value {
        Value::Map(entries) if !entries.is_empty() => {
            out.push('\n');
            write_map(out, entries, indent + 2);
        }
        Value::Seq(items) if !items.is_empty() => {
            out.push('\n');
            for item in items {
                out.push_str(&" ".repeat(indent + 2));
                out.push('-');
                match &item.value {
                    Value::Map(entries) if !entries.is_empty() => {
                        // The first key goes on the dash's line.
                        let mut nested = String::new();
                        write_map(&mut nested, entries, indent + 4);
                        out.push(' ');
                        out.push_str(nested.trim_start());
                    }
                    Value::Seq(inner) if !inner.is_empty() => write_value(out, item, indent + 2),
                    _ => {
                        out.push(' ');
                        out.push_str(&inline(item));
                        out.push('\n');
                    }
                }
            }
        }
        _ => {
            out.push(' ');
            out.push_str(&inline(v));
            out.push('\n');
        }
    }
}

fn inline(v: &Node) -> String {
    match &v.value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(n) => n.to_string(),
        Value::Float(f) => {
            let s = format_float(*f);
            if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
                s
            } else {
                format!("{s}.0")
            }
        }
        Value::Str(s) => quote(&s.replace('$', "$$")),
        Value::Seq(_) => "[]".into(),
        Value::Map(_) => "{}".into(),
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Keys stay plain when they are ordinary names (`services`, `com.example.x`).
fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars().all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
        && !k.starts_with(['-', '.'])
        && !matches!(k, "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~")
        && k.parse::<f64>().is_err();
    if plain {
        k.to_owned()
    } else {
        quote(k)
    }
}

#[cfg(test)]
mod tests {
    use crate::load::tests::load_texts;

    #[test]
    fn merged_interpolated_output_loads_back_the_same() {
        let texts = [
            (
                "a.yml",
                "version: \"3.8\"\nservices:\n  web:\n    image: nginx:${TAG}\n    command: [\"sh\", \"-c\", \"echo $$HOME\"]\n    environment:\n      A: 1\n      \"on\": \"yes\"\n    ports: [\"80:80\"]\n    deploy:\n      resources: {limits: {cpus: 0.5}}\n      placement:\n        preferences:\n          - spread: node.id\nvolumes:\n  data: {}\n",
            ),
            ("b.yml", "services:\n  web:\n    environment: [B=2]\n    labels: {}\n"),
        ];
        let first = load_texts(&texts, &[("TAG", "1.0")]).unwrap();
        let yaml = first.config_yaml();
        assert!(yaml.contains("image: \"nginx:1.0\""), "{yaml}");
        assert!(yaml.contains("\"echo $$HOME\""), "{yaml}");
        let again = load_texts(&[("config.yml", yaml.as_str())], &[]).unwrap();
        assert_eq!(again.project, first.project, "{yaml}");
    }
}
