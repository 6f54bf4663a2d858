//! The kinds the API serves, where their caches are, and the per-kind steps
//! of a create (template choice and recommended defaults for clusters).

use std::future::Future;
use std::sync::Arc;

use dbaas_api::common::{ANNOTATION_ORIGIN, ANNOTATION_TEMPLATE_KIND, ANNOTATION_TEMPLATE_NAME};
use dbaas_api::lenient::Lenient;
use dbaas_api::{
    BackupScheduleTemplate, BackupStorage, DatabaseBackup, DatabaseClaim, DatabaseCluster,
    DatabaseClusterTemplate, DatabaseEngine, MonitoringConfig, OpsRequest,
};
use kube::core::NamespaceResourceScope;
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::store::WatchStore;

/// The watch caches, one per kind.
#[derive(Default)]
pub struct Stores {
    pub clusters: Arc<WatchStore<DatabaseCluster>>,
    pub engines: Arc<WatchStore<DatabaseEngine>>,
    pub cluster_templates: Arc<WatchStore<DatabaseClusterTemplate>>,
    pub backup_schedule_templates: Arc<WatchStore<BackupScheduleTemplate>>,
    pub backup_storages: Arc<WatchStore<BackupStorage>>,
    pub monitoring_configs: Arc<WatchStore<MonitoringConfig>>,
    pub claims: Arc<WatchStore<DatabaseClaim>>,
    pub ops_requests: Arc<WatchStore<OpsRequest>>,
    pub backups: Arc<WatchStore<DatabaseBackup>>,
}

impl Stores {
    /// (kind, synced) of every cache.
    pub fn sync_state(&self) -> Vec<(&'static str, bool)> {
        vec![
            ("DatabaseCluster", self.clusters.is_synced()),
            ("DatabaseEngine", self.engines.is_synced()),
            (
                "DatabaseClusterTemplate",
                self.cluster_templates.is_synced(),
            ),
            (
                "BackupScheduleTemplate",
                self.backup_schedule_templates.is_synced(),
            ),
            ("BackupStorage", self.backup_storages.is_synced()),
            ("MonitoringConfig", self.monitoring_configs.is_synced()),
            ("DatabaseClaim", self.claims.is_synced()),
            ("OpsRequest", self.ops_requests.is_synced()),
            ("DatabaseBackup", self.backups.is_synced()),
        ]
    }

    /// Ends the watch streams of every cache (the cluster is going away).
    pub fn close(&self) {
        self.clusters.close();
        self.engines.close();
        self.cluster_templates.close();
        self.backup_schedule_templates.close();
        self.backup_storages.close();
        self.monitoring_configs.close();
        self.claims.close();
        self.ops_requests.close();
        self.backups.close();
    }

    /// Starts one watch per kind; the tasks end when the handles are aborted.
    pub fn start_watches(&self, client: &Client) -> Vec<tokio::task::JoinHandle<()>> {
        fn spawn<K>(client: &Client, store: &Arc<WatchStore<K>>) -> tokio::task::JoinHandle<()>
        where
            K: Served,
        {
            tokio::spawn(crate::store::run_watch(
                Api::<Lenient<K>>::all(client.clone()),
                store.clone(),
            ))
        }
        vec![
            spawn(client, &self.clusters),
            spawn(client, &self.engines),
            spawn(client, &self.cluster_templates),
            spawn(client, &self.backup_schedule_templates),
            spawn(client, &self.backup_storages),
            spawn(client, &self.monitoring_configs),
            spawn(client, &self.claims),
            spawn(client, &self.ops_requests),
            spawn(client, &self.backups),
        ]
    }
}

/// A kind served by the API.
pub trait Served:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Serialize
    + DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// Its cache.
    fn store(stores: &Stores) -> &Arc<WatchStore<Self>>;

    /// Checks a change of `current` into `next` (a patch or a replace)
    /// before it is sent. Nothing by default.
    fn check_update(
        _stores: &Stores,
        _namespace: &str,
        _current: &Self,
        _next: &Self,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// Checks and completes an object about to be created by `client` (the
    /// caller's impersonating client). Nothing by default.
    fn prepare_create(
        _stores: &Stores,
        _client: &Client,
        _namespace: &str,
        _object: &mut Self,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        async { Ok(()) }
    }

    /// `plural.group`, as RBAC and messages name it.
    fn resource_name() -> String {
        format!("{}.{}", Self::plural(&()), Self::group(&()))
    }
}

macro_rules! served {
    ($kind:ty, $field:ident) => {
        impl Served for $kind {
            fn store(stores: &Stores) -> &Arc<WatchStore<Self>> {
                &stores.$field
            }
        }
    };
}

served!(DatabaseEngine, engines);
served!(DatabaseClusterTemplate, cluster_templates);
served!(BackupScheduleTemplate, backup_schedule_templates);
served!(BackupStorage, backup_storages);
served!(MonitoringConfig, monitoring_configs);
served!(DatabaseClaim, claims);
served!(OpsRequest, ops_requests);
served!(DatabaseBackup, backups);

/// The `dbaas.io/origin` a cluster created through this API gets unless the
/// caller says otherwise.
pub const ORIGIN_API: &str = "api";

/// A 422 when the namespace's DatabaseEngine offers versions and `version`
/// is not one it allows, worded as the API server words an enum refusal
/// (`spec.engine.version: Unsupported value: ...`), so clients show it at
/// the field. The operator refuses the same versions (condition
/// `Valid=False`), but only after the object exists.
fn version_refusal(
    status: &dbaas_api::engine::DatabaseEngineStatus,
    version: &str,
) -> Option<ApiError> {
    use dbaas_api::version::{Choice, choose, nearest_versions};
    let available = &status.available_versions;
    if available.is_empty() {
        return None;
    }
    let offered: Vec<(&str, bool)> = available
        .iter()
        .map(|v| (v.version.as_str(), v.allowed))
        .collect();
    let allowed: Vec<&str> = offered
        .iter()
        .filter(|(_, a)| *a)
        .map(|(v, _)| *v)
        .collect();
    // The nearest allowed versions, and how many more there are.
    let near = || {
        let near = nearest_versions(version, allowed.iter().copied());
        let more = allowed.len().saturating_sub(near.len());
        (near, more)
    };
    // The operator's own choice: an upstream version with one allowed
    // build of it is that build.
    let (reason, (listed, more)) = match choose(version, &offered) {
        Choice::Use(_) => return None,
        // The builds to pick from, and nothing else.
        Choice::Ambiguous(builds) => ("VersionNotOffered", (builds, 0)),
        Choice::NotAllowed(_) => ("VersionNotAllowed", near()),
        Choice::NotOffered => ("VersionNotOffered", near()),
    };
    let mut listed: Vec<String> = listed.iter().map(|v| format!("{v:?}")).collect();
    if more > 0 {
        listed.push(format!("and {more} more"));
    }
    Some(ApiError::Upstream {
        code: 422,
        reason: reason.into(),
        message: format!(
            "spec.engine.version: Unsupported value: {version:?}: supported values: {}",
            listed.join(", ")
        ),
    })
}

/// The namespace's DatabaseEngine of `engine_type`, from the cache.
fn engine_of(
    stores: &Stores,
    namespace: &str,
    engine_type: dbaas_api::EngineType,
) -> Option<crate::store::Entry<DatabaseEngine>> {
    stores
        .engines
        .list(
            Some(namespace),
            &kube::core::Selector::default(),
            Some(&|engine: &DatabaseEngine| engine.spec.type_ == engine_type),
            None,
            None,
            Some(1),
        )
        .items
        .into_iter()
        .next()
}

impl Served for DatabaseCluster {
    fn store(stores: &Stores) -> &Arc<WatchStore<Self>> {
        &stores.clusters
    }

    /// A new version is judged as on create.
    fn check_update(
        stores: &Stores,
        namespace: &str,
        current: &Self,
        next: &Self,
    ) -> Result<(), ApiError> {
        let Some(version) = next.spec.engine.version.as_deref() else {
            return Ok(());
        };
        if current.spec.engine.version.as_deref() == Some(version) {
            return Ok(());
        }
        let engine = engine_of(stores, namespace, next.spec.engine.type_);
        match engine
            .as_ref()
            .and_then(|e| e.object.status.as_ref())
            .and_then(|status| version_refusal(status, version))
        {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }

    /// Template choice and recommended defaults: a template named without a
    /// kind means a DatabaseClusterTemplate; the template must exist and fit
    /// the engine; the origin is `api`; an unset version becomes the
    /// namespace's DatabaseEngine default (the recommended one) when known.
    fn prepare_create(
        stores: &Stores,
        client: &Client,
        namespace: &str,
        cluster: &mut Self,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let annotations = cluster.metadata.annotations.get_or_insert_default();
        annotations
            .entry(ANNOTATION_ORIGIN.to_owned())
            .or_insert_with(|| ORIGIN_API.to_owned());
        let template_name = annotations.get(ANNOTATION_TEMPLATE_NAME).cloned();
        let template_kind = annotations.get(ANNOTATION_TEMPLATE_KIND).cloned();
        let template_kind_given = template_kind.is_some();
        let default_kind = DatabaseClusterTemplate::kind(&()).into_owned();
        if template_name.is_some() && !template_kind_given {
            annotations.insert(ANNOTATION_TEMPLATE_KIND.to_owned(), default_kind.clone());
        }
        let engine_type = cluster.spec.engine.type_;
        let engine = engine_of(stores, namespace, engine_type);
        let engine_status = engine.as_ref().and_then(|e| e.object.status.as_ref());
        let mut refusal = None;
        match cluster.spec.engine.version.as_deref() {
            None => {
                cluster.spec.engine.version =
                    engine_status.and_then(|status| status.default_version.clone());
            }
            Some(version) => refusal = engine_status.and_then(|s| version_refusal(s, version)),
        }
        let client = client.clone();
        let namespace = namespace.to_owned();
        async move {
            if let Some(refusal) = refusal {
                return Err(refusal);
            }
            let Some(name) = template_name else {
                if template_kind_given {
                    return Err(ApiError::Upstream {
                        code: 422,
                        reason: "Invalid".into(),
                        message: format!(
                            "annotation {ANNOTATION_TEMPLATE_KIND} needs {ANNOTATION_TEMPLATE_NAME}"
                        ),
                    });
                }
                return Ok(());
            };
            if template_kind.as_deref().is_some_and(|k| k != default_kind) {
                return Err(ApiError::Upstream {
                    code: 422,
                    reason: "TemplateKindUnknown".into(),
                    message: format!(
                        "annotation {ANNOTATION_TEMPLATE_KIND} must be {default_kind}"
                    ),
                });
            }
            // Read as the caller, never from our cache: whether a template
            // exists, and for which engine, is for those who may read it
            // (the others get the API server's 403).
            let api: Api<DatabaseClusterTemplate> = Api::namespaced(client, &namespace);
            let template_engine = match api.get_opt(&name).await? {
                Some(template) => template.spec.engine_type,
                None => {
                    return Err(ApiError::Upstream {
                        code: 422,
                        reason: "TemplateNotFound".into(),
                        message: format!(
                            "DatabaseClusterTemplate {name:?} does not exist in namespace {namespace}"
                        ),
                    });
                }
            };
            if template_engine != engine_type {
                return Err(ApiError::Upstream {
                    code: 422,
                    reason: "TemplateEngineMismatch".into(),
                    message: format!(
                        "DatabaseClusterTemplate {name:?} is for {template_engine}, the cluster is {engine_type}"
                    ),
                });
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use dbaas_api::engine::{DatabaseEngineStatus, EngineVersion};

    fn status(versions: &[(&str, bool)]) -> DatabaseEngineStatus {
        DatabaseEngineStatus {
            available_versions: versions
                .iter()
                .map(|(version, allowed)| EngineVersion {
                    version: (*version).into(),
                    image: format!("postgresql:{version}"),
                    allowed: *allowed,
                    default: false,
                })
                .collect(),
            ..DatabaseEngineStatus::default()
        }
    }

    #[test]
    fn versions_are_refused_at_the_field_unless_allowed() {
        let engine = status(&[("16.4", true), ("17.2", true), ("15.8", false)]);
        let many: Vec<(String, bool)> =
            (0..14).map(|minor| (format!("17.{minor}"), true)).collect();
        let many: Vec<(&str, bool)> = many.iter().map(|(v, a)| (v.as_str(), *a)).collect();
        assert_eq!(
            version_refusal(&status(&many), "9.9").unwrap().to_string(),
            r#"spec.engine.version: Unsupported value: "9.9": supported values: "17.13", "17.12", "17.11", "17.10", "17.9", and 9 more"#
        );
        // The nearest allowed versions come first.
        assert_eq!(
            version_refusal(&status(&many), "17.99")
                .unwrap()
                .to_string(),
            r#"spec.engine.version: Unsupported value: "17.99": supported values: "17.13", "17.12", "17.11", "17.10", "17.9", and 9 more"#
        );
        // An upstream version is its one build; with several, they are named.
        let builds = status(&[
            ("8.0.36-28.1", true),
            ("8.0.42-33.1", true),
            ("8.0.42-33.2", true),
        ]);
        assert!(version_refusal(&builds, "8.0.36").is_none());
        assert_eq!(
            version_refusal(&builds, "8.0.42").unwrap().to_string(),
            r#"spec.engine.version: Unsupported value: "8.0.42": supported values: "8.0.42-33.2", "8.0.42-33.1""#
        );
        assert_eq!(
            version_refusal(&builds, "8.0.40").unwrap().to_string(),
            r#"spec.engine.version: Unsupported value: "8.0.40": supported values: "8.0.42-33.2", "8.0.42-33.1", "8.0.36-28.1""#
        );
        assert!(version_refusal(&engine, "17.2").is_none());
        let refusal = version_refusal(&engine, "15.8").unwrap();
        assert_eq!(refusal.reason(), "VersionNotAllowed");
        assert_eq!(
            refusal.to_string(),
            r#"spec.engine.version: Unsupported value: "15.8": supported values: "17.2", "16.4""#
        );
        let refusal = version_refusal(&engine, "9.9").unwrap();
        assert_eq!(refusal.reason(), "VersionNotOffered");
        assert_eq!(
            refusal.status(),
            axum::http::StatusCode::UNPROCESSABLE_ENTITY
        );
        // An engine that lists nothing yet leaves the choice to the operator.
        assert!(version_refusal(&status(&[]), "9.9").is_none());
    }
}
