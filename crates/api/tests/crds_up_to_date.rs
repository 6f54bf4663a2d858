//! The CRD YAML committed in deploy/crds/ must be exactly what the Rust
//! types generate. Regenerate with `cargo run -p dbaas-api --bin crdgen`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::collections::BTreeSet;
use std::path::Path;

#[test]
fn committed_crds_match_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds");
    let mut expected_files = BTreeSet::new();
    for crd in dbaas_api::crds::all() {
        let file = dbaas_api::crds::file_name(&crd);
        let generated = dbaas_api::crds::to_yaml(&crd).expect("CRD renders as YAML");
        let committed = std::fs::read_to_string(dir.join(&file)).unwrap_or_else(|e| {
            panic!("deploy/crds/{file}: {e}; run `cargo run -p dbaas-api --bin crdgen`")
        });
        assert!(
            generated == committed,
            "deploy/crds/{file} differs from the types; run `cargo run -p dbaas-api --bin crdgen` and commit"
        );
        expected_files.insert(file);
    }
    let committed_files: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("deploy/crds exists")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        committed_files, expected_files,
        "deploy/crds holds exactly the generated CRDs"
    );
}

#[test]
fn every_kind_is_in_the_dbaas_category_with_a_short_name() {
    for crd in dbaas_api::crds::all() {
        let names = &crd.spec.names;
        assert!(
            names
                .categories
                .as_ref()
                .is_some_and(|c| c.iter().any(|c| c == "dbaas")),
            "{}",
            names.kind
        );
        assert!(
            names.short_names.as_ref().is_some_and(|s| !s.is_empty()),
            "{}",
            names.kind
        );
        assert_eq!(crd.spec.group, "dbaas.io");
        assert!(crd.spec.versions.iter().all(|v| v.name == "v1"));
    }
}

/// Short names of CRDs often installed beside ours that are not among the
/// upstream CRDs this repository reads (KubeBlocks).
const OTHER_SHORT_NAMES: [(&str, &str); 4] = [
    ("ops", "KubeBlocks OpsRequest"),
    ("cl", "KubeBlocks Cluster"),
    ("cd", "KubeBlocks ClusterDefinition"),
    ("cmpd", "KubeBlocks ComponentDefinition"),
];

/// Every name (plural, singular, short names) of each CRD in `dir`.
fn upstream_names(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read the upstream CRDs in {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            upstream_names(&path, out);
            continue;
        }
        if !path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let Ok(docs) = serde_saphyr::from_multiple::<serde_json::Value>(&text) else {
            continue;
        };
        for doc in docs {
            if doc["kind"] != "CustomResourceDefinition" {
                continue;
            }
            let names = &doc["spec"]["names"];
            let owner = format!("{} ({})", names["kind"], doc["spec"]["group"]);
            let mut all: Vec<&serde_json::Value> = vec![&names["plural"], &names["singular"]];
            all.extend(names["shortNames"].as_array().into_iter().flatten());
            for name in all.into_iter().filter_map(|n| n.as_str()) {
                out.push((name.to_owned(), owner.clone()));
            }
        }
    }
}

#[test]
fn short_names_collide_with_no_crd_commonly_installed_beside_ours() {
    let dir = std::env::var_os("DBAAS_UPSTREAM_CRDS").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/upstream-crds"),
        std::path::PathBuf::from,
    );
    let mut theirs = Vec::new();
    upstream_names(&dir, &mut theirs);
    assert!(
        theirs.iter().any(|(_, owner)| owner.contains("everest")),
        "the upstream CRDs in {} include Percona Everest's",
        dir.display()
    );
    theirs.extend(
        OTHER_SHORT_NAMES
            .iter()
            .map(|(name, owner)| ((*name).to_owned(), (*owner).to_owned())),
    );
    let mut collisions = Vec::new();
    for crd in dbaas_api::crds::all() {
        for short in crd.spec.names.short_names.iter().flatten() {
            for (name, owner) in &theirs {
                if name == short {
                    collisions.push(format!(
                        "{}: {short} is also {owner}'s",
                        crd.spec.names.kind
                    ));
                }
            }
        }
    }
    assert!(collisions.is_empty(), "{}", collisions.join("\n"));
}
