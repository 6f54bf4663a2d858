//! The RBAC committed in deploy/rbac/ must be exactly what
//! `dbaas_api::rbac` generates. Regenerate with
//! `cargo run -p dbaas-api --bin rbacgen`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::path::Path;

#[test]
fn committed_rbac_matches_the_permission_list() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rbac/operator.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `cargo run -p dbaas-api --bin rbacgen`",
            path.display()
        )
    });
    let generated = dbaas_api::rbac::operator_rbac_yaml().expect("renders");
    assert!(
        generated == committed,
        "deploy/rbac/operator.yaml differs from crates/api/src/rbac.rs; run `cargo run -p dbaas-api --bin rbacgen` and commit"
    );
}
