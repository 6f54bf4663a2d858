//! Writes the API reference generated from the CRD types into
//! `docs/api-reference.md` (or the path given as the first argument).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/api-reference.md")
        });
    match std::fs::write(&path, dbaas_api::reference::markdown()) {
        Ok(()) => {
            println!("wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("apidocgen: {}: {err}", path.display());
            ExitCode::FAILURE
        }
    }
}
