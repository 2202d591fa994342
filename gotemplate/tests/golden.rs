//! The template engine against Go's own text/template: `testdata/golden/
//! expected.json` holds what Go printed for each template of `cases.json`
//! over `data.json`, with the functions the docker CLI adds (written by
//! `testdata/golden/gen`, a Go program: `go run .` there after changing a
//! case). Every case must print the same, or fail where Go failed.

use serde_json::Value;
use shoal_gotemplate::json;
use shoal_gotemplate::template::render;

/// Where the engine means to differ from Go, and why.
const DIFFERENT_ON_PURPOSE: &[(&str, &str)] = &[
    (
        "{{.Missing}}",
        "docker's values are Go structs, where a field that does not exist is an error; here they are the daemon's JSON, \
         which leaves out empty fields that Docker's structs always have, so a missing field prints nothing (as a map's does)",
    ),
    ("{{range 3}}{{.}}{{end}}", "range over an integer is Go 1.22's; this generator's Go (Debian's 1.19) predates it"),
];

#[test]
fn every_case_prints_what_go_prints() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/golden/");
    let read = |f: &str| json::parse(&std::fs::read_to_string(format!("{dir}{f}")).unwrap()).unwrap();
    let (data, expected) = (read("data.json"), read("expected.json"));
    let Value::Array(cases) = expected else { panic!("expected.json is not a list") };
    assert!(cases.len() >= 60, "the corpus shrank: {}", cases.len());
    let mut wrong = Vec::new();
    for case in &cases {
        let Value::String(template) = &case["template"] else { panic!("a case without a template") };
        if DIFFERENT_ON_PURPOSE.iter().any(|(t, _)| t == template) {
            continue;
        }
        let ours = render(template, &data);
        match (&case["output"], &ours) {
            (Value::String(go), Ok(o)) if go == o => {}
            (Value::Null, Err(_)) => {}
            (go, _) => wrong.push(format!("{template:?}\n  Go:   {go:?} {:?}\n  ours: {ours:?}", case["error"])),
        }
    }
    assert!(wrong.is_empty(), "{} of {} cases differ from Go:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
}
