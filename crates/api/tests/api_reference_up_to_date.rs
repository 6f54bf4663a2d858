//! `docs/api-reference.md` is the reference the CRD types generate.

#[test]
fn api_reference_matches_the_types() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api-reference.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == dbaas_api::reference::markdown(),
        "docs/api-reference.md is stale: run `cargo run -p dbaas-api --bin apidocgen`"
    );
}
