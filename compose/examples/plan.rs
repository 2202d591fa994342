//! Prints the plan `stack deploy` would carry out for compose files:
//! `cargo run -p shoal-compose --example plan -- STACK FILE [FILE...]`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [stack, files @ ..] = args.as_slice() else {
        eprintln!("usage: plan STACK FILE [FILE...]");
        std::process::exit(2);
    };
    let env = std::env::vars().collect();
    let loaded = match shoal_compose::load(files, &env) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if !loaded.unsupported.is_empty() {
        println!("Ignoring unsupported options: {}\n", loaded.unsupported.join(", "));
    }
    for w in &loaded.warnings {
        println!("warning: {w}");
    }
    match shoal_compose::plan(&loaded, stack) {
        Ok(plan) => {
            for n in &plan.networks {
                println!("network {}: {}", n.name, n.spec);
            }
            for s in &plan.secrets {
                println!("secret {}: {}", s.name, s.spec);
            }
            for c in &plan.configs {
                println!("config {}: {}", c.name, c.spec);
            }
            for s in &plan.services {
                println!("service {} (after {:?}):\n{}", s.name, s.depends_on, serde_json::to_string_pretty(&s.spec).unwrap());
            }
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
