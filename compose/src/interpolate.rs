//! `${VAR}` interpolation, as the compose specification defines it.
//!
//! Only string scalars are rewritten, never keys, and each file is done before
//! the files are merged (as docker does), so a value keeps the line it was
//! written on. An unset variable without a default becomes the empty string
//! and is reported once as a warning, as docker prints "The X variable is not
//! set. Defaulting to a blank string."

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{index, join, Error, Files};
use crate::yaml::{Node, Value};

/// The variables a file is interpolated with, and the unset ones it used.
pub struct Interpolator<'a> {
    pub env: &'a BTreeMap<String, String>,
    pub unset: BTreeSet<String>,
}

impl<'a> Interpolator<'a> {
    pub fn new(env: &'a BTreeMap<String, String>) -> Self {
        Interpolator { env, unset: BTreeSet::new() }
    }

    /// Rewrites every string scalar under `node`.
    pub fn node(&mut self, files: &Files, node: &mut Node, path: &str) -> Result<(), Error> {
        match &mut node.value {
            Value::Str(s) if s.contains('$') => {
                *s = self.text(s).map_err(|m| files.error(node.pos, path, m))?;
            }
            Value::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.node(files, item, &index(path, i))?;
                }
            }
            Value::Map(entries) => {
                for (k, v) in entries {
                    self.node(files, v, &join(path, &k.name))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Interpolates one string; the error is the message without position.
    pub fn text(&mut self, input: &str) -> Result<String, String> {
        let mut out = String::with_capacity(input.len());
        let bytes = input.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let Some(off) = input[i..].find('$') else {
                out.push_str(&input[i..]);
                break;
            };
            out.push_str(&input[i..i + off]);
            i += off + 1;
            match bytes.get(i) {
                Some(b'$') => {
                    out.push('$');
                    i += 1;
                }
                Some(b'{') => {
                    let close = matching_brace(input, i).ok_or_else(|| invalid(input))?;
                    let inner = &input[i + 1..close];
                    out.push_str(&self.braced(inner).map_err(|e| e.unwrap_or_else(|| invalid(input)))?);
                    i = close + 1;
                }
                Some(c) if is_name_start(*c) => {
                    let end = i + input[i..].bytes().take_while(|c| is_name_char(*c)).count();
                    out.push_str(&self.lookup_or_blank(&input[i..end]));
                    i = end;
                }
                _ => return Err(invalid(input)),
            }
        }
        Ok(out)
    }

    /// The inside of `${...}`. `Err(None)` means a malformed template.
    fn braced(&mut self, inner: &str) -> Result<String, Option<String>> {
        let name_len = inner.bytes().take_while(|c| is_name_char(*c)).count();
        let name = &inner[..name_len];
        if name.is_empty() || !is_name_start(name.as_bytes()[0]) {
            return Err(None);
        }
        let rest = &inner[name_len..];
        if rest.is_empty() {
            return Ok(self.lookup_or_blank(name));
        }
        let (colon, rest) = match rest.strip_prefix(':') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let mut chars = rest.chars();
        let op = chars.next().ok_or(None)?;
        let arg = chars.as_str();
        let value = self.env.get(name);
        // With a colon, an empty value counts as unset.
        let set = match value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        match op {
            '-' => {
                if set {
                    Ok(value.cloned().unwrap_or_default())
                } else {
                    self.text(arg).map_err(Some)
                }
            }
            '+' => {
                if set {
                    self.text(arg).map_err(Some)
                } else {
                    Ok(String::new())
                }
            }
            '?' => {
                if set {
                    Ok(value.cloned().unwrap_or_default())
                } else {
                    let why = self.text(arg).map_err(Some)?;
                    Err(Some(format!("required variable {name} is missing a value: {why}")))
                }
            }
            _ => Err(None),
        }
    }

    fn lookup_or_blank(&mut self, name: &str) -> String {
        match self.env.get(name) {
            Some(v) => v.clone(),
            None => {
                self.unset.insert(name.to_owned());
                String::new()
            }
        }
    }
}

fn invalid(input: &str) -> String {
    format!("invalid interpolation format: {input:?}; you may need to escape any $ with another $")
}

/// The index of the `}` closing the `{` at `open`, counting nested `${`.
fn matching_brace(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in s[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

fn is_name_start(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// Reads a `.env` file: `KEY=VALUE` lines, `#` comments, an optional
/// `export ` prefix, values in single quotes (literal) or double quotes
/// (with `\n`, `\"`, `\\` escapes); unquoted values lose a trailing ` # comment`.
pub fn parse_dotenv(text: &str, name: &str) -> Result<BTreeMap<String, String>, Error> {
    let mut vars = BTreeMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            // A bare name takes nothing here (docker reads it from the process
            // environment, which the caller already gives us).
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|c| is_name_char(c) || c == b'.' || c == b'-') {
            return Err(Error::at_name(name, n as u32 + 1, "", format!("invalid variable name {key:?}")));
        }
        vars.insert(key.to_owned(), dotenv_value(value.trim()));
    }
    Ok(vars)
}

fn dotenv_value(v: &str) -> String {
    if let Some(inner) = v.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return inner.to_owned();
    }
    if let Some(inner) = v.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        return out;
    }
    match v.find(" #") {
        Some(i) => v[..i].trim_end().to_owned(),
        None => v.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        [("A", "alpha"), ("EMPTY", ""), ("N", "3"), ("B_2", "bee")].into_iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    fn run(s: &str) -> Result<String, String> {
        let env = env();
        Interpolator::new(&env).text(s)
    }

    #[test]
    fn plain_and_braced_names() {
        assert_eq!(run("x-$A-${A}-$B_2.y").unwrap(), "x-alpha-alpha-bee.y");
        assert_eq!(run("${N}").unwrap(), "3");
        assert_eq!(run("no dollars").unwrap(), "no dollars");
    }

    #[test]
    fn escapes() {
        assert_eq!(run("$$A $${A} cost $$5").unwrap(), "$A ${A} cost $5");
    }

    #[test]
    fn defaults_with_and_without_colon() {
        assert_eq!(run("${MISSING:-d}").unwrap(), "d");
        assert_eq!(run("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(run("${MISSING-d}").unwrap(), "d");
        assert_eq!(run("${EMPTY-d}").unwrap(), "");
        assert_eq!(run("${A:-d}").unwrap(), "alpha");
        assert_eq!(run("${MISSING:-}").unwrap(), "");
        // A default may hold spaces, colons and another variable.
        assert_eq!(run("${MISSING:-a b:c}").unwrap(), "a b:c");
        assert_eq!(run("${MISSING:-${A}/x}").unwrap(), "alpha/x");
        assert_eq!(run("${MISSING:-${ALSO_MISSING:-deep}}").unwrap(), "deep");
    }

    #[test]
    fn alternatives() {
        assert_eq!(run("${A:+alt}").unwrap(), "alt");
        assert_eq!(run("${EMPTY:+alt}").unwrap(), "");
        assert_eq!(run("${EMPTY+alt}").unwrap(), "alt");
        assert_eq!(run("${MISSING+alt}").unwrap(), "");
    }

    #[test]
    fn required_variables() {
        assert_eq!(run("${A:?need A}").unwrap(), "alpha");
        assert_eq!(run("${EMPTY?need}").unwrap(), "");
        assert_eq!(run("${EMPTY:?must not be empty}").unwrap_err(), "required variable EMPTY is missing a value: must not be empty");
        assert_eq!(run("${MISSING?set it}").unwrap_err(), "required variable MISSING is missing a value: set it");
    }

    #[test]
    fn unset_without_default_is_blank_and_reported() {
        let env = env();
        let mut i = Interpolator::new(&env);
        assert_eq!(i.text("a${NOPE}b$NOPE2").unwrap(), "ab");
        assert_eq!(i.unset.iter().cloned().collect::<Vec<_>>(), vec!["NOPE", "NOPE2"]);
    }

    #[test]
    fn malformed_templates_are_errors() {
        for bad in ["${", "${}", "${A", "$", "a $ b", "${1A}", "${A:}", "${A!x}", "$1"] {
            let e = run(bad).unwrap_err();
            assert!(e.starts_with("invalid interpolation format"), "{bad}: {e}");
        }
    }

    #[test]
    fn non_ascii_text_survives() {
        assert_eq!(run("été ${A} ünï").unwrap(), "été alpha ünï");
    }

    #[test]
    fn errors_name_file_line_and_path() {
        let mut files = Files::default();
        let f = files.add("docker-compose.yml".into());
        let mut node = crate::yaml::parse("services:\n  web:\n    image: ${TAG:?TAG is required}\n", f, "docker-compose.yml").unwrap();
        let env = env();
        let e = Interpolator::new(&env).node(&files, &mut node, "").unwrap_err();
        assert_eq!(e.to_string(), "docker-compose.yml:3: services.web.image: required variable TAG is missing a value: TAG is required");
    }

    #[test]
    fn keys_and_non_strings_are_left_alone() {
        let mut files = Files::default();
        let f = files.add("f.yml".into());
        let mut node = crate::yaml::parse("$A: ${A}\nn: 3\nlist: [\"$A\", 2]\n", f, "f.yml").unwrap();
        let env = env();
        Interpolator::new(&env).node(&files, &mut node, "").unwrap();
        assert_eq!(node.get("$A").unwrap().as_str(), Some("alpha"));
        assert_eq!(node.get("n").unwrap().value, Value::Int(3));
        let Value::Seq(items) = &node.get("list").unwrap().value else { panic!() };
        assert_eq!(items[0].as_str(), Some("alpha"));
    }

    #[test]
    fn dotenv_forms() {
        let vars =
            parse_dotenv("# comment\n\nA=1\nexport B = two\nC='lit $X'\nD=\"line\\nnext\"\nE=val # trailing\nF=\nBARE\n", ".env").unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two");
        assert_eq!(vars["C"], "lit $X");
        assert_eq!(vars["D"], "line\nnext");
        assert_eq!(vars["E"], "val");
        assert_eq!(vars["F"], "");
        assert!(!vars.contains_key("BARE"));
        let e = parse_dotenv("A=1\nbad key=2\n", "/x/.env").unwrap_err();
        assert_eq!(e.to_string(), "/x/.env:2: invalid variable name \"bad key\"");
    }
}
