//! The README's capability matrix is the one the providers declare.

#[test]
fn readme_matrix_matches_the_providers() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md is readable");
    let embedded =
        dbaas_engines::capabilities::embed(&readme).expect("README.md has the capability markers");
    assert!(
        embedded == readme,
        "README.md's capability matrix is stale: run `cargo run -p dbaas-engines --bin capabilities`"
    );
}
