//! The dbaas.io/v1 CRDs in a real API server: the seed's samples are valid
//! with nothing pruned, and invalid objects are rejected with messages a user
//! understands (OpenAPI schema and CEL rules).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use common::{assert_not_pruned, from_yaml, repo_file};
use dbaas_api::{DatabaseCluster, OpsRequest};
use dbaas_testkit::{TestNamespace, shared};
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

async fn setup(prefix: &str) -> (Client, TestNamespace) {
    let client = shared().client().await.expect("client");
    let ns = TestNamespace::create(&client, prefix)
        .await
        .expect("namespace");
    (client, ns)
}

/// Creates an object from raw JSON (bypassing our own types, which would
/// refuse bad input client-side) and returns the API server's answer.
async fn create_raw(
    ns: &TestNamespace,
    client: &Client,
    object: Value,
) -> Result<DynamicObject, kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns.name,
        &ApiResource::erase::<DatabaseCluster>(&()),
    );
    let object: DynamicObject = serde_json::from_value(object).expect("object shape");
    api.create(&PostParams::default(), &object).await
}

fn rejection(result: Result<DynamicObject, kube::Error>) -> String {
    match result {
        Ok(c) => panic!("accepted an invalid object: {:?}", c.data),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            status.message.clone()
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
}

fn cluster(name: &str, spec: Value) -> Value {
    json!({ "apiVersion": "dbaas.io/v1", "kind": "DatabaseCluster", "metadata": { "name": name }, "spec": spec })
}

#[tokio::test]
async fn seed_samples_are_valid_and_nothing_is_pruned() {
    let (client, ns) = setup("seed").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let ops: Api<OpsRequest> = ns.api();

    let sample: Value = from_yaml(&repo_file("deploy/samples/postgresql-cluster.yaml"));
    let stored = clusters
        .create(
            &PostParams::default(),
            &serde_json::from_value(sample.clone()).unwrap(),
        )
        .await
        .expect("the seed's DatabaseCluster sample is accepted");
    let stored = serde_json::to_value(&stored).unwrap();
    assert_not_pruned(&sample["spec"], &stored["spec"]);

    for file in [
        "deploy/samples/ops/scale-postgres.yaml",
        "deploy/samples/ops/backup-postgres.yaml",
    ] {
        let sample: Value = from_yaml(&repo_file(file));
        let stored = ops
            .create(
                &PostParams::default(),
                &serde_json::from_value(sample.clone()).unwrap(),
            )
            .await
            .unwrap_or_else(|e| panic!("{file} rejected: {e}"));
        assert_not_pruned(
            &sample["spec"],
            &serde_json::to_value(&stored).unwrap()["spec"],
        );
    }

    // A sample per engine, and a template with a cluster it sizes.
    for file in [
        "deploy/samples/mysql-cluster.yaml",
        "deploy/samples/mongodb-cluster.yaml",
        "deploy/samples/mariadb-cluster.yaml",
        "deploy/samples/cluster-template.yaml",
    ] {
        let docs: Vec<Value> = serde_saphyr::from_multiple(&repo_file(file)).unwrap();
        assert!(!docs.is_empty(), "{file} holds objects");
        for doc in docs {
            let resource = match doc["kind"].as_str() {
                Some("DatabaseCluster") => ApiResource::erase::<DatabaseCluster>(&()),
                Some("DatabaseClusterTemplate") => {
                    ApiResource::erase::<dbaas_api::DatabaseClusterTemplate>(&())
                }
                other => panic!("{file}: unexpected kind {other:?}"),
            };
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &resource);
            let stored = api
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(doc.clone()).unwrap(),
                )
                .await
                .unwrap_or_else(|e| panic!("{file} rejected: {e}"));
            assert_not_pruned(&doc["spec"], &stored.data["spec"]);
        }
    }

    // `kubectl get dbaas` lists every kind: the category is on each CRD.
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    for crd in dbaas_api::crds::all() {
        let name = crd.metadata.name.unwrap();
        let served = crds
            .get(&name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let categories = served.spec.names.categories.unwrap_or_default();
        assert!(
            categories.contains(&"dbaas".to_string()),
            "{name} lacks the dbaas category"
        );
    }
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn invalid_clusters_are_rejected_on_create() {
    let (client, ns) = setup("reject").await;
    let api: Api<DatabaseCluster> = ns.api();
    let pg = |extra: Value| {
        let mut spec = json!({ "engine": { "type": "postgresql" }, "storage": { "size": "1Gi" } });
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        spec
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "size-zero",
            pg(json!({ "clusterSize": 0 })),
            "should be greater than or equal to 1",
        ),
        (
            "mysql-even",
            json!({ "engine": { "type": "mysql" }, "clusterSize": 2, "storage": { "size": "1Gi" } }),
            "mysql, mongodb and galera mariadb need an odd clusterSize",
        ),
        (
            "mongo-even",
            json!({ "engine": { "type": "mongodb" }, "clusterSize": 4, "storage": { "size": "1Gi" } }),
            "mysql, mongodb and galera mariadb need an odd clusterSize",
        ),
        (
            "bad-engine",
            json!({ "engine": { "type": "oracle" }, "storage": { "size": "1Gi" } }),
            "Unsupported value: \"oracle\"",
        ),
        (
            "bad-size",
            pg(json!({ "storage": { "size": "ten gigs" } })),
            "storage.size must be a positive quantity such as 10Gi",
        ),
        (
            "zero-size",
            pg(json!({ "storage": { "size": "0" } })),
            "storage.size must be a positive quantity",
        ),
        (
            "bad-proxy",
            pg(json!({ "proxy": { "type": "haproxy" } })),
            "proxy.type must fit the engine",
        ),
        (
            "bad-cidr",
            pg(json!({ "expose": { "type": "external", "ipSourceRanges": ["not-a-cidr"] } })),
            "must be a CIDR",
        ),
        (
            "bad-version",
            pg(json!({ "engine": { "type": "postgresql", "version": "latest" } })),
            "spec.engine.version",
        ),
        (
            "two-sources",
            pg(
                json!({ "dataSource": { "backupName": "b", "backupSource": { "storageName": "s", "path": "p" } } }),
            ),
            "exactly one of backupName or backupSource",
        ),
        (
            "no-storage",
            json!({ "engine": { "type": "postgresql" } }),
            "spec.storage: Required value",
        ),
        (
            "a-name-that-is-far-too-long-for-engine-operators-to-derive-names",
            pg(json!({})),
            "metadata.name must be at most 50 characters",
        ),
    ];
    for (name, spec, expected) in cases {
        let message = rejection(create_raw(&ns, &client, cluster(name, spec)).await);
        assert!(
            message.contains(expected),
            "{name}: expected {expected:?} in {message:?}"
        );
    }
    assert!(
        api.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "nothing was stored"
    );
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn invalid_updates_are_rejected_and_the_stored_object_is_unchanged() {
    let (client, ns) = setup("update").await;
    let api: Api<DatabaseCluster> = ns.api();
    let create = |name: &str, engine: &str, size: i32| {
        cluster(
            name,
            json!({ "engine": { "type": engine }, "clusterSize": size, "storage": { "size": "10Gi", "class": "fast" } }),
        )
    };
    create_raw(&ns, &client, create("pg", "postgresql", 1))
        .await
        .unwrap();
    create_raw(&ns, &client, create("single", "mysql", 1))
        .await
        .unwrap();
    create_raw(&ns, &client, create("trio", "mongodb", 3))
        .await
        .unwrap();

    let patch = |spec: Value| Patch::Merge(json!({ "spec": spec }));
    let params = PatchParams::default();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "pg",
            json!({ "engine": { "type": "mysql" } }),
            "engine.type is immutable",
        ),
        (
            "pg",
            json!({ "storage": { "size": "5Gi" } }),
            "storage.size cannot shrink",
        ),
        (
            "pg",
            json!({ "storage": { "class": "slow" } }),
            "storage.class is immutable",
        ),
        (
            "pg",
            json!({ "dataSource": { "backupName": "b" } }),
            "dataSource is only read when the cluster is created",
        ),
        (
            "single",
            json!({ "clusterSize": 3 }),
            "cannot grow to cluster mode",
        ),
        (
            "trio",
            json!({ "clusterSize": 1 }),
            "cannot be scaled below 3",
        ),
        (
            "trio",
            json!({ "clusterSize": 4 }),
            "need an odd clusterSize",
        ),
    ];
    for (name, spec, expected) in cases {
        let before = api.get(name).await.unwrap();
        match api.patch(name, &params, &patch(spec.clone())).await {
            Ok(_) => panic!("{name}: accepted {spec}"),
            Err(kube::Error::Api(status)) => {
                assert!(
                    status.message.contains(expected),
                    "{name}: expected {expected:?} in {:?}",
                    status.message
                )
            }
            Err(other) => panic!("{name}: {other}"),
        }
        let after = api.get(name).await.unwrap();
        assert_eq!(
            before.spec, after.spec,
            "{name}: a rejected update changed nothing"
        );
    }

    // Allowed changes go through: grow storage, scale a cluster-mode engine 3 -> 5 -> 3.
    api.patch(
        "pg",
        &params,
        &patch(json!({ "storage": { "size": "20Gi" }, "clusterSize": 2 })),
    )
    .await
    .unwrap();
    api.patch("trio", &params, &patch(json!({ "clusterSize": 5 })))
        .await
        .unwrap();
    api.patch("trio", &params, &patch(json!({ "clusterSize": 3 })))
        .await
        .unwrap();
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn invalid_ops_requests_are_rejected() {
    let (_client, ns) = setup("ops").await;
    let api: Api<OpsRequest> = ns.api();
    let ops = |name: &str, spec: Value| -> OpsRequest {
        serde_json::from_value(json!({ "apiVersion": "dbaas.io/v1", "kind": "OpsRequest", "metadata": { "name": name }, "spec": spec }))
            .unwrap()
    };
    let missing = api
        .create(
            &PostParams::default(),
            &ops(
                "scale",
                json!({ "clusterRef": { "name": "c" }, "type": "HorizontalScaling" }),
            ),
        )
        .await
        .unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("type HorizontalScaling needs horizontalScaling"),
        "{missing}"
    );

    api.create(
        &PostParams::default(),
        &ops(
            "restart",
            json!({ "clusterRef": { "name": "c" }, "type": "Restart" }),
        ),
    )
    .await
    .unwrap();
    let retarget = api
        .patch(
            "restart",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "clusterRef": { "name": "other" } } })),
        )
        .await
        .unwrap_err();
    assert!(
        retarget
            .to_string()
            .contains("type and clusterRef are immutable"),
        "{retarget}"
    );
    // The parameters of an operation cannot change under it.
    api.create(
        &PostParams::default(),
        &ops(
            "scale-up",
            json!({ "clusterRef": { "name": "c" }, "type": "HorizontalScaling",
                    "horizontalScaling": { "replicas": 3 } }),
        ),
    )
    .await
    .unwrap();
    for change in [
        json!({ "spec": { "horizontalScaling": { "replicas": 5 } } }),
        json!({ "spec": { "switchover": { "instanceName": "c-2" } } }),
    ] {
        let edited = api
            .patch("scale-up", &PatchParams::default(), &Patch::Merge(change))
            .await
            .unwrap_err();
        assert!(
            edited
                .to_string()
                .contains("the operation's parameters are immutable"),
            "{edited}"
        );
    }
    let kept = api.get("scale-up").await.unwrap();
    assert_eq!(kept.spec.horizontal_scaling.unwrap().replicas, 3);
    // Its deadline and clean-up may be changed.
    api.patch(
        "scale-up",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "timeoutSeconds": 600, "ttlSecondsAfterSucceed": 60 } })),
    )
    .await
    .unwrap();
    // cancel may change.
    api.patch(
        "restart",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "cancel": true } })),
    )
    .await
    .unwrap();
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn invalid_database_servers_are_rejected() {
    let (client, ns) = setup("server-rules").await;
    let servers: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns.name,
        &ApiResource::erase::<dbaas_api::DatabaseServer>(&()),
    );
    let server = |name: &str, spec: Value| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "dbaas.io/v1", "kind": "DatabaseServer",
            "metadata": {"name": name}, "spec": spec,
        }))
        .expect("object shape")
    };
    let credentials = json!({
        "username": {"name": "admin", "key": "username"},
        "password": {"name": "admin", "key": "password"},
    });
    let cases = [
        (
            "strategy-on-mysql",
            json!({"engine": "mysql", "host": "db", "adminCredentials": credentials,
                   "createDatabaseStrategy": "FILE_COPY"}),
            "createDatabaseStrategy is a PostgreSQL setting",
        ),
        (
            "unknown-strategy",
            json!({"engine": "postgres", "host": "db", "adminCredentials": credentials,
                   "createDatabaseStrategy": "COPY"}),
            "Unsupported value: \"COPY\"",
        ),
        (
            "host-and-cluster",
            json!({"engine": "postgres", "host": "db", "clusterRef": {"name": "c"},
                   "adminCredentials": credentials}),
            "set exactly one of host",
        ),
        (
            "no-credentials",
            json!({"engine": "postgres", "host": "db"}),
            "an external server needs adminCredentials",
        ),
    ];
    for (name, spec, expected) in cases {
        let message = rejection(
            servers
                .create(&PostParams::default(), &server(name, spec))
                .await,
        );
        assert!(message.contains(expected), "{name}: {message}");
    }
    let accepted = servers
        .create(
            &PostParams::default(),
            &server(
                "file-copy",
                json!({"engine": "postgres", "host": "db", "adminCredentials": credentials,
                       "createDatabaseStrategy": "FILE_COPY"}),
            ),
        )
        .await
        .expect("a PostgreSQL server may choose FILE_COPY");
    assert_eq!(accepted.data["spec"]["createDatabaseStrategy"], "FILE_COPY");
    ns.delete().await.unwrap();
}

/// Found when the end-to-end tests first pointed an engine at local images:
/// a default version with no allowedVersions (every offered version is
/// allowed) was refused with CEL's "no such key: allowedVersions".
#[tokio::test]
async fn an_engine_default_version_needs_no_allowed_versions() {
    let (client, ns) = setup("engine-rules").await;
    let engines: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns.name,
        &ApiResource::erase::<dbaas_api::DatabaseEngine>(&()),
    );
    let engine = |name: &str, spec: Value| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "dbaas.io/v1", "kind": "DatabaseEngine",
            "metadata": {"name": name}, "spec": spec,
        }))
        .expect("object shape")
    };
    let accepted = engines
        .create(
            &PostParams::default(),
            &engine(
                "postgresql",
                json!({"type": "postgresql", "defaultVersion": "17.12",
                       "images": {"17.12": "localhost/dbaas/postgresql:17.12"}}),
            ),
        )
        .await
        .expect("a default version without allowedVersions");
    assert_eq!(accepted.data["spec"]["defaultVersion"], "17.12");
    let message = rejection(
        engines
            .create(
                &PostParams::default(),
                &engine(
                    "mysql",
                    json!({"type": "mysql", "defaultVersion": "8.0.36-28.1",
                           "allowedVersions": ["8.4.0-1.1"]}),
                ),
            )
            .await,
    );
    assert!(
        message.contains("defaultVersion must be one of allowedVersions"),
        "{message}"
    );
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn templates_are_listed_by_engine_with_a_field_selector() {
    use dbaas_api::{BackupScheduleTemplate, DatabaseClusterTemplate};
    use kube::api::ListParams;
    let (_client, ns) = setup("templates-by-engine").await;
    let cluster_templates: Api<DatabaseClusterTemplate> = ns.api();
    for (name, engine) in [
        ("pg-small", "postgresql"),
        ("my-small", "mysql"),
        ("pg-large", "postgresql"),
    ] {
        let template: DatabaseClusterTemplate = serde_json::from_value(json!({
            "apiVersion": "dbaas.io/v1", "kind": "DatabaseClusterTemplate",
            "metadata": {"name": name},
            "spec": {"engineType": engine},
        }))
        .unwrap();
        cluster_templates
            .create(&PostParams::default(), &template)
            .await
            .unwrap();
    }
    let names = |list: Vec<String>| {
        let mut list = list;
        list.sort();
        list
    };
    let postgres = cluster_templates
        .list(&ListParams::default().fields("spec.engineType=postgresql"))
        .await
        .unwrap();
    assert_eq!(
        names(
            postgres
                .items
                .iter()
                .map(kube::ResourceExt::name_any)
                .collect()
        ),
        ["pg-large", "pg-small"]
    );
    let schedule_templates: Api<BackupScheduleTemplate> = ns.api();
    for (name, engine) in [("pg-nightly", Some("postgresql")), ("any-nightly", None)] {
        let template: BackupScheduleTemplate = serde_json::from_value(json!({
            "apiVersion": "dbaas.io/v1", "kind": "BackupScheduleTemplate",
            "metadata": {"name": name},
            "spec": {"engineType": engine, "schedules": [{"name": "nightly", "schedule": "0 2 * * *", "storageName": "s3"}]},
        }))
        .unwrap();
        schedule_templates
            .create(&PostParams::default(), &template)
            .await
            .unwrap();
    }
    let postgres_schedules = schedule_templates
        .list(&ListParams::default().fields("spec.engineType=postgresql"))
        .await
        .unwrap();
    assert_eq!(
        names(
            postgres_schedules
                .items
                .iter()
                .map(kube::ResourceExt::name_any)
                .collect()
        ),
        ["pg-nightly"]
    );
    ns.delete().await.unwrap();
}
