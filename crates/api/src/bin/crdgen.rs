//! Writes the CRD YAML of every dbaas.io kind into `deploy/crds/` (or the
//! directory given as the first argument).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds"));
    if let Err(err) = std::fs::create_dir_all(&dir) {
        eprintln!("crdgen: cannot create {}: {err}", dir.display());
        return ExitCode::FAILURE;
    }
    for crd in dbaas_api::crds::all() {
        let path = dir.join(dbaas_api::crds::file_name(&crd));
        let written = dbaas_api::crds::to_yaml(&crd)
            .map_err(|err| err.to_string())
            .and_then(|yaml| std::fs::write(&path, yaml).map_err(|err| err.to_string()));
        match written {
            Ok(()) => println!("wrote {}", path.display()),
            Err(err) => {
                eprintln!("crdgen: {}: {err}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
