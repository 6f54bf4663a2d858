//! Writes `deploy/openapi.json` from the code (a test fails on drift).

use std::path::Path;

fn main() -> std::io::Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/openapi.json");
    std::fs::write(&path, dbaas_server::openapi::to_pretty_json())?;
    println!("wrote {}", path.display());
    Ok(())
}
