//! `shoal-shim <runc> <runc-root> <container-id> <bundle> <log>`: the
//! process that holds one container for shoald (see
//! `shoal_worker::executor::shim`). A binary of its own rather than
//! shoald itself: loading shoald costs each shim over a megabyte of
//! relocated pages, this one a small fraction of that.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(shoal_worker::executor::shim::main(&args));
}
