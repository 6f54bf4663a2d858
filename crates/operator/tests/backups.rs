//! Backups against the real control plane with the real upstream CRDs: a
//! cluster's backup spec rendered into each engine's resource (storages,
//! schedules, PITR) with nothing pruned; on-demand DatabaseBackups taken
//! with each engine's own backup resource and reported from its status; the
//! Backup OpsRequest; and the bad inputs, each refused with its reason.
//! The tests play the engine operators by writing their status.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use dbaas_api::backup::{BackupPhase, DatabaseBackup};
use dbaas_api::common::condition;
use dbaas_api::ops::{OpsPhase, OpsRequest};
use dbaas_api::{BackupStorage, DatabaseCluster, EngineType};
use dbaas_engines::backup::StorageInput;
use dbaas_engines::{BuildInput, EngineProvider, provider_for};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use common::{TIMEOUT, engine_api, has_condition, s3_credentials};

fn cluster_with_backup(name: &str, engine: EngineType, backup: Value) -> DatabaseCluster {
    let size = if engine == EngineType::Postgresql {
        1
    } else {
        3
    };
    serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseCluster",
        "metadata": {"name": name},
        "spec": {
            "engine": {"type": engine.as_str()},
            "clusterSize": size,
            "storage": {"size": "1Gi"},
            "backup": backup,
        },
    }))
    .unwrap()
}

fn database_backup(name: &str, cluster: &str, storage: Option<&str>) -> DatabaseBackup {
    let mut spec = json!({"clusterName": cluster});
    if let Some(storage) = storage {
        spec["storageName"] = json!(storage);
    }
    serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseBackup",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap()
}

/// What the provider sends for the stored cluster with these storages.
async fn sent(
    provider: &dyn EngineProvider,
    clusters: &Api<DatabaseCluster>,
    name: &str,
    storages: &[StorageInput],
) -> Value {
    let cluster = clusters.get(name).await.unwrap();
    let version =
        dbaas_engines::resolve_version(provider, cluster.spec.engine.version.as_deref(), None)
            .unwrap();
    let built = provider
        .build(
            &cluster,
            &version,
            &BuildInput {
                backup_storages: storages,
                ..BuildInput::default()
            },
        )
        .unwrap();
    built.object.data["spec"].clone()
}

async fn backup_where(
    api: &Api<DatabaseBackup>,
    name: &str,
    what: &str,
    check: impl Fn(&DatabaseBackup) -> bool + Send + 'static,
) -> DatabaseBackup {
    dbaas_testkit::wait_for(
        api,
        name,
        TIMEOUT,
        what,
        move |b: Option<&DatabaseBackup>| b.is_some_and(&check),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

fn phase(backup: &DatabaseBackup) -> Option<BackupPhase> {
    backup.status.as_ref().and_then(|s| s.phase)
}

fn reason(backup: &DatabaseBackup) -> Option<String> {
    backup
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == condition::VALID))
        .map(|c| c.reason.clone())
}

/// One engine's part: its operator's field manager and the status values
/// its backup resource reports when it has finished.
struct Engine {
    engine: EngineType,
    manager: &'static str,
    succeeded: Value,
    failed: Value,
}

fn engines() -> Vec<Engine> {
    vec![
        Engine {
            engine: EngineType::Postgresql,
            manager: "cloudnative-pg",
            succeeded: json!({
                "phase": "completed",
                "startedAt": "2026-11-24T02:00:01Z",
                "stoppedAt": "2026-11-24T02:03:10Z",
                "destinationPath": "s3://backups/NS/CLUSTER",
                "backupId": "20261124T020001",
            }),
            failed: json!({"phase": "failed", "error": "can't find the bucket"}),
        },
        Engine {
            engine: EngineType::Mysql,
            manager: "percona-xtradb-cluster-operator",
            succeeded: json!({
                "state": "Succeeded",
                "completed": "2026-11-24T02:03:10Z",
                "destination": "s3://backups/NS/CLUSTER/CLUSTER-2026-11-24-02:00:01-full",
            }),
            failed: json!({"state": "Failed", "error": "can't find the bucket"}),
        },
        Engine {
            engine: EngineType::Mongodb,
            manager: "percona-server-mongodb-operator",
            succeeded: json!({
                "state": "ready",
                "start": "2026-11-24T02:00:01Z",
                "completed": "2026-11-24T02:03:10Z",
                "destination": "s3://backups/NS/CLUSTER/2026-11-24T02:00:01Z",
            }),
            failed: json!({"state": "error", "error": "can't find the bucket"}),
        },
    ]
}

/// Fills NS and CLUSTER into an engine status template.
fn filled(status: &Value, ns: &str, cluster: &str) -> Value {
    serde_json::from_str(
        &status
            .to_string()
            .replace("NS", ns)
            .replace("CLUSTER", cluster),
    )
    .unwrap()
}

#[tokio::test]
async fn each_engine_renders_its_backups_and_takes_them_on_demand() {
    let (client, ns, _operator) = common::setup("backups").await;
    common::s3_storage(&ns, "s3", "backups", s3_credentials()).await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let backups: Api<DatabaseBackup> = ns.api();
    let storage_input = StorageInput {
        name: "s3".into(),
        spec: ns.api::<BackupStorage>().get("s3").await.unwrap().spec,
        credentials_secret: Some("s3-creds".into()),
    };

    for case in engines() {
        let engine = case.engine;
        let provider = provider_for(engine).unwrap();
        let name = format!("{}-db", &engine.as_str()[..2]);
        clusters
            .create(
                &PostParams::default(),
                &cluster_with_backup(
                    &name,
                    engine,
                    json!({"enabled": true, "schedule": "0 2 * * *", "retentionCopies": 7, "storageName": "s3", "pitr": {"enabled": true}}),
                ),
            )
            .await
            .unwrap();

        // The storage, the schedule and PITR reach the engine resource, and
        // its real CRD keeps every field we send.
        let objects = engine_api(&client, &ns.name, &provider.resource());
        let stored = common::engine_object(&objects, &name, "the engine resource", |_| true).await;
        let sent = sent(
            provider,
            &clusters,
            &name,
            std::slice::from_ref(&storage_input),
        )
        .await;
        common::assert_not_pruned(&sent, &stored.data["spec"]);
        let text = sent.to_string();
        assert!(
            text.contains("s3-creds"),
            "{engine}: no credentials Secret in {text}"
        );
        assert!(
            text.contains("minio.example.com"),
            "{engine}: no endpoint in {text}"
        );
        let valid = common::cluster_where(
            &clusters,
            &name,
            "Valid",
            has_condition(condition::VALID, "True", "Accepted"),
        )
        .await;
        assert!(valid.status.is_some());

        // On demand: the engine's backup resource, owned by the DatabaseBackup.
        let backup_name = format!("{name}-manual");
        backups
            .create(
                &PostParams::default(),
                &database_backup(&backup_name, &name, None),
            )
            .await
            .unwrap();
        let resource = provider.backup_resource().unwrap();
        let engine_backups = engine_api(&client, &ns.name, &resource);
        let taken =
            common::engine_object(&engine_backups, &backup_name, "the engine backup", |_| true)
                .await;
        let ours = backups.get(&backup_name).await.unwrap();
        assert_eq!(
            taken.owner_references()[0].uid,
            ours.metadata.uid.clone().unwrap(),
            "{engine}: the engine backup is owned by the DatabaseBackup"
        );
        let cluster = clusters.get(&name).await.unwrap();
        let built = provider
            .build_backup(&ours, &cluster, &storage_input)
            .unwrap();
        common::assert_not_pruned(&built.data["spec"], &taken.data["spec"]);
        let waiting = backup_where(&backups, &backup_name, "Pending", |b| {
            b.status
                .as_ref()
                .and_then(|s| s.engine_backup.clone())
                .is_some()
        })
        .await;
        assert_eq!(phase(&waiting), Some(BackupPhase::Pending), "{engine}");
        assert_eq!(waiting.status.unwrap().storage_name.as_deref(), Some("s3"));

        // The engine reports completion: our backup says so, with where and when.
        common::write_engine_status(
            &engine_backups,
            &backup_name,
            case.manager,
            filled(&case.succeeded, &ns.name, &name),
        )
        .await;
        let done = backup_where(&backups, &backup_name, "Succeeded", |b| {
            phase(b) == Some(BackupPhase::Succeeded)
        })
        .await;
        let status = done.status.unwrap();
        assert!(
            status
                .destination
                .as_deref()
                .is_some_and(|d| d.starts_with("s3://backups/")),
            "{engine}: {status:?}"
        );
        assert!(status.completed_at.is_some(), "{engine}: {status:?}");

        // A failed engine backup fails ours, with the engine's words.
        let failing = format!("{name}-failing");
        backups
            .create(
                &PostParams::default(),
                &database_backup(&failing, &name, Some("s3")),
            )
            .await
            .unwrap();
        common::engine_object(&engine_backups, &failing, "the engine backup", |_| true).await;
        common::write_engine_status(&engine_backups, &failing, case.manager, case.failed.clone())
            .await;
        let failed = backup_where(&backups, &failing, "Failed", |b| {
            phase(b) == Some(BackupPhase::Failed)
        })
        .await;
        assert!(
            failed
                .status
                .unwrap()
                .message
                .unwrap_or_default()
                .contains("can't find the bucket"),
            "{engine}"
        );

        // A Backup OpsRequest creates a DatabaseBackup and ends with it.
        let op: OpsRequest = serde_json::from_value(json!({
            "apiVersion": "dbaas.io/v1", "kind": "OpsRequest",
            "metadata": {"name": format!("{name}-backup-op")},
            "spec": {"clusterRef": {"name": name}, "type": "Backup", "backup": {}},
        }))
        .unwrap();
        let ops: Api<OpsRequest> = ns.api();
        ops.create(&PostParams::default(), &op).await.unwrap();
        let op_backup = format!("{name}-backup-op");
        common::engine_object(
            &engine_backups,
            &op_backup,
            "the operation's engine backup",
            |_| true,
        )
        .await;
        let made = backups.get(&op_backup).await.unwrap();
        assert_eq!(made.labels()["dbaas.io/ops-request"], op_backup);
        assert_eq!(made.spec.storage_name.as_deref(), Some("s3"));
        common::write_engine_status(
            &engine_backups,
            &op_backup,
            case.manager,
            filled(&case.succeeded, &ns.name, &name),
        )
        .await;
        dbaas_testkit::wait_for(
            &ops,
            &op_backup,
            TIMEOUT,
            "the Backup operation to succeed",
            |o: Option<&OpsRequest>| {
                o.and_then(|o| o.status.as_ref()).and_then(|s| s.phase) == Some(OpsPhase::Succeeded)
            },
        )
        .await
        .unwrap();
    }
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn bad_backup_inputs_are_refused_with_their_reasons() {
    let (client, ns, _operator) = common::setup("backups-bad").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let backups: Api<DatabaseBackup> = ns.api();
    let provider = provider_for(EngineType::Postgresql).unwrap();
    let objects = engine_api(&client, &ns.name, &provider.resource());

    // A storage that does not exist: nothing is applied until it does.
    clusters
        .create(
            &PostParams::default(),
            &cluster_with_backup(
                "pg",
                EngineType::Postgresql,
                json!({"enabled": true, "schedule": "0 2 * * *", "storageName": "later"}),
            ),
        )
        .await
        .unwrap();
    let refused = common::cluster_where(
        &clusters,
        "pg",
        "BackupStorageNotFound",
        has_condition(condition::VALID, "False", "BackupStorageNotFound"),
    )
    .await;
    assert!(
        common::condition(&refused, condition::VALID)
            .message
            .contains("\"later\"")
    );
    assert!(
        objects.get_opt("pg").await.unwrap().is_none(),
        "applied without its storage"
    );

    // It appears with a Secret that lacks a key: the key is named.
    common::s3_storage(
        &ns,
        "later",
        "backups",
        json!({"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"}),
    )
    .await;
    let refused = common::cluster_where(
        &clusters,
        "pg",
        "BackupCredentialsNotFound",
        has_condition(condition::VALID, "False", "BackupCredentialsNotFound"),
    )
    .await;
    let message = common::condition(&refused, condition::VALID).message;
    assert!(message.contains("AWS_SECRET_ACCESS_KEY"), "{message}");
    assert!(
        !message.contains("AKIAEXAMPLE"),
        "a credential leaked into status: {message}"
    );

    // The key is added: the Secret's change alone brings the cluster through.
    ns.api::<Secret>()
        .patch(
            "later-creds",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"AWS_SECRET_ACCESS_KEY": "not-a-real-key"}})),
        )
        .await
        .unwrap();
    common::cluster_where(
        &clusters,
        "pg",
        "Valid once the key exists",
        has_condition(condition::VALID, "True", "Accepted"),
    )
    .await;
    common::engine_object(&objects, "pg", "the CNPG Cluster", |_| true).await;

    // A cron that is not one.
    clusters
        .create(
            &PostParams::default(),
            &cluster_with_backup(
                "badcron",
                EngineType::Postgresql,
                json!({"enabled": true, "schedule": "every night at 2", "storageName": "later"}),
            ),
        )
        .await
        .unwrap();
    let refused = common::cluster_where(
        &clusters,
        "badcron",
        "InvalidBackupSpec",
        has_condition(condition::VALID, "False", "InvalidBackupSpec"),
    )
    .await;
    assert!(
        common::condition(&refused, condition::VALID)
            .message
            .contains("every night at 2")
    );

    // A backup of a cluster that does not exist waits for it.
    backups
        .create(
            &PostParams::default(),
            &database_backup("orphan", "nowhere", Some("later")),
        )
        .await
        .unwrap();
    let waiting = backup_where(&backups, "orphan", "ClusterNotFound", |b| {
        reason(b).as_deref() == Some("ClusterNotFound")
    })
    .await;
    assert_eq!(phase(&waiting), Some(BackupPhase::Pending));

    // A storage the cluster does not declare fails at once.
    common::s3_storage(&ns, "elsewhere", "backups", s3_credentials()).await;
    backups
        .create(
            &PostParams::default(),
            &database_backup("undeclared", "pg", Some("elsewhere")),
        )
        .await
        .unwrap();
    let failed = backup_where(&backups, "undeclared", "BackupStorageNotDeclared", |b| {
        phase(b) == Some(BackupPhase::Failed)
    })
    .await;
    assert_eq!(reason(&failed).as_deref(), Some("BackupStorageNotDeclared"));
    let resource = provider.backup_resource().unwrap();
    assert!(
        engine_api(&client, &ns.name, &resource)
            .get_opt("undeclared")
            .await
            .unwrap()
            .is_none(),
        "an engine backup was made for a refused DatabaseBackup"
    );

    // A DatabaseBackup is taken once: its spec cannot change.
    let changed = backups
        .patch(
            "orphan",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"clusterName": "pg"}})),
        )
        .await
        .unwrap_err();
    assert!(changed.to_string().contains("immutable"), "{changed}");

    // A Backup operation on a cluster without backups fails, changing nothing.
    clusters
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "dbaas.io/v1", "kind": "DatabaseCluster",
                "metadata": {"name": "plain"},
                "spec": {"engine": {"type": "postgresql"}, "storage": {"size": "1Gi"}},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let op: OpsRequest = serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "OpsRequest",
        "metadata": {"name": "no-storage"},
        "spec": {"clusterRef": {"name": "plain"}, "type": "Backup", "backup": {}},
    }))
    .unwrap();
    let ops: Api<OpsRequest> = ns.api();
    ops.create(&PostParams::default(), &op).await.unwrap();
    let failed = dbaas_testkit::wait_for(
        &ops,
        "no-storage",
        TIMEOUT,
        "the refusal",
        |o: Option<&OpsRequest>| {
            o.and_then(|o| o.status.as_ref()).and_then(|s| s.phase) == Some(OpsPhase::Failed)
        },
    )
    .await
    .unwrap();
    assert!(
        failed
            .status
            .unwrap()
            .conditions
            .iter()
            .any(|c| c.reason == "NoBackupStorage"),
        "no NoBackupStorage reason"
    );
    assert!(backups.get_opt("no-storage").await.unwrap().is_none());
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn the_backup_sample_schedules_and_takes_a_backup() {
    let (client, ns, _operator) = common::setup("backups-sample").await;
    let text = common::repo_file("deploy/samples/backups.yaml");
    for document in text.split("\n---\n") {
        let object: DynamicObject = common::from_yaml(document);
        let types = object.types.clone().unwrap();
        let (group, version) = types
            .api_version
            .split_once('/')
            .unwrap_or(("", types.api_version.as_str()));
        let resource = ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            group,
            version,
            &types.kind,
        ));
        engine_api(&client, &ns.name, &resource)
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| panic!("{} {}: {e}", types.kind, object.name_any()));
    }
    let provider = provider_for(EngineType::Postgresql).unwrap();
    let cnpg = engine_api(&client, &ns.name, &provider.resource());
    let stored = common::engine_object(&cnpg, "orders", "the CNPG Cluster", |c| {
        c.data["spec"]["backup"]["barmanObjectStore"].is_object()
    })
    .await;
    assert_eq!(
        stored.data["spec"]["backup"]["barmanObjectStore"]["destinationPath"],
        format!("s3://backups/dbaas/{}/orders", ns.name)
    );
    let scheduled_resource = provider
        .extra_resources()
        .into_iter()
        .find(|r| r.kind == "ScheduledBackup")
        .unwrap();
    let scheduled = engine_api(&client, &ns.name, &scheduled_resource);
    for (name, cron) in [
        ("orders-default", "0 0 2 * * *"),
        ("orders-hourly", "0 0 * * * *"),
    ] {
        let found = common::engine_object(&scheduled, name, "a ScheduledBackup", |_| true).await;
        assert_eq!(found.data["spec"]["schedule"], cron, "{name}");
    }
    let backups = engine_api(&client, &ns.name, &provider.backup_resource().unwrap());
    common::engine_object(&backups, "orders-first", "the sample's CNPG Backup", |_| {
        true
    })
    .await;
    ns.delete().await.unwrap();
}
