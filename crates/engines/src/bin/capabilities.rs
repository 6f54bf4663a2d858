//! Writes the capability matrix, generated from the engine providers'
//! declarations, into the README between its markers
//! (`tests/capabilities_up_to_date.rs` keeps the two equal).

use std::process::ExitCode;

fn main() -> ExitCode {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = match std::fs::read_to_string(&path) {
        Ok(readme) => readme,
        Err(err) => {
            eprintln!("cannot read {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let Some(updated) = dbaas_engines::capabilities::embed(&readme) else {
        eprintln!(
            "{} lacks the lines {} and {}",
            path.display(),
            dbaas_engines::capabilities::BEGIN,
            dbaas_engines::capabilities::END
        );
        return ExitCode::FAILURE;
    };
    if let Err(err) = std::fs::write(&path, updated) {
        eprintln!("cannot write {}: {err}", path.display());
        return ExitCode::FAILURE;
    }
    println!("wrote the capability matrix into {}", path.display());
    ExitCode::SUCCESS
}
