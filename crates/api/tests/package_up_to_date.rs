//! The packaging committed under deploy/ (install manifests, Helm chart,
//! OLM bundle) must be exactly what `dbaas_api::manifests` generates.
//! Regenerate with `cargo run -p dbaas-api --bin packagegen`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use dbaas_api::manifests::{self, BUNDLE_DIR, CHART_DIR};

const REGENERATE: &str = "run `cargo run -p dbaas-api --bin packagegen` and commit";

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn files_under(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(root, &path, out);
        } else {
            out.insert(path.strip_prefix(root).unwrap().display().to_string());
        }
    }
}

#[test]
fn committed_packaging_matches_the_generator() {
    let deploy = deploy();
    let samples = manifests::read_samples(&deploy.join("samples")).unwrap();
    let generated = manifests::package_files(&samples).expect("renders");
    for file in &generated {
        let path = deploy.join(&file.path);
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("deploy/{}: {e}; {REGENERATE}", file.path));
        assert!(
            committed == file.contents,
            "deploy/{} differs from crates/api/src/manifests.rs; {REGENERATE}",
            file.path
        );
    }
    let expected: BTreeSet<String> = generated.iter().map(|f| f.path.clone()).collect();
    let mut present = BTreeSet::new();
    for dir in [CHART_DIR, BUNDLE_DIR] {
        files_under(&deploy, &deploy.join(dir), &mut present);
    }
    let stale: Vec<&String> = present.difference(&expected).collect();
    assert!(
        stale.is_empty(),
        "files no generator writes: {stale:?}; {REGENERATE}"
    );
}

#[test]
fn the_chart_and_the_bundle_carry_the_same_crds_as_deploy_crds() {
    let deploy = deploy();
    for crd in dbaas_api::crds::all() {
        let name = dbaas_api::crds::file_name(&crd);
        let source = std::fs::read_to_string(deploy.join("crds").join(&name)).unwrap();
        for dir in [
            format!("{CHART_DIR}/crds"),
            format!("{BUNDLE_DIR}/manifests"),
        ] {
            let copy = std::fs::read_to_string(deploy.join(&dir).join(&name)).unwrap();
            assert!(
                copy == source,
                "deploy/{dir}/{name} differs from deploy/crds/{name}"
            );
        }
    }
}
