//! Encrypted overlays (`docker network create --opt encrypted`), on a lab
//! of 1 manager and 2 workers with the stock docker CLI: a task on one
//! worker fetches a page from a task on the other by name over the
//! encrypted network, and a capture on the lab's switch during that sees
//! WireGuard and never the page's bytes nor any VXLAN for that network.
//! The same fetch over a plain overlay is seen in clear by the same
//! capture, so the capture is shown to work. The nodes replace their
//! WireGuard keys every few seconds (`--data-path-key-rotation`): a TCP
//! connection over the encrypted network lives through several rotations
//! on both ends, still unseen on the wire.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shoal_e2e::{build_busybox_image, wait_for, Lab};

const LONG: Duration = Duration::from_secs(90);
/// How often each node replaces its WireGuard key here.
const ROTATION: Duration = Duration::from_secs(4);
/// Lines the long-lived connection carries, one a second.
const STREAMED: usize = 30;
const LAB: &str = "e2e-wg";
const IMAGE: &str = "shoal-test/busy:1";
/// What the page holds; searched for in every frame on the switch.
const MARKER: &str = "SHOAL-EYES-ONLY-7f3a9c";

#[derive(Debug, Default)]
struct Seen {
    frames: usize,
    wireguard: usize,
    vxlan: usize,
    encrypted_vxlan: usize,
    marker: usize,
}

/// Captures every frame on the lab switch's ports until `stop`.
fn capture(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Seen> {
    std::thread::spawn(move || {
        let ns = std::fs::File::open(format!("/run/netns/shoal-{LAB}-sw")).expect("the lab's switch namespace");
        // SAFETY: setns on this thread only, with a namespace descriptor.
        assert_eq!(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "entering the switch namespace");
        let proto = (libc::ETH_P_ALL as u16).to_be() as i32;
        // SAFETY: a raw packet socket; the descriptor is closed below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto) };
        assert!(fd >= 0, "packet socket: {}", std::io::Error::last_os_error());
        let tv = libc::timeval { tv_sec: 0, tv_usec: 200_000 };
        // SAFETY: a timeval for SO_RCVTIMEO.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of_val(&tv) as u32,
            )
        };
        let mut seen = Seen::default();
        let mut buf = vec![0u8; 65_536];
        while !stop.load(Ordering::Relaxed) {
            // SAFETY: reads into our buffer.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
            if n <= 0 {
                continue;
            }
            let f = &buf[..n as usize];
            seen.frames += 1;
            if f.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()) {
                seen.marker += 1;
            }
            // Ethernet, IPv4, UDP: the ports.
            if f.len() >= 42 && f[12..14] == [0x08, 0x00] && f[23] == 17 {
                let ihl = ((f[14] & 0x0f) as usize) * 4;
                let at = 14 + ihl;
                if f.len() >= at + 4 {
                    let (sp, dp) = (u16::from_be_bytes([f[at], f[at + 1]]), u16::from_be_bytes([f[at + 2], f[at + 3]]));
                    match (sp, dp) {
                        (51820, _) | (_, 51820) => seen.wireguard += 1,
                        (_, 4789) => seen.vxlan += 1,
                        (_, 4790) => seen.encrypted_vxlan += 1,
                        _ => {}
                    }
                }
            }
        }
        // SAFETY: our descriptor.
        unsafe { libc::close(fd) };
        seen
    })
}

/// Fetches `url` from inside container `name` on node-3 a few times.
fn fetch(lab: &Lab, name: &str, url: &str) -> String {
    wait_for(LONG, &format!("{url} from the client task"), || {
        let out = lab.docker("node-3", &["exec", name, "wget", "-q", "-O", "-", url]);
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
}

#[test]
fn an_encrypted_overlay_carries_nothing_in_clear() {
    let lab = Lab::up_with(LAB, 1, 2, &[], &["--data-path-key-rotation", &format!("{}s", ROTATION.as_secs())]);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-wg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = build_busybox_image(&dir);
    for n in ["node-2", "node-3"] {
        lab.shoal_ok(n, &["image", "load", "-q", "-i", archive.to_str().unwrap()]);
    }
    lab.docker_ok("node-1", &["network", "create", "-d", "overlay", "--opt", "encrypted", "secnet"]);
    lab.docker_ok("node-1", &["network", "create", "-d", "overlay", "plainnet"]);
    let opts = lab.docker_ok("node-1", &["network", "inspect", "secnet", "--format", "{{json .Options}}"]);
    assert!(opts.contains("\"encrypted\""), "the option is kept as given: {opts}");

    // A page, and on port 9000 a stream of one line a second.
    let page = format!(
        "mkdir -p /www && for i in 1 2 3 4 5 6 7 8; do echo {MARKER}; done > /www/p && \
         nc -ll -p 9000 -e sh -c 'i=0; while :; do i=$((i+1)); echo $i {MARKER}; sleep 1; done' & exec httpd -f -p 80 -h /www"
    );
    lab.docker_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "srv",
            "--no-resolve-image",
            "--constraint",
            "node.hostname==node-2",
            "--network",
            "name=secnet,alias=sec-srv",
            "--network",
            "name=plainnet,alias=plain-srv",
            IMAGE,
            "sh",
            "-c",
            &page,
        ],
    );
    lab.docker_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "cli",
            "--no-resolve-image",
            "--constraint",
            "node.hostname==node-3",
            "--network",
            "secnet",
            "--network",
            "plainnet",
            IMAGE,
            "sleep",
            "100000",
        ],
    );
    let cli = lab.running_container("cli", LONG);
    wait_for(LONG, "the server task to run", || lab.tasks("srv").into_iter().any(|t| t["Status"]["State"] == "running").then_some(()));

    // Over the encrypted network: WireGuard on the wire, the page never.
    let stop = Arc::new(AtomicBool::new(false));
    let sniffer = capture(stop.clone());
    for _ in 0..5 {
        assert!(fetch(&lab, &cli, "http://sec-srv/p").contains(MARKER));
    }
    stop.store(true, Ordering::Relaxed);
    let sec = sniffer.join().unwrap();
    eprintln!("encrypted: {sec:?}");
    assert_eq!(sec.marker, 0, "the page crossed the switch in clear: {sec:?}");
    assert_eq!(sec.encrypted_vxlan, 0, "VXLAN of the encrypted network on the wire: {sec:?}");
    assert!(sec.wireguard > 0, "no WireGuard seen: {sec:?}");

    // One TCP connection over the encrypted network for STREAMED seconds,
    // while both nodes replace their keys every ROTATION: every line
    // arrives, in order, and none is seen in clear.
    let key_of = |node: &str| -> String {
        let (_, nodes) = lab.api("node-1", "GET", "/v1.44/nodes", None);
        let n = nodes.as_array().unwrap().iter().find(|n| n["Description"]["Hostname"] == node).cloned().unwrap();
        n["Description"]["DataPathKey"].as_str().unwrap_or_default().to_string()
    };
    let keys_before = (key_of("node-2"), key_of("node-3"));
    assert!(!keys_before.0.is_empty() && !keys_before.1.is_empty(), "the nodes' keys are known: {keys_before:?}");
    let stop = Arc::new(AtomicBool::new(false));
    let sniffer = capture(stop.clone());
    let started = std::time::Instant::now();
    let out = lab.docker("node-3", &["exec", &cli, "sh", "-c", &format!("nc sec-srv 9000 | head -n {STREAMED}")]);
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let streamed = sniffer.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let numbers: Vec<usize> = text.lines().filter_map(|l| l.split(' ').next()?.parse().ok()).collect();
    assert_eq!(
        numbers,
        (1..=STREAMED).collect::<Vec<_>>(),
        "the connection broke or lost lines: {text:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys_after = (key_of("node-2"), key_of("node-3"));
    assert!(keys_after.0 != keys_before.0 && keys_after.1 != keys_before.1, "both nodes rotated: {keys_before:?} -> {keys_after:?}");
    eprintln!(
        "FIGURE {STREAMED} lines, one a second, over one connection through key rotations every {ROTATION:?}: {:.1}s",
        took.as_secs_f64()
    );
    eprintln!("rotating: {streamed:?}");
    assert_eq!(streamed.marker, 0, "the stream crossed the switch in clear: {streamed:?}");
    assert_eq!(streamed.encrypted_vxlan, 0, "VXLAN of the encrypted network on the wire: {streamed:?}");
    // New connections after the rotations.
    assert!(fetch(&lab, &cli, "http://sec-srv/p").contains(MARKER));

    // The same fetch over the plain overlay is seen in clear.
    let stop = Arc::new(AtomicBool::new(false));
    let sniffer = capture(stop.clone());
    assert!(fetch(&lab, &cli, "http://plain-srv/p").contains(MARKER));
    stop.store(true, Ordering::Relaxed);
    let plain = sniffer.join().unwrap();
    eprintln!("plain: {plain:?}");
    assert!(plain.marker > 0 && plain.vxlan > 0, "the capture saw nothing of the plain fetch: {plain:?}");

    lab.lab_ok(&["down"]);
    let _ = std::fs::remove_dir_all(&dir);
}
