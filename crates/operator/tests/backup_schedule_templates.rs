//! BackupScheduleTemplates against the real control plane with the real
//! upstream CRDs: a cluster selects one with `spec.backup.scheduleTemplateName`;
//! its schedules render into the engine resource (Percona's
//! `spec.backup.schedule`, CloudNativePG's ScheduledBackups) beside the
//! cluster's own, which win by name; the storages only the template names are
//! looked up like the cluster's; a missing or mismatched template applies
//! nothing; an edited template, or a storage created later, re-renders the
//! clusters using it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use dbaas_api::backup::DatabaseBackup;
use dbaas_api::common::condition;
use dbaas_api::{BackupScheduleTemplate, DatabaseCluster, EngineType};
use dbaas_engines::provider_for;
use dbaas_testkit::TestNamespace;

use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube::core::DynamicObject;
use serde_json::{Value, json};

use common::{engine_api, has_condition, s3_credentials};

async fn create_template(ns: &TestNamespace, name: &str, spec: Value) {
    let template: BackupScheduleTemplate = serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "BackupScheduleTemplate",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap();
    ns.api::<BackupScheduleTemplate>()
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
}

async fn create_cluster(ns: &TestNamespace, name: &str, engine: EngineType, backup: Value) {
    let size = if engine == EngineType::Postgresql {
        1
    } else {
        3
    };
    let cluster: DatabaseCluster = serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseCluster",
        "metadata": {"name": name},
        "spec": {
            "engine": {"type": engine.as_str()},
            "clusterSize": size,
            "storage": {"size": "1Gi"},
            "backup": backup,
        },
    }))
    .unwrap();
    ns.api::<DatabaseCluster>()
        .create(&PostParams::default(), &cluster)
        .await
        .unwrap();
}

/// The schedules of a PerconaXtraDBCluster as `name=cron@storage`.
fn pxc_schedules(object: &DynamicObject) -> Vec<String> {
    object.data["spec"]["backup"]["schedule"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            format!(
                "{}={}@{}",
                s["name"].as_str().unwrap_or_default(),
                s["schedule"].as_str().unwrap_or_default(),
                s["storageName"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

fn pxc_storages(object: &DynamicObject) -> Vec<String> {
    object.data["spec"]["backup"]["storages"]
        .as_object()
        .map(|s| s.keys().cloned().collect())
        .unwrap_or_default()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Waits until the PerconaXtraDBCluster runs exactly `expected` schedules.
async fn pxc_with_schedules(
    objects: &Api<DynamicObject>,
    name: &str,
    expected: &[&str],
) -> DynamicObject {
    let expected = strings(expected);
    let what = format!("the PerconaXtraDBCluster to run {expected:?}");
    dbaas_testkit::wait_for(
        objects,
        name,
        common::TIMEOUT,
        &what,
        move |o: Option<&DynamicObject>| o.is_some_and(|o| pxc_schedules(o) == expected),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn template_schedules_render_beside_the_clusters_own_and_follow_template_edits() {
    let (client, ns, _operator) = common::setup("bst-render").await;
    common::s3_storage(&ns, "s3", "s3", s3_credentials()).await;
    common::s3_storage(&ns, "archive", "archive", s3_credentials()).await;
    create_template(
        &ns,
        "nightly",
        json!({"description": "nightly and weekly", "schedules": [
            {"name": "daily", "schedule": "0 2 * * *", "storageName": "s3", "retentionCopies": 7},
            {"name": "weekly", "schedule": "0 3 * * 0", "storageName": "s3"},
        ]}),
    )
    .await;
    let clusters: Api<DatabaseCluster> = ns.api();

    // mysql: the user's `daily` wins whole; the template's `weekly` is
    // appended, and its storage (named only by the template: CloudNativePG
    // below takes one object store, Percona several) is declared.
    create_cluster(
        &ns,
        "my",
        EngineType::Mysql,
        json!({"enabled": true, "scheduleTemplateName": "nightly", "schedules": [
            {"name": "daily", "schedule": "30 4 * * *", "storageName": "archive"},
        ]}),
    )
    .await;
    let pxc = provider_for(EngineType::Mysql).unwrap();
    let pxc_objects = engine_api(&client, &ns.name, &pxc.resource());
    let stored = pxc_with_schedules(
        &pxc_objects,
        "my",
        &["daily=30 4 * * *@archive", "weekly=0 3 * * 0@s3"],
    )
    .await;
    assert_eq!(pxc_storages(&stored), strings(&["archive", "s3"]));
    let daily = &stored.data["spec"]["backup"]["schedule"][0];
    assert!(
        daily.get("retention").is_none(),
        "the user's schedule takes nothing from the template's: {daily}"
    );
    common::cluster_where(
        &clusters,
        "my",
        "Valid",
        has_condition(condition::VALID, "True", "Accepted"),
    )
    .await;

    // An on-demand backup may write to a storage only the template names:
    // the engine resource declares it.
    let backup: DatabaseBackup = serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseBackup",
        "metadata": {"name": "my-now"},
        "spec": {"clusterName": "my", "storageName": "s3"},
    }))
    .unwrap();
    ns.api::<DatabaseBackup>()
        .create(&PostParams::default(), &backup)
        .await
        .unwrap();
    let engine_backups = engine_api(&client, &ns.name, &pxc.backup_resource().unwrap());
    let taken =
        common::engine_object(&engine_backups, "my-now", "the engine backup", |_| true).await;
    assert_eq!(taken.data["spec"]["storageName"], "s3");

    // postgresql: the template's schedules become ScheduledBackups.
    create_cluster(
        &ns,
        "pg",
        EngineType::Postgresql,
        json!({"enabled": true, "scheduleTemplateName": "nightly"}),
    )
    .await;
    let cnpg = provider_for(EngineType::Postgresql).unwrap();
    let scheduled = cnpg
        .extra_resources()
        .into_iter()
        .find(|r| r.kind == "ScheduledBackup")
        .expect("CloudNativePG schedules with ScheduledBackups");
    let scheduled_api = engine_api(&client, &ns.name, &scheduled);
    for (schedule, cron) in [("daily", "0 0 2 * * *"), ("weekly", "0 0 3 * * 0")] {
        let name = dbaas_engines::cnpg::backup::scheduled_backup_name("pg", schedule);
        let object =
            common::engine_object(&scheduled_api, &name, "a ScheduledBackup", |_| true).await;
        assert_eq!(object.data["spec"]["schedule"], cron, "{name}");
    }

    // The template is edited: every cluster using it is rendered again.
    ns.api::<BackupScheduleTemplate>()
        .patch(
            "nightly",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"schedules": [
                {"name": "daily", "schedule": "0 2 * * *", "storageName": "s3"},
                {"name": "weekly", "schedule": "15 5 * * 6", "storageName": "s3"},
                {"name": "monthly", "schedule": "0 6 1 * *", "storageName": "s3"},
            ]}})),
        )
        .await
        .unwrap();
    pxc_with_schedules(
        &pxc_objects,
        "my",
        &[
            "daily=30 4 * * *@archive",
            "weekly=15 5 * * 6@s3",
            "monthly=0 6 1 * *@s3",
        ],
    )
    .await;
    let monthly = dbaas_engines::cnpg::backup::scheduled_backup_name("pg", "monthly");
    common::engine_object(&scheduled_api, &monthly, "the new ScheduledBackup", |_| {
        true
    })
    .await;
    let weekly = dbaas_engines::cnpg::backup::scheduled_backup_name("pg", "weekly");
    common::engine_object(&scheduled_api, &weekly, "the edited ScheduledBackup", |o| {
        o.data["spec"]["schedule"] == "0 15 5 * * 6"
    })
    .await;
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_missing_or_mismatched_template_applies_nothing_until_it_fits() {
    let (client, ns, _operator) = common::setup("bst-bad").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let pxc = provider_for(EngineType::Mysql).unwrap();
    let pxc_objects = engine_api(&client, &ns.name, &pxc.resource());

    // A template that does not exist: refused, nothing applied (no silent
    // cluster without its schedules).
    create_cluster(
        &ns,
        "my",
        EngineType::Mysql,
        json!({"enabled": true, "scheduleTemplateName": "later"}),
    )
    .await;
    let refused = common::cluster_where(
        &clusters,
        "my",
        "TemplateNotFound",
        has_condition(condition::VALID, "False", "TemplateNotFound"),
    )
    .await;
    let message = common::condition(&refused, condition::VALID).message;
    assert!(
        message.contains("BackupScheduleTemplate \"later\""),
        "{message}"
    );
    assert!(pxc_objects.get_opt("my").await.unwrap().is_none());

    // It appears, naming a storage that does not exist yet: the storage is
    // looked up like the cluster's own, and its absence refused.
    create_template(
        &ns,
        "later",
        json!({"schedules": [{"name": "hourly", "schedule": "0 * * * *", "storageName": "late-store"}]}),
    )
    .await;
    let refused = common::cluster_where(
        &clusters,
        "my",
        "BackupStorageNotFound",
        has_condition(condition::VALID, "False", "BackupStorageNotFound"),
    )
    .await;
    let message = common::condition(&refused, condition::VALID).message;
    assert!(message.contains("\"late-store\""), "{message}");
    assert!(pxc_objects.get_opt("my").await.unwrap().is_none());

    // The storage is created: the cluster (which does not name it itself)
    // is woken and applied with the template's schedule.
    common::s3_storage(&ns, "late-store", "late-store", s3_credentials()).await;
    let stored = pxc_with_schedules(&pxc_objects, "my", &["hourly=0 * * * *@late-store"]).await;
    assert_eq!(pxc_storages(&stored), strings(&["late-store"]));
    common::cluster_where(
        &clusters,
        "my",
        "Valid",
        has_condition(condition::VALID, "True", "Accepted"),
    )
    .await;

    // A template for another engine: refused with the template reason.
    create_template(
        &ns,
        "pg-only",
        json!({"engineType": "postgresql", "schedules": [{"name": "nightly", "schedule": "0 1 * * *", "storageName": "late-store"}]}),
    )
    .await;
    create_cluster(
        &ns,
        "my2",
        EngineType::Mysql,
        json!({"enabled": true, "scheduleTemplateName": "pg-only"}),
    )
    .await;
    let refused = common::cluster_where(
        &clusters,
        "my2",
        "TemplateEngineMismatch",
        has_condition(condition::VALID, "False", "TemplateEngineMismatch"),
    )
    .await;
    let message = common::condition(&refused, condition::VALID).message;
    assert!(
        message.contains("postgresql clusters, not mysql"),
        "{message}"
    );
    assert!(pxc_objects.get_opt("my2").await.unwrap().is_none());
    ns.delete().await.unwrap();
}
