//! What each engine supports, as its provider declares it, served with the
//! namespace's engines (`/engineversions`) so clients such as the console
//! offer only what fits an engine and need no change for a new one.

use dbaas_api::EngineType;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What one engine supports.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EngineCapabilities {
    /// The engine operator that runs it.
    pub operator: String,
    /// The topology in a few words.
    pub topology: String,
    /// The `spec.engine.topology` values offered, the default first; empty
    /// for an engine with one topology.
    pub topologies: Vec<String>,
    /// The `spec.proxy.type` values that fit (besides `none`).
    pub proxies: Vec<String>,
    /// The `spec.expose.type` values that fit.
    pub expose: Vec<String>,
    /// The BackupStorage types backups can go to.
    pub backup_storages: Vec<String>,
    /// Point-in-time recovery.
    pub pitr: bool,
    /// The OpsRequest types offered.
    pub operations: Vec<String>,
    /// The OpsRequest types not offered, each with why.
    pub not_offered: Vec<NotOffered>,
    /// How clients connect.
    pub connection: ConnectionInfo,
}

/// An OpsRequest type an engine does not offer.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, ToSchema)]
pub struct NotOffered {
    #[serde(rename = "type")]
    pub type_: String,
    pub why: String,
}

/// How clients connect to an engine.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionInfo {
    /// The URL scheme (e.g. `postgresql`, `mysql`, `mongodb`).
    pub scheme: String,
    /// The database a login lands in (the URL's path; may be empty).
    pub database: String,
    pub default_port: u16,
}

/// The capabilities of `engine`, if this version serves it.
pub fn of(engine: EngineType) -> Option<EngineCapabilities> {
    let provider = dbaas_engines::provider_for(engine)?;
    let declared = provider.capabilities();
    fn names<T: Serialize>(values: &[T]) -> Vec<String> {
        values
            .iter()
            .map(dbaas_engines::capabilities::lower)
            .collect()
    }
    let connection = engine.connection();
    Some(EngineCapabilities {
        operator: provider.operator_name().to_owned(),
        topology: declared.topology.to_owned(),
        topologies: names(declared.topologies),
        proxies: names(declared.proxies),
        expose: names(declared.expose),
        backup_storages: names(declared.backup_storages),
        pitr: declared.pitr,
        operations: provider
            .supported_operations()
            .iter()
            .map(ToString::to_string)
            .collect(),
        not_offered: dbaas_api::ops::OpsType::ALL
            .into_iter()
            .filter(|op| !provider.supported_operations().contains(op))
            .map(|op| NotOffered {
                type_: op.to_string(),
                why: dbaas_engines::capabilities::why_not_offered(provider, op),
            })
            .collect(),
        connection: ConnectionInfo {
            scheme: connection.scheme.to_owned(),
            database: connection.database.to_owned(),
            default_port: connection.default_port,
        },
    })
}
