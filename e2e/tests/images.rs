//! `shoal image load` / `docker load` put an image onto one node; the node
//! lists it, and a broken archive is refused without changing anything.

use std::process::Command;

use shoal_e2e::{build_busybox_image, text, Lab};

#[test]
fn images_load_onto_one_node() {
    let lab = Lab::up("e2e-img", 1, 1);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-img-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = build_busybox_image(&dir);

    let out = lab.shoal_ok("node-2", &["image", "load", "-i", archive.to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: shoal-test/busy:1");
    let ls = lab.shoal_ok("node-2", &["image", "ls"]);
    assert!(ls.contains("shoal-test/busy") && ls.contains(" 1 "), "{ls}");
    // Only that node has it.
    assert_eq!(lab.shoal_ok("node-1", &["image", "ls", "-q"]).trim(), "");

    // The stock docker CLI sees the same.
    let docker = Command::new("docker")
        .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .env("DOCKER_HOST", format!("unix://{}", lab.socket("node-2")))
        .output()
        .expect("the docker CLI is part of this test");
    assert_eq!(text(&docker.stdout).trim(), "shoal-test/busy:1", "{}", text(&docker.stderr));

    std::fs::write(dir.join("bad.tar"), b"not an archive").unwrap();
    let bad = lab.shoal("node-2", &["image", "load", "-i", dir.join("bad.tar").to_str().unwrap()]);
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("Error response from daemon"), "{}", text(&bad.stderr));
    assert_eq!(lab.shoal_ok("node-2", &["image", "ls", "-q"]).lines().count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
