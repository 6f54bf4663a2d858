//! deploy/openapi.json must be exactly what the code generates. Regenerate
//! with `cargo run -p dbaas-server --bin openapigen`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::path::Path;

#[test]
fn committed_openapi_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `cargo run -p dbaas-server --bin openapigen`",
            path.display()
        )
    });
    assert!(
        committed == dbaas_server::openapi::to_pretty_json(),
        "deploy/openapi.json differs from the code; run `cargo run -p dbaas-server --bin openapigen` and commit"
    );
}

#[test]
fn every_served_kind_has_its_schema_and_operations() {
    let document = dbaas_server::openapi::document();
    assert!(document["openapi"].as_str().unwrap().starts_with('3'));
    for kind in dbaas_server::routes::Registry::build().kinds {
        let schema = &document["components"]["schemas"][&kind.kind];
        assert_eq!(schema["type"], "object", "{} schema", kind.kind);
        assert!(
            schema["properties"]["spec"].is_object(),
            "{} spec",
            kind.kind
        );
        let item =
            &document["paths"][format!("/v1/namespaces/{{namespace}}/{}/{{name}}", kind.plural)];
        assert!(item["get"].is_object(), "{} get", kind.kind);
        assert_eq!(
            item["delete"].is_object(),
            kind.writes.delete,
            "{} delete",
            kind.kind
        );
        assert_eq!(
            item["put"].is_object(),
            kind.writes.replace,
            "{} put",
            kind.kind
        );
    }
    for path in [
        "/v1/namespaces/{namespace}/databaseclusters/{name}/credentials",
        "/v1/namespaces/{namespace}/engineversions",
        "/v1/kubernetesclusters",
        "/v1/kubernetesclusters/{cluster}/resources",
        "/v1/kubernetesclusters/{cluster}/namespaces/{namespace}/databaseclusters/{name}",
        "/v1/allclusters/databaseclusters",
        "/readyz",
    ] {
        assert!(document["paths"][path].is_object(), "{path}");
    }
}
