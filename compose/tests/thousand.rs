//! Loader speed on a generated 1,000-service file (parse + interpolate +
//! check + convert), printed for the record:
//! `cargo test -p shoal-compose --release --test thousand -- --nocapture`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::time::Instant;

use shoal_compose::{load_sources, plan, Source};

fn generate(services: usize) -> String {
    let mut f = String::from("version: \"3.8\"\nx-common: &common\n  logging:\n    driver: json-file\n  deploy:\n    restart_policy: {condition: on-failure}\nservices:\n");
    for i in 0..services {
        let _ = write!(
            f,
            "  svc{i}:\n    <<: *common\n    image: registry.local/app{i}:${{TAG:-1.0}}\n    command: [\"serve\", \"--id\", \"{i}\"]\n    environment:\n      ID: \"{i}\"\n      MODE: ${{MODE:-prod}}\n    ports:\n      - \"{}:80\"\n    volumes:\n      - data:/data\n      - ./conf:/etc/app:ro\n    networks:\n      back:\n        aliases: [a{i}]\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: 10s\n    deploy:\n      replicas: 2\n      resources:\n        limits: {{cpus: \"0.5\", memory: 64M}}\n      update_config: {{parallelism: 1, delay: 5s}}\n      placement:\n        constraints: [node.role == worker]\n",
            20000 + i
        );
        if i > 0 {
            let _ = writeln!(f, "    depends_on: [svc{}]", i - 1);
        }
    }
    f.push_str("networks:\n  back:\nvolumes:\n  data:\n");
    f
}

#[test]
fn load_and_convert_a_thousand_services() {
    let text = generate(1000);
    let sources = [Source { name: "big.yml".into(), text }];
    let env = BTreeMap::new();
    let start = Instant::now();
    let loaded = load_sources(&sources, &env, Path::new("/srv")).unwrap();
    let loaded_at = start.elapsed();
    let plan = plan(&loaded, "big").unwrap();
    let total = start.elapsed();
    assert_eq!(plan.services.len(), 1000);
    assert_eq!(plan.services[999].name, "svc999");
    println!(
        "1,000 services ({} KiB): load {:.1} ms, convert {:.1} ms, total {:.1} ms",
        sources[0].text.len() / 1024,
        loaded_at.as_secs_f64() * 1e3,
        (total - loaded_at).as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3
    );
}
