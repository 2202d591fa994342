//! Loading: files → positioned trees → interpolated → merged → typed →
//! checked. Either the whole project comes back or one error; nothing is
//! half-loaded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::de::from_node;
use crate::error::{join, Error, Files};
use crate::interpolate::{parse_dotenv, Interpolator};
use crate::merge::merge;
use crate::model::{self, Mode, Project};
use crate::yaml::{self, Node, Value};

/// One compose file's text and the name errors should call it.
#[derive(Clone, Debug)]
pub struct Source {
    pub name: String,
    pub text: String,
}

/// A loaded project and what the CLI should tell the user about it.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub project: Project,
    /// The folder of the first file: relative paths (binds, `env_file`,
    /// secret and config files) are taken from here, as docker does.
    pub working_dir: PathBuf,
    /// Service options read and ignored, sorted, for `Ignoring unsupported
    /// options: build, restart`.
    pub unsupported: Vec<String>,
    /// Deprecated options with docker's explanation, sorted by name.
    pub deprecated: Vec<(String, String)>,
    /// Anything else worth printing: variables that were not set, host IPs
    /// dropped from ports.
    pub warnings: Vec<String>,
    /// The merged, interpolated tree (for `stack config`).
    pub(crate) tree: Node,
    pub(crate) files: Files,
}

impl Loaded {
    /// The merged, interpolated file as YAML, for `stack config`.
    pub fn config_yaml(&self) -> String {
        crate::config::to_yaml(&self.tree)
    }
}

/// Reads the files (`-c a.yml -c b.yml`) and a `.env` beside the first one,
/// and loads them with `env` (the process environment, which wins over
/// `.env`).
pub fn load<P: AsRef<Path>>(paths: &[P], env: &BTreeMap<String, String>) -> Result<Loaded, Error> {
    let first = paths.first().ok_or_else(|| Error::plain("no compose file given"))?.as_ref();
    // Absolute, so bind sources resolve to absolute paths as docker makes them.
    let first =
        std::path::absolute(first).map_err(|e| Error::at_name(&first.display().to_string(), 0, "", format!("cannot resolve path: {e}")))?;
    let working_dir = first.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut sources = Vec::new();
    for p in paths {
        let p = p.as_ref();
        let text = std::fs::read_to_string(p).map_err(|e| Error::at_name(&p.display().to_string(), 0, "", format!("cannot read: {e}")))?;
        sources.push(Source { name: p.display().to_string(), text });
    }
    let dotenv_path = working_dir.join(".env");
    let mut vars = match std::fs::read_to_string(&dotenv_path) {
        Ok(text) => parse_dotenv(&text, &dotenv_path.display().to_string())?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(Error::at_name(&dotenv_path.display().to_string(), 0, "", format!("cannot read: {e}"))),
    };
    vars.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    load_sources(&sources, &vars, &working_dir)
}

/// Loads compose texts already read, with the variables to interpolate
/// (`.env` already folded in). `env_file`s are read from `working_dir`.
pub fn load_sources(sources: &[Source], env: &BTreeMap<String, String>, working_dir: &Path) -> Result<Loaded, Error> {
    if sources.is_empty() {
        return Err(Error::plain("no compose file given"));
    }
    let mut files = Files::default();
    let mut interpolator = Interpolator::new(env);
    let mut merged: Option<Node> = None;
    for source in sources {
        let file = files.add(source.name.clone());
        let mut tree = yaml::parse(&source.text, file, &source.name)?;
        if !matches!(tree.value, Value::Map(_)) {
            return Err(files.error(tree.pos, "", "top-level object must be a mapping"));
        }
        check_forbidden(&tree, &files)?;
        interpolator.node(&files, &mut tree, "")?;
        match &mut merged {
            None => merged = Some(tree),
            Some(base) => merge(base, tree, &mut Vec::new()),
        }
    }
    let tree = merged.expect("at least one source");
    let mut project: Project = from_node(&tree, "", &files)?;

    let mut warnings: Vec<String> =
        interpolator.unset.iter().map(|name| format!("The {name:?} variable is not set. Defaulting to a blank string.")).collect();
    let mut unsupported = BTreeSet::new();
    let mut deprecated = BTreeMap::new();
    for (name, service) in tree.get("services").map(Node::entries).unwrap_or_default() {
        for (key, _) in service.entries() {
            if model::UNSUPPORTED.contains(&key.name.as_str()) {
                unsupported.insert(key.name.clone());
            }
            if let Some((k, why)) = model::DEPRECATED.iter().find(|(k, _)| *k == key.name) {
                deprecated.insert(k.to_string(), why.to_string());
            }
        }
        if let Some(svc) = project.services.get(&name.name) {
            for p in svc.ports.0.iter().filter(|p| p.host_ip.as_deref().is_some_and(|ip| ip != "0.0.0.0" && ip != "::")) {
                warnings.push(format!(
                    "service {}: ignoring IP-address ({}:{}) service will listen on '0.0.0.0'",
                    name.name,
                    p.host_ip.as_deref().unwrap_or_default(),
                    p.published.unwrap_or(p.target)
                ));
            }
        }
    }

    let loaded_env = env;
    for (name, service) in project.services.iter_mut() {
        resolve_environment(name, service, loaded_env, working_dir, &tree, &files)?;
        resolve_bind_paths(service, loaded_env, working_dir);
    }
    check(&project, &tree, &files)?;

    Ok(Loaded {
        project,
        working_dir: working_dir.to_path_buf(),
        unsupported: unsupported.into_iter().collect(),
        deprecated: deprecated.into_iter().collect(),
        warnings,
        tree,
        files,
    })
}

/// docker refuses these outright, before anything else.
fn check_forbidden(tree: &Node, files: &Files) -> Result<(), Error> {
    for (name, service) in tree.get("services").map(Node::entries).unwrap_or_default() {
        for (key, _) in service.entries() {
            if let Some((_, why)) = model::FORBIDDEN.iter().find(|(k, _)| *k == key.name) {
                let path = join(&join("services", &name.name), &key.name);
                return Err(files.error(key.pos, path, format!("unsupported option: {why}")));
            }
        }
    }
    Ok(())
}

/// `env_file`s, then `environment`, as docker does: an entry without a value
/// (or with an empty one) takes the variable from the environment if it is
/// set there.
fn resolve_environment(
    name: &str,
    service: &mut model::Service,
    env: &BTreeMap<String, String>,
    working_dir: &Path,
    tree: &Node,
    files: &Files,
) -> Result<(), Error> {
    let mut resolved: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut fill = |vars: Vec<(String, Option<String>)>| {
        for (k, v) in vars {
            let from_env = env.get(&k).filter(|_| v.as_deref().is_none_or(str::is_empty));
            resolved.insert(k, from_env.cloned().or(v));
        }
    };
    for file in &service.env_file.0 {
        let path = working_dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            let pos = node_at(tree, &["services", name, "env_file"]).map(|n| n.pos).unwrap_or_default();
            files.error(pos, format!("services.{name}.env_file"), format!("cannot read {}: {e}", path.display()))
        })?;
        fill(parse_env_file(&text));
    }
    fill(std::mem::take(&mut service.environment.0).into_iter().collect());
    service.environment.0 = resolved;
    Ok(())
}

/// docker's env-file format: `KEY=value` taken literally (no quotes), `KEY`
/// alone names a variable to take from the environment, `#` starts a comment.
fn parse_env_file(text: &str) -> Vec<(String, Option<String>)> {
    text.lines()
        .map(|l| l.trim_start())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (l.trim_end().to_owned(), None),
        })
        .collect()
}

/// Bind sources are made absolute from the working directory, `~` from HOME.
fn resolve_bind_paths(service: &mut model::Service, env: &BTreeMap<String, String>, working_dir: &Path) {
    for v in service.volumes.iter_mut().filter(|v| v.kind == "bind") {
        let Some(source) = &v.source else { continue };
        let mut path = source.clone();
        if let (Some(rest), Some(home)) = (path.strip_prefix('~'), env.get("HOME")) {
            path = format!("{home}{rest}");
        }
        if !path.starts_with('/') {
            path = clean(&working_dir.join(&path));
        }
        v.source = Some(path);
    }
}

/// A path without `.` and `..` components (what Go's `filepath.Join` gives).
fn clean(p: &Path) -> String {
    let mut out: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::RootDir => out.clear(),
            other => out.push(other.as_os_str().to_string_lossy().into_owned()),
        }
    }
    let joined = out.join("/");
    if p.is_absolute() {
        format!("/{joined}")
    } else {
        joined
    }
}

/// Where the key at the end of `path` was written (the line of `web:`, not
/// of the first key under it).
pub(crate) fn key_at(tree: &Node, path: &[&str]) -> Option<crate::error::Pos> {
    let (last, parent) = path.split_last()?;
    node_at(tree, parent)?.entries().iter().find(|(k, _)| k.name == *last).map(|(k, _)| k.pos)
}

pub(crate) fn node_at<'a>(tree: &'a Node, path: &[&str]) -> Option<&'a Node> {
    path.iter().try_fold(tree, |n, k| n.get(k))
}

/// The line where a service refers to `name` under `attr` (the list item or
/// key), or the attribute itself.
fn reference_pos(tree: &Node, service: &str, attr: &str, name: &str) -> crate::error::Pos {
    let Some(node) = node_at(tree, &["services", service, attr]) else {
        return key_at(tree, &["services", service]).unwrap_or_default();
    };
    match &node.value {
        Value::Map(entries) => entries.iter().find(|(k, _)| k.name == name).map(|(k, _)| k.pos).unwrap_or(node.pos),
        Value::Seq(items) => items
            .iter()
            .find(|i| {
                i.as_str().is_some_and(|s| s == name || s.split(':').next() == Some(name))
                    || i.get("source").and_then(Node::as_str) == Some(name)
            })
            .map(|i| i.pos)
            .unwrap_or(node.pos),
        _ => node.pos,
    }
}

/// What docker checks while converting, done up front so a broken file fails
/// before anything is created.
fn check(project: &Project, tree: &Node, files: &Files) -> Result<(), Error> {
    if let Some(v) = project.version.as_deref() {
        // `stack deploy` reads the version 3 format and the compose
        // specification (no version); the 1.x and 2.x formats differ.
        if v.starts_with('1') || v.starts_with('2') {
            let pos = tree.get("version").map(|n| n.pos).unwrap_or_default();
            return Err(files.error(pos, "version", format!("unsupported Compose file version: {v}")));
        }
    }
    check_external(project, tree, files)?;
    for (name, s) in &project.services {
        let path = join("services", name);
        let at = |attr: &str, what: &str| files.error(reference_pos(tree, name, attr, what), join(&path, attr), String::new());
        let with = |mut e: Error, msg: String| {
            e.message = msg;
            e
        };
        if s.image.as_deref().is_none_or(str::is_empty) {
            let pos = key_at(tree, &["services", name]).unwrap_or_default();
            return Err(files.error(pos, path, "image is required (a stack cannot build images)"));
        }
        for net in s.networks.0.keys() {
            if net != "default" && !project.networks.contains_key(net) {
                return Err(with(at("networks", net), format!("undefined network {net:?}")));
            }
        }
        for v in &s.volumes {
            if v.kind == "volume" {
                if let Some(src) = &v.source {
                    if !project.volumes.contains_key(src) {
                        return Err(with(at("volumes", src), format!("undefined volume {src:?}")));
                    }
                }
            }
            if v.kind == "tmpfs" && v.source.is_some() {
                return Err(with(at("volumes", ""), "invalid tmpfs source, source must be empty".into()));
            }
        }
        for r in &s.secrets {
            if !project.secrets.contains_key(&r.source) {
                return Err(with(at("secrets", &r.source), format!("undefined secret {:?}", r.source)));
            }
        }
        for r in &s.configs {
            if !project.configs.contains_key(&r.source) {
                return Err(with(at("configs", &r.source), format!("undefined config {:?}", r.source)));
            }
        }
        for dep in s.depends_on.0.keys() {
            if !project.services.contains_key(dep) {
                return Err(with(at("depends_on", dep), format!("depends on undefined service {dep:?}")));
            }
        }
        if matches!(s.deploy.mode, Some(Mode::Global | Mode::GlobalJob)) && s.deploy.replicas.is_some() {
            let pos = node_at(tree, &["services", name, "deploy", "replicas"]).map(|n| n.pos).unwrap_or_default();
            return Err(files.error(
                pos,
                join(&path, "deploy.replicas"),
                "replicas can only be used with replicated or replicated-job mode",
            ));
        }
        if let Some(h) = &s.healthcheck {
            if h.disable && h.test.as_ref().is_some_and(|t| !t.0.is_empty()) {
                let pos = key_at(tree, &["services", name, "healthcheck"]).unwrap_or_default();
                return Err(files.error(pos, join(&path, "healthcheck"), "test and disable can't be set at the same time"));
            }
        }
    }
    for (kind, objects) in [("secrets", &project.secrets), ("configs", &project.configs)] {
        for (name, o) in objects {
            if !o.external.external && o.file.is_none() && o.driver.is_none() {
                let pos = key_at(tree, &[kind, name]).unwrap_or_default();
                return Err(files.error(pos, join(kind, name), "a file or external: true is required"));
            }
        }
    }
    if let Some(cycle) = crate::order::find_cycle(project) {
        let first = &cycle[0];
        let pos = reference_pos(tree, first, "depends_on", &cycle[1]);
        return Err(files.error(pos, format!("services.{first}.depends_on"), format!("dependency cycle: {}", cycle.join(" -> "))));
    }
    Ok(())
}

/// An external object is looked up, not created: what would create it
/// conflicts (docker's words).
fn check_external(project: &Project, tree: &Node, files: &Files) -> Result<(), Error> {
    let conflict = |kind: &str, name: &str, key: &str, what: &str| {
        let pos = key_at(tree, &[kind, name, key]).or_else(|| key_at(tree, &[kind, name])).unwrap_or_default();
        let singular = kind.trim_end_matches('s');
        files.error(
            pos,
            join(kind, name),
            format!("conflicting parameters \"external\" and \"{what}\" specified for {singular} \"{name}\""),
        )
    };
    for (name, n) in project.networks.iter().filter(|(_, n)| n.external.external) {
        if n.driver.is_some() {
            return Err(conflict("networks", name, "driver", "driver"));
        }
        if !n.driver_opts.0.is_empty() {
            return Err(conflict("networks", name, "driver_opts", "driver_opts"));
        }
        if n.ipam.is_some() {
            return Err(conflict("networks", name, "ipam", "ipam"));
        }
    }
    for (name, v) in project.volumes.iter().filter(|(_, v)| v.external.external) {
        if v.driver.is_some() {
            return Err(conflict("volumes", name, "driver", "driver"));
        }
        if !v.driver_opts.0.is_empty() {
            return Err(conflict("volumes", name, "driver_opts", "driver_opts"));
        }
        if !v.labels.0.is_empty() {
            return Err(conflict("volumes", name, "labels", "labels"));
        }
    }
    for (kind, objects) in [("secrets", &project.secrets), ("configs", &project.configs)] {
        for (name, o) in objects.iter().filter(|(_, o)| o.external.external) {
            if o.file.is_some() {
                return Err(conflict(kind, name, "file", "file"));
            }
        }
    }
    for (kind, name, outer, inner) in project
        .networks
        .iter()
        .map(|(k, n)| ("networks", k, &n.name, &n.external.name))
        .chain(project.volumes.iter().map(|(k, v)| ("volumes", k, &v.name, &v.external.name)))
        .chain(project.secrets.iter().map(|(k, o)| ("secrets", k, &o.name, &o.external.name)))
        .chain(project.configs.iter().map(|(k, o)| ("configs", k, &o.name, &o.external.name)))
    {
        if outer.is_some() && inner.is_some() {
            let pos = key_at(tree, &[kind, name, "external"]).unwrap_or_default();
            let singular = kind.trim_end_matches('s');
            return Err(files.error(
                pos,
                join(kind, name),
                format!("{singular}.external.name and {singular}.name conflict; only use {singular}.name"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn load_str(text: &str) -> Result<Loaded, Error> {
        load_texts(&[("docker-compose.yml", text)], &[])
    }

    pub fn load_texts(texts: &[(&str, &str)], env: &[(&str, &str)]) -> Result<Loaded, Error> {
        let sources: Vec<Source> = texts.iter().map(|(n, t)| Source { name: n.to_string(), text: t.to_string() }).collect();
        let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        load_sources(&sources, &env, Path::new("/srv/app"))
    }

    #[test]
    fn minimal_files_with_and_without_version() {
        for text in [
            "version: \"3.8\"\nservices:\n  web:\n    image: nginx\n",
            "services:\n  web:\n    image: nginx\n",
            "version: 3\nservices: {web: {image: nginx}}\n",
        ] {
            let l = load_str(text).unwrap();
            assert_eq!(l.project.services["web"].image.as_deref(), Some("nginx"));
        }
        assert_eq!(load_str("version: 3.9\nservices: {}\n").unwrap().project.version.as_deref(), Some("3.9"));
    }

    #[test]
    fn unsupported_and_deprecated_options_are_reported_by_name() {
        let l = load_str(
            "services:\n  web:\n    image: x\n    build: .\n    restart: always\n    container_name: w\n  db:\n    image: y\n    privileged: true\n    expose: [5432]\n",
        )
        .unwrap();
        assert_eq!(l.unsupported, vec!["build", "privileged", "restart"]);
        assert_eq!(l.deprecated.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), vec!["container_name", "expose"]);
    }

    #[test]
    fn forbidden_options_are_errors() {
        let e = load_str("services:\n  web:\n    image: x\n    mem_limit: 1g\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "docker-compose.yml:4: services.web.mem_limit: unsupported option: Set resource limits using deploy.resources"
        );
    }

    #[test]
    fn top_level_must_be_a_mapping() {
        let e = load_str("- a\n- b\n").unwrap_err();
        assert_eq!(e.to_string(), "docker-compose.yml:1: top-level object must be a mapping");
    }

    #[test]
    fn environment_resolution_follows_docker() {
        let l = load_texts(
            &[(
                "c.yml",
                "services:\n  web:\n    image: x\n    environment:\n      - FROM_ENV\n      - EMPTY=\n      - SET=1\n      - UNSET\n",
            )],
            &[("FROM_ENV", "e"), ("EMPTY", "filled")],
        )
        .unwrap();
        let env = &l.project.services["web"].environment.0;
        assert_eq!(env["FROM_ENV"].as_deref(), Some("e"));
        assert_eq!(env["EMPTY"].as_deref(), Some("filled"));
        assert_eq!(env["SET"].as_deref(), Some("1"));
        assert_eq!(env["UNSET"], None);
    }

    #[test]
    fn bind_paths_are_made_absolute() {
        let l = load_texts(
            &[(
                "c.yml",
                "services:\n  web:\n    image: x\n    volumes: [\"./conf:/etc/x:ro\", \"../data:/data\", \"~/h:/h\", \"/abs:/abs\"]\n",
            )],
            &[("HOME", "/home/u")],
        )
        .unwrap();
        let sources: Vec<_> = l.project.services["web"].volumes.iter().map(|v| v.source.clone().unwrap()).collect();
        assert_eq!(sources, vec!["/srv/app/conf", "/srv/data", "/home/u/h", "/abs"]);
    }

    #[test]
    fn unset_variables_are_warned_about() {
        let l = load_str("services:\n  web:\n    image: nginx:${TAG}\n").unwrap();
        assert_eq!(l.project.services["web"].image.as_deref(), Some("nginx:"));
        assert_eq!(l.warnings, vec!["The \"TAG\" variable is not set. Defaulting to a blank string."]);
    }
}
