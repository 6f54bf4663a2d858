//! Validate and build: from a DatabaseCluster and what it refers to, decide
//! what to apply, or why nothing may be applied. Pure.

use dbaas_api::engine::DatabaseEngineSpec;
use dbaas_api::{BackupScheduleTemplate, DatabaseCluster, DatabaseClusterTemplate};
use dbaas_engines::{
    BuildInput, BuiltEngine, EngineProvider, ResolvedVersion, VersionError, provider_for,
    resolve_version,
};

use super::monitoring::{self, Found, MonitoringLookup};
use crate::backup::restore::{Refusal as RestoreRefusal, Resolved};
use crate::backup::storage::{self, StorageLookup};
use kube::core::DynamicObject;

/// What the dereference stage found.
#[derive(Clone, Debug, Default)]
pub struct References {
    /// The SRE's policy for this engine in this namespace, if any.
    pub policy: Option<DatabaseEngineSpec>,
    /// Whether the engine operator's CRD is served.
    pub engine_installed: bool,
    /// An engine object with our name exists that is not ours.
    pub foreign_engine_object: bool,
    /// Nothing was ever applied for this cluster: it has no status yet and
    /// no engine object exists, so there are no extras or credentials copies
    /// of ours to prune or give back (a new cluster skips those lookups).
    pub nothing_applied_yet: bool,
    /// The template the cluster selects, and the object if it exists.
    pub template: Option<(
        super::template::TemplateRef,
        Option<DatabaseClusterTemplate>,
    )>,
    /// The BackupScheduleTemplate `spec.backup.scheduleTemplateName`
    /// names, and the object if it exists.
    pub schedule_template: Option<(String, Option<BackupScheduleTemplate>)>,
    /// The MonitoringConfig `spec.monitoring` references, as found.
    pub monitoring: Option<MonitoringLookup>,
    /// The BackupStorages the cluster's backup spec names, as found.
    pub backup_storages: Vec<StorageLookup>,
    /// What `spec.dataSource` names, as found; `None` when the cluster has
    /// none or its engine restored it already.
    pub data_source: Option<Result<Resolved, RestoreRefusal>>,
    /// The version this process last applied for the cluster. The cluster
    /// read from the watch cache may not show our status write yet, and a
    /// cluster that names no version must not take a new default then.
    pub applied_version: Option<String>,
}

/// Why nothing is applied. The cluster keeps running what it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Condition that carries the refusal: `Valid` or `EngineAvailable`.
    pub condition: &'static str,
    pub reason: &'static str,
    pub message: String,
    /// Whether time alone may fix it (an engine operator being installed),
    /// so the controller should look again without any watch event.
    pub retry: bool,
}

/// The outcome of validate + build.
#[derive(Debug)]
pub enum Plan {
    Apply {
        provider: &'static dyn EngineProvider,
        built: Box<BuiltEngine>,
        version: ResolvedVersion,
        /// The engine restore resource that restores `spec.dataSource`
        /// once the new cluster is up (engines that do not restore at
        /// bootstrap).
        restore: Option<Box<DynamicObject>>,
    },
    Refuse(Refusal),
}

/// Validates and builds.
pub fn plan(cluster: &DatabaseCluster, refs: &References) -> Plan {
    let engine = cluster.spec.engine.type_;
    let refuse = |condition, reason, message: String, retry| {
        Plan::Refuse(Refusal {
            condition,
            reason,
            message,
            retry,
        })
    };
    let Some(provider) = provider_for(engine) else {
        return refuse(
            dbaas_api::common::condition::VALID,
            "EngineNotSupported",
            format!("engine {engine} is not supported by this dbaas-operator version yet"),
            false,
        );
    };
    let resource = provider.resource();
    if !refs.engine_installed {
        return refuse(
            dbaas_api::common::condition::ENGINE_AVAILABLE,
            "EngineOperatorNotInstalled",
            format!(
                "the {operator} operator is not installed: the CRD {plural}.{group}/{version} is not served by this cluster; install {operator} and the cluster will be created",
                operator = provider.operator_name(),
                plural = resource.plural,
                group = resource.group,
                version = resource.version,
            ),
            true,
        );
    }
    if refs.foreign_engine_object {
        return refuse(
            dbaas_api::common::condition::VALID,
            "EngineObjectConflict",
            format!(
                "a {} {} named {:?} already exists and is not managed by dbaas-operator; it is left untouched: choose another name",
                provider.operator_name(),
                resource.kind,
                cluster.metadata.name.as_deref().unwrap_or_default()
            ),
            false,
        );
    }
    // User > template > defaults: the providers see the effective spec.
    let template = match &refs.template {
        None => None,
        Some((selected, found)) => {
            match super::template::check(cluster, selected, found.as_ref()) {
                Ok(template) => Some(template),
                Err(err) => {
                    return refuse(
                        dbaas_api::common::condition::VALID,
                        err.reason(),
                        err.to_string(),
                        false,
                    );
                }
            }
        }
    };
    let effective = template.map(|t| super::template::effective(cluster, t));
    let cluster = effective.as_ref().unwrap_or(cluster);
    // Backup schedules from a BackupScheduleTemplate: the cluster's own win
    // by name. A missing or mismatched template applies nothing.
    let with_schedules = match &refs.schedule_template {
        None => None,
        Some((name, found)) => {
            match super::template::check_schedule_template(cluster, name, found.as_ref()) {
                Ok(template) => Some(super::template::with_schedule_template(cluster, template)),
                Err(err) => {
                    return refuse(
                        dbaas_api::common::condition::VALID,
                        err.reason(),
                        err.to_string(),
                        false,
                    );
                }
            }
        }
    };
    let cluster = with_schedules.as_ref().unwrap_or(cluster);
    // A referenced MonitoringConfig must exist and allow the cluster, like a
    // template: nothing is applied on a silent guess.
    let monitoring_config = match &refs.monitoring {
        None => None,
        Some(lookup) => {
            if let Some((reason, message)) = monitoring::refusal(cluster, lookup) {
                return refuse(dbaas_api::common::condition::VALID, reason, message, false);
            }
            match &lookup.found {
                Found::Config { config, .. } => Some(config.as_ref()),
                Found::Missing | Found::Forbidden => None,
            }
        }
    };
    // A cluster that names no version keeps the version it runs: a new
    // default (the SRE's or this operator's) must never upgrade or downgrade
    // a running database behind its owner's back. That running version is
    // not judged against the allowed list either: nothing is being created
    // or upgraded.
    // Only a status about this engine's resource counts: a cluster deleted
    // and created again under the same name (as another engine) may still
    // carry the old one's status for a moment.
    let from_status = cluster
        .status
        .as_ref()
        .filter(|s| {
            s.engine_ref.as_ref().is_some_and(|r| {
                r.kind == resource.kind
                    && r.api_version.split('/').next() == Some(resource.group.as_str())
            })
        })
        .and_then(|s| s.engine_version.as_deref());
    let running = refs.applied_version.as_deref().or(from_status);
    let (requested, policy) = match (cluster.spec.engine.version.as_deref(), running) {
        (Some(requested), _) => (Some(requested), refs.policy.clone()),
        (None, Some(running)) => (
            Some(running),
            refs.policy.clone().map(|mut p| {
                p.allowed_versions.clear();
                p
            }),
        ),
        (None, None) => (None, refs.policy.clone()),
    };
    // A cluster that names an upstream version keeps the build of it that
    // runs: a second build on offer, or a newer one, must neither block it
    // nor roll it without an OpsRequest.
    let pinned = match (cluster.spec.engine.version.as_deref(), running) {
        (Some(requested), Some(running))
            if running
                .strip_prefix(requested)
                .is_some_and(|build| build.starts_with('-')) =>
        {
            resolve_version(provider, Some(running), policy.as_ref()).ok()
        }
        _ => None,
    };
    let resolved = match pinned {
        Some(pinned) => Ok(pinned),
        None => resolve_version(provider, requested, policy.as_ref()),
    };
    let version = match resolved {
        Ok(version) => version,
        Err(err) => {
            let reason = match err {
                VersionError::NotOffered { .. } => "VersionNotOffered",
                VersionError::NotAllowed { .. } => "VersionNotAllowed",
            };
            return refuse(
                dbaas_api::common::condition::VALID,
                reason,
                err.to_string(),
                false,
            );
        }
    };
    // Every storage the backup spec names must exist with its credentials:
    // a backup schedule that silently writes nowhere is worse than none.
    if let Some((reason, message)) = refs.backup_storages.iter().find_map(storage::refusal) {
        return refuse(dbaas_api::common::condition::VALID, reason, message, false);
    }
    let storages: Vec<_> = refs
        .backup_storages
        .iter()
        .filter_map(storage::input)
        .collect();
    // A new cluster from a backup: the backup must be there to restore,
    // or the cluster is not created (an empty one would look like a loss).
    let data_source = match &refs.data_source {
        None => None,
        Some(Err(refusal)) => {
            return refuse(
                dbaas_api::common::condition::VALID,
                refusal.reason,
                format!("spec.dataSource: {}", refusal.message),
                false,
            );
        }
        Some(Ok(resolved)) => Some(&resolved.input),
    };
    let restore = match data_source.filter(|_| !provider.restores_at_bootstrap()) {
        None => None,
        Some(input) => {
            let name = super::data_source::restore_name(
                cluster.metadata.name.as_deref().unwrap_or_default(),
            );
            match provider.build_restore(&name, cluster, input) {
                Ok(object) => Some(Box::new(object)),
                Err(err) => {
                    return refuse(
                        dbaas_api::common::condition::VALID,
                        err.reason(),
                        format!("spec.dataSource: {err}"),
                        false,
                    );
                }
            }
        }
    };
    let input = BuildInput {
        monitoring: monitoring_config,
        backup_storages: &storages,
        data_source: data_source.filter(|_| provider.restores_at_bootstrap()),
    };
    let mut built = match provider.build(cluster, &version, &input) {
        Ok(built) => built,
        Err(err) => {
            return refuse(
                dbaas_api::common::condition::VALID,
                err.reason(),
                err.to_string(),
                false,
            );
        }
    };
    if let Some(message) = credentials_missing(refs, &built) {
        return refuse(
            dbaas_api::common::condition::VALID,
            "MonitoringCredentialsNotFound",
            message,
            false,
        );
    }
    if let Some(template) = template {
        super::template::merge_into_engine_object(&mut built.object, template);
    }
    Plan::Apply {
        provider,
        built: Box::new(built),
        version,
        restore,
    }
}

/// Why the credentials the build copies cannot be read, if so.
fn credentials_missing(refs: &References, built: &BuiltEngine) -> Option<String> {
    refs.monitoring
        .as_ref()
        .and_then(|lookup| monitoring::credentials_refusal(lookup, &built.secret_keys))
}

#[cfg(test)]
mod tests {
    use dbaas_api::EngineType;

    use super::*;

    fn cluster(yaml: &str) -> DatabaseCluster {
        serde_saphyr::from_str(yaml).unwrap()
    }

    const PG: &str = "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: pg, namespace: ns, uid: u1}\nspec: {engine: {type: postgresql, version: '16.2'}, storage: {size: 1Gi}}";

    fn installed() -> References {
        References {
            engine_installed: true,
            ..Default::default()
        }
    }

    fn refusal(plan: Plan) -> Refusal {
        match plan {
            Plan::Refuse(r) => r,
            Plan::Apply { .. } => panic!("expected a refusal"),
        }
    }

    #[test]
    fn valid_postgres_cluster_is_applied() {
        match plan(&cluster(PG), &installed()) {
            Plan::Apply {
                version,
                built,
                provider,
                ..
            } => {
                assert_eq!(version.version, "16.2");
                assert_eq!(built.object.data["spec"]["instances"], 1);
                assert_eq!(provider.resource().kind, "Cluster");
            }
            Plan::Refuse(r) => panic!("refused: {r:?}"),
        }
    }

    #[test]
    fn missing_engine_operator_is_reported_and_retried() {
        let r = refusal(plan(&cluster(PG), &References::default()));
        assert_eq!(
            (r.condition, r.reason, r.retry),
            ("EngineAvailable", "EngineOperatorNotInstalled", true)
        );
        assert!(
            r.message.contains("clusters.postgresql.cnpg.io"),
            "{}",
            r.message
        );
    }

    #[test]
    fn versions_belong_to_their_engine() {
        // 16.2 is a PostgreSQL version: a mysql cluster asking for it is refused.
        let r = refusal(plan(
            &cluster(&PG.replace("postgresql", "mysql")),
            &installed(),
        ));
        assert_eq!(r.reason, "VersionNotOffered");
    }

    #[test]
    fn foreign_engine_object_is_never_taken_over() {
        let refs = References {
            foreign_engine_object: true,
            ..installed()
        };
        let r = refusal(plan(&cluster(PG), &refs));
        assert_eq!(r.reason, "EngineObjectConflict");
    }

    #[test]
    fn another_engines_status_is_not_this_clusters_running_version() {
        // A mysql cluster deleted and created again as postgresql under the
        // same name: the old status (a PXC engine ref and version) is not
        // the version this cluster runs.
        let mut pg = cluster(&PG.replace("version: '16.2'", "version: null"));
        pg.status = Some(serde_json::from_value(serde_json::json!({
            "engineVersion": "8.4.8-8.1",
            "engineRef": {"apiVersion": "pxc.percona.com/v1", "kind": "PerconaXtraDBCluster", "name": "pg"},
        })).expect("status"));
        match plan(&pg, &installed()) {
            Plan::Apply { version, .. } => assert_ne!(version.version, "8.4.8-8.1"),
            Plan::Refuse(r) => panic!("refused: {}", r.message),
        }
    }

    #[test]
    fn a_cluster_without_a_version_keeps_what_was_applied_even_before_its_status_shows_it() {
        let unpinned = cluster(&PG.replace("version: '16.2'", "version: null"));
        let refs = References {
            policy: Some(DatabaseEngineSpec {
                type_: EngineType::Postgresql,
                allowed_versions: Vec::new(),
                default_version: Some("17.6".into()),
                images: Default::default(),
                operator: None,
            }),
            applied_version: Some("16.10".into()),
            ..installed()
        };
        match plan(&unpinned, &refs) {
            Plan::Apply { version, .. } => assert_eq!(version.version, "16.10"),
            Plan::Refuse(r) => panic!("refused: {}", r.message),
        }
        // Nothing applied yet: the default.
        let fresh = References {
            applied_version: None,
            ..refs
        };
        match plan(&unpinned, &fresh) {
            Plan::Apply { version, .. } => assert_eq!(version.version, "17.6"),
            Plan::Refuse(r) => panic!("refused: {}", r.message),
        }
    }

    #[test]
    fn an_upstream_version_keeps_the_build_it_runs_when_another_is_offered() {
        let upstream = cluster(&PG.replace("version: '16.2'", "version: '17.6'"));
        let with_builds = |builds: &[&str]| DatabaseEngineSpec {
            type_: EngineType::Postgresql,
            allowed_versions: Vec::new(),
            default_version: None,
            images: builds
                .iter()
                .map(|b| ((*b).to_owned(), format!("registry.local/pg:{b}")))
                .collect(),
            operator: None,
        };
        // 17.6 is offered as written: the build is only used when it runs.
        let refs = References {
            policy: Some(with_builds(&["17.6-1", "17.6-2"])),
            applied_version: Some("17.6-1".into()),
            ..installed()
        };
        match plan(&upstream, &refs) {
            Plan::Apply { version, .. } => assert_eq!(version.version, "17.6-1"),
            Plan::Refuse(r) => panic!("refused: {}", r.message),
        }
        // A build it no longer offers: the version as written again.
        let refs = References {
            policy: Some(with_builds(&["17.6-2"])),
            applied_version: Some("17.6-1".into()),
            ..installed()
        };
        match plan(&upstream, &refs) {
            Plan::Apply { version, .. } => assert_eq!(version.version, "17.6"),
            Plan::Refuse(r) => panic!("refused: {}", r.message),
        }
    }

    #[test]
    fn unknown_and_disallowed_versions_are_refused() {
        let r = refusal(plan(&cluster(&PG.replace("16.2", "99.1")), &installed()));
        assert_eq!(r.reason, "VersionNotOffered");
        let refs = References {
            policy: Some(DatabaseEngineSpec {
                type_: EngineType::Postgresql,
                allowed_versions: vec!["17.6".into()],
                default_version: None,
                images: Default::default(),
                operator: None,
            }),
            ..installed()
        };
        let r = refusal(plan(&cluster(PG), &refs));
        assert_eq!(r.reason, "VersionNotAllowed");
        assert!(r.message.contains("17.6"), "{}", r.message);
    }

    fn monitored(config: &str, credentials: super::monitoring::Credentials) -> References {
        let config: dbaas_api::MonitoringConfig = serde_saphyr::from_str(&format!(
            "apiVersion: dbaas.io/v1\nkind: MonitoringConfig\nmetadata: {{name: mon, namespace: ns}}\nspec: {config}"
        ))
        .unwrap();
        References {
            monitoring: Some(MonitoringLookup {
                namespace: "ns".into(),
                name: "mon".into(),
                found: Found::Config {
                    config: Box::new(config),
                    credentials,
                },
            }),
            ..installed()
        }
    }

    const PXC: &str = "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: my, namespace: ns, uid: u1}\nspec: {engine: {type: mysql}, clusterSize: 3, storage: {size: 1Gi}, monitoring: {monitoringConfigName: mon}}";
    const PMM: &str = "{type: pmm, pmm: {url: 'https://pmm'}, credentialsSecretName: pmm-key}";

    #[test]
    fn a_missing_monitoring_config_is_refused_like_a_missing_template() {
        let refs = References {
            monitoring: Some(MonitoringLookup {
                namespace: "ns".into(),
                name: "mon".into(),
                found: Found::Missing,
            }),
            ..installed()
        };
        let r = refusal(plan(&cluster(PXC), &refs));
        assert_eq!(
            (r.condition, r.reason),
            ("Valid", "MonitoringConfigNotFound")
        );
    }

    #[test]
    fn pmm_is_applied_only_with_its_credentials() {
        use super::super::monitoring::Credentials;
        let r = refusal(plan(
            &cluster(PXC),
            &monitored(PMM, Credentials::KeyMissing),
        ));
        assert_eq!(r.reason, "MonitoringCredentialsNotFound");
        match plan(&cluster(PXC), &monitored(PMM, Credentials::Present)) {
            Plan::Apply { built, .. } => {
                assert_eq!(built.object.data["spec"]["pmm"]["enabled"], true);
                assert_eq!(built.secret_keys[0].target_key, "pmmservertoken");
                assert_eq!(built.secret_keys[0].target_secret, "my-secrets");
            }
            Plan::Refuse(r) => panic!("refused: {r:?}"),
        }
        // A config whose credentials the engine does not use needs none.
        let pg = PXC.replace("mysql", "postgresql");
        match plan(&cluster(&pg), &monitored(PMM, Credentials::SecretMissing)) {
            Plan::Apply { built, .. } => {
                assert!(built.secret_keys.is_empty());
                assert_eq!(built.unapplied[0].field, "monitoring");
            }
            Plan::Refuse(r) => panic!("refused: {r:?}"),
        }
    }
}
