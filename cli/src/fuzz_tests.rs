//! Property tests ("fuzzing" with proptest, see docs/fuzzing.md) of the Go
//! template engine behind `--format`: any template text either fails to
//! parse or executes to a result (text or error) against a small JSON
//! value, in plain and in header mode, without panicking, in bounded time
//! and memory.

use proptest::prelude::*;

use serde_json::Value;

use crate::json;
use crate::template;

/// `PROPTEST_CASES` overrides the default count (for longer runs); no
/// failure files are written (CI must stay deterministic).
fn config(default_cases: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() { base.cases } else { default_cases };
    ProptestConfig { cases, failure_persistence: None, ..base }
}

fn data() -> Value {
    json::parse(
        r#"{"ID":"abc","Spec":{"Labels":{"zone":"b","app":"x"},"Role":"manager","Replicas":3},
           "List":["a","b",1,null,{"K":"v"}],"Num":-2.5,"Big":18446744073709551615,"Empty":"","Null":null,
           "Nested":{"Deeper":{"X":[[1,2],[3]]}}}"#,
    )
    .unwrap()
}

/// Pieces of template text: delimiters, keywords, fields, variables,
/// function names, literals (with numbers at the edges of what parses) and
/// punctuation, so that most generated templates get past the lexer.
const PIECES: &[&str] = &[
    "{{",
    "}}",
    "{{- ",
    " -}}",
    "{{/*",
    "*/}}",
    " ",
    "\n",
    "x",
    "é",
    "if",
    "else",
    "else if",
    "end",
    "range",
    "with",
    ".",
    ".ID",
    ".Spec",
    ".Labels",
    ".zone",
    ".List",
    ".Num",
    ".Big",
    ".Empty",
    ".Null",
    ".Nested",
    ".Deeper",
    ".X",
    ".Missing",
    "$",
    "$x",
    "$k",
    "$v",
    ":=",
    "=",
    ",",
    "|",
    "(",
    ")",
    "json",
    "join",
    "split",
    "lower",
    "upper",
    "title",
    "pad",
    "truncate",
    "len",
    "index",
    "and",
    "or",
    "not",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "print",
    "printf",
    "println",
    "nosuch",
    "nil",
    "true",
    "false",
    "\"s\"",
    "\",\"",
    "\"%d|%5.2f|%-4s|%q|%x|%v|%%|%\"",
    "\"%99999999999d\"",
    "\"%.99999999999f\"",
    "\"%0999999999999999999999s\"",
    "`raw`",
    "\"\\n\"",
    "\"\\q\"",
    "\"",
    "`",
    "0",
    "1",
    "3",
    "-1",
    "+2",
    "1.5",
    "1e3",
    "0x1f",
    "0x",
    "07",
    "99999999999",
    "9223372036854775807",
    "18446744073709551615",
    "99999999999999999999999",
];

/// Words inside an action (no delimiters).
fn words() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(&PIECES[6..]), 1..6).prop_map(|w| w.join(" "))
}

/// Well-formed structure (actions, blocks with bodies) around random words,
/// so that most templates get past the parser and execute.
fn structured() -> impl Strategy<Value = String> {
    let action = (words(), any::<bool>(), any::<bool>())
        .prop_map(|(w, l, r)| format!("{{{{{}{w}{}}}}}", if l { "- " } else { "" }, if r { " -" } else { "" }));
    let leaf = prop_oneof![action, "[a-z \n]{0,4}"];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| v.concat()),
            (
                prop::sample::select(vec!["if", "with", "range", "range $k, $v :=", "range $x :=", "with $x :="]),
                words(),
                inner.clone(),
                prop::option::of(inner)
            )
                .prop_map(|(kw, w, body, alt)| match alt {
                    Some(alt) => format!("{{{{{kw} {w}}}}}{body}{{{{else}}}}{alt}{{{{end}}}}"),
                    None => format!("{{{{{kw} {w}}}}}{body}{{{{end}}}}"),
                }),
        ]
    })
}

fn template_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => structured(),
        // Arbitrary text (bounded: the engine's input is a user's --format).
        1 => ".{0,80}",
        1 => "[{}.$()|:= \"a-zA-Z0-9-]{0,80}",
        1 => prop::collection::vec(prop::sample::select(PIECES), 0..40).prop_map(|p| p.join(" ")),
        1 => prop::collection::vec(prop::sample::select(PIECES), 0..40).prop_map(|p| p.concat()),
    ]
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn any_template_parses_or_runs_without_panicking(src in template_text()) {
        let d = data();
        if let Ok(t) = template::parse(&src) {
            let _ = t.execute(&d);
            let _ = t.execute_header(&d);
            let _ = t.execute(&Value::Null);
        }
    }

    /// `printf`'s formatting on its own, with any format and arguments.
    #[test]
    fn sprintf_takes_any_format(fmt in "(%|[-+ #0]|[0-9]{1,22}|\\.|[vsdqtfFx%]|.){0,24}", n in any::<i64>(), s in ".{0,8}") {
        let _ = template::sprintf(&fmt, &[Value::from(n), Value::String(s), Value::Null, data()]);
    }
}
