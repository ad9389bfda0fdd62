//! `pibake plan` for the BitScope module example (151 nodes): load and check the
//! inventory, then render every node's plan. The baseline in the same run is parsing the
//! cluster file alone, which every approach has to do.
//!
//! `cargo bench --bench plan`

use std::path::Path;
use std::time::{Duration, Instant};

use pibake::inventory::{Inventory, NetworkStack};
use pibake::plan::plans;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let path = Path::new("examples/bitscope-module/cluster.yaml");
    let text = std::fs::read_to_string(path).expect("example");
    let (mut parse, mut full) = (Vec::new(), Vec::new());
    let mut nodes = 0;
    for _ in 0..11 {
        let t = Instant::now();
        let v: serde_json::Value = serde_norway::from_str(&text).expect("yaml");
        std::hint::black_box(v);
        parse.push(t.elapsed());
        let t = Instant::now();
        let inv = Inventory::load(path).expect("load");
        let all = plans(&inv, &[], Some(NetworkStack::NetworkManager)).expect("plans");
        nodes = all.len();
        std::hint::black_box(all);
        full.push(t.elapsed());
    }
    let (p, f) = (median(parse), median(full));
    println!(
        "cluster file parse   {:8.2} ms (baseline)",
        p.as_secs_f64() * 1e3
    );
    println!(
        "load + {nodes} plans    {:8.2} ms (target < 1000 ms), {:.3} ms per node",
        f.as_secs_f64() * 1e3,
        f.as_secs_f64() * 1e3 / nodes as f64
    );
}
