//! The mode a CLI uses (`drive_on_calling_threads`): no I/O thread; each
//! waiting thread drives the reactor itself. Its own test binary, because
//! the mode is chosen once per process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use shoal_http_client::{block_on, send, Options, Request};

mod common;
use common::{thread_id, wait_until_blocked};

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
    let opts = Options { timeout: Some(Duration::from_secs(1)), ..Options::default() };
    let mut body = send(tcp(port), &Request::new("GET", "/"), &opts).unwrap().body;
    let mut got = Vec::new();
    assert_eq!(body.read_to_end(&mut got).unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(got, b"hello");
    server.join().unwrap();
}

/// An exec's two threads in this mode: one waits for the daemon's output
/// (and so drives the reactor) while the other writes stdin and then
/// detaches.
#[test]
fn a_reader_and_a_writer_share_the_reactor() {
    shoal_http_client::drive_on_calling_threads();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let io: Box<dyn shoal_http_client::Io> = Box::new(tcp(port));
    let (mut server, _) = l.accept().unwrap();
    let (mut r, mut w) = shoal_http_client::duplex::split(io, shoal_http_client::Bytes::new());
    let (got_reply, reply_read) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 5];
        r.read_exact(&mut buf).unwrap();
        got_reply.send((buf, thread_id())).unwrap();
        // Then waits until the writer detaches.
        r.read(&mut [0u8; 8]).unwrap()
    });
    w.write_all(b"typed").unwrap();
    let mut got = [0u8; 5];
    server.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"typed");
    server.write_all(b"reply").unwrap();
    let (reply, tid) = reply_read.recv().unwrap();
    assert_eq!(&reply, b"reply");
    // The reader now waits in the reactor; writes still go out.
    wait_until_blocked(&tid);
    w.write_all(b"again").unwrap();
    server.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"again");
    // And a close wakes the reader from its wait.
    wait_until_blocked(&tid);
    w.close();
    assert_eq!(reader.join().unwrap(), 0);
}
