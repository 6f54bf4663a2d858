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
