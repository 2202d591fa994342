//! `stack ls` (`NAME  SERVICES`), `stack services` (the `service ls` table
//! for the stack's services) and `stack ps` (the `service ps` table for its
//! tasks), with docker's formats and messages.

use clap::Args;

use super::diff::LABEL_NAMESPACE;
use super::{stack_filter, validate_stack_name};
use crate::client::query;
use crate::commands::service::list::render as render_services;
use crate::commands::tasks::{self, TaskListOptions};
use crate::commands::Env;
use crate::error::{CliError, CliResult};
use crate::filters::Filters;
use crate::format::{self, natural_cmp};
use serde_json::Value;

use crate::json::{self, JsonExt};

#[derive(Args, Debug, Default, Clone)]
pub struct LsArgs {
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
}

#[derive(Args, Debug, Default, Clone)]
pub struct ServicesArgs {
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
    #[arg(value_name = "STACK")]
    pub stack: String,
}

#[derive(Args, Debug, Default, Clone)]
pub struct PsArgs {
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Do not map IDs to Names
    #[arg(long = "no-resolve")]
    pub no_resolve: bool,
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Only display task IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    #[arg(value_name = "STACK")]
    pub stack: String,
}

const STACK_TABLE_FORMAT: &str = "table {{.Name}}\t{{.Services}}";

/// (stack name, number of services), from services carrying the label,
/// in natural order of names.
pub fn summarize(services: &[Value]) -> CliResult<Vec<(String, usize)>> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for s in services {
        let labels = s.at(&["Spec", "Labels"]);
        if !labels.has(LABEL_NAMESPACE) {
            return Err(CliError::new(format!("cannot get label {LABEL_NAMESPACE} for service {}", s["ID"].str())));
        }
        let name = labels[LABEL_NAMESPACE].str();
        match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, count)) => *count += 1,
            None => out.push((name.to_string(), 1)),
        }
    }
    out.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    Ok(out)
}

pub fn render_stacks(stacks: &[(String, usize)], format: &str) -> CliResult<String> {
    let format = if format.is_empty() || format == format::TABLE_FORMAT_KEY { STACK_TABLE_FORMAT } else { format };
    let rows: Vec<Value> =
        stacks.iter().map(|(n, c)| json::object([("Name", Value::from(n.as_str())), ("Services", Value::from(c.to_string()))])).collect();
    format::write_rows(format, &format::header_obj(&[("Name", "NAME"), ("Services", "SERVICES")]), &rows)
}

pub fn ls(env: &mut Env, a: LsArgs) -> CliResult {
    let mut f = Filters::new();
    f.add("label", LABEL_NAMESPACE);
    let services = env.client.get(&format!("/services{}", f.query()))?;
    let stacks = summarize(services.items())?;
    let text = render_stacks(&stacks, a.format.as_deref().unwrap_or(""))?;
    env.print(&text)
}

pub fn services(env: &mut Env, a: ServicesArgs) -> CliResult {
    validate_stack_name(&a.stack)?;
    let filters = stack_filter(&a.stack, &a.filter)?;
    let mut params = vec![("filters", filters.to_json())];
    if !a.quiet {
        params.push(("status", "true".to_string()));
    }
    let list = env.client.get(&format!("/services{}", query(&params)))?;
    if list.items().is_empty() {
        env.eprintln(&format!("Nothing found in stack: {}", a.stack));
        return Ok(());
    }
    let format = a.format.filter(|f| !f.is_empty()).unwrap_or_else(|| format::TABLE_FORMAT_KEY.into());
    let text = render_services(list.items(), &format, a.quiet)?;
    env.print(&text)
}

/// The task filter for a stack: the user's filters and the stack's
/// services. (Docker sends the namespace label and SwarmKit matches it
/// against each task's copy of its service's labels; shoald's task list
/// matches task labels, which are empty, so the services are named.)
fn task_filter(env: &Env, stack: &str, user: &[String]) -> CliResult<Option<Filters>> {
    let services = super::stack_objects(env.client, "services", stack)?;
    if services.is_empty() {
        return Ok(None);
    }
    let mut f = Filters::from_flags(user)?;
    for s in &services {
        f.add("service", s["ID"].str());
    }
    Ok(Some(f))
}

pub fn ps(env: &mut Env, a: PsArgs) -> CliResult {
    validate_stack_name(&a.stack)?;
    let nothing = || CliError::new(format!("nothing found in stack: {}", a.stack));
    let Some(filter) = task_filter(env, &a.stack, &a.filter)? else { return Err(nothing()) };
    let list = env.client.get(&format!("/tasks{}", filter.query()))?;
    if list.items().is_empty() {
        return Err(nothing());
    }
    let opts = TaskListOptions {
        trunc: !a.no_trunc,
        no_resolve: a.no_resolve,
        quiet: a.quiet,
        format: a.format.clone().filter(|f| !f.is_empty()).unwrap_or_else(|| format::TABLE_FORMAT_KEY.into()),
    };
    tasks::print(env, list.items().to_vec(), &opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(id: &str, stack: Option<&str>) -> Value {
        let labels = stack.map(|s| format!(r#"{{"{LABEL_NAMESPACE}":"{s}"}}"#)).unwrap_or_else(|| "{}".into());
        json::parse(&format!(r#"{{"ID":"{id}","Spec":{{"Name":"x","Labels":{labels}}}}}"#)).unwrap()
    }

    #[test]
    fn stack_ls_table_is_dockers() {
        let stacks = summarize(&[svc("1", Some("web-10")), svc("2", Some("web-2")), svc("3", Some("web-2")), svc("4", Some("a"))]).unwrap();
        assert_eq!(stacks, [("a".to_string(), 1), ("web-2".to_string(), 2), ("web-10".to_string(), 1)]);
        assert_eq!(render_stacks(&stacks, "").unwrap(), "NAME      SERVICES\na         1\nweb-2     2\nweb-10    1\n");
        assert_eq!(render_stacks(&stacks[..1], "{{.Name}}: {{.Services}}").unwrap(), "a: 1\n");
        assert_eq!(render_stacks(&stacks[..1], "json").unwrap(), "{\"Name\":\"a\",\"Services\":\"1\"}\n");
        assert_eq!(render_stacks(&[], "table").unwrap(), "NAME      SERVICES\n");
        assert_eq!(summarize(&[svc("s9", None)]).unwrap_err().message, "cannot get label com.docker.stack.namespace for service s9");
    }
}
