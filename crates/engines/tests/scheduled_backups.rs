//! Recognising the backup resources engine operators' own schedules create
//! (the shapes each operator writes, see `scheduled_backup_of` of each
//! provider), and refusing every other backup resource.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dbaas_api::EngineType;
use dbaas_engines::backup::ScheduledBackupRef;
use dbaas_engines::provider_for;
use kube::core::DynamicObject;
use serde_json::json;

fn object(value: serde_json::Value) -> DynamicObject {
    serde_json::from_value(value).unwrap()
}

fn of(engine: EngineType, value: serde_json::Value) -> Option<ScheduledBackupRef> {
    provider_for(engine)
        .unwrap()
        .scheduled_backup_of(&object(value))
}

/// A Backup as CloudNativePG's ScheduledBackup controller creates it with
/// `backupOwnerReference: self`.
fn cnpg_scheduled(parent: &str, cluster: &str) -> serde_json::Value {
    json!({
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Backup",
        "metadata": {
            "name": format!("{parent}-20261124010000"),
            "namespace": "ns",
            "labels": {
                "cnpg.io/cluster": cluster,
                "cnpg.io/immediateBackup": "false",
                "cnpg.io/scheduled-backup": parent,
            },
            "ownerReferences": [{
                "apiVersion": "postgresql.cnpg.io/v1",
                "kind": "ScheduledBackup",
                "name": parent,
                "uid": "5f0c1c52-0000-4000-8000-000000000001",
                "controller": true,
            }],
        },
        "spec": {"cluster": {"name": cluster}, "method": "barmanObjectStore"},
    })
}

#[test]
fn cnpg_backup_of_a_scheduled_backup_names_cluster_and_schedule() {
    assert_eq!(
        of(
            EngineType::Postgresql,
            cnpg_scheduled("orders-nightly", "orders")
        ),
        Some(ScheduledBackupRef {
            cluster: "orders".into(),
            schedule: "nightly".into(),
            storage: None,
        })
    );
    // A schedule name with dashes stays whole.
    assert_eq!(
        of(
            EngineType::Postgresql,
            cnpg_scheduled("orders-every-hour", "orders")
        )
        .map(|r| r.schedule),
        Some("every-hour".to_owned())
    );
    assert!(
        provider_for(EngineType::Postgresql)
            .unwrap()
            .scheduled_backup_selector()
            .is_some()
    );
}

#[test]
fn cnpg_backup_not_made_by_our_schedule_is_not_recognised() {
    // On demand: no parent label.
    let mut on_demand = cnpg_scheduled("orders-nightly", "orders");
    on_demand["metadata"]["labels"] = json!({"cnpg.io/cluster": "orders"});
    assert_eq!(of(EngineType::Postgresql, on_demand), None);
    // Labelled, but not controlled by that ScheduledBackup.
    let mut unowned = cnpg_scheduled("orders-nightly", "orders");
    unowned["metadata"]["ownerReferences"] = json!([]);
    assert_eq!(of(EngineType::Postgresql, unowned), None);
    // A ScheduledBackup not named `<cluster>-<schedule>` (not ours).
    assert_eq!(
        of(EngineType::Postgresql, cnpg_scheduled("weekly", "orders")),
        None
    );
    assert_eq!(
        of(EngineType::Postgresql, cnpg_scheduled("orders-", "orders")),
        None
    );
}

/// A PerconaXtraDBClusterBackup as the PXC operator's schedule creates it.
fn pxc_scheduled(cluster: &str, ancestor: &str) -> serde_json::Value {
    json!({
        "apiVersion": "pxc.percona.com/v1",
        "kind": "PerconaXtraDBClusterBackup",
        "metadata": {
            "name": format!("cron-{cluster}-minio-2026112410000-1a2b3"),
            "namespace": "ns",
            "finalizers": ["percona.com/delete-backup"],
            "labels": {
                "app.kubernetes.io/instance": cluster,
                "app.kubernetes.io/managed-by": "percona-xtradb-cluster-operator",
                "app.kubernetes.io/name": "percona-xtradb-cluster",
                "app.kubernetes.io/part-of": "percona-xtradb-cluster",
                "percona.com/backup-type": "cron",
                "percona.com/cluster": cluster,
                "percona.com/backup-ancestor": ancestor,
            },
        },
        "spec": {"pxcCluster": cluster, "storageName": "minio"},
    })
}

#[test]
fn pxc_backup_of_a_schedule_names_cluster_schedule_and_storage() {
    assert_eq!(
        of(EngineType::Mysql, pxc_scheduled("shop", "3f2a9-nightly")),
        Some(ScheduledBackupRef {
            cluster: "shop".into(),
            schedule: "nightly".into(),
            storage: Some("minio".into()),
        })
    );
    assert_eq!(
        of(EngineType::Mysql, pxc_scheduled("shop", "3f2a9-every-hour")).map(|r| r.schedule),
        Some("every-hour".to_owned())
    );
}

#[test]
fn pxc_backup_not_made_by_a_schedule_is_not_recognised() {
    // On demand (ours or a user's): no cron labels.
    let mut on_demand = pxc_scheduled("shop", "3f2a9-nightly");
    on_demand["metadata"]["labels"] = json!({"dbaas.io/backup": "b1"});
    assert_eq!(of(EngineType::Mysql, on_demand), None);
    // Labels and spec disagree on the cluster.
    let mut other = pxc_scheduled("shop", "3f2a9-nightly");
    other["spec"]["pxcCluster"] = json!("other");
    assert_eq!(of(EngineType::Mysql, other), None);
    // An ancestor without the cluster's hash prefix.
    assert_eq!(
        of(EngineType::Mysql, pxc_scheduled("shop", "nightly")),
        None
    );
    let mut not_cron = pxc_scheduled("shop", "3f2a9-nightly");
    not_cron["metadata"]["labels"]["percona.com/backup-type"] = json!("xtrabackup");
    assert_eq!(of(EngineType::Mysql, not_cron), None);
}

/// A PerconaServerMongoDBBackup as the PSMDB operator's schedule creates it.
fn psmdb_scheduled(cluster: &str, task: &str) -> serde_json::Value {
    json!({
        "apiVersion": "psmdb.percona.com/v1",
        "kind": "PerconaServerMongoDBBackup",
        "metadata": {
            "name": format!("cron-{cluster}-20261124010000-x7k2p"),
            "namespace": "ns",
            "labels": {
                "app.kubernetes.io/instance": cluster,
                "app.kubernetes.io/managed-by": "percona-server-mongodb-operator",
                "app.kubernetes.io/name": "percona-server-mongodb",
                "app.kubernetes.io/part-of": "percona-server-mongodb",
                "percona.com/backup-type": "cron",
                "percona.com/cluster": cluster,
                "percona.com/backup-ancestor": task,
            },
        },
        "spec": {"clusterName": cluster, "storageName": "minio", "type": "logical"},
    })
}

#[test]
fn psmdb_backup_of_a_task_names_cluster_schedule_and_storage() {
    assert_eq!(
        of(EngineType::Mongodb, psmdb_scheduled("events", "default")),
        Some(ScheduledBackupRef {
            cluster: "events".into(),
            schedule: "default".into(),
            storage: Some("minio".into()),
        })
    );
}

#[test]
fn psmdb_backup_not_made_by_a_task_is_not_recognised() {
    let mut on_demand = psmdb_scheduled("events", "default");
    on_demand["metadata"]["labels"] = json!({"dbaas.io/backup": "b1"});
    assert_eq!(of(EngineType::Mongodb, on_demand), None);
    let mut other = psmdb_scheduled("events", "default");
    other["spec"]["clusterName"] = json!("other");
    assert_eq!(of(EngineType::Mongodb, other), None);
    let mut no_ancestor = psmdb_scheduled("events", "default");
    no_ancestor["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("percona.com/backup-ancestor");
    assert_eq!(of(EngineType::Mongodb, no_ancestor), None);
}
