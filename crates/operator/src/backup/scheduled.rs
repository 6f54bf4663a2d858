//! The backups engine operators' own schedules take, as DatabaseBackups.
//!
//! Each engine operator creates a backup resource per scheduled run (a
//! CloudNativePG Backup, a PerconaXtraDBClusterBackup, a
//! PerconaServerMongoDBBackup); the provider says which cluster and
//! schedule one belongs to ([`EngineProvider::scheduled_backup_of`]). For
//! each such resource of one of OUR clusters the operator creates a
//! DatabaseBackup of the same name that mirrors it: `spec.scheduleName`
//! set, labelled with the cluster and schedule, and owned by the engine's
//! resource (the engine's retention deletes it, the garbage collector
//! deletes the mirror). The DatabaseBackup controller only reads a mirror's
//! engine resource ([`observe`]), never creates or changes it.

use std::collections::BTreeMap;
use std::time::Duration;

use dbaas_api::backup::LABEL_SCHEDULE;
use dbaas_api::common::{LABEL_CLUSTER, LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_api::{DatabaseBackup, DatabaseBackupSpec, DatabaseCluster, EngineType};
use dbaas_engines::backup::{ScheduledBackupRef, referenced_storages};
use dbaas_engines::{EngineProvider, provider_for};
use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::PostParams;
use kube::core::{ApiResource, DynamicObject};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tracing::{debug, info, warn};

use super::{Error, Outcome, engine_backup_ref, provider_of_recorded};

/// Attempts at creating one mirror before waiting for the engine
/// resource's next change (engine operators write its status several
/// times per backup).
const MIRROR_ATTEMPTS: u32 = 3;

/// Each provider that recognises its schedules' backups, with its backup
/// resource and the label selector of those backups.
pub fn mirror_sources() -> Vec<(&'static dyn EngineProvider, ApiResource, &'static str)> {
    EngineType::ALL
        .into_iter()
        .filter_map(provider_for)
        .filter_map(|p| Some((p, p.backup_resource()?, p.scheduled_backup_selector()?)))
        .collect()
}

/// The scheduled backups of `resource` (in `namespace`, or all) as they
/// change, each with its mirror made sure of first (so the DatabaseBackup
/// controller, woken by the same object through [`mirror_ref`], finds it).
/// Watch errors are logged, not passed on (see `crate::trigger`).
pub fn scheduled_backups(
    client: &Client,
    namespace: Option<&str>,
    provider: &'static dyn EngineProvider,
    resource: &ApiResource,
    selector: &str,
    mirrors: Store<DatabaseBackup>,
) -> impl Stream<Item = Result<DynamicObject, watcher::Error>> + Send + 'static {
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    };
    let kind = resource.kind.clone();
    let client = client.clone();
    let resource = resource.clone();
    watcher(api, watcher::Config::default().labels(selector))
        .default_backoff()
        .filter_map(move |event| {
            let client = client.clone();
            let resource = resource.clone();
            let mirrors = mirrors.clone();
            let kind = kind.clone();
            async move {
                match event {
                    Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                        ensure_mirror(&client, provider, &resource, &object, &mirrors).await;
                        Some(Ok(object))
                    }
                    // Its mirror goes with it (garbage collector); wake it
                    // all the same.
                    Ok(watcher::Event::Delete(object)) => Some(Ok(object)),
                    Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
                    Err(err) => {
                        debug!(kind = %kind, "watch: {err}");
                        None
                    }
                }
            }
        })
}

/// The DatabaseBackup an engine backup resource wakes: its mirror, named
/// like it.
pub fn mirror_ref(engine_backup: DynamicObject) -> Option<ObjectRef<DatabaseBackup>> {
    let name = engine_backup.metadata.name.as_deref()?;
    let namespace = engine_backup.metadata.namespace.as_deref()?;
    Some(ObjectRef::new(name).within(namespace))
}

/// Makes sure the scheduled `engine_backup` of one of our clusters has its
/// mirror; logs (and leaves alone) a DatabaseBackup of that name that is
/// not its mirror.
async fn ensure_mirror(
    client: &Client,
    provider: &'static dyn EngineProvider,
    resource: &ApiResource,
    engine_backup: &DynamicObject,
    mirrors: &Store<DatabaseBackup>,
) {
    let Some(reference) = provider.scheduled_backup_of(engine_backup) else {
        return;
    };
    if engine_backup.metadata.deletion_timestamp.is_some() {
        return;
    }
    let (Some(namespace), name) = (engine_backup.namespace(), engine_backup.name_any()) else {
        return;
    };
    let key = ObjectRef::<DatabaseBackup>::new(&name).within(&namespace);
    if let Some(existing) = mirrors.get(&key) {
        note_existing(&existing, engine_backup, resource);
        return;
    }
    let mut pause = Duration::from_secs(1);
    for attempt in 1..=MIRROR_ATTEMPTS {
        match try_mirror(client, provider, resource, engine_backup, &reference).await {
            Ok(()) => return,
            Err(err) if attempt == MIRROR_ATTEMPTS => {
                warn!(
                    engine_backup = %format!("{namespace}/{name}"),
                    "mirroring the {} taken by schedule {:?} of cluster {:?}: {err}; tried again on its next change",
                    resource.kind, reference.schedule, reference.cluster
                );
            }
            Err(_) => {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
    }
}

/// One attempt at [`ensure_mirror`] past the store.
async fn try_mirror(
    client: &Client,
    provider: &'static dyn EngineProvider,
    resource: &ApiResource,
    engine_backup: &DynamicObject,
    reference: &ScheduledBackupRef,
) -> Result<(), kube::Error> {
    let namespace = engine_backup.namespace().unwrap_or_default();
    let name = engine_backup.name_any();
    let backups = Api::<DatabaseBackup>::namespaced(client.clone(), &namespace);
    // The store may not have its first list yet (the operator just started).
    if let Some(existing) = backups.get_opt(&name).await? {
        note_existing(&existing, engine_backup, resource);
        return Ok(());
    }
    let Some(cluster) = Api::<DatabaseCluster>::namespaced(client.clone(), &namespace)
        .get_opt(&reference.cluster)
        .await?
    else {
        debug!(engine_backup = %format!("{namespace}/{name}"), "no DatabaseCluster {:?}: not mirrored", reference.cluster);
        return Ok(());
    };
    let engine =
        Api::<DynamicObject>::namespaced_with(client.clone(), &namespace, &provider.resource())
            .get_opt(&reference.cluster)
            .await
            .or_else(|err| match err {
                kube::Error::Api(status) if status.code == 404 => Ok(None),
                other => Err(other),
            })?;
    if cluster.spec.engine.type_ != provider.engine()
        || !engine
            .as_ref()
            .is_some_and(|e| is_our_engine_resource(e, &cluster))
    {
        debug!(engine_backup = %format!("{namespace}/{name}"), "cluster {:?} is not one of ours: not mirrored", reference.cluster);
        return Ok(());
    }
    let Some(mirror) = mirror_of(engine_backup, resource, reference, &cluster) else {
        return Ok(());
    };
    match backups.create(&PostParams::default(), &mirror).await {
        Ok(_) => {
            info!(backup = %format!("{namespace}/{name}"), schedule = %reference.schedule, "mirrored a scheduled {}", resource.kind);
            Ok(())
        }
        // Made meanwhile (by us, or by someone else: left alone).
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(err) => Err(err),
    }
}

/// Logs a DatabaseBackup that has the engine backup's name but is not its
/// mirror: it is never taken over.
fn note_existing(existing: &DatabaseBackup, engine_backup: &DynamicObject, resource: &ApiResource) {
    if !is_mirror_of(existing, engine_backup) {
        info!(
            backup = %format!("{}/{}", existing.namespace().unwrap_or_default(), existing.name_any()),
            "a DatabaseBackup named like the scheduled {} exists and is not its mirror; the scheduled backup is not listed",
            resource.kind
        );
    }
}

/// Whether the engine cluster resource is the one we made for `cluster`
/// (our label, controlled by it).
fn is_our_engine_resource(engine: &DynamicObject, cluster: &DatabaseCluster) -> bool {
    let labelled =
        engine.labels().get(LABEL_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY_VALUE);
    let controlled = engine
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && Some(&o.uid) == cluster.meta().uid.as_ref());
    labelled && controlled
}

/// Whether `backup` is the mirror of `engine_backup`: a scheduled one,
/// owned by that very object.
fn is_mirror_of(backup: &DatabaseBackup, engine_backup: &DynamicObject) -> bool {
    backup.spec.schedule_name.is_some()
        && engine_backup
            .metadata
            .uid
            .as_ref()
            .is_some_and(|uid| backup.owner_references().iter().any(|o| &o.uid == uid))
}

/// The mirror of `engine_backup`, taken by `reference`'s schedule of
/// `cluster`. Pure.
fn mirror_of(
    engine_backup: &DynamicObject,
    resource: &ApiResource,
    reference: &ScheduledBackupRef,
    cluster: &DatabaseCluster,
) -> Option<DatabaseBackup> {
    let owner = OwnerReference {
        api_version: resource.api_version.clone(),
        kind: resource.kind.clone(),
        name: engine_backup.metadata.name.clone()?,
        uid: engine_backup.metadata.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: None,
    };
    // CloudNativePG writes to the cluster's one object store.
    let storage =
        reference
            .storage
            .clone()
            .or_else(|| match referenced_storages(&cluster.spec).as_slice() {
                [only] => Some(only.clone()),
                _ => None,
            });
    Some(DatabaseBackup {
        metadata: ObjectMeta {
            name: Some(owner.name.clone()),
            namespace: engine_backup.metadata.namespace.clone(),
            labels: Some(BTreeMap::from([
                (LABEL_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
                (LABEL_CLUSTER.to_owned(), reference.cluster.clone()),
                (LABEL_SCHEDULE.to_owned(), reference.schedule.clone()),
            ])),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: DatabaseBackupSpec {
            cluster_name: reference.cluster.clone(),
            storage_name: storage,
            schedule_name: Some(reference.schedule.clone()),
        },
        status: None,
    })
}

/// What the mirror `backup` of a `schedule` shows: the engine backup
/// resource it is owned by and named like, when that is a backup the
/// cluster's schedule took. Only read; anything else is refused with the
/// reason, so a DatabaseBackup with `scheduleName` set by hand takes
/// nothing over.
pub(super) async fn observe(
    backup: &DatabaseBackup,
    schedule: &str,
    client: &Client,
    namespace: &str,
) -> Result<Outcome, Error> {
    let name = backup.name_any();
    let refused = |reason: &'static str, message: String| Ok(Outcome::Refused { reason, message });
    let owner = backup
        .owner_references()
        .iter()
        .find_map(|o| {
            let group = o.api_version.split_once('/').map_or("", |(group, _)| group);
            Some((o, provider_of_recorded(&format!("{}.{group}", o.kind))?))
        })
        .filter(|(o, _)| o.name == name);
    let Some((owner, provider)) = owner else {
        return refused(
            "NotAScheduledBackup",
            "scheduleName is set by the operator on the DatabaseBackups that list an engine's scheduled backups (owned by the engine's backup resource of the same name); this one is not: remove scheduleName to take an on-demand backup".to_owned(),
        );
    };
    let Some(resource) = provider.backup_resource() else {
        return refused(
            "BackupsUnsupported",
            format!("{} takes no backups", owner.kind),
        );
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let existing = match api.get_opt(&name).await {
        Err(kube::Error::Api(status)) if status.code == 404 => None,
        other => other.map_err(|source| Error::Dereference {
            backup: format!("{namespace}/{name}"),
            source,
        })?,
    };
    let Some(existing) = existing.filter(|e| e.metadata.uid.as_deref() == Some(owner.uid.as_str()))
    else {
        return refused(
            "ScheduledBackupNotFound",
            format!(
                "the {} {name:?} this DatabaseBackup lists no longer exists",
                resource.kind
            ),
        );
    };
    match provider.scheduled_backup_of(&existing) {
        Some(reference)
            if reference.cluster == backup.spec.cluster_name && reference.schedule == schedule =>
        {
            // The storage is where the cluster looks its storages up.
            let storage_namespace = Api::<DatabaseCluster>::namespaced(client.clone(), namespace)
                .get_opt(&backup.spec.cluster_name)
                .await
                .map_err(|source| Error::Dereference {
                    backup: format!("{namespace}/{name}"),
                    source,
                })?
                .map(|cluster| super::storage::storage_namespace(&cluster))
                .filter(|ns| ns != namespace);
            Ok(Outcome::Observed {
                engine_backup: engine_backup_ref(&resource, &name),
                storage: reference
                    .storage
                    .or_else(|| backup.spec.storage_name.clone()),
                storage_namespace,
                observation: provider.observe_backup(&existing),
            })
        }
        _ => refused(
            "NotAScheduledBackup",
            format!(
                "the {} {name:?} was not taken by schedule {schedule:?} of cluster {:?}; it is not listed here",
                resource.kind, backup.spec.cluster_name
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    fn engine_backup() -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "pxc.percona.com/v1",
            "kind": "PerconaXtraDBClusterBackup",
            "metadata": {"name": "cron-shop-minio-1", "namespace": "ns", "uid": "u-1"},
            "spec": {"pxcCluster": "shop", "storageName": "minio"},
        }))
        .unwrap()
    }

    fn cluster(storages: serde_json::Value) -> DatabaseCluster {
        serde_json::from_value(json!({
            "apiVersion": "dbaas.io/v1",
            "kind": "DatabaseCluster",
            "metadata": {"name": "shop", "namespace": "ns", "uid": "c-1"},
            "spec": {
                "engine": {"type": "mysql"},
                "clusterSize": 3,
                "storage": {"size": "1Gi"},
                "backup": storages,
            },
        }))
        .unwrap()
    }

    fn resource() -> ApiResource {
        provider_for(EngineType::Mysql)
            .unwrap()
            .backup_resource()
            .unwrap()
    }

    #[test]
    fn mirror_is_labelled_owned_by_the_engine_backup_and_read_only() {
        let reference = ScheduledBackupRef {
            cluster: "shop".into(),
            schedule: "nightly".into(),
            storage: Some("minio".into()),
        };
        let mirror = mirror_of(
            &engine_backup(),
            &resource(),
            &reference,
            &cluster(json!({"enabled": true, "storageName": "other"})),
        )
        .unwrap();
        assert_eq!(mirror.metadata.name.as_deref(), Some("cron-shop-minio-1"));
        assert_eq!(mirror.metadata.namespace.as_deref(), Some("ns"));
        let labels = mirror.metadata.labels.clone().unwrap();
        assert_eq!(labels[LABEL_CLUSTER], "shop");
        assert_eq!(labels[LABEL_SCHEDULE], "nightly");
        let owner = &mirror.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("PerconaXtraDBClusterBackup", "u-1")
        );
        assert_eq!(mirror.spec.schedule_name.as_deref(), Some("nightly"));
        // The engine backup's storage wins over the cluster's.
        assert_eq!(mirror.spec.storage_name.as_deref(), Some("minio"));
        assert!(is_mirror_of(&mirror, &engine_backup()));
    }

    #[test]
    fn mirror_without_a_named_storage_takes_the_clusters_only_one() {
        let reference = ScheduledBackupRef {
            cluster: "shop".into(),
            schedule: "nightly".into(),
            storage: None,
        };
        let one = cluster(json!({"enabled": true, "storageName": "minio"}));
        let mirror = mirror_of(&engine_backup(), &resource(), &reference, &one).unwrap();
        assert_eq!(mirror.spec.storage_name.as_deref(), Some("minio"));
        let none = cluster(json!({"enabled": true}));
        let mirror = mirror_of(&engine_backup(), &resource(), &reference, &none).unwrap();
        assert_eq!(mirror.spec.storage_name, None);
    }

    #[test]
    fn a_users_backup_of_that_name_is_not_a_mirror() {
        let mut users = DatabaseBackup::new(
            "cron-shop-minio-1",
            DatabaseBackupSpec {
                cluster_name: "shop".into(),
                storage_name: None,
                schedule_name: None,
            },
        );
        assert!(!is_mirror_of(&users, &engine_backup()));
        // scheduleName set by hand, without the owner reference.
        users.spec.schedule_name = Some("nightly".into());
        assert!(!is_mirror_of(&users, &engine_backup()));
    }
}
