//! How fast a response body comes through the client, against reading the
//! same bytes from the socket directly: the hot path of an image pull
//! (the registry client reads blobs through it) and of `service logs`.
//!
//! `cargo bench -p shoal-http-client --bench body_throughput` (the
//! registry client's mode: a shared I/O thread), and with
//! `-- --callers-drive` (the CLI's mode). Loopback TCP, 1 GiB per run.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use shoal_http_client::{block_on, send, Options, Request};

const LEN: usize = 1 << 30;
const RUNS: usize = 3;

/// Serves one connection: skips the request head, then (`http`) a
/// response head, then LEN bytes in 64 KiB writes.
fn serve(l: &TcpListener, http: bool) -> std::thread::JoinHandle<()> {
    let l = l.try_clone().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        if http {
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            s.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {LEN}\r\n\r\n").as_bytes()).unwrap();
        }
        let piece = vec![b'x'; 64 << 10];
        for _ in 0..LEN / piece.len() {
            s.write_all(&piece).unwrap();
        }
    })
}

fn rate(d: Duration) -> f64 {
    LEN as f64 / d.as_secs_f64() / (1 << 20) as f64
}

fn main() {
    if std::env::args().any(|a| a == "--callers-drive") {
        shoal_http_client::drive_on_calling_threads();
    }
    let mode = if std::env::args().any(|a| a == "--callers-drive") { "callers drive" } else { "shared I/O thread" };
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut buf = vec![0u8; 64 << 10];
    for run in 1..=RUNS {
        // The socket read directly: the ceiling.
        let server = serve(&l, false);
        let start = Instant::now();
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut got = 0;
        while got < LEN {
            got += s.read(&mut buf).unwrap();
        }
        let raw = start.elapsed();
        server.join().unwrap();

        let server = serve(&l, true);
        let start = Instant::now();
        let tcp = block_on(None, tokio::net::TcpStream::connect(("127.0.0.1", port))).unwrap().unwrap();
        let mut body = send(tcp, &Request::new("GET", "/blob"), &Options::default()).unwrap().body;
        let mut got = 0;
        loop {
            match body.read(&mut buf).unwrap() {
                0 => break,
                n => got += n,
            }
        }
        let client = start.elapsed();
        assert_eq!(got, LEN);
        server.join().unwrap();
        println!(
            "run {run} ({mode}): socket {:.0} MiB/s, client {:.0} MiB/s ({:.0} %)",
            rate(raw),
            rate(client),
            100.0 * raw.as_secs_f64() / client.as_secs_f64()
        );
    }
    let _ = io::stdout().flush();
}
