//! shoald: the Shoal node daemon. It serves the Engine API on a unix
//! socket, runs the agent on every node and the manager role on managers.

mod addr;
mod attachments;
mod config;
mod events;
mod http;
mod metrics;
mod private;
mod swarm;

use clap::Parser;

fn main() {
    // Before anything is created: files and folders are private to root.
    private::restrict_umask();
    // A container's shim is this binary too (see shoal_worker::executor::shim).
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(shoal_worker::executor::shim::ARG) {
        std::process::exit(shoal_worker::executor::shim::main(&args[2..]));
    }
    let flags = config::Flags::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{},raft=warn", flags.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).init();
    let cfg = match config::Config::load(&flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("shoald: {e}");
            std::process::exit(1);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    let code = rt.block_on(run(cfg));
    std::process::exit(code);
}

async fn run(cfg: config::Config) -> i32 {
    for root in [&cfg.data_root, &cfg.exec_root] {
        if let Err(e) = private::secure_root(root) {
            eprintln!("shoald: securing {}: {e}", root.display());
            return 1;
        }
    }
    // Processes of `runc exec` (probes, `docker exec`) are reparented to
    // us when runc exits; containers started through a shim are the
    // shim's (and a terminal's are ours).
    if let Err(e) = shoal_worker::executor::become_subreaper() {
        eprintln!("shoald: {e}");
        return 1;
    }
    let socket = cfg.socket.clone();
    let tcp = cfg.tcp.clone();
    // Bound before the node starts anything: a taken port stops the start,
    // as with dockerd.
    let metrics_listener = match cfg.metrics_addr {
        None => None,
        Some(addr) => match metrics::bind(addr).await {
            Ok(l) => {
                tracing::info!("metrics listening on http://{addr}/metrics");
                Some((addr, l))
            }
            Err(e) => {
                eprintln!("shoald: metrics-addr {addr}: {e}");
                return 1;
            }
        },
    };
    let node = match swarm::SwarmNode::new(cfg) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("shoald: {e}");
            return 1;
        }
    };
    if let Err(e) = node.resume().await {
        tracing::error!("resuming swarm state: {e}");
        return 1;
    }
    // A task container goes (Docker's `destroy` event) when its log file
    // does, which the log session decides: look for those now and then.
    let containers = node.tasks.containers().clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        loop {
            tick.tick().await;
            containers.sweep();
        }
    });
    // Encrypted overlays: a new WireGuard key pair now and then.
    if let Some(net) = node.tasks.network().cloned() {
        let every = node.cfg.data_path_key_rotation;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                net.rotate_data_path_key();
                tracing::info!("encrypted overlays: rotated this node's WireGuard key");
            }
        });
    }
    let mut servers = tokio::task::JoinSet::new();
    if let Some((addr, listener)) = metrics_listener {
        let registry = std::sync::Arc::new(metrics::registry(node.clone()));
        servers.spawn(async move { metrics::serve(listener, registry).await.map_err(|e| format!("metrics on {addr}: {e}")) });
    }
    if let Some(path) = socket.clone() {
        tracing::info!("API listening on {}", path.display());
        let n = node.clone();
        servers.spawn(async move { http::serve_unix(n, &path).await.map_err(|e| format!("API socket: {e}")) });
    }
    for (addr, tls) in tcp {
        tracing::info!("API listening on tcp://{addr} (mutual TLS)");
        let n = node.clone();
        servers.spawn(async move { http::serve_tcp(n, addr.clone(), tls).await.map_err(|e| format!("API on tcp://{addr}: {e}")) });
    }
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("shoald: signal handler: {e}");
            return 1;
        }
    };
    let code = tokio::select! {
        r = servers.join_next() => {
            match r {
                Some(Ok(Err(e))) => { tracing::error!("{e}"); 1 }
                _ => 0,
            }
        }
        _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); 0 }
        _ = tokio::signal::ctrl_c() => 0,
    };
    if let Some(path) = socket {
        let _ = std::fs::remove_file(path);
    }
    // Tasks stay up for the next start to take back (live restore), or,
    // under `--no-live-restore`, are stopped on the way out as dockerd's.
    let tasks = node.tasks.clone();
    let standalone = node.standalone.clone();
    let live_restore = node.cfg.live_restore;
    // Capped at 5 s so a supervisor that waits 10 s (the lab) sees us finish.
    let cap = std::time::Duration::from_secs(5);
    let stop_standalone = tokio::task::spawn_blocking(move || standalone.shutdown(cap, live_restore));
    let stop_tasks = {
        let tasks = tasks.clone();
        tokio::task::spawn_blocking(move || if live_restore { tasks.shutdown_keeping_restorable(cap) } else { tasks.shutdown(cap) })
    };
    let _ = stop_tasks.await;
    let _ = stop_standalone.await;
    // With every container stopped, the node's networking can go (a
    // standalone container still stopping would otherwise lose its leg
    // under it).
    if !live_restore {
        let _ = tokio::task::spawn_blocking(move || tasks.release_node()).await;
    }
    code
}
