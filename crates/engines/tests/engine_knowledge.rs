//! Engine knowledge has one home: outside `crates/engines` and
//! `crates/api`, shipped code never branches on the engine type. It asks
//! the engine's provider (or the API's per-engine contract) instead, so a
//! new engine touches those two crates only.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The shipped part of a source file: everything before its unit-test
/// module (a test-only item elsewhere does not end it).
fn shipped(source: &str) -> &str {
    source
        .find("#[cfg(test)]\nmod ")
        .map_or(source, |at| &source[..at])
}

/// Lines that branch on an engine type: a match arm, a comparison or a
/// `matches!` naming an `EngineType` variant.
fn engine_branches(source: &str) -> Vec<(usize, String)> {
    let variant = |line: &str| {
        line.match_indices("EngineType::").any(|(at, _)| {
            let rest = &line[at + "EngineType::".len()..];
            rest.starts_with(|c: char| c.is_ascii_uppercase()) && !rest.starts_with("ALL")
        })
    };
    shipped(source)
        .lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or_default();
            variant(code)
                && (code.contains("=>")
                    || code.contains("==")
                    || code.contains("!=")
                    || code.contains("matches!")
                    || code.trim_start().starts_with('|')
                    || code.contains("EngineType::Postgresql |")
                    || code.contains("EngineType::Mysql |")
                    || code.contains("EngineType::Mongodb |"))
        })
        .map(|(n, line)| (n + 1, line.trim().to_owned()))
        .collect()
}

#[test]
fn no_engine_type_branches_outside_engines_and_api() {
    let crates = workspace().join("crates");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&crates)
        .expect("crates/ is readable")
        .flatten()
    {
        let name = entry.file_name();
        if name == "engines" || name == "api" {
            continue;
        }
        rust_files(&entry.path().join("src"), &mut files);
    }
    assert!(files.len() > 50, "found only {} source files", files.len());
    let mut found = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).expect("source is readable");
        for (line, text) in engine_branches(&source) {
            found.push(format!("{}:{line}: {text}", file.display()));
        }
    }
    assert!(
        found.is_empty(),
        "engine knowledge outside crates/engines and crates/api; ask the provider (EngineProvider) or EngineType::connection() instead:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_the_branches_it_forbids() {
    let source = "fn f(e: EngineType) {\n    #[cfg(test)]\n    fn only_in_tests() {}\n    match e {\n        EngineType::Postgresql => 1,\n        EngineType::Mysql | EngineType::Mongodb => 2,\n    };\n    if e == EngineType::Mysql {}\n    let _ = matches!(e, EngineType::Mongodb);\n    for e in EngineType::ALL {}\n    let x = EngineType::Postgresql;\n}\n#[cfg(test)]\nmod tests { fn g() { match e { EngineType::Mysql => 1 } } }\n";
    let lines: Vec<usize> = engine_branches(source)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(lines, [5, 6, 8, 9]);
}
