//! `shoal image load | ls`: images on the node this CLI talks to.

use clap::{Args, Subcommand};

use super::{CliError, CliResult, Env};
use crate::json::Json;

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Load an image from a tar archive (docker save or OCI layout)
    Load(LoadArgs),
    /// List images
    #[command(alias = "list")]
    Ls(LsArgs),
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

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

pub fn run(env: &mut Env, cmd: ImageCommand) -> CliResult {
    match cmd {
        ImageCommand::Load(a) => load(env, a),
        ImageCommand::Ls(a) => ls(env, a),
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
        let msg = Json::parse(&text).ok().and_then(|j| j.get("message").as_str().map(String::from)).unwrap_or(text);
        return Err(CliError::daemon(resp.status, &msg));
    }
    if a.quiet {
        return Ok(());
    }
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let msg = Json::parse(line).map(|j| j.get("stream").str().to_string()).unwrap_or_default();
        env.print(&msg)?;
    }
    Ok(())
}

fn ls(env: &mut Env, a: LsArgs) -> CliResult {
    let list = env.client.get("/images/json")?;
    let mut table = String::from("REPOSITORY\tTAG\tIMAGE ID\tSIZE\n");
    for img in list.as_array() {
        let id = img.get("Id").str().trim_start_matches("sha256:").chars().take(12).collect::<String>();
        if a.quiet {
            env.println(&id)?;
            continue;
        }
        let size = human_size(img.get("Size").as_u64().unwrap_or(0));
        let tags: Vec<&Json> = img.get("RepoTags").as_array().iter().collect();
        if tags.is_empty() {
            table.push_str(&format!("<none>\t<none>\t{id}\t{size}\n"));
        }
        for t in tags {
            let (repo, tag) = t.str().rsplit_once(':').unwrap_or((t.str(), "<none>"));
            table.push_str(&format!("{repo}\t{tag}\t{id}\t{size}\n"));
        }
    }
    if a.quiet {
        return Ok(());
    }
    env.print(&crate::tabwriter::tabwrite(&table, 0, 3))
}

/// Docker's decimal sizes: 1.98MB.
fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes}B")
    } else {
        format!("{:.3}", v).trim_end_matches('0').trim_end_matches('.').to_string() + units[i]
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_as_docker_prints_them() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1_996_800), "1.997MB");
        assert_eq!(human_size(4_400_000), "4.4MB");
    }
}
