//! Writes the operator's RBAC (`deploy/rbac/operator.yaml`, or the file
//! given as the first argument) from `dbaas_api::rbac`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rbac/operator.yaml")
        });
    let written = dbaas_api::rbac::operator_rbac_yaml()
        .map_err(|err| err.to_string())
        .and_then(|yaml| {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|err| err.to_string())?;
            }
            std::fs::write(&path, yaml).map_err(|err| err.to_string())
        });
    match written {
        Ok(()) => {
            println!("wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("rbacgen: {}: {err}", path.display());
            ExitCode::FAILURE
        }
    }
}
