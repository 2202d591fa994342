//! `shoal system df [-v]`: the node's disk usage as `docker system df`
//! prints it, from `/system/df`.

use clap::{Args, Subcommand};

use super::container::{container_header, container_row};
use super::image::{image_header, image_row};
use super::volume::{volume_header, volume_row};
use super::Env;
use crate::error::{CliError, CliResult};
use crate::format::{header_obj, human_size, is_table, template_string, write_rows};
use serde_json::Value;

use crate::json::{self, JsonExt};
use crate::reference::Reference;

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Show shoal disk usage
    Df(DfArgs),
}

#[derive(Args, Debug, Default)]
pub struct DfArgs {
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short, long)]
    pub verbose: bool,
}

pub fn run(env: &mut Env, cmd: SystemCommand) -> CliResult {
    match cmd {
        SystemCommand::Df(a) => df(env, a),
    }
}

const SUMMARY_TABLE: &str = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";
const IMAGES_TABLE: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}";
const CONTAINERS_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}";
const VOLUMES_TABLE: &str = "table {{.Name}}\t{{.Links}}\t{{.Size}}";
const BUILD_CACHE_TABLE: &str =
    "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}";

fn summary_row(kind: &str, total: usize, active: usize, size: String, reclaimable: String) -> Value {
    crate::template::context(json::object([
        ("Active", Value::from(active.to_string().as_str())),
        ("Reclaimable", Value::from(reclaimable.as_str())),
        ("Size", Value::from(size.as_str())),
        ("TotalCount", Value::from(total.to_string().as_str())),
        ("Type", Value::from(kind)),
    ]))
}

fn with_percent(reclaimable: i64, total: i64) -> String {
    if total > 0 {
        format!("{} ({}%)", human_size(reclaimable as f64), reclaimable * 100 / total)
    } else {
        human_size(reclaimable as f64)
    }
}

/// The four summary rows (docker's `diskUsage*Context`s).
pub fn summary_rows(du: &Value) -> Vec<Value> {
    let images = du["Images"].items();
    let layers = du["LayersSize"].as_i64().unwrap_or(0);
    let i64_of = |j: &Value, k: &str, d: i64| j[k].as_i64().unwrap_or(d);
    let used: i64 = images
        .iter()
        .filter(|i| i64_of(i, "Containers", 0) != 0 && i64_of(i, "Size", 0) != -1 && i64_of(i, "SharedSize", 0) != -1)
        .map(|i| i64_of(i, "Size", 0) - i64_of(i, "SharedSize", 0))
        .sum();
    let image_row = summary_row(
        "Images",
        images.len(),
        images.iter().filter(|i| i64_of(i, "Containers", 0) > 0).count(),
        human_size(layers as f64),
        with_percent(layers - used, layers),
    );
    let containers = du["Containers"].items();
    let active = |c: &Value| matches!(c["State"].str(), "running" | "paused" | "restarting");
    let total_rw: i64 = containers.iter().map(|c| i64_of(c, "SizeRw", 0)).sum();
    let idle_rw: i64 = containers.iter().filter(|c| !active(c)).map(|c| i64_of(c, "SizeRw", 0)).sum();
    let container_row = summary_row(
        "Containers",
        containers.len(),
        containers.iter().filter(|c| active(c)).count(),
        human_size(total_rw as f64),
        with_percent(idle_rw, total_rw),
    );
    let volumes = du["Volumes"].items();
    let usage = |v: &Value, k: &str| v["UsageData"][k].as_i64().unwrap_or(0);
    let sized = || volumes.iter().filter(|v| usage(v, "Size") != -1);
    let vol_total: i64 = sized().map(|v| usage(v, "Size")).sum();
    let vol_free: i64 = sized().filter(|v| usage(v, "RefCount") == 0).map(|v| usage(v, "Size")).sum();
    let volume_row = summary_row(
        "Local Volumes",
        volumes.len(),
        volumes.iter().filter(|v| usage(v, "RefCount") > 0).count(),
        human_size(vol_total as f64),
        with_percent(vol_free, vol_total),
    );
    let cache = du["BuildCache"].items();
    let builder: i64 = cache.iter().filter(|c| !c["Shared"].bool()).map(|c| i64_of(c, "Size", 0)).sum();
    let in_use: i64 = cache.iter().filter(|c| c["InUse"].bool() && !c["Shared"].bool()).map(|c| i64_of(c, "Size", 0)).sum();
    let cache_row = summary_row(
        "Build Cache",
        cache.len(),
        cache.iter().filter(|c| c["InUse"].bool()).count(),
        human_size(builder as f64),
        human_size((builder - in_use) as f64),
    );
    vec![image_row, container_row, volume_row, cache_row]
}

fn build_cache_header() -> Value {
    header_obj(&[
        ("CacheType", "CACHE TYPE"),
        ("CreatedSince", "CREATED"),
        ("Description", "DESCRIPTION"),
        ("ID", "CACHE ID"),
        ("InUse", "IN USE"),
        ("LastUsedSince", "LAST USED"),
        ("Parent", "PARENT"),
        ("Shared", "SHARED"),
        ("Size", "SIZE"),
        ("UsageCount", "USAGE"),
    ])
}

/// `system df -v`'s rows: images under their first tag, containers,
/// volumes (build cache records are never kept by Shoal).
fn verbose_rows(du: &Value, trunc: bool, now: i128) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    let mut images = Vec::new();
    for i in du["Images"].items() {
        let tags = i["RepoTags"].items();
        let dangling = (tags.is_empty() && i["RepoDigests"].items().is_empty()) || (tags.len() == 1 && tags[0].str() == "<none>:<none>");
        let (mut repo, mut tag) = ("<none>".to_string(), "<none>".to_string());
        if !tags.is_empty() && !dangling {
            let Ok(r) = Reference::parse_normalized(tags[0].str()) else { continue };
            if let Some(t) = &r.tag {
                repo = r.familiar_name();
                tag = t.clone();
            }
        }
        images.push(image_row(i, &repo, &tag, "", trunc, now));
    }
    let containers = du["Containers"]
        .items()
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c.set("SizeRootFs", Value::from(0i64));
            container_row(&c, trunc, now)
        })
        .collect();
    let volumes = du["Volumes"].items().iter().map(volume_row).collect();
    (images, containers, volumes)
}

fn df(env: &mut Env, a: DfArgs) -> CliResult {
    let du = env.client.get("/system/df")?;
    let format = a.format.clone().filter(|f| !f.is_empty()).unwrap_or_else(|| "table".into());
    let now = crate::timestamp::now_unix_nanos();
    if !a.verbose {
        let format = if format == "table" { SUMMARY_TABLE.to_string() } else { format };
        let header = header_obj(&[
            ("Active", "ACTIVE"),
            ("Reclaimable", "RECLAIMABLE"),
            ("Size", "SIZE"),
            ("TotalCount", "TOTAL"),
            ("Type", "TYPE"),
        ]);
        return env.print(&write_rows(&format, &header, &summary_rows(&du))?);
    }
    let (images, containers, volumes) = verbose_rows(&du, is_table(&format), now);
    if format == "table" {
        let mut out = String::from("Images space usage:\n\n");
        out.push_str(&write_rows(IMAGES_TABLE, &image_header(), &images)?);
        out.push_str("\nContainers space usage:\n\n");
        out.push_str(&write_rows(CONTAINERS_TABLE, &container_header(), &containers)?);
        out.push_str("\nLocal Volumes space usage:\n\n");
        out.push_str(&write_rows(VOLUMES_TABLE, &volume_header(), &volumes)?);
        out.push_str(&format!("\nBuild cache usage: {}\n\n", human_size(0.0)));
        out.push_str(&write_rows(BUILD_CACHE_TABLE, &build_cache_header(), &[])?);
        return env.print(&out);
    }
    let data = json::object([
        ("Images", Value::Array(images)),
        ("Containers", Value::Array(containers)),
        ("Volumes", Value::Array(volumes)),
        ("BuildCache", Value::Array(Vec::new())),
    ]);
    let t = crate::format::parse_template(&template_string(&format))?;
    let text = t.execute(&data).map_err(|e| CliError::new(format!("template parsing error: {e}")))?;
    env.print(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::FakeDaemon;

    const DF: &str = r#"{"LayersSize":2000000,"Images":[{"Id":"sha256:0123456789abcdef","RepoTags":["192.168.77.11:5000/busy:1"],"RepoDigests":[],"Created":0,"Size":2000000,"SharedSize":0,"Containers":1}],"Containers":[{"Id":"c0ffee0123456789","Names":["/user.1.x"],"Image":"busy","ImageID":"sha256:0123456789abcdef","Command":"sh","Created":0,"State":"running","Status":"Up 1 second","SizeRw":0,"Mounts":[{"Name":"v2","Driver":"local"}]}],"Volumes":[{"Name":"v1","Driver":"local","UsageData":{"Size":0,"RefCount":0}},{"Name":"v2","Driver":"local","UsageData":{"Size":6,"RefCount":1}}],"BuildCache":[]}"#;

    #[test]
    fn summary_as_docker_prints_it() {
        let d = FakeDaemon::start(|_| (200, DF.into()));
        let (r, out) = d.run(|env| df(env, DfArgs::default()));
        r.unwrap();
        assert_eq!(
            out,
            "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n\
             Images          1         1         2MB       0B (0%)\n\
             Containers      1         1         0B        0B\n\
             Local Volumes   2         1         6B        0B (0%)\n\
             Build Cache     0         0         0B        0B\n"
        );
        let (r, out) = d.run(|env| df(env, DfArgs { format: Some("{{json .}}".into()), verbose: false }));
        r.unwrap();
        assert_eq!(out.lines().next().unwrap(), r#"{"Active":"1","Reclaimable":"0B (0%)","Size":"2MB","TotalCount":"1","Type":"Images"}"#);
    }

    #[test]
    fn verbose_sections() {
        let d = FakeDaemon::start(|_| (200, DF.into()));
        let (r, out) = d.run(|env| df(env, DfArgs { format: None, verbose: true }));
        r.unwrap();
        let want_start = "Images space usage:\n\nREPOSITORY                TAG       IMAGE ID       CREATED";
        assert!(out.starts_with(want_start), "{out}");
        assert!(out.contains("\nContainers space usage:\n\nCONTAINER ID   IMAGE     COMMAND   LOCAL VOLUMES   SIZE      CREATED"), "{out}");
        assert!(
            out.contains(
                "\nLocal Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\nv1            0         0B\nv2            1         6B\n"
            ),
            "{out}"
        );
        assert!(
            out.ends_with("\nBuild cache usage: 0B\n\nCACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED\n"),
            "{out}"
        );
    }
}
