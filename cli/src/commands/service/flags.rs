//! The flags `service create` and `service update` share (docker's
//! `addServiceFlags`), with pflag's "changed" as `Option`, and the pieces of
//! a spec they make: update and rollback configs, restart policy,
//! healthcheck, docker's defaults for each.

use clap::Args;

use super::opts::{self, Words};
use serde_json::{Map, Value};

use crate::json::{self, JsonExt};

/// SwarmKit's `defaults.Service`.
pub const DEFAULT_RESTART_DELAY: i64 = 5_000_000_000;
pub const DEFAULT_MONITOR: i64 = 5_000_000_000;

#[derive(Args, Debug, Default, Clone, PartialEq)]
pub struct ServiceFlags {
    /// Exit immediately instead of waiting for the service to converge
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Suppress progress output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "string")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long, value_name = "string")]
    pub user: Option<String>,
    /// Container hostname
    #[arg(long, value_name = "string")]
    pub hostname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "command", allow_hyphen_values = true, value_parser = opts::words)]
    pub entrypoint: Option<Words>,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    pub cap_drop: Vec<String>,

    /// Limit CPUs
    #[arg(long = "limit-cpu", value_name = "decimal", value_parser = opts::parse_cpus)]
    pub limit_cpu: Option<i64>,
    /// Limit Memory
    #[arg(long = "limit-memory", value_name = "bytes", value_parser = opts::ram_in_bytes)]
    pub limit_memory: Option<i64>,
    /// Limit maximum number of processes (default 0 = unlimited)
    #[arg(long = "limit-pids", value_name = "int")]
    pub limit_pids: Option<i64>,
    /// Reserve CPUs
    #[arg(long = "reserve-cpu", value_name = "decimal", value_parser = opts::parse_cpus)]
    pub reserve_cpu: Option<i64>,
    /// Reserve Memory
    #[arg(long = "reserve-memory", value_name = "bytes", value_parser = opts::ram_in_bytes)]
    pub reserve_memory: Option<i64>,

    /// Time to wait before force killing a container (ns|us|ms|s|m|h) (default 10s)
    #[arg(long = "stop-grace-period", value_name = "duration", value_parser = opts::duration)]
    pub stop_grace_period: Option<i64>,
    /// Number of tasks
    #[arg(long, value_name = "uint", value_parser = opts::parse_uint)]
    pub replicas: Option<u64>,
    /// Number of job tasks to run concurrently (default equal to --replicas)
    #[arg(long = "max-concurrent", value_name = "uint", value_parser = opts::parse_uint)]
    pub max_concurrent: Option<u64>,
    /// Maximum number of tasks per node (default 0 = unlimited)
    #[arg(long = "replicas-max-per-node", value_name = "uint", value_parser = opts::parse_uint)]
    pub replicas_max_per_node: Option<u64>,

    /// Restart when condition is met ("none", "on-failure", "any") (default "any")
    #[arg(long = "restart-condition", value_name = "string")]
    pub restart_condition: Option<String>,
    /// Delay between restart attempts (ns|us|ms|s|m|h) (default 5s)
    #[arg(long = "restart-delay", value_name = "duration", value_parser = opts::duration)]
    pub restart_delay: Option<i64>,
    /// Maximum number of restarts before giving up
    #[arg(long = "restart-max-attempts", value_name = "uint", value_parser = opts::parse_uint)]
    pub restart_max_attempts: Option<u64>,
    /// Window used to evaluate the restart policy (ns|us|ms|s|m|h)
    #[arg(long = "restart-window", value_name = "duration", value_parser = opts::duration)]
    pub restart_window: Option<i64>,

    /// Maximum number of tasks updated simultaneously (0 to update all at once) (default 1)
    #[arg(long = "update-parallelism", value_name = "uint", value_parser = opts::parse_uint)]
    pub update_parallelism: Option<u64>,
    /// Delay between updates (ns|us|ms|s|m|h) (default 0s)
    #[arg(long = "update-delay", value_name = "duration", value_parser = opts::duration)]
    pub update_delay: Option<i64>,
    /// Duration after each task update to monitor for failure (ns|us|ms|s|m|h) (default 5s)
    #[arg(long = "update-monitor", value_name = "duration", value_parser = opts::duration)]
    pub update_monitor: Option<i64>,
    /// Action on update failure ("pause", "continue", "rollback") (default "pause")
    #[arg(long = "update-failure-action", value_name = "string")]
    pub update_failure_action: Option<String>,
    /// Failure rate to tolerate during an update (default 0)
    #[arg(long = "update-max-failure-ratio", value_name = "float", value_parser = opts::float32)]
    pub update_max_failure_ratio: Option<f32>,
    /// Update order ("start-first", "stop-first") (default "stop-first")
    #[arg(long = "update-order", value_name = "string")]
    pub update_order: Option<String>,

    /// Maximum number of tasks rolled back simultaneously (0 to roll back all at once) (default 1)
    #[arg(long = "rollback-parallelism", value_name = "uint", value_parser = opts::parse_uint)]
    pub rollback_parallelism: Option<u64>,
    /// Delay between task rollbacks (ns|us|ms|s|m|h) (default 0s)
    #[arg(long = "rollback-delay", value_name = "duration", value_parser = opts::duration)]
    pub rollback_delay: Option<i64>,
    /// Duration after each task rollback to monitor for failure (ns|us|ms|s|m|h) (default 5s)
    #[arg(long = "rollback-monitor", value_name = "duration", value_parser = opts::duration)]
    pub rollback_monitor: Option<i64>,
    /// Action on rollback failure ("pause", "continue") (default "pause")
    #[arg(long = "rollback-failure-action", value_name = "string")]
    pub rollback_failure_action: Option<String>,
    /// Failure rate to tolerate during a rollback (default 0)
    #[arg(long = "rollback-max-failure-ratio", value_name = "float", value_parser = opts::float32)]
    pub rollback_max_failure_ratio: Option<f32>,
    /// Rollback order ("start-first", "stop-first") (default "stop-first")
    #[arg(long = "rollback-order", value_name = "string")]
    pub rollback_order: Option<String>,

    /// Endpoint mode (vip or dnsrr) (default "vip")
    #[arg(long = "endpoint-mode", value_name = "string")]
    pub endpoint_mode: Option<String>,
    /// Send registry authentication details to swarm agents
    #[arg(long = "with-registry-auth")]
    pub with_registry_auth: bool,
    /// Do not query the registry to resolve image digest and supported platforms
    #[arg(long = "no-resolve-image")]
    pub no_resolve_image: bool,

    /// Logging driver for service
    #[arg(long = "log-driver", value_name = "string")]
    pub log_driver: Option<String>,
    /// Logging driver options
    #[arg(long = "log-opt", value_name = "list", value_parser = opts::env_var)]
    pub log_opt: Vec<String>,

    /// Command to run to check health
    #[arg(long = "health-cmd", value_name = "string", allow_hyphen_values = true)]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long = "health-interval", value_name = "duration", value_parser = opts::positive_duration)]
    pub health_interval: Option<i64>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long = "health-timeout", value_name = "duration", value_parser = opts::positive_duration)]
    pub health_timeout: Option<i64>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries", value_name = "int")]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before counting retries towards unstable (ms|s|m|h)
    #[arg(long = "health-start-period", value_name = "duration", value_parser = opts::positive_duration)]
    pub health_start_period: Option<i64>,
    /// Time between running the check during the start period (ms|s|m|h)
    #[arg(long = "health-start-interval", value_name = "duration", value_parser = opts::positive_duration)]
    pub health_start_interval: Option<i64>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = opts::boolean)]
    pub no_healthcheck: Option<bool>,

    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = opts::boolean)]
    pub tty: Option<bool>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = opts::boolean)]
    pub read_only: Option<bool>,
    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "string")]
    pub stop_signal: Option<String>,
}

/// `UpdateConfig` JSON in Go's field order (zero durations and empty
/// strings omitted, as `omitempty` does).
pub fn update_config_json(parallelism: u64, delay: i64, failure_action: &str, monitor: i64, ratio: f32, order: &str) -> Value {
    let mut f = vec![("Parallelism", Value::from(parallelism))];
    if delay != 0 {
        f.push(("Delay", Value::from(delay)));
    }
    if !failure_action.is_empty() {
        f.push(("FailureAction", Value::from(failure_action)));
    }
    if monitor != 0 {
        f.push(("Monitor", Value::from(monitor)));
    }
    f.push(("MaxFailureRatio", json::number(&opts::format_f32(ratio)).unwrap_or_default()));
    if !order.is_empty() {
        f.push(("Order", Value::from(order)));
    }
    json::object(f)
}

/// SwarmKit's default update (and rollback) config.
pub fn default_update_config() -> Value {
    update_config_json(1, 0, "pause", DEFAULT_MONITOR, 0.0, "stop-first")
}

/// The update-or-rollback flags of one kind.
pub struct UpdateFlags<'a> {
    pub parallelism: Option<u64>,
    pub delay: Option<i64>,
    pub monitor: Option<i64>,
    pub failure_action: Option<&'a str>,
    pub max_failure_ratio: Option<f32>,
    pub order: Option<&'a str>,
}

impl UpdateFlags<'_> {
    pub fn any(&self) -> bool {
        self.parallelism.is_some()
            || self.delay.is_some()
            || self.monitor.is_some()
            || self.failure_action.is_some()
            || self.max_failure_ratio.is_some()
            || self.order.is_some()
    }

    /// Applies the set flags to an existing config (or the defaults).
    pub fn apply(&self, cfg: &mut Value) {
        if cfg.is_null() {
            *cfg = default_update_config();
        }
        let cur = cfg.clone();
        let parallelism = self.parallelism.unwrap_or_else(|| cur["Parallelism"].as_u64().unwrap_or(0));
        let delay = self.delay.unwrap_or_else(|| cur["Delay"].as_i64().unwrap_or(0));
        let monitor = self.monitor.unwrap_or_else(|| cur["Monitor"].as_i64().unwrap_or(0));
        let action = self.failure_action.unwrap_or_else(|| cur["FailureAction"].str()).to_string();
        let ratio = self.max_failure_ratio.unwrap_or_else(|| cur["MaxFailureRatio"].as_f64().unwrap_or(0.0) as f32);
        let order = self.order.unwrap_or_else(|| cur["Order"].str()).to_string();
        let mut fresh = update_config_json(parallelism, delay, &action, monitor, ratio, &order);
        // keep any fields we do not know about
        const KNOWN: [&str; 6] = ["Parallelism", "Delay", "FailureAction", "Monitor", "MaxFailureRatio", "Order"];
        for (k, v) in cur.members() {
            if !KNOWN.contains(&k.as_str()) {
                fresh.set(k, v.clone());
            }
        }
        *cfg = fresh;
    }
}

impl ServiceFlags {
    pub fn update_flags(&self) -> UpdateFlags<'_> {
        UpdateFlags {
            parallelism: self.update_parallelism,
            delay: self.update_delay,
            monitor: self.update_monitor,
            failure_action: self.update_failure_action.as_deref(),
            max_failure_ratio: self.update_max_failure_ratio,
            order: self.update_order.as_deref(),
        }
    }

    pub fn rollback_flags(&self) -> UpdateFlags<'_> {
        UpdateFlags {
            parallelism: self.rollback_parallelism,
            delay: self.rollback_delay,
            monitor: self.rollback_monitor,
            failure_action: self.rollback_failure_action.as_deref(),
            max_failure_ratio: self.rollback_max_failure_ratio,
            order: self.rollback_order.as_deref(),
        }
    }

    pub fn restart_changed(&self) -> bool {
        self.restart_condition.is_some()
            || self.restart_delay.is_some()
            || self.restart_max_attempts.is_some()
            || self.restart_window.is_some()
    }

    /// Applies the restart flags to a policy (SwarmKit's default when null).
    pub fn apply_restart(&self, policy: &mut Value) {
        if policy.is_null() {
            *policy = default_restart_policy();
        }
        if let Some(c) = &self.restart_condition {
            policy.set("Condition", c.as_str().into());
        }
        if let Some(d) = self.restart_delay {
            policy.set("Delay", d.into());
        }
        if let Some(n) = self.restart_max_attempts {
            policy.set("MaxAttempts", n.into());
        }
        if let Some(w) = self.restart_window {
            policy.set("Window", w.into());
        }
    }

    pub fn health_settings(&self) -> bool {
        self.health_cmd.is_some()
            || self.health_interval.is_some()
            || self.health_timeout.is_some()
            || self.health_start_period.is_some()
            || self.health_start_interval.is_some()
            || self.health_retries.is_some()
    }

    /// `--health-*` / `--no-healthcheck` for `create` (docker's `toHealthConfig`).
    pub fn health_config(&self) -> Result<Option<Value>, String> {
        let have = self.health_cmd.as_deref().is_some_and(|c| !c.is_empty())
            || self.health_interval.is_some()
            || self.health_timeout.is_some()
            || self.health_start_period.is_some()
            || self.health_start_interval.is_some()
            || self.health_retries.unwrap_or(0) != 0;
        if self.no_healthcheck == Some(true) {
            if have {
                return Err("--no-healthcheck conflicts with --health-* options".into());
            }
            return Ok(Some(json::object([("Test", Value::from(vec!["NONE".to_string()]))])));
        }
        if !have {
            return Ok(None);
        }
        let mut h = Value::Object(Map::new());
        self.apply_health_values(&mut h);
        Ok(Some(h))
    }

    /// Writes the set health flags into a `HealthConfig`.
    pub fn apply_health_values(&self, h: &mut Value) {
        if let Some(cmd) = &self.health_cmd {
            if cmd.is_empty() {
                h.remove("Test");
            } else {
                h.set("Test", Value::from(vec!["CMD-SHELL".to_string(), cmd.clone()]));
            }
        }
        let fields = [
            ("Interval", self.health_interval),
            ("Timeout", self.health_timeout),
            ("StartPeriod", self.health_start_period),
            ("StartInterval", self.health_start_interval),
            ("Retries", self.health_retries),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                if v == 0 {
                    h.remove(k);
                } else {
                    h.set(k, v.into());
                }
            }
        }
    }
}

/// SwarmKit's default restart policy (`any`, 5 s, unlimited attempts).
pub fn default_restart_policy() -> Value {
    json::object([("Condition", Value::from("any")), ("Delay", Value::from(DEFAULT_RESTART_DELAY)), ("MaxAttempts", Value::from(0u64))])
}
