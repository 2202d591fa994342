//! `shoal image load` / `docker load` put an image onto one node; the node
//! lists it, and a broken archive is refused without changing anything.

use std::path::Path;
use std::process::Command;

use shoal_e2e::{text, Lab};

fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh").arg("-ec").arg(script).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{script}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// A `docker save` archive holding one busybox-static layer.
fn build_archive(dir: &Path) -> std::path::PathBuf {
    assert!(Path::new("/bin/busybox").exists(), "install busybox-static: the test image is built from /bin/busybox");
    sh(dir, "mkdir -p rootfs/bin rootfs/etc rootfs/tmp && cp /bin/busybox rootfs/bin/ && for l in sh echo sleep cat; do ln -sf busybox rootfs/bin/$l; done");
    sh(dir, "mkdir -p img/layer1 && tar -C rootfs -cf img/layer1/layer.tar .");
    let diff = sh(dir, "sha256sum img/layer1/layer.tar | cut -d' ' -f1").trim().to_string();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["sh"],"Env":["PATH=/bin"]}},"rootfs":{{"type":"layers","diff_ids":["sha256:{diff}"]}}}}"#
    );
    std::fs::write(dir.join("img/config.json"), &config).unwrap();
    let cid = sh(dir, "sha256sum img/config.json | cut -d' ' -f1").trim().to_string();
    std::fs::rename(dir.join("img/config.json"), dir.join(format!("img/{cid}.json"))).unwrap();
    let manifest = format!(r#"[{{"Config":"{cid}.json","RepoTags":["shoal-test/busy:1"],"Layers":["layer1/layer.tar"]}}]"#);
    std::fs::write(dir.join("img/manifest.json"), manifest).unwrap();
    sh(dir, "tar -C img -cf busy.tar .");
    dir.join("busy.tar")
}

#[test]
fn images_load_onto_one_node() {
    let lab = Lab::up("e2e-img", 1, 1);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-img-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = build_archive(&dir);

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
