//! BackupStorages shared across namespaces, against the real control plane:
//! a storage in one namespace serves clusters of the namespaces its
//! `allowedNamespaces` lists (and no others); the engine object names a copy
//! of the storage's credentials in the cluster's namespace holding only the
//! keys the storage type needs; the copy follows the source Secret, serves
//! on-demand backups, and goes with its last user (garbage collector).
//! The operator watches every namespace here, as it does when installed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use std::time::Duration;

use dbaas_api::backup::DatabaseBackup;
use dbaas_api::common::condition;
use dbaas_api::{BackupStorage, DatabaseCluster, EngineType};
use dbaas_engines::backup::StorageInput;
use dbaas_engines::{BuildInput, provider_for};
use dbaas_operator::OperatorConfig;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use common::{TIMEOUT, condition, create_cluster, engine_api, has_condition};

const ACCESS_KEY: &str = "AKIA-shared-4d1c";
const SECRET_KEY: &str = "shared-secret-key-b07e";
const ROTATED_KEY: &str = "rotated-secret-key-5a9f";

fn mysql(name: &str, storage_namespace: &str) -> String {
    format!(
        "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {{name: {name}}}\nspec: {{engine: {{type: mysql}}, clusterSize: 3, storage: {{size: 1Gi}}, backup: {{enabled: true, schedule: '0 2 * * *', storageName: s3, storageNamespace: {storage_namespace}}}}}"
    )
}

fn value(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v: &ByteString| String::from_utf8_lossy(&v.0).into_owned())
}

async fn secret_where(
    api: &Api<Secret>,
    name: &str,
    what: &str,
    check: impl Fn(Option<&Secret>) -> bool + Send + 'static,
) -> Secret {
    dbaas_testkit::wait_for(api, name, TIMEOUT, what, check)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_storage_serves_the_namespaces_it_allows_through_a_copy_of_its_credentials() {
    let client = dbaas_testkit::shared().client().await.unwrap();
    let shared = dbaas_testkit::TestNamespace::create(&client, "bsns-shared")
        .await
        .unwrap();
    let team = dbaas_testkit::TestNamespace::create(&client, "bsns-team")
        .await
        .unwrap();
    let other = dbaas_testkit::TestNamespace::create(&client, "bsns-other")
        .await
        .unwrap();
    let _operator = common::start_operator_with(
        &client,
        OperatorConfig {
            namespaces: Vec::new(),
            concurrency: 4,
            detection_interval: Duration::from_secs(1),
            ..OperatorConfig::default()
        },
    );

    // The storage lives in `shared`, allows `team`, and its Secret holds a
    // key no storage type needs (which must not be copied).
    let mut credentials =
        json!({"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY});
    credentials["UNRELATED_TOKEN"] = json!("not-for-the-engine");
    common::s3_storage(&shared, "s3", "backups", credentials).await;
    shared
        .api::<BackupStorage>()
        .patch(
            "s3",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"allowedNamespaces": [team.name]}})),
        )
        .await
        .unwrap();
    let copy_name = format!("dbaas-backup-{}-s3", shared.name);
    let provider = provider_for(EngineType::Mysql).unwrap();

    // Not allowed: refused naming both namespaces, nothing applied or copied.
    let denied_clusters: Api<DatabaseCluster> = other.api();
    create_cluster(&denied_clusters, &mysql("denied", &shared.name)).await;
    let refused = common::cluster_where(
        &denied_clusters,
        "denied",
        "BackupStorageNotAllowed",
        has_condition(condition::VALID, "False", "BackupStorageNotAllowed"),
    )
    .await;
    let message = &condition(&refused, condition::VALID).message;
    assert!(
        message.contains(&format!("{:?}", shared.name))
            && message.contains(&format!("{:?}", other.name)),
        "{message}"
    );
    let other_engines = engine_api(&client, &other.name, &provider.resource());
    assert!(other_engines.get_opt("denied").await.unwrap().is_none());
    assert!(
        other
            .api::<Secret>()
            .get_opt(&copy_name)
            .await
            .unwrap()
            .is_none(),
        "credentials copied for a refused cluster"
    );

    // Allowed: the engine object names the copy in the cluster's namespace.
    let clusters: Api<DatabaseCluster> = team.api();
    create_cluster(&clusters, &mysql("db", &shared.name)).await;
    let engines = engine_api(&client, &team.name, &provider.resource());
    let stored = common::engine_object(&engines, "db", "the engine object", |_| true).await;
    let cluster = clusters.get("db").await.unwrap();
    let storage_input = StorageInput {
        name: "s3".into(),
        spec: shared.api::<BackupStorage>().get("s3").await.unwrap().spec,
        credentials_secret: Some(copy_name.clone()),
    };
    let version = dbaas_engines::resolve_version(provider, None, None).unwrap();
    let built = provider
        .build(
            &cluster,
            &version,
            &BuildInput {
                backup_storages: std::slice::from_ref(&storage_input),
                ..BuildInput::default()
            },
        )
        .unwrap();
    common::assert_not_pruned(&built.object.data["spec"], &stored.data["spec"]);
    let text = stored.data["spec"].to_string();
    assert!(text.contains(&copy_name), "{text}");
    assert!(!text.contains("s3-creds"), "{text}");
    common::cluster_where(
        &clusters,
        "db",
        "Valid",
        has_condition(condition::VALID, "True", "Accepted"),
    )
    .await;

    // The copy: exactly the keys an S3 storage needs, labelled, owned by
    // the cluster (not as its controller).
    let secrets: Api<Secret> = team.api();
    let copy = secret_where(&secrets, &copy_name, "the credentials copy", |s| {
        s.is_some()
    })
    .await;
    let keys: Vec<_> = copy.data.as_ref().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
    assert_eq!(
        value(&copy, "AWS_ACCESS_KEY_ID").as_deref(),
        Some(ACCESS_KEY)
    );
    assert_eq!(
        value(&copy, "AWS_SECRET_ACCESS_KEY").as_deref(),
        Some(SECRET_KEY)
    );
    assert_eq!(
        copy.labels()
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("dbaas-operator")
    );
    assert_eq!(
        copy.labels()
            .get("dbaas.io/backup-storage")
            .map(String::as_str),
        Some(format!("{}.s3", shared.name).as_str())
    );
    let owners = copy.owner_references();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(Some(&owners[0].uid), cluster.metadata.uid.as_ref());
    assert_eq!(owners[0].controller, Some(false));

    // The source Secret changes: the copy follows (the Secret watch finds
    // the cluster of the other namespace). Once the cluster is quiet, so
    // no reconcile that was due anyway copies it instead.
    tokio::time::sleep(Duration::from_secs(5)).await;
    shared
        .api::<Secret>()
        .patch(
            "s3-creds",
            &PatchParams::default(),
            &Patch::Merge(&json!({"stringData": {"AWS_SECRET_ACCESS_KEY": ROTATED_KEY}})),
        )
        .await
        .unwrap();
    secret_where(&secrets, &copy_name, "the copy to follow the source", |s| {
        s.is_some_and(|s| value(s, "AWS_SECRET_ACCESS_KEY").as_deref() == Some(ROTATED_KEY))
    })
    .await;

    // An on-demand backup writes to the shared storage with the copy, and
    // records where the storage is (for restores).
    let backups: Api<DatabaseBackup> = team.api();
    let backup: DatabaseBackup = serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseBackup",
        "metadata": {"name": "db-manual"},
        "spec": {"clusterName": "db"},
    }))
    .unwrap();
    backups
        .create(&PostParams::default(), &backup)
        .await
        .unwrap();
    let engine_backups = engine_api(&client, &team.name, &provider.backup_resource().unwrap());
    let taken =
        common::engine_object(&engine_backups, "db-manual", "the engine backup", |_| true).await;
    let shared_ns = shared.name.clone();
    let ours = dbaas_testkit::wait_for(
        &backups,
        "db-manual",
        TIMEOUT,
        "the storage namespace recorded",
        move |b: Option<&DatabaseBackup>| {
            b.and_then(|b| b.status.as_ref())
                .is_some_and(|s| s.storage_namespace.as_deref() == Some(shared_ns.as_str()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let built = provider
        .build_backup(&ours, &clusters.get("db").await.unwrap(), &storage_input)
        .unwrap();
    common::assert_not_pruned(&built.data["spec"], &taken.data["spec"]);
    let status = ours.status.unwrap();
    assert_eq!(status.storage_name.as_deref(), Some("s3"));

    // A new cluster from a path in the shared storage: CloudNativePG
    // bootstraps from it with the copy; a namespace the storage does not
    // allow is refused.
    let from_path = |name: &str| {
        format!(
            "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {{name: {name}}}\nspec: {{engine: {{type: postgresql}}, clusterSize: 1, storage: {{size: 1Gi}}, dataSource: {{backupSource: {{storageName: s3, storageNamespace: {}, path: team/pg}}}}}}",
            shared.name
        )
    };
    create_cluster(&denied_clusters, &from_path("pg-denied")).await;
    common::cluster_where(
        &denied_clusters,
        "pg-denied",
        "dataSource refused",
        has_condition(condition::VALID, "False", "BackupStorageNotAllowed"),
    )
    .await;
    create_cluster(&clusters, &from_path("pg")).await;
    let pg = provider_for(EngineType::Postgresql).unwrap();
    let pg_engines = engine_api(&client, &team.name, &pg.resource());
    let wanted = copy_name.clone();
    let restored = common::engine_object(&pg_engines, "pg", "the restoring Cluster", move |c| {
        c.data["spec"].to_string().contains(&wanted)
    })
    .await;
    assert!(
        !restored.data["spec"].to_string().contains("s3-creds"),
        "{}",
        restored.data["spec"]
    );
    let pg_uid = clusters.get("pg").await.unwrap().metadata.uid.unwrap();
    secret_where(
        &secrets,
        &copy_name,
        "the restoring cluster as an owner",
        move |s| s.is_some_and(|s| s.owner_references().iter().any(|o| o.uid == pg_uid)),
    )
    .await;
    clusters
        .delete("pg", &DeleteParams::default())
        .await
        .unwrap();

    // A second user shares the copy; the copy goes with the last of them.
    create_cluster(&clusters, &mysql("db2", &shared.name)).await;
    let cluster2 = clusters.get("db2").await.unwrap();
    let uid2 = cluster2.metadata.uid.clone().unwrap();
    secret_where(&secrets, &copy_name, "the second owner", move |s| {
        s.is_some_and(|s| s.owner_references().iter().any(|o| o.uid == uid2))
    })
    .await;
    clusters
        .delete("db", &DeleteParams::default())
        .await
        .unwrap();
    dbaas_testkit::wait_gone(&clusters, "db", TIMEOUT)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        secrets.get_opt(&copy_name).await.unwrap().is_some(),
        "the copy went while db2 still uses it"
    );
    clusters
        .delete("db2", &DeleteParams::default())
        .await
        .unwrap();
    // The garbage collector of the control plane's kube-controller-manager.
    dbaas_testkit::wait_gone(&secrets, &copy_name, Duration::from_secs(60))
        .await
        .unwrap();

    for ns in [shared, team, other] {
        ns.delete().await.unwrap();
    }
}
