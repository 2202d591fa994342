//! Closing the writing half wakes a reader blocked in its wait, with the
//! runtime's own I/O thread watching the socket (the registry client's
//! mode; `callers_drive.rs` checks the CLI's).

use std::io::Read;
use std::net::TcpListener;

use shoal_http_client::{block_on, duplex, Bytes, Io};

mod common;
use common::{thread_id, wait_until_blocked};

#[test]
fn closing_ends_a_reader_that_waits_for_a_silent_server() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let io: Box<dyn Io> = Box::new(block_on(None, tokio::net::TcpStream::connect(("127.0.0.1", port))).unwrap().unwrap());
    let (server, _) = l.accept().unwrap();
    let (mut r, mut w) = duplex::split(io, Bytes::new());
    let (tid_tx, tid) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        tid_tx.send(thread_id()).unwrap();
        r.read(&mut [0u8; 16]).unwrap()
    });
    wait_until_blocked(&tid.recv().unwrap());
    w.close();
    assert_eq!(reader.join().unwrap(), 0);
    drop(server);
}
