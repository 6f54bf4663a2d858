//! Monitoring around the pure build: which MonitoringConfig a cluster
//! references and whether it may use it (dereference), copying the
//! credentials into the engine's Secret (apply), and which clusters to
//! reconcile again when a MonitoringConfig or its Secret changes (watch).

use std::collections::BTreeMap;

use dbaas_api::common::FIELD_MANAGER;
use dbaas_api::monitoring::CREDENTIALS_KEY;
use dbaas_api::{DatabaseCluster, MonitoringConfig};
use dbaas_engines::SecretKeyCopy;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::core::{ObjectMeta, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tracing::debug;

use crate::context::Context;

/// Namespace and name of the MonitoringConfig a cluster references.
pub fn config_ref(cluster: &DatabaseCluster) -> Option<(String, String)> {
    let monitoring = cluster.spec.monitoring.as_ref()?;
    let namespace = monitoring
        .monitoring_config_namespace
        .clone()
        .or_else(|| cluster.namespace())?;
    Some((namespace, monitoring.monitoring_config_name.clone()))
}

/// What the dereference stage found for `spec.monitoring`.
#[derive(Clone, Debug)]
pub struct MonitoringLookup {
    pub namespace: String,
    pub name: String,
    pub found: Found,
}

/// The referenced MonitoringConfig, as far as the operator could see it.
#[derive(Clone, Debug)]
pub enum Found {
    /// No such MonitoringConfig.
    Missing,
    /// The operator may not read MonitoringConfigs in that namespace.
    Forbidden,
    /// It exists; `credentials` tells whether its Secret holds the key
    /// (only looked up when the cluster may use the config).
    Config {
        config: Box<MonitoringConfig>,
        credentials: Credentials,
    },
}

/// Whether the MonitoringConfig's credentials Secret can be copied. Only
/// presence is recorded here: the value is read when it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// The config names no Secret, or the cluster may not use the config.
    NotLookedUp,
    SecretMissing,
    /// The operator may not read Secrets in that namespace.
    SecretForbidden,
    KeyMissing,
    Present,
}

/// Why a cluster may not use the MonitoringConfig it references; `None`
/// when it may.
pub fn refusal(
    cluster: &DatabaseCluster,
    lookup: &MonitoringLookup,
) -> Option<(&'static str, String)> {
    let MonitoringLookup {
        namespace, name, ..
    } = lookup;
    match &lookup.found {
        Found::Missing => Some((
            "MonitoringConfigNotFound",
            format!(
                "MonitoringConfig {name:?} does not exist in namespace {namespace:?}; the cluster is applied once it exists"
            ),
        )),
        Found::Forbidden => Some((
            "MonitoringConfigNotAllowed",
            format!(
                "the operator may not read MonitoringConfig {name:?} in namespace {namespace:?}"
            ),
        )),
        Found::Config { config, .. } if !allowed(config, cluster) => Some((
            "MonitoringConfigNotAllowed",
            format!(
                "MonitoringConfig {name:?} in namespace {namespace:?} does not list namespace {:?} in its allowedNamespaces",
                cluster.namespace().unwrap_or_default()
            ),
        )),
        Found::Config { .. } => None,
    }
}

/// Whether clusters of `cluster`'s namespace may use `config`: its own
/// namespace always, others when listed in `allowedNamespaces`.
pub fn allowed(config: &MonitoringConfig, cluster: &DatabaseCluster) -> bool {
    let namespace = cluster.namespace();
    config.namespace() == namespace
        || namespace.is_some_and(|ns| config.spec.allowed_namespaces.contains(&ns))
}

/// Why the credentials the build wants copied cannot be; `None` when they
/// can.
pub fn credentials_refusal(lookup: &MonitoringLookup, copies: &[SecretKeyCopy]) -> Option<String> {
    let copy = copies.first()?;
    let Found::Config { credentials, .. } = &lookup.found else {
        return None;
    };
    let (namespace, secret) = (&copy.source_namespace, &copy.source_secret);
    match credentials {
        Credentials::Present => None,
        Credentials::SecretMissing | Credentials::NotLookedUp => Some(format!(
            "the credentials Secret {secret:?} of MonitoringConfig {:?} does not exist in namespace {namespace:?}",
            lookup.name
        )),
        Credentials::SecretForbidden => Some(format!(
            "the operator may not read the credentials Secret {secret:?} in namespace {namespace:?}"
        )),
        Credentials::KeyMissing => Some(format!(
            "the credentials Secret {secret:?} in namespace {namespace:?} has no {CREDENTIALS_KEY:?} key"
        )),
    }
}

/// Looks up the MonitoringConfig a cluster references and, when the
/// cluster may use it, whether its credentials Secret holds the key.
pub async fn lookup(
    ctx: &Context,
    cluster: &DatabaseCluster,
) -> Result<Option<MonitoringLookup>, kube::Error> {
    let Some((namespace, name)) = config_ref(cluster) else {
        return Ok(None);
    };
    let found = match ctx.api::<MonitoringConfig>(&namespace).get_opt(&name).await {
        Err(kube::Error::Api(status)) if status.code == 403 => Found::Forbidden,
        Err(err) => return Err(err),
        Ok(None) => Found::Missing,
        Ok(Some(config)) => {
            let credentials = match &config.spec.credentials_secret_name {
                Some(secret) if allowed(&config, cluster) => {
                    match ctx.api::<Secret>(&namespace).get_opt(secret).await {
                        Err(kube::Error::Api(status)) if status.code == 403 => {
                            Credentials::SecretForbidden
                        }
                        Err(err) => return Err(err),
                        Ok(None) => Credentials::SecretMissing,
                        Ok(Some(found)) if has_key(&found, CREDENTIALS_KEY) => Credentials::Present,
                        Ok(Some(_)) => Credentials::KeyMissing,
                    }
                }
                _ => Credentials::NotLookedUp,
            };
            Found::Config {
                config: Box::new(config),
                credentials,
            }
        }
    };
    Ok(Some(MonitoringLookup {
        namespace,
        name,
        found,
    }))
}

fn has_key(secret: &Secret, key: &str) -> bool {
    secret.data.as_ref().is_some_and(|d| d.contains_key(key))
}

/// Writes the keys the build asked for into the engine's Secret
/// (`target_secret`) with server-side apply: only those keys are ours, so
/// the engine operator's own keys are never touched. When the build asks for
/// none, keys we wrote before are taken back (monitoring turned off); a
/// Secret we never wrote to is left alone.
pub async fn sync_secret_keys(
    ctx: &Context,
    namespace: &str,
    target_secret: &str,
    copies: &[SecretKeyCopy],
) -> Result<(), kube::Error> {
    let secrets = ctx.api::<Secret>(namespace);
    let mut data = BTreeMap::new();
    for copy in copies.iter().filter(|c| c.target_secret == target_secret) {
        let source = ctx
            .api::<Secret>(&copy.source_namespace)
            .get(&copy.source_secret)
            .await?;
        let value = source
            .data
            .as_ref()
            .and_then(|d| d.get(copy.source_key).cloned());
        // Checked by the plan stage; the Secret changed since: skip, the
        // watch on it brings the next reconcile.
        if let Some(value) = value {
            data.insert(copy.target_key.to_owned(), value);
        }
    }
    if data.is_empty() {
        let owns_keys = secrets
            .get_metadata_opt(target_secret)
            .await?
            .is_some_and(|s| applied_data_by_us(&s.metadata));
        if !owns_keys {
            return Ok(());
        }
    }
    let body = Secret {
        metadata: ObjectMeta {
            name: Some(target_secret.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        },
        // No data at all gives back every key we applied before.
        data: (!data.is_empty()).then_some(data),
        ..Default::default()
    };
    secrets
        .patch(
            target_secret,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map(|_| ())
}

/// Whether our field manager owns any data key of the Secret.
fn applied_data_by_us(meta: &ObjectMeta) -> bool {
    meta.managed_fields.iter().flatten().any(|entry| {
        entry.manager.as_deref() == Some(FIELD_MANAGER)
            && entry.operation.as_deref() == Some("Apply")
            && entry
                .fields_v1
                .as_ref()
                .and_then(|f| f.0.get("f:data"))
                .and_then(|d| d.as_object())
                .is_some_and(|keys| !keys.is_empty())
    })
}

/// Secrets, metadata only: a changed credentials Secret is copied again.
pub fn secret_trigger(
    client: &Client,
    namespace: Option<&str>,
) -> impl Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>> + Send + 'static {
    let api: Api<PartialObjectMeta<Secret>> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    watcher(api, watcher::Config::default())
        .default_backoff()
        .touched_objects()
        .filter_map(|event| async move {
            match event {
                Ok(secret) => Some(Ok(secret)),
                Err(err) => {
                    debug!("Secret watch: {err}");
                    None
                }
            }
        })
}

/// The clusters that reference `config`.
pub fn clusters_of_config(
    clusters: &Store<DatabaseCluster>,
    config: &MonitoringConfig,
) -> Vec<ObjectRef<DatabaseCluster>> {
    let wanted = (config.namespace().unwrap_or_default(), config.name_any());
    clusters
        .state()
        .iter()
        .filter(|c| config_ref(c).as_ref() == Some(&wanted))
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// The clusters whose MonitoringConfig takes its credentials from `secret`.
pub fn clusters_of_secret(
    clusters: &Store<DatabaseCluster>,
    configs: &Store<MonitoringConfig>,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<DatabaseCluster>> {
    let namespace = secret.namespace();
    let name = secret.name_any();
    configs
        .state()
        .iter()
        .filter(|c| c.namespace() == namespace)
        .filter(|c| c.spec.credentials_secret_name.as_deref() == Some(name.as_str()))
        .flat_map(|config| clusters_of_config(clusters, config))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(namespace: &str, monitoring: &str) -> DatabaseCluster {
        serde_saphyr::from_str(&format!(
            "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {{name: db, namespace: {namespace}}}\nspec: {{engine: {{type: mysql}}, storage: {{size: 1Gi}}, monitoring: {monitoring}}}"
        ))
        .unwrap()
    }

    fn config(namespace: &str, allowed: &str) -> MonitoringConfig {
        serde_saphyr::from_str(&format!(
            "apiVersion: dbaas.io/v1\nkind: MonitoringConfig\nmetadata: {{name: pmm, namespace: {namespace}}}\nspec: {{type: pmm, pmm: {{url: 'https://pmm'}}, credentialsSecretName: pmm-key, allowedNamespaces: {allowed}}}"
        ))
        .unwrap()
    }

    fn lookup(found: Found) -> MonitoringLookup {
        MonitoringLookup {
            namespace: "shared".into(),
            name: "pmm".into(),
            found,
        }
    }

    #[test]
    fn references_default_to_the_clusters_namespace() {
        let own = cluster("team", "{monitoringConfigName: pmm}");
        assert_eq!(config_ref(&own), Some(("team".into(), "pmm".into())));
        let shared = cluster(
            "team",
            "{monitoringConfigName: pmm, monitoringConfigNamespace: shared}",
        );
        assert_eq!(config_ref(&shared), Some(("shared".into(), "pmm".into())));
    }

    #[test]
    fn other_namespaces_need_to_be_allowed() {
        let user = cluster(
            "team",
            "{monitoringConfigName: pmm, monitoringConfigNamespace: shared}",
        );
        assert!(allowed(&config("team", "[]"), &user));
        assert!(!allowed(&config("shared", "[]"), &user));
        assert!(allowed(&config("shared", "[team]"), &user));

        let found = |allowed| Found::Config {
            config: Box::new(config("shared", allowed)),
            credentials: Credentials::NotLookedUp,
        };
        let (reason, message) = refusal(&user, &lookup(found("[other]"))).unwrap();
        assert_eq!(reason, "MonitoringConfigNotAllowed");
        assert!(message.contains("\"team\""), "{message}");
        assert_eq!(refusal(&user, &lookup(found("[team]"))), None);
        assert_eq!(
            refusal(&user, &lookup(Found::Missing)).unwrap().0,
            "MonitoringConfigNotFound"
        );
        assert_eq!(
            refusal(&user, &lookup(Found::Forbidden)).unwrap().0,
            "MonitoringConfigNotAllowed"
        );
    }

    #[test]
    fn credentials_are_only_judged_when_the_build_copies_them() {
        let copy = SecretKeyCopy {
            source_namespace: "shared".into(),
            source_secret: "pmm-key".into(),
            source_key: CREDENTIALS_KEY,
            target_secret: "db-secrets".into(),
            target_key: "pmmservertoken",
        };
        let with = |credentials| {
            lookup(Found::Config {
                config: Box::new(config("shared", "[team]")),
                credentials,
            })
        };
        assert_eq!(
            credentials_refusal(&with(Credentials::SecretMissing), &[]),
            None
        );
        assert_eq!(
            credentials_refusal(&with(Credentials::Present), std::slice::from_ref(&copy)),
            None
        );
        let missing = credentials_refusal(
            &with(Credentials::SecretMissing),
            std::slice::from_ref(&copy),
        )
        .unwrap();
        assert!(
            missing.contains("\"pmm-key\" of MonitoringConfig \"pmm\""),
            "{missing}"
        );
        let no_key =
            credentials_refusal(&with(Credentials::KeyMissing), std::slice::from_ref(&copy))
                .unwrap();
        assert!(no_key.contains("no \"apiKey\" key"), "{no_key}");
    }

    #[test]
    fn only_apply_entries_with_data_count_as_ours() {
        let meta = |manager: &str, operation: &str, fields: serde_json::Value| ObjectMeta {
            managed_fields: Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry {
                    manager: Some(manager.into()),
                    operation: Some(operation.into()),
                    fields_v1: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1(
                        fields,
                    )),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let data = serde_json::json!({ "f:data": { "f:pmmservertoken": {} } });
        assert!(applied_data_by_us(&meta(
            FIELD_MANAGER,
            "Apply",
            data.clone()
        )));
        assert!(!applied_data_by_us(&meta("percona", "Update", data)));
        assert!(!applied_data_by_us(&meta(
            FIELD_MANAGER,
            "Apply",
            serde_json::json!({ "f:data": {} })
        )));
    }
}
