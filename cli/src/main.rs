//! `shoal`: the command line of a Shoal cluster. It speaks the Docker Engine
//! API to the local `shoald` over a unix socket, and prints what the docker
//! CLI prints.

mod client;
// Go templates and the JSON they read live in their own crate (the
// worker expands SwarmKit's templates with them too).
use shoal_gotemplate::{json, template};
mod commands;
mod duration;
mod error;
mod filters;
mod format;
#[cfg(test)]
mod fuzz_tests;
mod lab;
mod reference;
mod registry_auth;
mod sha256;
mod tabwriter;
mod term;
mod timestamp;

use clap::{CommandFactory, Parser, Subcommand};

use crate::client::{Client, Host, TlsFlags};
use crate::commands::info::InfoArgs;
use crate::commands::node::NodeCommand;
use crate::commands::service::ServiceCommand;
use crate::commands::swarm::SwarmCommand;
use crate::commands::version::VersionArgs;
use crate::commands::Env;
use crate::error::{CliError, CliResult};

#[derive(Parser, Debug)]
#[command(name = "shoal", about = "Run and manage a Shoal cluster (Docker Swarm mode compatible)", disable_version_flag = true)]
struct Cli {
    /// Daemon socket to connect to (default unix:///run/shoal/shoal.sock, or $SHOAL_HOST)
    #[arg(short = 'H', long = "host", global = true, help_heading = "Global Options", value_name = "host")]
    host: Option<String>,
    /// Use TLS; implied by --tlsverify (tcp:// hosts)
    #[arg(long, global = true, help_heading = "Global Options")]
    tls: bool,
    /// Use TLS and verify the remote (or $SHOAL_TLS_VERIFY)
    #[arg(long, global = true, help_heading = "Global Options", num_args = 0..=1, default_missing_value = "true", value_name = "bool")]
    tlsverify: Option<bool>,
    /// Trust certs signed only by this CA (default $SHOAL_CERT_PATH/ca.pem, else ~/.shoal/ca.pem)
    #[arg(long, global = true, help_heading = "Global Options", value_name = "string")]
    tlscacert: Option<std::path::PathBuf>,
    /// Path to TLS certificate file (default cert.pem beside the CA, if present)
    #[arg(long, global = true, help_heading = "Global Options", value_name = "string")]
    tlscert: Option<std::path::PathBuf>,
    /// Path to TLS key file (default key.pem beside the CA, if present)
    #[arg(long, global = true, help_heading = "Global Options", value_name = "string")]
    tlskey: Option<std::path::PathBuf>,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    cmd: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Manage containers on this node
    Container {
        #[command(subcommand)]
        cmd: commands::container::ContainerCommand,
    },
    /// Get real time events from the server
    Events(commands::events::EventsArgs),
    /// Execute a command in a running container
    Exec(commands::container::ExecArgs),
    /// List images
    Images(commands::image::LsArgs),
    /// Manage images on this node
    Image {
        #[command(subcommand)]
        cmd: commands::image::ImageCommand,
    },
    /// Display system-wide information
    Info(InfoArgs),
    /// Fetch the logs of a container
    Logs(commands::container::LogsArgs),
    /// List containers
    Ps(commands::container::PsArgs),
    /// Download an image from a registry
    Pull(commands::image::PullArgs),
    /// Remove one or more images
    Rmi(commands::image::RmArgs),
    /// Manage Shoal
    System {
        #[command(subcommand)]
        cmd: commands::system::SystemCommand,
    },
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        cmd: commands::volume::VolumeCommand,
    },
    /// Start and manage a local multi-node lab cluster
    Lab {
        #[command(subcommand)]
        cmd: lab::LabCommand,
    },
    /// Manage Swarm configs
    Config {
        #[command(subcommand)]
        cmd: commands::secret::ConfigCommand,
    },
    /// Manage networks
    Network {
        #[command(subcommand)]
        cmd: commands::network::NetworkCommand,
    },
    /// Manage Swarm nodes
    Node {
        #[command(subcommand)]
        cmd: NodeCommand,
    },
    /// Manage Swarm secrets
    Secret {
        #[command(subcommand)]
        cmd: commands::secret::SecretCommand,
    },
    /// Manage Swarm services
    Service {
        #[command(subcommand)]
        cmd: ServiceCommand,
    },
    /// Manage Swarm stacks
    Stack {
        #[command(subcommand)]
        cmd: commands::stack::StackCommand,
    },
    /// Manage Swarm
    Swarm {
        #[command(subcommand)]
        cmd: SwarmCommand,
    },
    /// Show the Shoal version information
    Version(VersionArgs),
}

/// The name this program was invoked as, for commands it prints.
fn program_name() -> String {
    std::env::args()
        .next()
        .and_then(|a| std::path::Path::new(&a).file_name().map(|f| f.to_string_lossy().into_owned()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "shoal".to_string())
}

fn print_help_for(path: &[&str]) {
    let mut cmd = Cli::command();
    cmd.build();
    for p in path {
        match cmd.find_subcommand(p) {
            Some(c) => cmd = c.clone(),
            None => break,
        }
    }
    let _ = cmd.print_help();
}

fn run(cli: Cli) -> CliResult {
    if cli.version {
        println!("Shoal version {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let Some(cmd) = cli.cmd else {
        let _ = Cli::command().print_help();
        return Ok(());
    };
    if let Command::Lab { cmd } = cmd {
        return lab::run(cmd).map_err(CliError::new);
    }
    if let Command::Swarm { cmd: SwarmCommand::Update(a) } = &cmd {
        if a.is_empty() {
            print_help_for(&["swarm", "update"]);
            return Ok(());
        }
    }
    let host = Host::select(cli.host.as_deref())?;
    let tls = TlsFlags { tls: cli.tls, tlsverify: cli.tlsverify, tlscacert: cli.tlscacert, tlscert: cli.tlscert, tlskey: cli.tlskey };
    let tls = match host {
        Host::Tcp { .. } => tls.resolve(&|k| std::env::var(k).ok())?,
        Host::Unix(_) => None,
    };
    let client = Client::with_tls(host, tls)?;
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    let mut env = Env { client: &client, out: &mut out, err: &mut err, prog: program_name() };
    match cmd {
        Command::Container { cmd } => commands::container::run(&mut env, cmd),
        Command::Events(a) => commands::events::run(&mut env, a),
        Command::Exec(a) => commands::container::run_exec(&mut env, a),
        Command::Logs(a) => commands::container::run_logs(&mut env, a),
        Command::Ps(a) => commands::container::run_ps(&mut env, a),
        Command::Pull(a) => commands::image::run(&mut env, commands::image::ImageCommand::Pull(a)),
        Command::Rmi(a) => commands::image::run(&mut env, commands::image::ImageCommand::Rm(a)),
        Command::System { cmd } => commands::system::run(&mut env, cmd),
        Command::Volume { cmd } => commands::volume::run(&mut env, cmd),
        Command::Image { cmd } => commands::image::run(&mut env, cmd),
        Command::Images(a) => commands::image::run(&mut env, commands::image::ImageCommand::Ls(a)),
        Command::Info(a) => commands::info::run(&mut env, a),
        Command::Config { cmd } => commands::secret::run_config(&mut env, cmd),
        Command::Network { cmd } => commands::network::run(&mut env, cmd),
        Command::Node { cmd } => commands::node::run(&mut env, cmd),
        Command::Secret { cmd } => commands::secret::run_secret(&mut env, cmd),
        Command::Service { cmd } => commands::service::run(&mut env, cmd),
        Command::Stack { cmd } => commands::stack::run(&mut env, cmd),
        Command::Swarm { cmd } => commands::swarm::run(&mut env, cmd),
        Command::Version(a) => commands::version::run(&mut env, a),
        Command::Lab { .. } => unreachable!("handled above"),
    }
}

fn main() {
    // Die quietly on a closed pipe (`shoal node ls | head`), as Go programs do.
    // SAFETY: setting a signal disposition before any threads start.
    let _ = unsafe { nix::sys::signal::signal(nix::sys::signal::Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl) };
    // Nothing here is async: each request's thread waits on its socket
    // itself (no I/O thread to hop through).
    shoal_http_client::drive_on_calling_threads();
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            // An exec's exit code, or a cancelled prompt, has nothing to say.
            if !e.message.is_empty() {
                eprintln!("{}", e.message);
            }
            e.status
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_docker_style_flags() {
        let c = Cli::try_parse_from(["shoal", "-H", "unix:///tmp/s.sock", "node", "ls", "-q", "-f", "role=manager"]).unwrap();
        assert_eq!(c.host.as_deref(), Some("unix:///tmp/s.sock"));
        let c = Cli::try_parse_from([
            "shoal",
            "swarm",
            "init",
            "--advertise-addr",
            "192.168.77.11",
            "--default-addr-pool",
            "10.20.0.0/16",
            "--default-addr-pool",
            "10.30.0.0/16",
            "--cert-expiry",
            "720h",
            "--task-history-limit",
            "3",
        ])
        .unwrap();
        let Some(Command::Swarm { cmd: SwarmCommand::Init(a) }) = c.cmd else { panic!() };
        assert_eq!(a.default_addr_pool, vec!["10.20.0.0/16", "10.30.0.0/16"]);
        assert_eq!(a.spec.ca.cert_expiry, Some(720 * 3600 * 1_000_000_000));
        assert_eq!(a.listen_addr, "0.0.0.0:2377");
        assert!(Cli::try_parse_from(["shoal", "swarm", "init", "--cert-expiry", "90d"]).is_err());
        let c = Cli::try_parse_from(["shoal", "swarm", "update", "--autolock"]).unwrap();
        let Some(Command::Swarm { cmd: SwarmCommand::Update(a) }) = c.cmd else { panic!() };
        assert_eq!(a.autolock, Some(true));
        let c = Cli::try_parse_from(["shoal", "swarm", "update", "--autolock=false"]).unwrap();
        let Some(Command::Swarm { cmd: SwarmCommand::Update(a) }) = c.cmd else { panic!() };
        assert_eq!(a.autolock, Some(false));
        let c =
            Cli::try_parse_from(["shoal", "node", "update", "--label-add", "a=b", "--label-add", "c", "--availability", "drain", "node-2"])
                .unwrap();
        let Some(Command::Node { cmd: NodeCommand::Update(a) }) = c.cmd else { panic!() };
        assert_eq!(a.label_add, vec!["a=b", "c"]);
        assert!(Cli::try_parse_from(["shoal", "node", "list"]).is_ok());
        assert!(Cli::try_parse_from(["shoal", "node", "remove", "x"]).is_ok());
        assert!(Cli::try_parse_from(["shoal", "node", "rm"]).is_err());
        assert!(Cli::try_parse_from(["shoal", "swarm", "join", "--token", "T", "10.0.0.1:2377"]).is_ok());
        assert!(Cli::try_parse_from(["shoal", "swarm", "join-token", "-q", "worker"]).is_ok());
        assert!(Cli::try_parse_from(["shoal", "swarm", "ca", "--rotate", "-d"]).is_ok());
        let c = Cli::try_parse_from([
            "shoal",
            "-H",
            "unix:///x.sock",
            "service",
            "create",
            "-d",
            "--name",
            "web",
            "--replicas",
            "6",
            "busybox",
            "sleep",
            "1000",
        ])
        .unwrap();
        let Some(Command::Service { cmd: ServiceCommand::Create(a) }) = c.cmd else { panic!() };
        assert_eq!((a.name.as_deref(), a.flags.replicas, a.image_and_args.len()), (Some("web"), Some(6), 3));
        let c = Cli::try_parse_from(["shoal", "service", "update", "--image", "busybox:1.36", "web", "-d"]).unwrap();
        let Some(Command::Service { cmd: ServiceCommand::Update(a) }) = c.cmd else { panic!() };
        assert!(a.flags.detach && a.service == "web");
        assert!(Cli::try_parse_from(["shoal", "service", "list", "-q"]).is_ok());
        assert!(Cli::try_parse_from(["shoal", "service", "remove", "web"]).is_ok());
        assert!(Cli::try_parse_from(["shoal", "service", "scale", "web=5", "redis=1", "-d"]).is_ok());
        assert!(Cli::try_parse_from(["shoal", "service", "rollback", "-d", "web"]).is_ok());
        assert!(Cli::try_parse_from(["shoal", "service", "inspect", "--pretty", "web"]).is_ok());
        assert!(Cli::try_parse_from(["shoal", "service", "ps", "--no-trunc", "-f", "desired-state=running", "web"]).is_ok());
        assert!(Cli::try_parse_from(["shoal", "service", "ps"]).is_err());
        let c = Cli::try_parse_from(["shoal", "secret", "create", "-l", "env=prod", "--label", "tier", "db_pw", "-"]).unwrap();
        let Some(Command::Secret { cmd: commands::secret::SecretCommand::Create(a) }) = c.cmd else { panic!() };
        assert_eq!((a.name.as_str(), a.file.as_deref(), a.label.len()), ("db_pw", Some("-"), 2));
        assert!(Cli::try_parse_from(["shoal", "secret", "create", "-l", "a b", "x", "-"]).is_err());
        assert!(Cli::try_parse_from(["shoal", "secret", "ls", "-q", "-f", "name=db", "--format", "{{.Name}}"]).is_ok());
        assert!(Cli::try_parse_from(["shoal", "secret", "list"]).is_ok());
        assert!(Cli::try_parse_from(["shoal", "secret", "inspect", "--pretty", "db_pw"]).is_ok());
        assert!(Cli::try_parse_from(["shoal", "secret", "inspect"]).is_err());
        assert!(Cli::try_parse_from(["shoal", "secret", "remove", "a", "b"]).is_ok());
        assert!(Cli::try_parse_from(["shoal", "config", "create", "site", "./site.conf"]).is_ok());
        assert!(Cli::try_parse_from(["shoal", "config", "create", "site"]).is_err(), "config create needs a file");
        assert!(Cli::try_parse_from(["shoal", "config", "rm", "site"]).is_ok());
    }

    #[test]
    fn parses_the_engine_commands_as_docker_does() {
        let c = Cli::try_parse_from(["shoal", "exec", "-it", "-e", "A=1", "-w", "/tmp", "web.1.x", "sh", "-c", "echo -n hi"]).unwrap();
        let Some(Command::Exec(a)) = c.cmd else { panic!() };
        assert!(a.interactive && a.tty && a.container == "web.1.x");
        assert_eq!(a.command, ["sh", "-c", "echo -n hi"]);
        assert_eq!((a.env.as_slice(), a.workdir.as_str()), (&["A=1".to_string()][..], "/tmp"));
        // Flags after the container belong to the command.
        let c = Cli::try_parse_from(["shoal", "exec", "ctr", "ls", "-l"]).unwrap();
        let Some(Command::Exec(a)) = c.cmd else { panic!() };
        assert_eq!(a.command, ["ls", "-l"]);
        assert!(Cli::try_parse_from(["shoal", "exec", "ctr"]).is_err());
        let c = Cli::try_parse_from(["shoal", "ps", "-a", "-q", "--no-trunc", "-f", "name=web", "-n", "3"]).unwrap();
        let Some(Command::Ps(a)) = c.cmd else { panic!() };
        assert!(a.all && a.quiet && a.no_trunc && a.last == 3 && a.filter == ["name=web"]);
        let c = Cli::try_parse_from(["shoal", "logs", "-f", "--tail", "3", "-t", "--since", "10m", "web"]).unwrap();
        let Some(Command::Logs(a)) = c.cmd else { panic!() };
        assert!(a.follow && a.timestamps && a.tail == "3" && a.since == "10m");
        assert!(Cli::try_parse_from(["shoal", "logs", "-n", "1", "web"]).is_ok());
        for args in [
            &["shoal", "image", "pull", "-q", "busybox"][..],
            &["shoal", "pull", "busybox:1"],
            &["shoal", "image", "rm", "-f", "a", "b"],
            &["shoal", "image", "rmi", "a"],
            &["shoal", "rmi", "a"],
            &["shoal", "image", "inspect", "-f", "{{.Id}}", "a"],
            &["shoal", "image", "ls", "-a", "--digests", "--no-trunc", "busy"],
            &["shoal", "image", "prune", "-a", "-f", "--filter", "until=1h"],
            &["shoal", "volume", "create", "--label", "a=b", "-o", "type=none", "v1"],
            &["shoal", "volume", "ls", "-q", "-f", "dangling=true"],
            &["shoal", "volume", "inspect", "--format", "{{.Name}}", "v1", "v2"],
            &["shoal", "volume", "rm", "-f", "v1"],
            &["shoal", "volume", "prune", "-a", "-f"],
            &["shoal", "system", "df", "-v"],
            &["shoal", "images", "-q"],
            &["shoal", "container", "ls", "-a"],
            &["shoal", "container", "ps", "-q"],
            &["shoal", "container", "logs", "-f", "c"],
            &["shoal", "container", "exec", "-it", "c", "sh"],
            &["shoal", "container", "inspect", "-s", "-f", "{{.Id}}", "c"],
        ] {
            assert!(Cli::try_parse_from(args).is_ok(), "{args:?}");
        }
        assert!(Cli::try_parse_from(["shoal", "image", "inspect"]).is_err());
        assert!(Cli::try_parse_from(["shoal", "volume", "rm"]).is_err());
    }
}
