//! The mode a CLI uses (`drive_on_calling_threads`): no I/O thread; each
//! waiting thread drives the reactor itself. Its own test binary, because
//! the mode is chosen once per process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use shoal_http_client::{block_on, send, Options, Request};

fn tcp(port: u16) -> tokio::net::TcpStream {
    block_on(None, tokio::net::TcpStream::connect(("127.0.0.1", port))).unwrap().unwrap()
}

#[test]
fn calling_threads_drive_their_own_requests() {
    shoal_http_client::drive_on_calling_threads();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // Each connection answers with a body in two halves, the second a
    // moment later (pacing, so that readers wait mid-body); the last one
    // never sends its second half and waits for the client to hang up.
    let server = std::thread::spawn(move || {
        for i in 0..4 {
            let (mut s, _) = l.accept().unwrap();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap() > 2 {
                    line.clear();
                }
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello").unwrap();
                if i == 3 {
                    let _ = reader.read_to_end(&mut Vec::new());
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
                s.write_all(b"world").unwrap();
            });
        }
    });
    // Two threads at once, each with its own request.
    let workers: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                let r = send(tcp(port), &Request::new("GET", "/"), &Options::default()).unwrap();
                r.read_body(100).unwrap()
            })
        })
        .collect();
    for w in workers {
        assert_eq!(w.join().unwrap(), b"helloworld");
    }
    // A body read on another thread than the one that sent the request.
    let r = send(tcp(port), &Request::new("GET", "/"), &Options::default()).unwrap();
    let body = std::thread::spawn(move || r.read_body(100).unwrap()).join().unwrap();
    assert_eq!(body, b"helloworld");
    // Deadlines still hold.
    let opts = Options { timeout: Some(Duration::from_millis(500)), ..Options::default() };
    let mut body = send(tcp(port), &Request::new("GET", "/"), &opts).unwrap().body;
    let mut got = Vec::new();
    assert_eq!(body.read_to_end(&mut got).unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(got, b"hello");
    server.join().unwrap();
}
