//! Broken files fail as a whole, each with the file, the line and the key
//! path of what is wrong.

use std::collections::BTreeMap;
use std::path::Path;

use shoal_compose::{load_sources, Error, Source};

fn load_err(text: &str) -> String {
    load_with(&[("docker-compose.yml", text)], &[]).unwrap_err().to_string()
}

fn load_with(files: &[(&str, &str)], env: &[(&str, &str)]) -> Result<shoal_compose::Loaded, Error> {
    let sources: Vec<Source> = files.iter().map(|(n, t)| Source { name: n.to_string(), text: t.to_string() }).collect();
    let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    load_sources(&sources, &env, Path::new("/srv"))
}

#[test]
fn wrong_type() {
    let text = "version: \"3.8\"\nservices:\n  web:\n    image: nginx\n    deploy:\n      mode: replicated\n      replicas: two\n";
    assert_eq!(load_err(text), "docker-compose.yml:7: services.web.deploy.replicas: invalid type: string \"two\", expected an integer");
}

#[test]
fn the_issues_example_line() {
    // Line 14, as in the issue's example message.
    let mut text = String::from("version: \"3.8\"\nservices:\n  web:\n    image: nginx\n");
    for i in 0..9 {
        text.push_str(&format!("    # padding {i}\n"));
    }
    text.push_str("    deploy: {replicas: two}\n");
    assert_eq!(load_err(&text), "docker-compose.yml:14: services.web.deploy.replicas: invalid type: string \"two\", expected an integer");
}

#[test]
fn unknown_key() {
    assert_eq!(
        load_err("services:\n  web:\n    image: nginx\n    imagee: nginx\n"),
        "docker-compose.yml:4: services.web: additional property imagee is not allowed"
    );
    assert_eq!(
        load_err("services:\n  web:\n    image: nginx\n    deploy:\n      placement:\n        constraint: [a]\n"),
        "docker-compose.yml:6: services.web.deploy.placement: additional property constraint is not allowed"
    );
    assert_eq!(load_err("servics:\n  web: {image: x}\n"), "docker-compose.yml:1: additional property servics is not allowed");
    // x- keys are fine at the top, in services and in other objects.
    load_with(&[("a.yml", "x-a: 1\nservices:\n  web:\n    image: x\n    x-b: 2\n    deploy: {x-c: 3}\nnetworks:\n  n: {x-d: 4}\n")], &[])
        .unwrap();
}

#[test]
fn bad_indentation() {
    let e = load_err("services:\n  web:\n    image: nginx\n   ports:\n      - 80\n");
    assert!(e.starts_with("docker-compose.yml:4: invalid YAML"), "{e}");
    let e = load_err("services:\n  web:\n    image: nginx\n    environment:\n      A: 1\n     B: 2\n");
    assert!(e.starts_with("docker-compose.yml:6: invalid YAML"), "{e}");
}

#[test]
fn missing_required_variable() {
    let e = load_with(&[("stack.yml", "services:\n  web:\n    image: \"nginx:${TAG:?set TAG to the release}\"\n")], &[]).unwrap_err();
    assert_eq!(e.to_string(), "stack.yml:3: services.web.image: required variable TAG is missing a value: set TAG to the release");
    let e = load_with(&[("stack.yml", "services:\n  web:\n    image: \"nginx:${TAG?}\"\n")], &[]).unwrap_err();
    assert_eq!(e.to_string(), "stack.yml:3: services.web.image: required variable TAG is missing a value: ");
    load_with(&[("stack.yml", "services:\n  web:\n    image: \"nginx:${TAG?}\"\n")], &[("TAG", "")]).unwrap();
}

#[test]
fn malformed_interpolation() {
    let e = load_err("services:\n  web:\n    image: nginx\n    command: echo ${\n");
    assert!(e.starts_with("docker-compose.yml:4: services.web.command: invalid interpolation format"), "{e}");
}

#[test]
fn depends_on_cycle() {
    let e = load_err("services:\n  web:\n    image: x\n    depends_on: [api]\n  api:\n    image: x\n    depends_on:\n      - web\n");
    assert_eq!(e, "docker-compose.yml:8: services.api.depends_on: dependency cycle: api -> web -> api");
}

#[test]
fn errors_in_the_second_file_name_it() {
    let e = load_with(
        &[("base.yml", "services:\n  web:\n    image: x\n"), ("prod.yml", "services:\n  web:\n    deploy:\n      replicas: many\n")],
        &[],
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "prod.yml:4: services.web.deploy.replicas: invalid type: string \"many\", expected an integer");
    // A value from the first file keeps its place after the merge.
    let e = load_with(
        &[
            ("base.yml", "services:\n  web:\n    image: x\n    stop_grace_period: soon\n"),
            ("prod.yml", "services:\n  web:\n    user: me\n"),
        ],
        &[],
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("base.yml:4: services.web.stop_grace_period: invalid duration \"soon\""), "{e}");
}

#[test]
fn bad_values() {
    let cases = [
        ("services:\n  web:\n    image: x\n    ports: [\"80:http\"]\n", "docker-compose.yml:4: services.web.ports[0]: invalid port"),
        (
            "services:\n  web:\n    image: x\n    volumes: [\"data:relative\"]\n",
            "docker-compose.yml:4: services.web.volumes[0]: invalid volume specification",
        ),
        (
            "services:\n  web:\n    image: x\n    deploy:\n      mode: everywhere\n",
            "docker-compose.yml:5: services.web.deploy.mode: unknown variant `everywhere`",
        ),
        (
            "services:\n  web:\n    image: x\n    deploy:\n      resources:\n        limits:\n          memory: lots\n",
            "docker-compose.yml:7: services.web.deploy.resources.limits.memory: invalid size \"lots\"",
        ),
        (
            "services:\n  web:\n    image: x\n    ports:\n      - target: 80\n        mode: sideways\n",
            "docker-compose.yml:6: services.web.ports[0].mode: unknown variant `sideways`",
        ),
        (
            "services:\n  web:\n    image: x\n    depends_on:\n      db: {condition: service_ready}\n  db: {image: y}\n",
            "docker-compose.yml:5: services.web.depends_on.db.condition: unknown variant `service_ready`",
        ),
        (
            "services:\n  web:\n    image: x\n    read_only: maybe\n",
            "docker-compose.yml:4: services.web.read_only: invalid type: string \"maybe\", expected a boolean",
        ),
        (
            "services:\n  web:\n    image: x\n    environment: 3\n",
            "docker-compose.yml:4: services.web.environment: invalid type: integer `3`, expected a mapping or a list of KEY=value strings",
        ),
    ];
    for (text, want) in cases {
        let e = load_err(text);
        assert!(e.starts_with(want), "got {e}\nwant {want}");
    }
}

#[test]
fn undefined_references() {
    let cases = [
        (
            "services:\n  web:\n    image: x\n    networks: [front]\n",
            "docker-compose.yml:4: services.web.networks: undefined network \"front\"",
        ),
        (
            "services:\n  web:\n    image: x\n    volumes:\n      - data:/d\n",
            "docker-compose.yml:5: services.web.volumes: undefined volume \"data\"",
        ),
        (
            "services:\n  web:\n    image: x\n    secrets:\n      - source: pw\n",
            "docker-compose.yml:5: services.web.secrets: undefined secret \"pw\"",
        ),
        ("services:\n  web:\n    image: x\n    configs: [conf]\n", "docker-compose.yml:4: services.web.configs: undefined config \"conf\""),
        (
            "services:\n  web:\n    image: x\n    depends_on: [db]\n",
            "docker-compose.yml:4: services.web.depends_on: depends on undefined service \"db\"",
        ),
        ("services:\n  web:\n    build: .\n", "docker-compose.yml:2: services.web: image is required (a stack cannot build images)"),
        (
            "services:\n  web:\n    image: x\n    deploy:\n      mode: global\n      replicas: 2\n",
            "docker-compose.yml:6: services.web.deploy.replicas: replicas can only be used with replicated or replicated-job mode",
        ),
        ("secrets:\n  pw: {labels: [a=b]}\n", "docker-compose.yml:2: secrets.pw: a file or external: true is required"),
    ];
    for (text, want) in cases {
        assert_eq!(load_err(text), want);
    }
}

#[test]
fn forbidden_options() {
    assert_eq!(
        load_err("services:\n  web:\n    image: x\n    extends: base\n"),
        "docker-compose.yml:4: services.web.extends: unsupported option: Support for `extends` is not implemented yet."
    );
}

#[test]
fn old_file_versions_are_refused() {
    assert_eq!(
        load_err("version: \"2.4\"\nservices:\n  web: {image: x}\n"),
        "docker-compose.yml:1: version: unsupported Compose file version: 2.4"
    );
    load_with(&[("a.yml", "version: \"3\"\nservices:\n  web: {image: x}\n")], &[]).unwrap();
}

#[test]
fn external_objects_cannot_be_configured() {
    assert_eq!(
        load_err("networks:\n  n:\n    external: true\n    driver: overlay\n"),
        "docker-compose.yml:4: networks.n: conflicting parameters \"external\" and \"driver\" specified for network \"n\""
    );
    assert_eq!(
        load_err("secrets:\n  s:\n    external: true\n    file: ./s.txt\n"),
        "docker-compose.yml:4: secrets.s: conflicting parameters \"external\" and \"file\" specified for secret \"s\""
    );
    assert_eq!(
        load_err("volumes:\n  v:\n    name: a\n    external:\n      name: b\n"),
        "docker-compose.yml:4: volumes.v: volume.external.name and volume.name conflict; only use volume.name"
    );
}
