//! The PostgreSQL vertical slice against the real control plane with the real
//! CloudNativePG CRD installed: the operator runs in-process; the tests play
//! CloudNativePG by writing its status the way it does.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use common::*;
use dbaas_api::cluster::ClusterPhase;
use dbaas_api::common::{FIELD_MANAGER, LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_api::{DatabaseCluster, DatabaseEngine};
use dbaas_engine_crds::cnpg_cluster::Cluster as CnpgCluster;
use dbaas_engine_crds::cnpg_pooler::Pooler;
use dbaas_testkit::wait_gone;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject};
use serde_json::{Value, json};

/// CloudNativePG's field manager when it writes status.
const CNPG: &str = "cloudnative-pg";

fn healthy(instances: i64, image: &str, name: &str) -> Value {
    json!({
        "phase": "Cluster in healthy state",
        "instances": instances,
        "readyInstances": instances,
        "image": image,
        "currentPrimary": format!("{name}-1"),
        "writeService": format!("{name}-rw"),
        "readService": format!("{name}-r"),
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "ClusterIsReady",
            "message": "Cluster is Ready", "lastTransitionTime": "2026-01-01T00:00:00Z"
        }],
    })
}

#[tokio::test]
async fn create_observe_edit_pause_and_delete() {
    let (_client, ns, _operator) = setup("pg").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<CnpgCluster> = ns.api();
    let image16 = "ghcr.io/cloudnative-pg/postgresql:16.0";

    // Create: the seed's sample becomes a CNPG Cluster, owned by it, labelled as ours.
    let created = create_cluster(
        &clusters,
        &repo_file("deploy/samples/postgresql-cluster.yaml"),
    )
    .await;
    let cnpg = engine_object(&engines, "my-postgres", "the CNPG Cluster", |_| true).await;
    assert_eq!(cnpg.spec.instances, 3);
    assert_eq!(cnpg.spec.image_name.as_deref(), Some(image16));
    assert_eq!(
        cnpg.spec.storage.as_ref().and_then(|s| s.size.as_deref()),
        Some("10Gi")
    );
    assert_eq!(
        cnpg.spec
            .postgresql
            .as_ref()
            .and_then(|p| p.parameters.as_ref())
            .map(|p| p["max_connections"].as_str()),
        Some("200")
    );
    let requests = cnpg
        .spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .unwrap();
    assert_eq!(
        serde_json::to_value(requests).unwrap(),
        json!({ "cpu": "1", "memory": "2Gi" })
    );
    assert_eq!(
        cnpg.metadata.labels.as_ref().unwrap()[LABEL_MANAGED_BY],
        MANAGED_BY_VALUE
    );
    let owner = &cnpg.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.uid.as_str(), owner.controller),
        (created.metadata.uid.as_deref().unwrap(), Some(true))
    );

    // What we sent is exactly what the real CNPG schema kept: nothing pruned.
    let sent = dbaas_engines::cnpg::build(
        &clusters.get("my-postgres").await.unwrap(),
        &dbaas_engines::resolve_version(&dbaas_engines::cnpg::Cnpg, Some("16.0"), None).unwrap(),
    )
    .unwrap()
    .cluster;
    assert_not_pruned(
        &serde_json::to_value(&sent.spec).unwrap(),
        &serde_json::to_value(&cnpg.spec).unwrap(),
    );

    // Before CNPG says anything the cluster is Pending; backup is reported as not applied.
    let pending = cluster_where(
        &clusters,
        "my-postgres",
        "Pending",
        in_phase(ClusterPhase::Pending),
    )
    .await;
    let unapplied = condition(&pending, "AllSettingsApplied");
    assert_eq!(
        (unapplied.status.as_str(), unapplied.reason.as_str()),
        ("False", "SettingsNotApplied")
    );
    assert!(
        unapplied.message.contains("backup"),
        "{}",
        unapplied.message
    );
    assert_eq!(condition(&pending, "Ready").status, "False");

    // CNPG starts the primary: Creating.
    write_engine_status(
        &engines,
        "my-postgres",
        CNPG,
        json!({ "phase": "Setting up primary", "instances": 1, "readyInstances": 0 }),
    )
    .await;
    cluster_where(
        &clusters,
        "my-postgres",
        "Creating",
        in_phase(ClusterPhase::Creating),
    )
    .await;

    // CNPG reports healthy: Ready with endpoint, version and credentials.
    write_engine_status(
        &engines,
        "my-postgres",
        CNPG,
        healthy(3, image16, "my-postgres"),
    )
    .await;
    let ready = cluster_where(
        &clusters,
        "my-postgres",
        "Ready",
        in_phase(ClusterPhase::Ready),
    )
    .await;
    let status = ready.status.as_ref().unwrap();
    assert_eq!((status.ready, status.size), (3, 3));
    assert_eq!(
        status.host.as_deref(),
        Some(format!("my-postgres-rw.{}.svc", ns.name).as_str())
    );
    assert_eq!(status.port, Some(5432));
    assert_eq!(status.engine_version.as_deref(), Some("16.0"));
    assert_eq!(
        status.credentials_secret.as_deref(),
        Some("my-postgres-superuser")
    );
    assert_eq!(status.observed_generation, ready.metadata.generation);
    assert_eq!(condition(&ready, "Ready").status, "True");

    // Edit: scale, upgrade, resize, reconfigure. CNPG's stale "healthy" status
    // must not make the new spec look Ready.
    clusters
        .patch(
            "my-postgres",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": {
                "clusterSize": 5,
                "engine": { "type": "postgresql", "version": "16.4" },
                "storage": { "size": "20Gi" },
                "config": [{ "name": "max_connections", "value": "300" }, { "name": "work_mem", "value": "64MB" }],
            } })),
        )
        .await
        .unwrap();
    let image164 = "ghcr.io/cloudnative-pg/postgresql:16.4";
    let cnpg = engine_object(&engines, "my-postgres", "the edit to reach CNPG", |c| {
        c.spec.instances == 5
    })
    .await;
    assert_eq!(cnpg.spec.image_name.as_deref(), Some(image164));
    assert_eq!(
        cnpg.spec.storage.as_ref().and_then(|s| s.size.as_deref()),
        Some("20Gi")
    );
    let params = cnpg
        .spec
        .postgresql
        .as_ref()
        .and_then(|p| p.parameters.clone())
        .unwrap();
    assert_eq!(
        (
            params["max_connections"].as_str(),
            params["work_mem"].as_str()
        ),
        ("300", "64MB")
    );
    let updating = cluster_where(
        &clusters,
        "my-postgres",
        "Updating",
        in_phase(ClusterPhase::Updating),
    )
    .await;
    assert_eq!(condition(&updating, "Ready").status, "False");
    assert_eq!(condition(&updating, "Ready").reason, "WaitingForEngine");
    // CNPG reacts: it is adding replicas. Still not Ready.
    write_engine_status(
        &engines,
        "my-postgres",
        CNPG,
        json!({ "phase": "Creating a new replica", "instances": 4, "readyInstances": 3 }),
    )
    .await;
    cluster_where(
        &clusters,
        "my-postgres",
        "InstancesStarting",
        has_condition("Ready", "False", "InstancesStarting"),
    )
    .await;
    // CNPG rolled everything out.
    write_engine_status(
        &engines,
        "my-postgres",
        CNPG,
        healthy(5, image164, "my-postgres"),
    )
    .await;
    let ready = cluster_where(
        &clusters,
        "my-postgres",
        "Ready after the edit",
        in_phase(ClusterPhase::Ready),
    )
    .await;
    assert_eq!(ready.status.as_ref().unwrap().ready, 5);
    assert_eq!(
        ready.status.as_ref().unwrap().engine_version.as_deref(),
        Some("16.4")
    );

    // Pause: CNPG hibernates the cluster.
    clusters
        .patch(
            "my-postgres",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "paused": true } })),
        )
        .await
        .unwrap();
    engine_object(&engines, "my-postgres", "hibernation annotation", |c| {
        c.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("cnpg.io/hibernation"))
            .map(String::as_str)
            == Some("on")
    })
    .await;
    let mut hibernated = healthy(5, image164, "my-postgres");
    hibernated["readyInstances"] = json!(0);
    hibernated["conditions"] = json!([{
        "type": "cnpg.io/hibernation", "status": "True", "reason": "Hibernated",
        "message": "Cluster has been hibernated", "lastTransitionTime": "2026-01-01T00:00:00Z"
    }]);
    write_engine_status(&engines, "my-postgres", CNPG, hibernated).await;
    cluster_where(
        &clusters,
        "my-postgres",
        "Paused",
        in_phase(ClusterPhase::Paused),
    )
    .await;

    // Delete: the garbage collector removes the CNPG Cluster.
    clusters
        .delete("my-postgres", &DeleteParams::background())
        .await
        .unwrap();
    wait_gone(&engines, "my-postgres", TIMEOUT)
        .await
        .expect("the CNPG Cluster is garbage-collected");
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn direct_edits_of_managed_fields_are_reverted_and_foreign_fields_kept() {
    let (_client, ns, _operator) = setup("revert").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<CnpgCluster> = ns.api();
    create_cluster(
        &clusters,
        "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: pg}\nspec: {engine: {type: postgresql, version: '17.6'}, clusterSize: 3, storage: {size: 1Gi}}",
    )
    .await;
    engine_object(&engines, "pg", "the CNPG Cluster", |_| true).await;

    // Someone edits the engine object directly: a field we own and one we never set.
    let params = PatchParams::apply("someone-else").force();
    engines
        .patch(
            "pg",
            &params,
            &Patch::Apply(json!({
                "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
                "spec": { "instances": 7, "description": "edited by hand" }
            })),
        )
        .await
        .unwrap();
    let reverted = engine_object(&engines, "pg", "instances reverted to 3", |c| {
        c.spec.instances == 3
    })
    .await;
    assert_eq!(
        reverted.spec.description.as_deref(),
        Some("edited by hand"),
        "fields we never set are left alone"
    );
    let ours = reverted
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.operation.as_deref() == Some("Apply") && m.subresource.is_none())
        .filter_map(|m| m.manager.clone())
        .collect::<Vec<_>>();
    assert!(
        ours.contains(&FIELD_MANAGER.to_owned()),
        "applied by {FIELD_MANAGER}: {ours:?}"
    );
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn engine_objects_that_are_not_ours_are_never_touched() {
    let (_client, ns, _operator) = setup("foreign").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<CnpgCluster> = ns.api();
    let foreign: CnpgCluster = from_yaml(
        "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: legacy}\nspec: {instances: 1, storage: {size: 5Gi}}",
    );
    engines
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    let before = engines.get("legacy").await.unwrap();

    create_cluster(
        &clusters,
        "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: legacy}\nspec: {engine: {type: postgresql}, clusterSize: 3, storage: {size: 1Gi}}",
    )
    .await;
    let refused = cluster_where(
        &clusters,
        "legacy",
        "EngineObjectConflict",
        has_condition("Valid", "False", "EngineObjectConflict"),
    )
    .await;
    assert_eq!(
        refused.status.as_ref().unwrap().phase,
        Some(ClusterPhase::Error)
    );
    let after = engines.get("legacy").await.unwrap();
    assert_eq!(before.spec, after.spec);
    assert_eq!(
        before.metadata.resource_version, after.metadata.resource_version,
        "not written at all"
    );
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn versions_are_judged_by_the_operator() {
    let (_client, ns, _operator) = setup("versions").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<CnpgCluster> = ns.api();
    let policies: Api<DatabaseEngine> = ns.api();

    // A version nobody offers: clear condition, nothing created, no crash loop.
    create_cluster(
        &clusters,
        "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: old}\nspec: {engine: {type: postgresql, version: '9.6'}, storage: {size: 1Gi}}",
    )
    .await;
    let refused = cluster_where(
        &clusters,
        "old",
        "VersionNotOffered",
        has_condition("Valid", "False", "VersionNotOffered"),
    )
    .await;
    assert!(
        condition(&refused, "Valid")
            .message
            .contains("\"9.6\" is not offered")
    );
    assert_eq!(
        refused.status.as_ref().unwrap().phase,
        Some(ClusterPhase::Error)
    );

    // The SRE allows only some versions; a cluster without a version gets the default.
    let policy: DatabaseEngine = from_yaml(
        "apiVersion: dbaas.io/v1\nkind: DatabaseEngine\nmetadata: {name: postgresql}\nspec: {type: postgresql, allowedVersions: ['17.6', '16.10'], defaultVersion: '16.10'}",
    );
    // The operator created the namespace's DatabaseEngine already; the SRE edits it.
    policies
        .patch(
            "postgresql",
            &PatchParams::apply("test-sre").force(),
            &Patch::Apply(&policy),
        )
        .await
        .unwrap();
    create_cluster(
        &clusters,
        "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: defaulted}\nspec: {engine: {type: postgresql}, storage: {size: 1Gi}}",
    )
    .await;
    let cnpg = engine_object(&engines, "defaulted", "the CNPG Cluster", |_| true).await;
    assert_eq!(
        cnpg.spec.image_name.as_deref(),
        Some("ghcr.io/cloudnative-pg/postgresql:16.10")
    );

    create_cluster(
        &clusters,
        "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: pinned}\nspec: {engine: {type: postgresql, version: '15.3'}, storage: {size: 1Gi}}",
    )
    .await;
    let refused = cluster_where(
        &clusters,
        "pinned",
        "VersionNotAllowed",
        has_condition("Valid", "False", "VersionNotAllowed"),
    )
    .await;
    assert!(condition(&refused, "Valid").message.contains("17.6, 16.10"));
    assert!(
        engines.get_opt("pinned").await.unwrap().is_none(),
        "nothing created for a refused version"
    );

    // The SRE widens the policy: the waiting cluster is created without any edit to it.
    policies
        .patch(
            "postgresql",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "allowedVersions": ["17.6", "16.10", "15.3"] } })),
        )
        .await
        .unwrap();
    let cnpg = engine_object(
        &engines,
        "pinned",
        "the CNPG Cluster after the policy change",
        |_| true,
    )
    .await;
    assert_eq!(
        cnpg.spec.image_name.as_deref(),
        Some("ghcr.io/cloudnative-pg/postgresql:15.3")
    );

    // The SRE moves the default: new clusters get it, the running unpinned
    // cluster keeps the version it runs (no silent upgrade).
    policies
        .patch(
            "postgresql",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "defaultVersion": "17.6" } })),
        )
        .await
        .unwrap();
    create_cluster(
        &clusters,
        "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: fresh}\nspec: {engine: {type: postgresql}, storage: {size: 1Gi}}",
    )
    .await;
    let fresh = engine_object(&engines, "fresh", "a cluster on the new default", |_| true).await;
    assert_eq!(
        fresh.spec.image_name.as_deref(),
        Some("ghcr.io/cloudnative-pg/postgresql:17.6")
    );
    let kept = engines.get("defaulted").await.unwrap();
    assert_eq!(
        kept.spec.image_name.as_deref(),
        Some("ghcr.io/cloudnative-pg/postgresql:16.10")
    );
    // The status is written after the apply: wait for it, then judge it.
    let defaulted = cluster_where(&clusters, "defaulted", "a status", |c| {
        c.and_then(|c| c.status.as_ref())
            .is_some_and(|s| s.engine_version.is_some())
    })
    .await;
    assert_eq!(
        defaulted.status.unwrap().engine_version.as_deref(),
        Some("16.10")
    );

    // An upgrade to a version that is not allowed is refused; the running spec stays.
    clusters
        .patch(
            "defaulted",
            &PatchParams::default(),
            &Patch::Merge(
                json!({ "spec": { "engine": { "type": "postgresql", "version": "16.2" } } }),
            ),
        )
        .await
        .unwrap();
    cluster_where(
        &clusters,
        "defaulted",
        "upgrade refused",
        has_condition("Valid", "False", "VersionNotAllowed"),
    )
    .await;
    let cnpg = engines.get("defaulted").await.unwrap();
    assert_eq!(
        cnpg.spec.image_name.as_deref(),
        Some("ghcr.io/cloudnative-pg/postgresql:16.10")
    );

    ns.delete().await.unwrap();
}

#[tokio::test]
async fn templates_fill_what_the_user_left_unset() {
    let (_client, ns, _operator) = setup("tpl").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<CnpgCluster> = ns.api();
    let templates: Api<dbaas_api::DatabaseClusterTemplate> = ns.api();
    let small: dbaas_api::DatabaseClusterTemplate = from_yaml(
        r#"
apiVersion: dbaas.io/v1
kind: DatabaseClusterTemplate
metadata: {name: small, labels: {team: payments}, annotations: {cost-center: "42"}}
spec:
  engineType: postgresql
  storageClass: fast
  resources: {requests: {cpu: 500m, memory: 1Gi}}
  config: [{name: max_connections, value: "100"}, {name: shared_buffers, value: 256MB}]
  engineSpec: {enablePDB: false, postgresql: {parameters: {log_min_duration_statement: "500"}}}
"#,
    );
    templates
        .create(&PostParams::default(), &small)
        .await
        .unwrap();

    let with_template = |name: &str, template: &str| {
        format!(
            "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata:\n  name: {name}\n  annotations: {{dbaas.io/template-kind: DatabaseClusterTemplate, dbaas.io/template-name: {template}}}\nspec: {{engine: {{type: postgresql}}, storage: {{size: 1Gi}}, config: [{{name: max_connections, value: '300'}}]}}"
        )
    };
    create_cluster(&clusters, &with_template("templated", "small")).await;
    let cnpg = engine_object(&engines, "templated", "the CNPG Cluster", |_| true).await;
    let spec = serde_json::to_value(&cnpg.spec).unwrap();
    assert_eq!(spec["storage"]["storageClass"], "fast");
    assert_eq!(
        spec["resources"]["requests"],
        json!({ "cpu": "500m", "memory": "1Gi" })
    );
    assert_eq!(
        spec["postgresql"]["parameters"],
        json!({ "max_connections": "300", "shared_buffers": "256MB", "log_min_duration_statement": "500" }),
        "the user's max_connections wins over the template's"
    );
    assert_eq!(
        spec["enablePDB"], false,
        "the template's engine fragment is merged"
    );
    assert_eq!(cnpg.metadata.labels.as_ref().unwrap()["team"], "payments");
    assert_eq!(
        cnpg.metadata.annotations.as_ref().unwrap()["cost-center"],
        "42"
    );

    // A template that does not exist yet: a clear condition, then it proceeds once created.
    create_cluster(&clusters, &with_template("waiting", "large")).await;
    let refused = cluster_where(
        &clusters,
        "waiting",
        "TemplateNotFound",
        has_condition("Valid", "False", "TemplateNotFound"),
    )
    .await;
    assert!(
        condition(&refused, "Valid")
            .message
            .contains("\"large\" does not exist")
    );
    assert!(engines.get_opt("waiting").await.unwrap().is_none());
    let mut large = small.clone();
    large.metadata = from_yaml("name: large");
    templates
        .create(&PostParams::default(), &large)
        .await
        .unwrap();
    engine_object(
        &engines,
        "waiting",
        "the CNPG Cluster once the template exists",
        |_| true,
    )
    .await;

    // A fragment the real CNPG schema refuses: the API server's message
    // becomes a condition (no silent retry loop), nothing is created.
    let mut broken = small.clone();
    broken.metadata = from_yaml("name: broken");
    broken.spec.engine_spec = Some(json!({ "enablePDB": "not-a-boolean" }));
    templates
        .create(&PostParams::default(), &broken)
        .await
        .unwrap();
    create_cluster(&clusters, &with_template("rejected", "broken")).await;
    let rejected = cluster_where(
        &clusters,
        "rejected",
        "EngineRejected",
        has_condition("Valid", "False", "EngineRejected"),
    )
    .await;
    assert!(
        condition(&rejected, "Valid").message.contains("enablePDB"),
        "{}",
        condition(&rejected, "Valid").message
    );
    assert!(engines.get_opt("rejected").await.unwrap().is_none());

    // A template for another engine is refused.
    let mut mysql = small.clone();
    mysql.metadata = from_yaml("name: mysql-small");
    mysql.spec.engine_type = dbaas_api::EngineType::Mysql;
    mysql.spec.engine_spec = None;
    templates
        .create(&PostParams::default(), &mysql)
        .await
        .unwrap();
    create_cluster(&clusters, &with_template("mismatch", "mysql-small")).await;
    cluster_where(
        &clusters,
        "mismatch",
        "TemplateEngineMismatch",
        has_condition("Valid", "False", "TemplateEngineMismatch"),
    )
    .await;
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn pgbouncer_pooler_is_created_observed_and_removed() {
    let (client, ns, _operator) = setup("pooler").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<CnpgCluster> = ns.api();
    let poolers: Api<Pooler> = ns.api();
    let image = "ghcr.io/cloudnative-pg/postgresql:17.6";
    let created = create_cluster(
        &clusters,
        r#"
apiVersion: dbaas.io/v1
kind: DatabaseCluster
metadata: {name: pooled}
spec:
  engine: {type: postgresql, version: "17.6"}
  clusterSize: 3
  storage: {size: 1Gi}
  expose: {type: external, ipSourceRanges: [10.0.0.0/8]}
  scheduling: {nodeSelector: {disk: ssd}}
  proxy:
    type: pgbouncer
    replicas: 2
    resources: {requests: {cpu: 100m, memory: 64Mi}}
    config:
      - {name: default_pool_size, value: "25"}
      - {name: pool_mode, value: transaction}
"#,
    )
    .await;

    // The Pooler: ours, owned by the DatabaseCluster, in front of the rw instance.
    let pooler = engine_object(&poolers, "pooled-pooler-rw", "the Pooler", |_| true).await;
    assert_eq!(
        pooler.metadata.labels.as_ref().unwrap()[LABEL_MANAGED_BY],
        MANAGED_BY_VALUE
    );
    let owner = &pooler.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.uid.as_str(), owner.controller),
        (created.metadata.uid.as_deref().unwrap(), Some(true))
    );
    assert_eq!(pooler.spec.cluster.name, "pooled");
    assert_eq!(pooler.spec.instances, Some(2));
    let stored: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns.name, &ApiResource::erase::<Pooler>(&()));
    let stored = stored.get("pooled-pooler-rw").await.unwrap();
    let sent =
        dbaas_engines::cnpg::build_pooler(&clusters.get("pooled").await.unwrap(), false).unwrap();
    assert_not_pruned(
        &serde_json::to_value(&sent.spec).unwrap(),
        &stored.data["spec"],
    );
    assert_eq!(
        stored.data["spec"]["pgbouncer"],
        json!({ "parameters": { "default_pool_size": "25" }, "poolMode": "transaction", "paused": false })
    );
    assert_eq!(
        stored.data["spec"]["serviceTemplate"]["spec"]["type"], "LoadBalancer",
        "the pooler is what gets exposed"
    );
    let cnpg = engines.get("pooled").await.unwrap();
    assert_eq!(
        cnpg.spec.managed, None,
        "the instances are not exposed past the pooler"
    );

    // CloudNativePG runs the cluster, not yet the pooler: the endpoint is
    // the pooler's Service, and the cluster is not Ready.
    write_engine_status(&engines, "pooled", CNPG, healthy(3, image, "pooled")).await;
    let waiting = cluster_where(
        &clusters,
        "pooled",
        "PoolerStarting",
        has_condition("Ready", "False", "PoolerStarting"),
    )
    .await;
    assert_eq!(
        waiting.status.as_ref().unwrap().host.as_deref(),
        Some(format!("pooled-pooler-rw.{}.svc", ns.name).as_str())
    );
    assert_eq!(waiting.status.as_ref().unwrap().port, Some(5432));
    write_engine_status(
        &poolers,
        "pooled-pooler-rw",
        CNPG,
        json!({ "instances": 2, "phase": "active", "phaseReason": "Pooler is active" }),
    )
    .await;
    cluster_where(&clusters, "pooled", "Ready", in_phase(ClusterPhase::Ready)).await;

    // Proxy off: the Pooler is removed, the endpoint is the rw service again.
    clusters
        .patch(
            "pooled",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "proxy": null } })),
        )
        .await
        .unwrap();
    wait_gone(&poolers, "pooled-pooler-rw", TIMEOUT)
        .await
        .expect("the Pooler is removed");
    let direct = format!("pooled-rw.{}.svc", ns.name);
    cluster_where(&clusters, "pooled", "the rw endpoint", |c| {
        c.and_then(|c| c.status.as_ref())
            .and_then(|s| s.host.as_deref())
            == Some(direct.as_str())
    })
    .await;
    engine_object(&engines, "pooled", "the instances exposed again", |c| {
        c.spec.managed.is_some()
    })
    .await;

    // On again, then the cluster is deleted: the garbage collector takes the Pooler.
    clusters
        .patch(
            "pooled",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "proxy": { "type": "pgbouncer" } } })),
        )
        .await
        .unwrap();
    engine_object(&poolers, "pooled-pooler-rw", "the Pooler again", |p| {
        p.spec.instances == Some(1)
    })
    .await;
    clusters
        .delete("pooled", &DeleteParams::background())
        .await
        .unwrap();
    wait_gone(&poolers, "pooled-pooler-rw", TIMEOUT)
        .await
        .expect("the Pooler is garbage-collected");
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_pooler_that_is_not_ours_is_never_taken_over() {
    let (_client, ns, _operator) = setup("pooler-foreign").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let poolers: Api<Pooler> = ns.api();
    let foreign: Pooler = from_yaml(
        "apiVersion: postgresql.cnpg.io/v1\nkind: Pooler\nmetadata: {name: app-pooler-rw}\nspec: {cluster: {name: app}, instances: 5, pgbouncer: {poolMode: session}}",
    );
    poolers
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    let before = poolers.get("app-pooler-rw").await.unwrap();
    create_cluster(
        &clusters,
        "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: app}\nspec: {engine: {type: postgresql}, storage: {size: 1Gi}, proxy: {type: pgbouncer}}",
    )
    .await;
    let refused = cluster_where(
        &clusters,
        "app",
        "EngineObjectConflict",
        has_condition("Valid", "False", "EngineObjectConflict"),
    )
    .await;
    assert!(
        condition(&refused, "Valid")
            .message
            .contains("Pooler app-pooler-rw"),
        "{}",
        condition(&refused, "Valid").message
    );
    let after = poolers.get("app-pooler-rw").await.unwrap();
    assert_eq!(
        before.metadata.resource_version,
        after.metadata.resource_version
    );
    ns.delete().await.unwrap();
}
