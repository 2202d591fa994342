//! `shoal image load | ls | pull | inspect | rm | prune`: images on the
//! node this CLI talks to, with the docker CLI's flags and output (`pull`
//! renders Docker's JSON progress stream as `docker pull` does, bars on a
//! terminal, status lines otherwise).

use std::io::{BufRead, BufReader, Write};

use clap::{Args, Subcommand};

use super::inspect::InspectFormat;
use super::{CliError, CliResult, Env};
use crate::client::{path_segment, query, ResponseExt};
use crate::filters::Filters;
use crate::format::{go_local_time, header_obj, human_size, human_size_prec, is_table, truncate_id, write_rows};
use serde_json::Value;

use crate::json::{self, JsonExt};
use crate::reference::Reference;

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Load an image from a tar archive (docker save or OCI layout)
    Load(LoadArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// List images
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Remove one or more images
    #[command(aliases = ["rmi", "remove"])]
    Rm(RmArgs),
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long = "input", value_name = "string")]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug, Default)]
pub struct LsArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    pub all: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short, long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(Args, Debug, Default)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string", default_value = "")]
    pub platform: String,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub name: String,
}

#[derive(Args, Debug, Default)]
pub struct InspectArgs {
    /// Format output using a custom template: 'json', 'TEMPLATE'
    #[arg(short, long, value_name = "string", default_value = "")]
    pub format: String,
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct RmArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(env: &mut Env, cmd: ImageCommand) -> CliResult {
    match cmd {
        ImageCommand::Inspect(a) => inspect(env, a),
        ImageCommand::Load(a) => load(env, a),
        ImageCommand::Ls(a) => ls(env, a),
        ImageCommand::Prune(a) => prune(env, a, &mut std::io::stdin().lock()),
        ImageCommand::Pull(a) => pull(env, a),
        ImageCommand::Rm(a) => rm(env, a),
    }
}

fn load(env: &mut Env, a: LoadArgs) -> CliResult {
    let archive = match &a.input {
        Some(path) => std::fs::read(path).map_err(|e| CliError::new(format!("open {path}: {e}")))?,
        None => {
            use std::io::Read;
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).map_err(|e| CliError::new(format!("reading STDIN: {e}")))?;
            if buf.is_empty() {
                return Err(CliError::new("requested load from stdin, but stdin is empty"));
            }
            buf
        }
    };
    let mut resp = env.client.open("POST", "/images/load?quiet=0", Some(&archive))?;
    let text = resp.text()?;
    if !resp.is_success() {
        let msg = json::parse(&text).ok().and_then(|j| j["message"].as_str().map(String::from)).unwrap_or(text);
        return Err(CliError::daemon(resp.status, &msg));
    }
    if a.quiet {
        return Ok(());
    }
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let msg = json::parse(line).map(|j| j["stream"].str().to_string()).unwrap_or_default();
        env.print(&msg)?;
    }
    Ok(())
}

const IMAGE_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
const IMAGE_TABLE_DIGEST: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";

pub fn image_header() -> Value {
    header_obj(&[
        ("Containers", "CONTAINERS"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedSince", "CREATED"),
        ("Digest", "DIGEST"),
        ("ID", "IMAGE ID"),
        ("Repository", "REPOSITORY"),
        ("SharedSize", "SHARED SIZE"),
        ("Size", "SIZE"),
        ("Tag", "TAG"),
        ("UniqueSize", "UNIQUE SIZE"),
        ("VirtualSize", "SIZE"),
    ])
}

/// docker's `imageContext` for one row: an image under one repository and
/// tag (and digest).
pub fn image_row(img: &Value, repo: &str, tag: &str, digest: &str, trunc: bool, now_nanos: i128) -> Value {
    let id = img["Id"].str();
    let created = img["Created"].as_i64().unwrap_or(0);
    let size = img["Size"].as_i64().unwrap_or(0);
    let shared = img["SharedSize"].as_i64().unwrap_or(-1);
    let containers = img["Containers"].as_i64().unwrap_or(-1);
    let since = crate::duration::human_duration((now_nanos - created as i128 * 1_000_000_000).clamp(0, i64::MAX as i128) as i64);
    let s = |v: &str| Value::from(v);
    crate::template::context(json::object([
        ("Containers", s(&if containers == -1 { "N/A".to_string() } else { containers.to_string() })),
        ("CreatedAt", s(&go_local_time(created))),
        ("CreatedSince", s(&format!("{since} ago"))),
        ("Digest", s(digest)),
        ("ID", s(&if trunc { truncate_id(id) } else { id.to_string() })),
        ("Repository", s(repo)),
        ("SharedSize", s(&if shared == -1 { "N/A".to_string() } else { human_size(shared as f64) })),
        ("Size", s(&human_size_prec(size as f64, 3))),
        ("Tag", s(tag)),
        ("UniqueSize", s(&if size == -1 || shared == -1 { "N/A".to_string() } else { human_size((size - shared) as f64) })),
        ("VirtualSize", s(&human_size(size as f64))),
    ]))
}

fn is_dangling(img: &Value) -> bool {
    let tags = img["RepoTags"].items();
    let digests = img["RepoDigests"].items();
    (tags.is_empty() && digests.is_empty())
        || (tags.len() == 1 && tags[0].str() == "<none>:<none>" && digests.len() == 1 && digests[0].str() == "<none>@<none>")
}

/// docker's `imageFormat`: a row per repository and tag (per digest too
/// when digests are shown), digest-only repositories after.
pub fn image_rows(images: &[Value], show_digest: bool, need_digest: bool, trunc: bool, now_nanos: i128) -> Vec<Value> {
    let mut rows = Vec::new();
    for img in images {
        if is_dangling(img) {
            rows.push(image_row(img, "<none>", "<none>", "<none>", trunc, now_nanos));
            continue;
        }
        let mut repo_tags: Vec<(String, Vec<String>)> = Vec::new();
        for t in img["RepoTags"].items() {
            let Ok(r) = Reference::parse_normalized(t.str()) else { continue };
            let Some(tag) = r.tag.clone() else { continue };
            let name = r.familiar_name();
            match repo_tags.iter_mut().find(|(n, _)| *n == name) {
                Some((_, tags)) => tags.push(tag),
                None => repo_tags.push((name, vec![tag])),
            }
        }
        let mut repo_digests: Vec<(String, Vec<String>)> = Vec::new();
        for d in img["RepoDigests"].items() {
            let Ok(r) = Reference::parse_normalized(d.str()) else { continue };
            let Some(digest) = r.digest.clone() else { continue };
            let name = r.familiar_name();
            match repo_digests.iter_mut().find(|(n, _)| *n == name) {
                Some((_, ds)) => ds.push(digest),
                None => repo_digests.push((name, vec![digest])),
            }
        }
        for (repo, tags) in &repo_tags {
            let mut digests = Vec::new();
            if let Some(i) = repo_digests.iter().position(|(n, _)| n == repo) {
                digests = repo_digests.remove(i).1;
            }
            if !need_digest {
                digests.clear();
            }
            for tag in tags {
                if digests.is_empty() {
                    rows.push(image_row(img, repo, tag, "<none>", trunc, now_nanos));
                }
                for d in &digests {
                    rows.push(image_row(img, repo, tag, d, trunc, now_nanos));
                }
            }
        }
        for (repo, digests) in &repo_digests {
            if show_digest {
                for d in digests {
                    rows.push(image_row(img, repo, "<none>", d, trunc, now_nanos));
                }
            } else {
                rows.push(image_row(img, repo, "<none>", "", trunc, now_nanos));
            }
        }
    }
    rows
}

fn ls(env: &mut Env, a: LsArgs) -> CliResult {
    let mut filters = Filters::from_flags(&a.filter).map_err(CliError::new)?;
    if let Some(r) = &a.reference {
        filters.add("reference", r);
    }
    let mut params = Vec::new();
    if a.all {
        params.push(("all", "1".to_string()));
    }
    if !filters.is_empty() {
        params.push(("filters", filters.to_json()));
    }
    let list = env.client.get(&format!("/images/json{}", query(&params)))?;
    let source = a.format.clone().filter(|f| !f.is_empty()).unwrap_or_else(|| "table".into());
    let format = match source.as_str() {
        "table" if a.quiet => "{{.ID}}".to_string(),
        "table" if a.digests => IMAGE_TABLE_DIGEST.to_string(),
        "table" => IMAGE_TABLE.to_string(),
        f if is_table(f) && a.digests && !f.contains("{{.Digest}}") => format!("{f}\\t{{{{.Digest}}}}"),
        f => f.to_string(),
    };
    let need_digest = a.digests || format.contains("{{.Digest}}");
    let rows = image_rows(list.items(), a.digests, need_digest, !a.no_trunc, crate::timestamp::now_unix_nanos());
    env.print(&write_rows(&format, &image_header(), &rows)?)
}

// ------------------------------------------------------------------ pull

fn pull(env: &mut Env, a: PullArgs) -> CliResult {
    let mut r = Reference::parse_normalized(&a.name).map_err(CliError::new)?;
    if a.all_tags && !r.is_name_only() {
        return Err(CliError::new("tag can't be used with --all-tags/-a"));
    }
    if !a.all_tags && r.is_name_only() {
        r = r.with_default_tag();
        if !a.quiet {
            env.println("Using default tag: latest")?;
        }
    }
    let mut params = vec![("fromImage", r.name())];
    if !a.all_tags {
        params.push(("tag", r.digest.clone().or_else(|| r.tag.clone()).unwrap_or_default()));
    }
    if !a.platform.is_empty() {
        params.push(("platform", a.platform.to_lowercase()));
    }
    let auth = crate::registry_auth::header_for(&r.familiar_string())?.unwrap_or_else(|| "e30=".to_string());
    let resp = env.client.send_with("POST", &format!("/images/create{}", query(&params)), None, &[("X-Registry-Auth", &auth)])?;
    let terminal = !a.quiet && crate::term::is_tty(1);
    let mut sink = std::io::sink();
    let out: &mut dyn Write = if a.quiet { &mut sink } else { env.out };
    display_json_messages(BufReader::new(resp.body), out, terminal, crate::term::stdout_width())?;
    env.println(&r.to_string())
}

/// moby's `JSONProgress.String`: the bar (on terminals wider than 110),
/// the byte counts, the time left.
pub fn progress_string(p: &Value, width: usize, now_secs: i64) -> String {
    let current = p["current"].as_i64().unwrap_or(0);
    let total = p["total"].as_i64().unwrap_or(0);
    let units = p["units"].str();
    if current <= 0 && total <= 0 {
        return String::new();
    }
    if total <= 0 {
        return if units.is_empty() { format!("{:>8}", human_size(current as f64)) } else { format!("{current} {units}") };
    }
    let percentage = (((current as f64 / total as f64) * 100.0) as i64 / 2).min(50);
    let mut bar = String::new();
    if width > 110 {
        let spaces = (50 - percentage).max(0) as usize;
        bar = format!("[{}>{}] ", "=".repeat(percentage.max(0) as usize), " ".repeat(spaces));
    }
    let numbers = if p["hidecounts"].bool() {
        String::new()
    } else if units.is_empty() {
        if current > total {
            format!("{:>8}", human_size(current as f64))
        } else {
            format!("{:>8}/{}", human_size(current as f64), human_size(total as f64))
        }
    } else if current > total {
        format!("{current} {units}")
    } else {
        format!("{current}/{total} {units}")
    };
    let mut left = String::new();
    let start = p["start"].as_i64().unwrap_or(0);
    if width > 50 && current > 0 && start > 0 && percentage < 50 {
        let from_start_ns = (now_secs - start).max(0) as i128 * 1_000_000_000;
        let per = from_start_ns / current as i128;
        let rest = ((total - current) as i128 * per) as i64;
        let rounded = (rest + 500_000_000).div_euclid(1_000_000_000) * 1_000_000_000;
        left = format!(" {}", crate::duration::format_go_duration(rounded));
    }
    bar + &numbers + &left
}

/// moby's `DisplayJSONMessagesStream`: on a terminal each layer keeps its
/// line (cursor moves, line erased and rewritten); otherwise progress
/// updates are dropped and every status is a line. An error ends it.
pub fn display_json_messages(input: impl BufRead, out: &mut dyn Write, terminal: bool, width: usize) -> CliResult {
    let mut ids: Vec<String> = Vec::new();
    let werr = |e: std::io::Error| CliError::new(e.to_string());
    for line in input.lines() {
        let line = line.map_err(|e| CliError::new(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let jm = json::parse(&line).map_err(CliError::new)?;
        if jm.has("aux") && !jm["aux"].is_null() {
            continue;
        }
        let id = jm["id"].str().to_string();
        let has_progress = jm.has("progressDetail") && !jm["progressDetail"].is_null();
        let progress_msg = jm["progress"].str().to_string();
        let mut diff = 0usize;
        if !id.is_empty() && (has_progress || !progress_msg.is_empty()) {
            let line_no = match ids.iter().position(|i| *i == id) {
                Some(n) => n,
                None => {
                    ids.push(id.clone());
                    if terminal {
                        out.write_all(b"\n").map_err(werr)?;
                    }
                    ids.len() - 1
                }
            };
            diff = ids.len() - line_no;
            if terminal && diff > 0 {
                write!(out, "\x1b[{diff}A").map_err(werr)?;
            }
        } else {
            ids.clear();
        }
        // JSONMessage.Display
        if jm.has("errorDetail") && !jm["errorDetail"].is_null() {
            let msg = jm.at(&["errorDetail", "message"]).str();
            return Err(CliError::new(msg.to_string()));
        }
        let stream = jm["stream"].str();
        let mut endl = "";
        let progress = &jm["progressDetail"];
        let now = (crate::timestamp::now_unix_nanos() / 1_000_000_000) as i64;
        if terminal && stream.is_empty() && has_progress {
            out.write_all(b"\x1b[2K\r").map_err(werr)?;
            endl = "\r";
        } else if has_progress && !progress_string(progress, width, now).is_empty() {
            if !id.is_empty() && terminal && diff > 0 {
                write!(out, "\x1b[{diff}B").map_err(werr)?;
            }
            continue;
        }
        let mut text = String::new();
        let nanos = jm["timeNano"].as_i64().unwrap_or(0);
        let secs = jm["time"].as_i64().unwrap_or(0);
        if nanos != 0 {
            text.push_str(&format!("{} ", super::events::format_time(nanos, crate::format::local_offset(nanos / 1_000_000_000))));
        } else if secs != 0 {
            text.push_str(&format!("{} ", super::events::format_time(secs * 1_000_000_000, crate::format::local_offset(secs))));
        }
        if !id.is_empty() {
            text.push_str(&format!("{id}: "));
        }
        if !jm["from"].str().is_empty() {
            text.push_str(&format!("(from {}) ", jm["from"].str()));
        }
        let status = jm["status"].str();
        if has_progress && terminal {
            text.push_str(&format!("{status} {}{endl}", progress_string(progress, width, now)));
        } else if !progress_msg.is_empty() {
            text.push_str(&format!("{status} {progress_msg}{endl}"));
        } else if !stream.is_empty() {
            text.push_str(&format!("{stream}{endl}"));
        } else {
            text.push_str(&format!("{status}{endl}\n"));
        }
        out.write_all(text.as_bytes()).map_err(werr)?;
        if !id.is_empty() && terminal && diff > 0 {
            write!(out, "\x1b[{diff}B").map_err(werr)?;
        }
        out.flush().map_err(werr)?;
    }
    Ok(())
}

// ------------------------------------------------------------------ inspect, rm, prune

fn inspect(env: &mut Env, a: InspectArgs) -> CliResult {
    let client = env.client.clone();
    let get = |r: &str| client.raw("GET", &format!("/images/{}/json", path_segment(r)), None);
    super::inspect::inspect(env, &a.images, &InspectFormat::from_flag(&a.format), get)
}

fn rm(env: &mut Env, a: RmArgs) -> CliResult {
    let mut errors = Vec::new();
    let mut fatal = false;
    for img in &a.images {
        let mut params = Vec::new();
        if a.force {
            params.push(("force", "1".to_string()));
        }
        if a.no_prune {
            params.push(("noprune", "1".to_string()));
        }
        match env.client.delete(&format!("/images/{}{}", path_segment(img), query(&params))) {
            Ok(dels) => {
                for d in dels.items() {
                    if !d["Deleted"].str().is_empty() {
                        env.println(&format!("Deleted: {}", d["Deleted"].str()))?;
                    } else {
                        env.println(&format!("Untagged: {}", d["Untagged"].str()))?;
                    }
                }
            }
            Err(e) => {
                if e.http_status != Some(404) {
                    fatal = true;
                }
                errors.push(e);
            }
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    if !a.force || fatal {
        return CliError::join(errors);
    }
    let msg = errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("\n");
    env.eprintln(&msg);
    Ok(())
}

const ALL_IMAGES_WARNING: &str =
    "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?";
const DANGLING_WARNING: &str = "WARNING! This will remove all dangling images.\nAre you sure you want to continue?";

fn prune(env: &mut Env, a: PruneArgs, stdin: &mut dyn BufRead) -> CliResult {
    let mut filters = Filters::from_flags(&a.filter).map_err(CliError::new)?;
    filters.add("dangling", if a.all { "false" } else { "true" });
    if !a.force && !super::confirm(env, stdin, if a.all { ALL_IMAGES_WARNING } else { DANGLING_WARNING })? {
        return Err(CliError::cancelled("image prune has been cancelled"));
    }
    let report = env.client.post(&format!("/images/prune{}", filters.query()), None)?;
    let deleted = report["ImagesDeleted"].items();
    let mut reclaimed = 0;
    if !deleted.is_empty() {
        let mut out = String::from("Deleted Images:\n");
        for d in deleted {
            if !d["Untagged"].str().is_empty() {
                out.push_str(&format!("untagged: {}\n", d["Untagged"].str()));
            } else {
                out.push_str(&format!("deleted: {}\n", d["Deleted"].str()));
            }
        }
        env.println(&out)?;
        reclaimed = report["SpaceReclaimed"].as_u64().unwrap_or(0);
    }
    env.println(&format!("Total reclaimed space: {}", human_size(reclaimed as f64)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::FakeDaemon;

    const IMG: &str = r#"{"Id":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","RepoTags":["192.168.77.11:5000/busy:1","busybox:latest"],"RepoDigests":["192.168.77.11:5000/busy@sha256:aaaa"],"Created":100,"Size":1996800,"SharedSize":-1,"Containers":-1}"#;

    #[test]
    fn image_table_as_docker_prints_it() {
        let img = json::parse(IMG).unwrap();
        let rows = image_rows(std::slice::from_ref(&img), false, false, true, 100 * 1_000_000_000 + 3 * 3600 * 1_000_000_000);
        let out = write_rows(IMAGE_TABLE, &image_header(), &rows).unwrap();
        assert_eq!(
            out,
            "REPOSITORY                TAG       IMAGE ID       CREATED       SIZE\n\
             192.168.77.11:5000/busy   1         0123456789ab   3 hours ago   2MB\n\
             busybox                   latest    0123456789ab   3 hours ago   2MB\n"
        );
        let rows = image_rows(std::slice::from_ref(&img), true, true, false, 0);
        assert_eq!(rows[0]["Digest"].str(), "sha256:aaaa");
        assert_eq!(rows[1]["Digest"].str(), "<none>");
        assert_eq!(rows[0]["ID"].str().len(), 71);
        let dangling = json::parse(r#"{"Id":"sha256:ffff","RepoTags":[],"RepoDigests":[],"Created":0,"Size":6}"#).unwrap();
        let rows = image_rows(&[dangling], false, false, true, 0);
        assert_eq!((rows[0]["Repository"].str(), rows[0]["Tag"].str(), rows[0]["Size"].str()), ("<none>", "<none>", "6B"));
        let digest_only =
            json::parse(r#"{"Id":"sha256:ffff","RepoTags":[],"RepoDigests":["x/y@sha256:bb"],"Created":0,"Size":6}"#).unwrap();
        let rows = image_rows(&[digest_only], false, false, true, 0);
        assert_eq!((rows[0]["Repository"].str(), rows[0]["Tag"].str()), ("x/y", "<none>"));
    }

    #[test]
    fn pull_lines_without_a_terminal() {
        let stream = r#"{"status":"Pulling from busy","id":"1"}
{"status":"Pulling fs layer","progressDetail":{},"id":"a1b2c3"}
{"status":"Downloading","progressDetail":{"current":100,"total":1000},"progress":"[=>   ] 100B/1kB","id":"a1b2c3"}
{"status":"Download complete","progressDetail":{},"id":"a1b2c3"}
{"status":"Pull complete","progressDetail":{},"id":"a1b2c3"}
{"status":"Digest: sha256:abcd"}
{"status":"Status: Downloaded newer image for 192.168.77.11:5000/busy:1"}
"#;
        let mut out = Vec::new();
        display_json_messages(stream.as_bytes(), &mut out, false, 200).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1: Pulling from busy\na1b2c3: Pulling fs layer\na1b2c3: Download complete\na1b2c3: Pull complete\nDigest: sha256:abcd\nStatus: Downloaded newer image for 192.168.77.11:5000/busy:1\n"
        );
        let err = r#"{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}"#;
        assert_eq!(display_json_messages(err.as_bytes(), &mut Vec::new(), false, 200).unwrap_err().message, "manifest unknown");
    }

    #[test]
    fn pull_bars_on_a_terminal() {
        let stream = "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"l1\"}\n{\"status\":\"Downloading\",\"progressDetail\":{\"current\":500,\"total\":1000},\"id\":\"l1\"}\n";
        let mut out = Vec::new();
        display_json_messages(stream.as_bytes(), &mut out, true, 120).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "\n\x1b[1A\x1b[2K\rl1: Pulling fs layer \r\x1b[1B\x1b[1A\x1b[2K\rl1: Downloading [=========================>                         ]     500B/1kB\r\x1b[1B"
        );
        let p = json::parse(r#"{"current":5000000,"total":10000000,"start":100}"#).unwrap();
        assert_eq!(progress_string(&p, 80, 105), "     5MB/10MB 5s");
        assert_eq!(progress_string(&json::parse(r#"{"current":2000}"#).unwrap(), 80, 0), "     2kB");
    }

    #[test]
    fn rm_and_prune_print_as_docker() {
        let d = FakeDaemon::start(|req| match (req.method.as_str(), req.target.as_str()) {
            ("DELETE", t) if t.starts_with("/v1.44/images/busy") => (200, r#"[{"Untagged":"busy:1"},{"Deleted":"sha256:ab"}]"#.into()),
            ("DELETE", _) => (404, r#"{"message":"No such image: nope:latest"}"#.into()),
            ("POST", _) => (200, r#"{"ImagesDeleted":[{"Untagged":"x:1"},{"Deleted":"sha256:cd"}],"SpaceReclaimed":2000000}"#.into()),
            _ => (500, "{}".into()),
        });
        let (r, out) = d.run(|env| rm(env, RmArgs { images: vec!["busy:1".into(), "nope".into()], ..Default::default() }));
        assert_eq!(out, "Untagged: busy:1\nDeleted: sha256:ab\n");
        assert_eq!(r.unwrap_err().message, "Error response from daemon: No such image: nope:latest");
        let (r, _) = d.run(|env| rm(env, RmArgs { images: vec!["nope".into()], force: true, ..Default::default() }));
        assert!(r.is_ok(), "a missing image with --force is not fatal");
        assert_eq!(d.requests()[0].target, "/v1.44/images/busy%3A1");
        let (r, out) = d.run(|env| prune(env, PruneArgs { all: true, force: true, ..Default::default() }, &mut &b""[..]));
        r.unwrap();
        assert_eq!(out, "Deleted Images:\nuntagged: x:1\ndeleted: sha256:cd\n\nTotal reclaimed space: 2MB\n");
        assert!(d.requests().last().unwrap().target.ends_with("filters=%7B%22dangling%22%3A%7B%22false%22%3Atrue%7D%7D"));
        let (r, out) = d.run(|env| prune(env, PruneArgs::default(), &mut &b"n\n"[..]));
        assert_eq!(r.unwrap_err().status, 0);
        assert_eq!(out, "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] ");
    }
}
