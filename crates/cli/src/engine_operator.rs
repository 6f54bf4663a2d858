//! `dbaasctl engines install` and `dbaasctl engines approve-upgrade`: the
//! SRE's side of installing engine operators through OLM. Both only write
//! the DatabaseEngine's `spec.operator`; the operator does the rest
//! (OperatorGroup, Subscription with manual approval, InstallPlans).

use clap::{Args, Subcommand};
use dbaas_api::DatabaseEngine;
use dbaas_api::common::EngineType;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::cli::engine_parser;
use crate::error::CliError;

const ENGINE: &str = "DatabaseEngine";
/// Field manager of what dbaasctl writes.
const FIELD_MANAGER: &str = "dbaasctl";

#[derive(Subcommand, Debug)]
pub enum EngineOperatorCommand {
    /// Install the engine's operator through OLM: sets the DatabaseEngine's
    /// spec.operator (creating the DatabaseEngine if there is none). The
    /// operator subscribes with manual approval and approves the first
    /// install; upgrades wait for `approve-upgrade`.
    Install(InstallOperatorArgs),
    /// Approve an operator upgrade OLM offers (`dbaasctl engines` shows it
    /// as `VERSION(upgrade:NEW)`).
    ApproveUpgrade(ApproveUpgradeArgs),
}

#[derive(Args, Debug)]
pub struct InstallOperatorArgs {
    /// The engine whose operator to install.
    #[arg(value_parser = engine_parser())]
    pub engine: EngineType,
    /// The OLM CatalogSource holding the operator's package.
    #[arg(long)]
    pub catalog: String,
    /// The CatalogSource's namespace.
    #[arg(long, default_value = "olm")]
    pub catalog_namespace: String,
    /// The operator's package in the catalog (e.g. cloudnative-pg).
    #[arg(long)]
    pub package: String,
    /// The update channel (e.g. stable-v1).
    #[arg(long)]
    pub channel: String,
    /// The ClusterServiceVersion to install first; default: the channel's head.
    #[arg(long)]
    pub starting_csv: Option<String>,
    /// Create an OperatorGroup serving every namespace (when the namespace
    /// has none); default: only this namespace.
    #[arg(long)]
    pub all_namespaces: bool,
}

#[derive(Args, Debug)]
pub struct ApproveUpgradeArgs {
    /// The engine whose operator to upgrade.
    #[arg(value_parser = engine_parser())]
    pub engine: EngineType,
    /// The operator version (1.28.0) or ClusterServiceVersion name
    /// (cloudnative-pg.v1.28.0) to approve.
    pub version: String,
}

/// Runs one engine-operator command in `namespace`.
pub async fn run(
    client: &Client,
    namespace: &str,
    command: EngineOperatorCommand,
) -> Result<String, CliError> {
    let api: Api<DatabaseEngine> = Api::namespaced(client.clone(), namespace);
    let api_error = |action: &'static str, name: &str| {
        let name = name.to_owned();
        let namespace = namespace.to_owned();
        move |e| CliError::from_api(action, ENGINE, &name, &namespace, e)
    };
    match command {
        EngineOperatorCommand::Install(args) => {
            let engine_type = args.engine;
            let operator = json!({
                "olm": {
                    "catalogSource": args.catalog,
                    "catalogSourceNamespace": args.catalog_namespace,
                    "package": args.package,
                    "channel": args.channel,
                    // null removes an earlier one (merge patch).
                    "startingCSV": args.starting_csv,
                    "installMode": if args.all_namespaces { "AllNamespaces" } else { "OwnNamespace" },
                }
            });
            let name = match find(&api, engine_type)
                .await
                .map_err(api_error("listing", "*"))?
            {
                Some(existing) => {
                    let name = existing.name_any();
                    api.patch(
                        &name,
                        &PatchParams {
                            field_manager: Some(FIELD_MANAGER.to_owned()),
                            ..PatchParams::default()
                        },
                        &Patch::Merge(json!({ "spec": { "operator": operator } })),
                    )
                    .await
                    .map_err(api_error("updating", &name))?;
                    name
                }
                None => {
                    let name = engine_type.as_str().to_owned();
                    let engine: DatabaseEngine = serde_json::from_value(json!({
                        "apiVersion": "dbaas.io/v1",
                        "kind": ENGINE,
                        "metadata": { "name": name },
                        "spec": { "type": engine_type, "operator": operator },
                    }))
                    .map_err(|e| CliError::Output(e.to_string()))?;
                    api.create(
                        &PostParams {
                            field_manager: Some(FIELD_MANAGER.to_owned()),
                            ..PostParams::default()
                        },
                        &engine,
                    )
                    .await
                    .map_err(api_error("creating", &name))?;
                    name
                }
            };
            Ok(format!(
                "databaseengine/{name}: installing {} from CatalogSource {}/{} (channel {}) through OLM; see `dbaasctl engines`\n",
                args.package, args.catalog_namespace, args.catalog, args.channel
            ))
        }
        EngineOperatorCommand::ApproveUpgrade(args) => {
            let engine_type = args.engine;
            let engine = find(&api, engine_type)
                .await
                .map_err(api_error("listing", "*"))?
                .ok_or_else(|| CliError::NotFound {
                    kind: ENGINE,
                    name: engine_type.as_str().to_owned(),
                    namespace: namespace.to_owned(),
                })?;
            let name = engine.name_any();
            if engine.spec.operator.is_none() {
                return Err(CliError::NotInstalledThroughOlm { engine: name });
            }
            api.patch(
                &name,
                &PatchParams {
                    field_manager: Some(FIELD_MANAGER.to_owned()),
                    ..PatchParams::default()
                },
                &Patch::Merge(
                    json!({ "spec": { "operator": { "approvedVersion": args.version } } }),
                ),
            )
            .await
            .map_err(api_error("updating", &name))?;
            let offered = engine
                .status
                .as_ref()
                .and_then(|s| s.upgrade_available.as_ref())
                .map(|u| u.version.clone().unwrap_or_else(|| u.csv.clone()));
            let note = match offered {
                Some(offered) if offered == args.version => String::new(),
                Some(offered) => format!(" (note: OLM currently offers {offered})"),
                None => {
                    " (no upgrade is offered yet; it will be approved when OLM offers it)".into()
                }
            };
            Ok(format!(
                "databaseengine/{name}: operator upgrade to {} approved{note}\n",
                args.version
            ))
        }
    }
}

/// The namespace's DatabaseEngine of `engine_type`, whatever its name.
async fn find(
    api: &Api<DatabaseEngine>,
    engine_type: EngineType,
) -> Result<Option<DatabaseEngine>, kube::Error> {
    let engines = api.list(&Default::default()).await?;
    Ok(engines
        .items
        .into_iter()
        .find(|e| e.spec.type_ == engine_type))
}
