//! The backups the engine operators' own schedules take, listed as
//! DatabaseBackups: against the real control plane with the real upstream
//! CRDs, the tests create each engine's backup resource the way its
//! operator's schedule does (its labels, CloudNativePG's owner reference to
//! the ScheduledBackup) and write its status. A mirror appears for those of
//! our clusters, shows the engine's report, and goes with the engine's
//! resource; nothing else gets one, and nothing is taken over.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use std::time::Duration;

use dbaas_api::backup::{BackupPhase, DatabaseBackup};
use dbaas_api::common::condition;
use dbaas_api::{DatabaseCluster, EngineType};
use dbaas_engines::provider_for;
use kube::api::{DeleteParams, PostParams};
use kube::core::{ApiResource, DynamicObject};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use common::{TIMEOUT, engine_api, s3_credentials};

/// How long the garbage collector may take to remove a mirror.
const GC_TIMEOUT: Duration = Duration::from_secs(90);

fn cluster(name: &str, engine: EngineType) -> DatabaseCluster {
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
            "backup": {"enabled": true, "schedule": "0 2 * * *", "storageName": "s3"},
        },
    }))
    .unwrap()
}

fn scheduled_backup_resource() -> ApiResource {
    ApiResource {
        group: "postgresql.cnpg.io".into(),
        version: "v1".into(),
        api_version: "postgresql.cnpg.io/v1".into(),
        kind: "ScheduledBackup".into(),
        plural: "scheduledbackups".into(),
    }
}

/// One engine's part: its operator's field manager, the backup resource its
/// schedule creates (of `cluster`, by schedule `schedule`), and the status
/// it reports when done.
struct Engine {
    engine: EngineType,
    manager: &'static str,
    succeeded: Value,
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
        },
        Engine {
            engine: EngineType::Mysql,
            manager: "percona-xtradb-cluster-operator",
            succeeded: json!({
                "state": "Succeeded",
                "completed": "2026-11-24T02:03:10Z",
                "destination": "s3://backups/NS/CLUSTER/CLUSTER-2026-11-24-02:00:01-full",
            }),
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
        },
    ]
}

/// The backup resource `engine`'s operator creates for schedule `schedule`
/// of `cluster` (labels as each provider's `scheduled_backup_of` reads them;
/// for CloudNativePG `parent` is the ScheduledBackup, controller owner with
/// `backupOwnerReference: self`).
fn scheduled_engine_backup(
    engine: EngineType,
    name: &str,
    cluster: &str,
    schedule: &str,
    parent: Option<&DynamicObject>,
) -> Value {
    match engine {
        EngineType::Postgresql => {
            let parent = parent.expect("the ScheduledBackup");
            json!({
                "apiVersion": "postgresql.cnpg.io/v1", "kind": "Backup",
                "metadata": {
                    "name": name,
                    "labels": {
                        "cnpg.io/cluster": cluster,
                        "cnpg.io/immediateBackup": "false",
                        "cnpg.io/scheduled-backup": parent.name_any(),
                    },
                    "ownerReferences": [{
                        "apiVersion": "postgresql.cnpg.io/v1",
                        "kind": "ScheduledBackup",
                        "name": parent.name_any(),
                        "uid": parent.metadata.uid.clone().unwrap(),
                        "controller": true,
                    }],
                },
                "spec": {"cluster": {"name": cluster}, "method": "barmanObjectStore"},
            })
        }
        EngineType::Mysql => json!({
            "apiVersion": "pxc.percona.com/v1", "kind": "PerconaXtraDBClusterBackup",
            "metadata": {
                "name": name,
                "labels": {
                    "app.kubernetes.io/instance": cluster,
                    "app.kubernetes.io/managed-by": "percona-xtradb-cluster-operator",
                    "app.kubernetes.io/name": "percona-xtradb-cluster",
                    "app.kubernetes.io/part-of": "percona-xtradb-cluster",
                    "percona.com/backup-type": "cron",
                    "percona.com/cluster": cluster,
                    "percona.com/backup-ancestor": format!("4be1c-{schedule}"),
                },
            },
            "spec": {"pxcCluster": cluster, "storageName": "s3"},
        }),
        EngineType::Mongodb => json!({
            "apiVersion": "psmdb.percona.com/v1", "kind": "PerconaServerMongoDBBackup",
            "metadata": {
                "name": name,
                "labels": {
                    "app.kubernetes.io/instance": cluster,
                    "app.kubernetes.io/managed-by": "percona-server-mongodb-operator",
                    "app.kubernetes.io/name": "percona-server-mongodb",
                    "app.kubernetes.io/part-of": "percona-server-mongodb",
                    "percona.com/backup-type": "cron",
                    "percona.com/cluster": cluster,
                    "percona.com/backup-ancestor": schedule,
                },
            },
            "spec": {"clusterName": cluster, "storageName": "s3", "type": "logical"},
        }),
        EngineType::Mariadb => {
            panic!("mariadb clusters' schedules are not applied yet: no scheduled backups to play")
        }
    }
}

/// Creates `object` as the engine operator would and checks the real CRD
/// kept every field.
async fn create_as(api: &Api<DynamicObject>, manager: &str, object: Value) -> DynamicObject {
    let object: DynamicObject = serde_json::from_value(object).unwrap();
    let params = PostParams {
        field_manager: Some(manager.to_owned()),
        ..Default::default()
    };
    let stored = api.create(&params, &object).await.unwrap();
    common::assert_not_pruned(&object.data["spec"], &stored.data["spec"]);
    stored
}

async fn backup_where(
    api: &Api<DatabaseBackup>,
    name: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(Option<&DatabaseBackup>) -> bool + Send + 'static,
) -> DatabaseBackup {
    dbaas_testkit::wait_for(api, name, timeout, what, check)
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
async fn each_engines_scheduled_backups_are_mirrored_as_database_backups() {
    let (client, ns, _operator) = common::setup("scheduled-backups").await;
    common::s3_storage(&ns, "s3", "backups", s3_credentials()).await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let backups: Api<DatabaseBackup> = ns.api();

    for case in engines() {
        let engine = case.engine;
        let provider = provider_for(engine).unwrap();
        let name = format!("{}-sch", &engine.as_str()[..2]);
        clusters
            .create(&PostParams::default(), &cluster(&name, engine))
            .await
            .unwrap();
        // Ours: the engine resource the operator made for the cluster.
        let objects = engine_api(&client, &ns.name, &provider.resource());
        common::engine_object(&objects, &name, "the engine resource", |_| true).await;
        let parent = if engine == EngineType::Postgresql {
            let scheduled = engine_api(&client, &ns.name, &scheduled_backup_resource());
            Some(
                common::engine_object(
                    &scheduled,
                    &format!("{name}-default"),
                    "the ScheduledBackup",
                    |_| true,
                )
                .await,
            )
        } else {
            None
        };
        let engine_backups = engine_api(&client, &ns.name, &provider.backup_resource().unwrap());

        // Created first, so they are looked at before the mirrored one
        // below (one watch, in order): a backup of a cluster that is not
        // ours, and one not made by a schedule.
        let stranger = format!("{name}-stranger-20261124020000");
        // CloudNativePG's is made by a ScheduledBackup someone else made.
        let stranger_parent = if engine == EngineType::Postgresql {
            let scheduled = engine_api(&client, &ns.name, &scheduled_backup_resource());
            Some(
                create_as(
                    &scheduled,
                    "someone",
                    json!({
                        "apiVersion": "postgresql.cnpg.io/v1", "kind": "ScheduledBackup",
                        "metadata": {"name": "stranger-default"},
                        "spec": {"cluster": {"name": "stranger"}, "schedule": "0 0 2 * * *"},
                    }),
                )
                .await,
            )
        } else {
            None
        };
        let foreign = scheduled_engine_backup(
            engine,
            &stranger,
            "stranger",
            "default",
            stranger_parent.as_ref(),
        );
        create_as(&engine_backups, case.manager, foreign).await;
        let manual = format!("{name}-by-hand");
        let mut by_hand =
            scheduled_engine_backup(engine, &manual, &name, "default", parent.as_ref());
        by_hand["metadata"]["labels"] = json!({"team": "dba"});
        by_hand["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("ownerReferences");
        create_as(&engine_backups, case.manager, by_hand).await;
        // A user's DatabaseBackup (waiting: its cluster does not exist)
        // named like the next scheduled backup: it is not taken over.
        let taken_name = format!("{name}-taken-20261124020000");
        let users: DatabaseBackup = serde_json::from_value(json!({
            "apiVersion": "dbaas.io/v1", "kind": "DatabaseBackup",
            "metadata": {"name": taken_name},
            "spec": {"clusterName": "ghost"},
        }))
        .unwrap();
        backups
            .create(&PostParams::default(), &users)
            .await
            .unwrap();
        create_as(
            &engine_backups,
            case.manager,
            scheduled_engine_backup(engine, &taken_name, &name, "default", parent.as_ref()),
        )
        .await;

        // The schedule's backup: a mirror of the same name appears.
        let backup_name = format!("{name}-default-20261124020000");
        let taken = create_as(
            &engine_backups,
            case.manager,
            scheduled_engine_backup(engine, &backup_name, &name, "default", parent.as_ref()),
        )
        .await;
        let mirror = backup_where(&backups, &backup_name, "the mirror", TIMEOUT, |b| {
            b.is_some_and(|b| phase(b).is_some())
        })
        .await;
        assert_eq!(mirror.spec.cluster_name, name, "{engine}");
        assert_eq!(mirror.spec.schedule_name.as_deref(), Some("default"));
        assert_eq!(mirror.labels()["dbaas.io/cluster"], name);
        assert_eq!(mirror.labels()["dbaas.io/schedule"], "default");
        assert_eq!(
            mirror.owner_references()[0].uid,
            taken.metadata.uid.clone().unwrap(),
            "{engine}: the mirror is owned by the engine's backup"
        );
        assert_eq!(phase(&mirror), Some(BackupPhase::Pending), "{engine}");

        // Nothing else got a mirror, and the user's backup is still theirs.
        for other in [&stranger, &manual] {
            assert!(
                backups.get_opt(other).await.unwrap().is_none(),
                "{engine}: {other} got a mirror"
            );
        }
        let users = backups.get(&taken_name).await.unwrap();
        assert_eq!(users.spec.schedule_name, None, "{engine}");
        assert!(users.owner_references().is_empty(), "{engine}");
        let untouched = engine_backups.get(&taken_name).await.unwrap();
        assert!(
            !untouched.labels().contains_key("dbaas.io/backup"),
            "{engine}: the scheduled backup was taken over"
        );

        // The engine reports completion: the mirror says so, like an
        // on-demand backup.
        common::write_engine_status(
            &engine_backups,
            &backup_name,
            case.manager,
            filled(&case.succeeded, &ns.name, &name),
        )
        .await;
        let done = backup_where(&backups, &backup_name, "Succeeded", TIMEOUT, |b| {
            b.is_some_and(|b| phase(b) == Some(BackupPhase::Succeeded))
        })
        .await;
        let status = done.status.clone().unwrap();
        assert_eq!(status.storage_name.as_deref(), Some("s3"), "{engine}");
        assert!(
            status
                .destination
                .as_deref()
                .is_some_and(|d| d.starts_with("s3://backups/")),
            "{engine}: {status:?}"
        );
        assert!(status.completed_at.is_some(), "{engine}: {status:?}");
        assert_eq!(reason(&done).as_deref(), Some("BackupAccepted"));
        // Only read: the engine's backup is as its operator made it.
        let after = engine_backups.get(&backup_name).await.unwrap();
        assert!(!after.labels().contains_key("dbaas.io/backup"), "{engine}");
        assert_eq!(
            after.owner_references(),
            taken.owner_references(),
            "{engine}"
        );

        // The engine's retention deletes its backup: the mirror goes too.
        engine_backups
            .delete(&backup_name, &DeleteParams::background())
            .await
            .unwrap();
        dbaas_testkit::wait_gone(&backups, &backup_name, GC_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("{engine}: the mirror was not garbage collected: {e}"));
    }
}

#[tokio::test]
async fn a_schedule_name_set_by_hand_takes_nothing_over() {
    let (client, ns, _operator) = common::setup("scheduled-forged").await;
    common::s3_storage(&ns, "s3", "backups", s3_credentials()).await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let backups: Api<DatabaseBackup> = ns.api();
    let engine = EngineType::Mysql;
    let provider = provider_for(engine).unwrap();
    let name = "my-forged";
    clusters
        .create(&PostParams::default(), &cluster(name, engine))
        .await
        .unwrap();
    let objects = engine_api(&client, &ns.name, &provider.resource());
    common::engine_object(&objects, name, "the engine resource", |_| true).await;
    let engine_backups = engine_api(&client, &ns.name, &provider.backup_resource().unwrap());

    // scheduleName matching nothing: refused, nothing created.
    let forged = |backup: &str| -> DatabaseBackup {
        serde_json::from_value(json!({
            "apiVersion": "dbaas.io/v1", "kind": "DatabaseBackup",
            "metadata": {"name": backup},
            "spec": {"clusterName": name, "scheduleName": "default"},
        }))
        .unwrap()
    };
    backups
        .create(&PostParams::default(), &forged("nothing"))
        .await
        .unwrap();
    let refused = backup_where(&backups, "nothing", "refused", TIMEOUT, |b| {
        b.is_some_and(|b| phase(b) == Some(BackupPhase::Failed))
    })
    .await;
    assert_eq!(reason(&refused).as_deref(), Some("NotAScheduledBackup"));
    assert!(engine_backups.get_opt("nothing").await.unwrap().is_none());

    // scheduleName on a user's DatabaseBackup named like an on-demand
    // engine backup (someone else's): refused, the engine backup untouched.
    let theirs = create_as(
        &engine_backups,
        "someone",
        json!({
            "apiVersion": "pxc.percona.com/v1", "kind": "PerconaXtraDBClusterBackup",
            "metadata": {"name": "theirs"},
            "spec": {"pxcCluster": name, "storageName": "s3"},
        }),
    )
    .await;
    backups
        .create(&PostParams::default(), &forged("theirs"))
        .await
        .unwrap();
    let refused = backup_where(&backups, "theirs", "refused", TIMEOUT, |b| {
        b.is_some_and(|b| phase(b) == Some(BackupPhase::Failed))
    })
    .await;
    assert_eq!(reason(&refused).as_deref(), Some("NotAScheduledBackup"));
    let after = engine_backups.get("theirs").await.unwrap();
    assert_eq!(after.metadata.labels, theirs.metadata.labels);
    assert!(after.owner_references().is_empty());
}
