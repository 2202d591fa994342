//! `shoal lab`: a local multi-host cluster made of Linux network namespaces.
//!
//! Each "host" is a network namespace `shoal-<lab>-node-<i>` with `eth0` at
//! 192.168.77.(10+i)/24, plugged into bridge `br0` of a switch namespace
//! `shoal-<lab>-sw`, and runs its own `shoald` with its own state dir and socket.
//! `up` builds it and forms a swarm through this very CLI; the other commands kill,
//! restart and partition hosts, and `down` removes every trace.
//!
//! Layout on disk: `/run/shoal/lab/<lab>/state.json` (the record `down` works from),
//! `/run/shoal/lab/<lab>/<node>/shoald.sock`, `/var/lib/shoal/lab/<lab>/<node>/`
//! (daemon state dir, `shoald.log`).
//!
//! Only the network namespace differs between hosts: daemons (and `lab exec`
//! commands) enter it with setns(2) and otherwise share the machine's mounts, so
//! they see /sys/fs/cgroup, and mounts a daemon makes outlive a daemon crash as on a
//! real host. (`ip netns exec` is not used for them: it remounts /sys, which hides
//! the cgroup mounts.) Hence /sys/class/net shows the root namespace; use netlink.
//!
//! Environment: `SHOALD_BIN` picks the daemon binary; `SHOAL_LAB_NO_SWARM=1` makes
//! `up` start the daemons without forming a swarm (debugging).

mod cleanup;
mod netns;
mod ops;
mod process;
mod state;
mod up;

/// What every node's shoald is started with.
#[derive(clap::Args, Debug, Default)]
pub struct DaemonOptions {
    /// A registry every node reaches over plain HTTP (repeatable), e.g. a
    /// test registry inside the lab at 192.168.77.11:5000
    #[arg(long = "insecure-registry", value_name = "registry")]
    pub insecure_registries: Vec<String>,
    /// Serve Prometheus metrics on every node at http://<node address>:PORT/metrics
    /// (each shoald gets --metrics-addr)
    #[arg(long = "metrics-port", value_name = "PORT")]
    pub metrics_port: Option<u16>,
    /// Start every shoald with --no-live-restore (a stop ends its tasks)
    #[arg(long = "no-live-restore")]
    pub no_live_restore: bool,
    /// How often each node replaces its WireGuard key (shoald's
    /// --data-path-key-rotation), e.g. 5s to watch rotations happen
    #[arg(long = "data-path-key-rotation", value_name = "duration")]
    pub data_path_key_rotation: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
pub enum LabCommand {
    /// Start a local cluster: one network namespace and one shoald per node, joined in a swarm
    Up {
        /// Number of manager nodes (node-1 .. node-N)
        #[arg(long, default_value_t = 1)]
        managers: usize,
        /// Number of worker nodes (after the managers)
        #[arg(long, default_value_t = 0)]
        workers: usize,
        /// Name of the lab
        #[arg(long, default_value = "lab")]
        name: String,
        #[command(flatten)]
        daemon: DaemonOptions,
    },
    /// List the nodes of a lab and the state of their daemons
    Ls {
        /// Name of the lab
        #[arg(long, default_value = "lab")]
        name: String,
    },
    /// Run a command inside a node's network namespace, with SHOAL_HOST set to its daemon
    Exec {
        /// Name of the lab
        #[arg(long, default_value = "lab")]
        name: String,
        /// Node to run in (e.g. node-2)
        node: String,
        /// Command and its arguments (put them after --)
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
        cmd: Vec<String>,
    },
    /// Kill a node's daemon with SIGKILL (a crash)
    Kill {
        /// Name of the lab
        #[arg(long, default_value = "lab")]
        name: String,
        /// Node(s) whose daemon to kill
        #[arg(required = true, value_name = "NODE")]
        nodes: Vec<String>,
    },
    /// Stop a node's daemon (SIGTERM, then SIGKILL after 15 s)
    Stop {
        /// Name of the lab
        #[arg(long, default_value = "lab")]
        name: String,
        /// Node(s) whose daemon to stop
        #[arg(required = true, value_name = "NODE")]
        nodes: Vec<String>,
    },
    /// Start a node's daemon again, with its existing state
    Start {
        /// Name of the lab
        #[arg(long, default_value = "lab")]
        name: String,
        /// Node(s) whose daemon to start
        #[arg(required = true, value_name = "NODE")]
        nodes: Vec<String>,
    },
    /// Cut a node off the lab network (its daemon keeps running)
    Partition {
        /// Name of the lab
        #[arg(long, default_value = "lab")]
        name: String,
        /// Node(s) to cut off
        #[arg(required = true, value_name = "NODE")]
        nodes: Vec<String>,
    },
    /// Reconnect a partitioned node
    Heal {
        /// Name of the lab
        #[arg(long, default_value = "lab")]
        name: String,
        /// Node(s) to reconnect
        #[arg(required = true, value_name = "NODE")]
        nodes: Vec<String>,
    },
    /// Stop every daemon of a lab and remove its namespaces and files
    Down {
        /// Name of the lab
        #[arg(long, default_value = "lab")]
        name: String,
    },
    /// Print a node's daemon log
    Logs {
        /// Name of the lab
        #[arg(long, default_value = "lab")]
        name: String,
        /// Node whose log to print
        node: String,
        /// Number of lines to show from the end of the log
        #[arg(long, short = 'n', value_name = "N")]
        tail: Option<usize>,
        /// Follow log output
        #[arg(long, short = 'f')]
        follow: bool,
    },
}

pub fn run(cmd: LabCommand) -> Result<(), String> {
    match cmd {
        LabCommand::Up { managers, workers, name, daemon } => up::up(&name, managers, workers, &daemon),
        LabCommand::Ls { name } => ops::ls(&name),
        LabCommand::Exec { name, node, cmd } => ops::exec(&name, &node, &cmd),
        LabCommand::Kill { name, nodes } => ops::each_node(&name, &nodes, ops::kill_node),
        LabCommand::Stop { name, nodes } => ops::each_node(&name, &nodes, ops::stop_node),
        LabCommand::Start { name, nodes } => ops::start_nodes(&name, &nodes),
        LabCommand::Partition { name, nodes } => ops::each_node(&name, &nodes, |lab, n| ops::set_partition(lab, n, true)),
        LabCommand::Heal { name, nodes } => ops::each_node(&name, &nodes, |lab, n| ops::set_partition(lab, n, false)),
        LabCommand::Down { name } => ops::down(&name),
        LabCommand::Logs { name, node, tail, follow } => ops::logs(&name, &node, tail, follow),
    }
}

fn require_root() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("shoal lab manages network namespaces and must run as root".into());
    }
    Ok(())
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: LabCommand,
    }

    fn parse(args: &[&str]) -> LabCommand {
        let mut v = vec!["lab"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).unwrap().cmd
    }

    #[test]
    fn parses_up_defaults_and_flags() {
        match parse(&["up"]) {
            LabCommand::Up { managers, workers, name, .. } => assert_eq!((managers, workers, name.as_str()), (1, 0, "lab")),
            c => panic!("{c:?}"),
        }
        match parse(&["up", "--managers", "3", "--workers", "2", "--name", "t", "--insecure-registry", "192.168.77.11:5000"]) {
            LabCommand::Up { managers, workers, name, daemon } => {
                assert!(!daemon.no_live_restore);
                assert_eq!((managers, workers, name.as_str()), (3, 2, "t"));
                assert_eq!(daemon.insecure_registries, ["192.168.77.11:5000"]);
                assert_eq!(daemon.metrics_port, None);
                assert_eq!(daemon.data_path_key_rotation, None);
            }
            c => panic!("{c:?}"),
        }
        match parse(&["up", "--metrics-port", "9323"]) {
            LabCommand::Up { daemon, .. } => assert_eq!(daemon.metrics_port, Some(9323)),
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn parses_exec() {
        match parse(&["exec", "node-2", "--", "ping", "-c1", "192.168.77.11"]) {
            LabCommand::Exec { name, node, cmd } => {
                assert_eq!((name.as_str(), node.as_str()), ("lab", "node-2"));
                assert_eq!(cmd, ["ping", "-c1", "192.168.77.11"]);
            }
            c => panic!("{c:?}"),
        }
        match parse(&["exec", "--name", "x", "node-1", "--", "shoal", "--name", "y"]) {
            LabCommand::Exec { name, node, cmd } => {
                assert_eq!((name.as_str(), node.as_str()), ("x", "node-1"));
                assert_eq!(cmd, ["shoal", "--name", "y"]);
            }
            c => panic!("{c:?}"),
        }
        match parse(&["exec", "node-1", "ip", "-br", "addr"]) {
            LabCommand::Exec { cmd, .. } => assert_eq!(cmd, ["ip", "-br", "addr"]),
            c => panic!("{c:?}"),
        }
        assert!(Cli::try_parse_from(["lab", "exec", "node-1"]).is_err());
    }

    #[test]
    fn parses_node_commands() {
        match parse(&["kill", "node-2", "--name", "t"]) {
            LabCommand::Kill { name, nodes } => {
                assert_eq!((name.as_str(), nodes), ("t", vec!["node-2".to_string()]))
            }
            c => panic!("{c:?}"),
        }
        match parse(&["partition", "node-2", "node-3"]) {
            LabCommand::Partition { nodes, .. } => assert_eq!(nodes, ["node-2", "node-3"]),
            c => panic!("{c:?}"),
        }
        match parse(&["logs", "node-1", "--tail", "5"]) {
            LabCommand::Logs { node, tail, follow, .. } => assert_eq!((node.as_str(), tail, follow), ("node-1", Some(5), false)),
            c => panic!("{c:?}"),
        }
        assert!(Cli::try_parse_from(["lab", "stop"]).is_err());
    }
}
