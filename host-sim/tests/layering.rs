//! The simulator's modules form layers with arrows pointing one way (see the crate docs): no
//! module reaches, directly or through others, back to itself. Read from the sources: every
//! `crate::module` outside comments is an arrow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn arrows() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        // A module with submodules (`tflite.rs` and `tflite/*.rs`) is one module here.
        let files: Vec<_> = if path.is_dir() {
            std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()).collect()
        } else {
            vec![path.clone()]
        };
        if name == "lib" || name == "main" {
            continue;
        }
        let deps = graph.entry(name.clone()).or_default();
        for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "rs")) {
            let text = std::fs::read_to_string(file).unwrap();
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for part in line.split("crate::").skip(1) {
                    let module: String = part.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                    if !module.is_empty() && module != name && module != "with_optimizer" {
                        deps.insert(module);
                    }
                }
            }
        }
    }
    graph
}

// Depth-first search for a path from a module back to itself.
fn visit(m: &str, graph: &BTreeMap<String, BTreeSet<String>>, path: &mut Vec<String>, done: &mut BTreeSet<String>) {
    if let Some(i) = path.iter().position(|p| p == m) {
        panic!("module cycle: {} -> {m}", path[i..].join(" -> "));
    }
    if done.contains(m) {
        return;
    }
    path.push(m.to_owned());
    for d in graph.get(m).into_iter().flatten() {
        visit(d, graph, path, done);
    }
    path.pop();
    done.insert(m.to_owned());
}

#[test]
fn modules_have_no_cycle() {
    let graph = arrows();
    assert!(graph.len() > 10, "read the modules: {graph:?}");
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done);
    }
    // The leaves know nothing of the registry.
    for leaf in ["idx", "datasets", "flash", "board", "interop", "spec", "text", "atomic", "resume", "tflite"] {
        assert!(!graph[leaf].contains("models"), "{leaf} uses the registry");
    }
}
