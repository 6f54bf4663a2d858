use dbaas_api::backup::BackupPhase;
use dbaas_api::cluster::DatabaseClusterSpec;
use dbaas_api::common::FIELD_MANAGER;
use dbaas_api::common::{LABEL_CLUSTER, LABEL_ENGINE, LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_engine_crds::cnpg_cluster::ClusterStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ManagedFieldsEntry, Time};
use k8s_openapi::jiff::Timestamp;
use pretty_assertions::assert_eq;
use serde_json::Value;

use super::backup::build_backup;
use super::*;

const SEED_SAMPLE: &str = r#"
apiVersion: dbaas.io/v1
kind: DatabaseCluster
metadata:
  name: my-postgres
  namespace: team-a
  uid: 7a1c1b64-0000-4000-8000-000000000001
spec:
  engine:
    type: postgresql
    version: "16.0"
  clusterSize: 3
  storage:
    size: 10Gi
  resources:
    requests:
      cpu: "1"
      memory: 2Gi
  backup:
    enabled: true
    schedule: "0 2 * * *"
  config:
    - name: max_connections
      value: "200"
"#;

fn seed() -> DatabaseCluster {
    serde_saphyr::from_str(SEED_SAMPLE).unwrap()
}

fn version() -> ResolvedVersion {
    ResolvedVersion {
        version: "16.0".into(),
        image: "ghcr.io/cloudnative-pg/postgresql:16.0".into(),
    }
}

fn with_spec(edit: impl FnOnce(&mut DatabaseClusterSpec)) -> DatabaseCluster {
    let mut cluster = seed();
    edit(&mut cluster.spec);
    cluster
}

#[test]
fn seed_sample_builds_the_cnpg_cluster() {
    let built = build(&seed(), &version()).unwrap();
    let c = &built.cluster;
    let json = serde_json::to_value(c).unwrap();
    assert_eq!(
        json["spec"],
        json!({
            "instances": 3,
            "imageName": "ghcr.io/cloudnative-pg/postgresql:16.0",
            "enableSuperuserAccess": true,
            "storage": { "size": "10Gi" },
            "resources": { "requests": { "cpu": "1", "memory": "2Gi" } },
            "postgresql": { "parameters": { "max_connections": "200" } },
        })
    );
    assert_eq!(c.metadata.name.as_deref(), Some("my-postgres"));
    assert_eq!(c.metadata.namespace.as_deref(), Some("team-a"));
    let labels = c.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[LABEL_MANAGED_BY], MANAGED_BY_VALUE);
    assert_eq!(labels[LABEL_CLUSTER], "my-postgres");
    assert_eq!(labels[LABEL_ENGINE], "postgresql");
    let owner = &c.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("DatabaseCluster", Some(true))
    );
    assert_eq!(
        c.metadata.annotations.as_ref().unwrap()[HIBERNATION_ANNOTATION],
        "off"
    );
    // The seed's short form names no storage: nothing is scheduled, and
    // the cluster says so.
    assert_eq!(
        built.unapplied.iter().map(|u| u.field).collect::<Vec<_>>(),
        vec!["backup.schedule"]
    );
    assert!(built.extra.is_empty());
}

#[test]
fn custom_credentials_secret_becomes_the_superuser_secret() {
    let cluster = with_spec(|s| s.credentials_secret_name = Some("pg-admin".into()));
    let built = build(&cluster, &version()).unwrap();
    assert_eq!(
        built.cluster.spec.superuser_secret.as_ref().unwrap().name,
        "pg-admin"
    );
    assert_eq!(credentials_secret_name(&cluster), "pg-admin");
    assert_eq!(credentials_secret_name(&seed()), "my-postgres-superuser");
}

#[test]
fn paused_hibernates() {
    let built = build(&with_spec(|s| s.paused = true), &version()).unwrap();
    assert_eq!(
        built.cluster.metadata.annotations.unwrap()[HIBERNATION_ANNOTATION],
        "on"
    );
}

#[test]
fn scheduling_maps_to_cnpg_affinity() {
    let cluster = with_spec(|s| {
        s.scheduling = Some(
            serde_json::from_value(json!({
                "nodeSelector": { "disk": "ssd" },
                "tolerations": [{ "key": "db", "operator": "Exists", "effect": "NoSchedule" }],
                "affinity": { "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{ "matchExpressions": [{ "key": "zone", "operator": "In", "values": ["a"] }] }]
                } } },
                "priorityClassName": "databases",
            }))
            .unwrap(),
        )
    });
    let spec = serde_json::to_value(build(&cluster, &version()).unwrap().cluster.spec).unwrap();
    assert_eq!(spec["affinity"]["nodeSelector"], json!({ "disk": "ssd" }));
    assert_eq!(spec["affinity"]["tolerations"][0]["key"], "db");
    assert_eq!(
        spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0]["matchExpressions"][0]["values"],
        json!(["a"])
    );
    assert_eq!(spec["priorityClassName"], "databases");
}

#[test]
fn external_expose_adds_a_load_balancer_service() {
    let cluster = with_spec(|s| {
        s.expose = Some(
            serde_json::from_value(json!({ "type": "external", "ipSourceRanges": ["10.0.0.0/8"] }))
                .unwrap(),
        )
    });
    let spec = serde_json::to_value(build(&cluster, &version()).unwrap().cluster.spec).unwrap();
    let service = &spec["managed"]["services"]["additional"][0];
    assert_eq!(service["selectorType"], "rw");
    assert_eq!(service["serviceTemplate"]["spec"]["type"], "LoadBalancer");
    assert_eq!(
        service["serviceTemplate"]["spec"]["loadBalancerSourceRanges"],
        json!(["10.0.0.0/8"])
    );
    assert_eq!(
        service["serviceTemplate"]["metadata"]["name"],
        "my-postgres-external"
    );
}

#[test]
fn data_source_not_looked_up_is_refused_rather_than_creating_an_empty_cluster() {
    let cluster = with_spec(|s| {
        s.data_source = Some(serde_json::from_value(json!({ "backupName": "nightly" })).unwrap())
    });
    let err = build(&cluster, &version()).unwrap_err();
    assert_eq!(err.reason(), "InvalidBackupSpec");
    assert!(
        err.to_string().contains("dataSource was not looked up"),
        "{err}"
    );
    assert!(Cnpg.restores_at_bootstrap());
}

// ---- status ----

fn engine_with(status: Option<ClusterStatus>, status_written: Option<&str>) -> Cluster {
    let mut c = build(&seed(), &version()).unwrap().cluster;
    c.status = status;
    c.metadata.resource_version = Some("101".into());
    if let Some(at) = status_written {
        c.metadata.managed_fields = Some(vec![
            ManagedFieldsEntry {
                manager: Some(FIELD_MANAGER.into()),
                operation: Some("Apply".into()),
                time: Some(time("2026-01-01T00:00:00Z")),
                ..Default::default()
            },
            ManagedFieldsEntry {
                manager: Some("cloudnative-pg".into()),
                operation: Some("Update".into()),
                subresource: Some("status".into()),
                time: Some(time(at)),
                ..Default::default()
            },
        ]);
    }
    c
}

fn time(s: &str) -> Time {
    Time(s.parse::<Timestamp>().unwrap())
}

fn healthy(instances: i64, ready: i64) -> ClusterStatus {
    ClusterStatus {
        phase: Some(phase::HEALTHY.into()),
        instances: Some(instances),
        ready_instances: Some(ready),
        image: Some("ghcr.io/cloudnative-pg/postgresql:16.0".into()),
        write_service: Some("my-postgres-rw".into()),
        current_primary: Some("my-postgres-1".into()),
        ..Default::default()
    }
}

fn input(applied_at: &Time, previous: Option<ClusterPhase>) -> ObserveInput<'_> {
    ObserveInput {
        desired_instances: 3,
        desired_image: "ghcr.io/cloudnative-pg/postgresql:16.0",
        applied_generation: Some(1),
        applied_at: Some(applied_at),
        applied_resource_version: Some("100"),
        paused: false,
        previous_phase: previous,
        now: None,
    }
}

#[test]
fn no_status_yet_is_pending() {
    let applied = time("2026-01-01T00:00:00Z");
    let o = observe(&engine_with(None, None), &input(&applied, None));
    assert_eq!(o.phase.phase, ClusterPhase::Pending);
    assert_eq!(o.host, None);
}

#[test]
fn healthy_and_seen_is_ready_with_endpoint() {
    let applied = time("2026-01-01T00:00:00Z");
    let o = observe(
        &engine_with(Some(healthy(3, 3)), Some("2026-01-01T00:00:05Z")),
        &input(&applied, Some(ClusterPhase::Creating)),
    );
    assert_eq!(o.phase.phase, ClusterPhase::Ready);
    assert_eq!(o.phase.reason, "EngineHealthy");
    assert!(o.saw_latest_spec);
    assert_eq!(o.host.as_deref(), Some("my-postgres-rw.team-a.svc"));
    assert_eq!(o.port, Some(5432));
    assert_eq!(o.ready_instances, 3);
}

#[test]
fn healthy_status_older_than_our_apply_is_not_ready() {
    // CNPG has no observedGeneration: a healthy status written before our
    // last apply says nothing about the spec we asked for.
    let applied = time("2026-01-01T00:10:00Z");
    let o = observe(
        &engine_with(Some(healthy(3, 3)), Some("2026-01-01T00:05:00Z")),
        &input(&applied, Some(ClusterPhase::Ready)),
    );
    assert!(!o.saw_latest_spec);
    assert_eq!(o.phase.phase, ClusterPhase::Updating);
    assert_eq!(o.phase.reason, "WaitingForEngine");
}

#[test]
fn status_in_the_same_second_counts_only_if_written_after_the_apply() {
    let applied = time("2026-01-01T00:00:05Z");
    let mut engine = engine_with(Some(healthy(3, 3)), Some("2026-01-01T00:00:05Z"));
    // The object changed since our apply (resourceVersion 100 -> 101).
    assert!(observe(&engine, &input(&applied, None)).saw_latest_spec);
    // Nothing written since our apply: that status predates it.
    engine.metadata.resource_version = Some("100".into());
    assert!(!observe(&engine, &input(&applied, None)).saw_latest_spec);
}

#[test]
fn our_own_status_writes_do_not_count_as_the_engine_seeing_the_spec() {
    let applied = time("2026-01-01T00:00:00Z");
    let mut engine = engine_with(Some(healthy(3, 3)), None);
    engine.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
        manager: Some(FIELD_MANAGER.into()),
        subresource: Some("status".into()),
        time: Some(time("2026-01-01T00:00:09Z")),
        ..Default::default()
    }]);
    assert!(!observe(&engine, &input(&applied, None)).saw_latest_spec);
}

#[test]
fn scaling_in_progress_is_updating_after_first_ready() {
    let applied = time("2026-01-01T00:00:00Z");
    let engine = engine_with(Some(healthy(3, 2)), Some("2026-01-01T00:00:01Z"));
    let o = observe(&engine, &input(&applied, Some(ClusterPhase::Ready)));
    assert_eq!(
        (o.phase.phase, o.phase.reason),
        (ClusterPhase::Updating, "Scaling")
    );
    let o = observe(&engine, &input(&applied, None));
    assert_eq!(o.phase.phase, ClusterPhase::Creating);
}

#[test]
fn old_image_still_running_is_rolling_out() {
    let applied = time("2026-01-01T00:00:00Z");
    let mut status = healthy(3, 3);
    status.image = Some("ghcr.io/cloudnative-pg/postgresql:15.0".into());
    let o = observe(
        &engine_with(Some(status), Some("2026-01-01T00:00:01Z")),
        &input(&applied, Some(ClusterPhase::Ready)),
    );
    assert_eq!(o.phase.reason, "RollingOut");
}

#[test]
fn every_known_phase_maps_and_unknown_text_is_tolerated() {
    let applied = time("2026-01-01T00:00:00Z");
    let cases = [
        (phase::FIRST_PRIMARY, ClusterPhase::Creating),
        (phase::CREATING_REPLICA, ClusterPhase::Creating),
        (phase::SWITCHOVER, ClusterPhase::Creating),
        (phase::UNRECOVERABLE, ClusterPhase::Error),
        (phase::CANNOT_CREATE_OBJECTS, ClusterPhase::Error),
        (phase::WAITING_FOR_USER, ClusterPhase::Error),
        ("Some phase from a newer CNPG", ClusterPhase::Unknown),
    ];
    for (text, expected) in cases {
        let status = ClusterStatus {
            phase: Some(text.into()),
            ..Default::default()
        };
        let o = observe(
            &engine_with(Some(status), Some("2026-01-01T00:00:01Z")),
            &input(&applied, None),
        );
        assert_eq!(o.phase.phase, expected, "{text}");
    }
    let status = ClusterStatus {
        phase: Some(phase::FAILOVER.into()),
        ..Default::default()
    };
    let o = observe(
        &engine_with(Some(status), Some("2026-01-01T00:00:01Z")),
        &input(&applied, Some(ClusterPhase::Ready)),
    );
    assert_eq!(o.phase.phase, ClusterPhase::Updating);
}

#[test]
fn paused_is_paused_once_cnpg_reports_hibernation() {
    let applied = time("2026-01-01T00:00:00Z");
    let mut status = healthy(3, 0);
    let mut paused_input = input(&applied, Some(ClusterPhase::Ready));
    paused_input.paused = true;
    let o = observe(
        &engine_with(Some(status.clone()), Some("2026-01-01T00:00:01Z")),
        &paused_input,
    );
    assert_eq!(o.phase.phase, ClusterPhase::Updating);
    status.conditions = Some(vec![Condition {
        type_: HIBERNATION_CONDITION.into(),
        status: "True".into(),
        reason: "Hibernated".into(),
        message: "Cluster has been hibernated".into(),
        last_transition_time: time("2026-01-01T00:00:01Z"),
        observed_generation: None,
    }]);
    let o = observe(
        &engine_with(Some(status), Some("2026-01-01T00:00:01Z")),
        &paused_input,
    );
    assert_eq!(o.phase.phase, ClusterPhase::Paused);
}

#[test]
fn silent_engine_matching_the_spec_is_ready_unconfirmed_only_after_the_quiet_period() {
    // CNPG wrote its healthy status before our last apply and nothing since.
    let applied = time("2026-01-01T00:10:00Z");
    let engine = engine_with(Some(healthy(3, 3)), Some("2026-01-01T00:05:00Z"));
    let soon = time("2026-01-01T00:11:00Z");
    let later = time("2026-01-01T00:12:01Z");
    let mut waiting = input(&applied, Some(ClusterPhase::Ready));
    waiting.now = Some(&soon);
    assert_eq!(observe(&engine, &waiting).phase.reason, "WaitingForEngine");
    let mut quiet = input(&applied, Some(ClusterPhase::Ready));
    quiet.now = Some(&later);
    let o = observe(&engine, &quiet);
    assert_eq!(
        (o.phase.phase, o.phase.reason),
        (ClusterPhase::Ready, "EngineHealthyUnconfirmed")
    );
    assert!(!o.saw_latest_spec);
    // What can be checked must still match: 5 asked, 3 running is never Ready.
    let mut five = input(&applied, Some(ClusterPhase::Ready));
    five.now = Some(&later);
    five.desired_instances = 5;
    assert_eq!(observe(&engine, &five).phase.phase, ClusterPhase::Updating);
}

// ---- PgBouncer pooler ----

fn pooled(proxy: Value) -> DatabaseCluster {
    with_spec(|s| s.proxy = Some(serde_json::from_value(proxy).unwrap()))
}

fn pooler_of(cluster: &DatabaseCluster) -> Pooler {
    let built = build(cluster, &version()).unwrap();
    assert_eq!(built.extra.len(), 1, "{:?}", built.extra);
    built.extra[0].clone().try_parse::<Pooler>().unwrap()
}

#[test]
fn pgbouncer_proxy_builds_a_pooler_owned_and_labelled_like_the_cluster() {
    let cluster = pooled(json!({
        "type": "pgbouncer",
        "replicas": 2,
        "resources": { "requests": { "cpu": "100m" }, "limits": { "memory": "64Mi" } },
        "config": [
            { "name": "default_pool_size", "value": "20" },
            { "name": "pool_mode", "value": "transaction" },
        ],
    }));
    let built = build(&cluster, &version()).unwrap();
    assert!(
        built.unapplied.iter().all(|u| u.field != "proxy"),
        "{:?}",
        built.unapplied
    );
    let object = &built.extra[0];
    let types = object.types.as_ref().unwrap();
    assert_eq!(
        (types.api_version.as_str(), types.kind.as_str()),
        ("postgresql.cnpg.io/v1", "Pooler")
    );
    assert_eq!(
        object.metadata.name.as_deref(),
        Some("my-postgres-pooler-rw")
    );
    assert_eq!(object.metadata.namespace.as_deref(), Some("team-a"));
    let labels = object.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[LABEL_MANAGED_BY], MANAGED_BY_VALUE);
    assert_eq!(labels[LABEL_CLUSTER], "my-postgres");
    let owner = &object.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("DatabaseCluster", "my-postgres", Some(true))
    );
    assert_eq!(
        object.data["spec"],
        json!({
            "cluster": { "name": "my-postgres" },
            "type": "rw",
            "instances": 2,
            "pgbouncer": {
                "parameters": { "default_pool_size": "20" },
                "poolMode": "transaction",
                "paused": false,
            },
            "template": { "spec": { "containers": [{
                "name": "pgbouncer",
                "resources": { "requests": { "cpu": "100m" }, "limits": { "memory": "64Mi" } },
            }] } },
        })
    );
}

#[test]
fn pooler_defaults_pauses_with_the_cluster_and_follows_node_placement() {
    let mut cluster = pooled(json!({ "type": "pgbouncer" }));
    cluster.spec.paused = true;
    cluster.spec.scheduling = Some(
        serde_json::from_value(json!({
            "nodeSelector": { "disk": "ssd" },
            "tolerations": [{ "key": "db", "operator": "Exists" }],
            "priorityClassName": "databases",
        }))
        .unwrap(),
    );
    let spec = serde_json::to_value(pooler_of(&cluster).spec).unwrap();
    assert_eq!(spec["instances"], DEFAULT_POOLER_INSTANCES);
    assert_eq!(spec["pgbouncer"], json!({ "paused": true }));
    assert_eq!(
        spec["template"]["spec"],
        json!({
            "containers": [{ "name": "pgbouncer" }],
            "nodeSelector": { "disk": "ssd" },
            "tolerations": [{ "key": "db", "operator": "Exists" }],
            "priorityClassName": "databases",
        })
    );
}

#[test]
fn with_a_pooler_the_pooler_is_exposed_not_the_instances() {
    let mut cluster = pooled(json!({ "type": "pgbouncer" }));
    cluster.spec.expose = Some(
        serde_json::from_value(json!({ "type": "external", "ipSourceRanges": ["10.0.0.0/8"] }))
            .unwrap(),
    );
    let built = build(&cluster, &version()).unwrap();
    assert_eq!(built.cluster.spec.managed, None);
    let spec = serde_json::to_value(pooler_of(&cluster).spec).unwrap();
    assert_eq!(
        spec["serviceTemplate"],
        json!({ "spec": { "type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8"] } })
    );
}

#[test]
fn no_pooler_without_pgbouncer_and_stray_proxy_settings_are_reported() {
    for proxy in [None, Some(json!({ "type": "none" }))] {
        let cluster = with_spec(|s| s.proxy = proxy.map(|p| serde_json::from_value(p).unwrap()));
        let built = build(&cluster, &version()).unwrap();
        assert!(built.extra.is_empty());
        assert!(built.unapplied.iter().all(|u| u.field != "proxy"));
    }
    let built = build(
        &pooled(json!({ "type": "none", "replicas": 2 })),
        &version(),
    )
    .unwrap();
    assert!(built.extra.is_empty());
    assert!(built.unapplied.iter().any(|u| u.field == "proxy"));
}

#[test]
fn pooler_without_pods_or_with_an_unknown_pool_mode_is_refused() {
    let err = build(
        &pooled(json!({ "type": "pgbouncer", "replicas": 0 })),
        &version(),
    )
    .unwrap_err();
    assert_eq!(err.reason(), "UnsupportedFeature");
    let err = build(
        &pooled(json!({ "type": "pgbouncer", "config": [{ "name": "pool_mode", "value": "statement" }] })),
        &version(),
    )
    .unwrap_err();
    assert_eq!(err.reason(), "InvalidSpec");
    assert!(err.to_string().contains("statement"), "{err}");
}

#[test]
fn prometheus_pod_monitor_reaches_the_pooler_too() {
    let cluster = with_spec(|s| {
        s.proxy = Some(serde_json::from_value(json!({ "type": "pgbouncer" })).unwrap());
        s.monitoring =
            Some(serde_json::from_value(json!({ "monitoringConfigName": "prom" })).unwrap());
    });
    let config: dbaas_api::MonitoringConfig = serde_saphyr::from_str(
        "apiVersion: dbaas.io/v1\nkind: MonitoringConfig\nmetadata: {name: prom, namespace: team-a}\nspec: {type: prometheus, prometheus: {podMonitor: true}}",
    )
    .unwrap();
    let built = build_with(
        &cluster,
        &version(),
        &BuildInput {
            monitoring: Some(&config),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        built.extra[0].data["spec"]["monitoring"],
        json!({ "enablePodMonitor": true })
    );
}

fn pooler_with(status: Option<Value>) -> Pooler {
    let mut pooler = pooler_of(&pooled(json!({ "type": "pgbouncer", "replicas": 2 })));
    pooler.status = status.map(|s| serde_json::from_value(s).unwrap());
    pooler
}

fn ready_observation() -> EngineObservation {
    let applied = time("2026-01-01T00:00:00Z");
    observe(
        &engine_with(Some(healthy(3, 3)), Some("2026-01-01T00:00:05Z")),
        &input(&applied, Some(ClusterPhase::Ready)),
    )
}

#[test]
fn the_pooler_service_is_the_endpoint_and_must_run_before_ready() {
    let applied = time("2026-01-01T00:00:00Z");
    let input = input(&applied, Some(ClusterPhase::Ready));
    assert_eq!(ready_observation().phase.phase, ClusterPhase::Ready);

    let o = observe_pooler(ready_observation(), &pooler_with(None), &input);
    assert_eq!(o.host.as_deref(), Some("my-postgres-pooler-rw.team-a.svc"));
    assert_eq!(o.port, Some(5432));
    assert_eq!(
        (o.phase.phase, o.phase.reason),
        (ClusterPhase::Updating, "PoolerStarting")
    );
    assert_eq!(
        o.phase.message,
        "0 of 2 PgBouncer pods of my-postgres-pooler-rw"
    );

    let o = observe_pooler(
        ready_observation(),
        &pooler_with(Some(json!({ "instances": 2, "phase": "active" }))),
        &input,
    );
    assert_eq!(
        (o.phase.phase, o.phase.reason),
        (ClusterPhase::Ready, "EngineHealthy")
    );

    let o = observe_pooler(
        ready_observation(),
        &pooler_with(Some(
            json!({ "instances": 2, "phase": "failed", "phaseReason": "bad parameter" }),
        )),
        &input,
    );
    assert_eq!(
        (o.phase.phase, o.phase.reason),
        (ClusterPhase::Error, "PoolerFailed")
    );
    assert!(
        o.phase.message.ends_with("bad parameter"),
        "{}",
        o.phase.message
    );

    // Before CloudNativePG reports the cluster's own service, no endpoint.
    let pending = observe(&engine_with(None, None), &input);
    let o = observe_pooler(pending, &pooler_with(None), &input);
    assert_eq!((o.host, o.phase.phase), (None, ClusterPhase::Pending));
}

#[test]
fn the_provider_finds_the_pooler_among_the_extra_objects() {
    let applied = time("2026-01-01T00:00:00Z");
    let input = input(&applied, Some(ClusterPhase::Ready));
    let mut object = to_dynamic(&pooler_with(Some(json!({ "instances": 1 })))).unwrap();
    object.metadata.namespace = Some("team-a".into());
    let o = Cnpg.observe_extra(ready_observation(), &[object], &input);
    assert_eq!(o.phase.reason, "PoolerStarting");
    assert_eq!(o.host.as_deref(), Some("my-postgres-pooler-rw.team-a.svc"));
    assert_eq!(Cnpg.extra_resources()[0].plural, "poolers");
    let o = Cnpg.observe_extra(ready_observation(), &[], &input);
    assert_eq!(o.host.as_deref(), Some("my-postgres-rw.team-a.svc"));
}

// ---- backups ----

fn storage(name: &str, spec: Value) -> StorageInput {
    let spec: dbaas_api::BackupStorageSpec = serde_json::from_value(spec).unwrap();
    let credentials_secret = (spec.type_
        != dbaas_api::backup_storage::BackupStorageType::Filesystem)
        .then(|| format!("{name}-credentials"));
    StorageInput {
        name: name.into(),
        spec,
        credentials_secret,
    }
}

/// A storage with its endpoint set on the struct (whatever the JSON name).
fn with_endpoint(mut storage: StorageInput, endpoint: &str) -> StorageInput {
    storage.spec.endpoint_url = Some(endpoint.into());
    storage
}

fn s3() -> StorageInput {
    let minio = storage(
        "minio",
        json!({
            "type": "s3",
            "bucket": "backups",
            "prefix": "/pg/",
            "credentialsSecretName": "minio-keys",
        }),
    );
    with_endpoint(minio, "http://minio.storage:9000")
}

fn with_backup(backup: Value) -> DatabaseCluster {
    with_spec(|s| s.backup = Some(serde_json::from_value(backup).unwrap()))
}

fn build_backups(
    cluster: &DatabaseCluster,
    storages: &[StorageInput],
) -> Result<Built, BuildError> {
    build_with(
        cluster,
        &version(),
        &BuildInput {
            backup_storages: storages,
            ..Default::default()
        },
    )
}

fn backup_json(built: &Built) -> Value {
    serde_json::to_value(&built.cluster.spec).unwrap()["backup"].clone()
}

fn scheduled_of(built: &Built) -> Vec<ScheduledBackup> {
    built
        .extra
        .iter()
        .map(|o| o.clone().try_parse::<ScheduledBackup>().unwrap())
        .collect()
}

fn fields(built: &Built) -> Vec<&'static str> {
    built.unapplied.iter().map(|u| u.field).collect()
}

fn invalid_backup(result: Result<Built, BuildError>) -> String {
    let err = result.unwrap_err();
    assert_eq!(err.reason(), "InvalidBackupSpec", "{err}");
    err.to_string()
}

#[test]
fn s3_storage_becomes_the_barman_object_store_with_a_scheduled_backup_per_schedule() {
    let cluster = with_backup(json!({
        "enabled": true,
        "schedule": "0 2 * * *",
        "storageName": "minio",
        "schedules": [
            { "name": "hourly", "schedule": "15 * * * 1-5", "storageName": "minio" },
            { "name": "off", "enabled": false, "schedule": "0 3 * * *", "storageName": "minio" },
        ],
    }));
    let built = build_backups(&cluster, &[s3()]).unwrap();
    assert_eq!(
        backup_json(&built),
        json!({
            "barmanObjectStore": {
                "destinationPath": "s3://backups/pg/team-a/my-postgres",
                "endpointURL": "http://minio.storage:9000",
                "s3Credentials": {
                    "accessKeyId": { "name": "minio-credentials", "key": "AWS_ACCESS_KEY_ID" },
                    "secretAccessKey": { "name": "minio-credentials", "key": "AWS_SECRET_ACCESS_KEY" },
                },
            },
        })
    );
    assert_eq!(fields(&built), Vec::<&str>::new());

    let scheduled = scheduled_of(&built);
    assert_eq!(
        scheduled
            .iter()
            .map(|s| (s.metadata.name.clone().unwrap(), s.spec.schedule.clone()))
            .collect::<Vec<_>>(),
        vec![
            ("my-postgres-default".to_owned(), "0 0 2 * * *".to_owned()),
            ("my-postgres-hourly".to_owned(), "0 15 * * * 1-5".to_owned()),
        ]
    );
    let json = serde_json::to_value(&scheduled[1]).unwrap();
    assert_eq!(
        json["spec"],
        json!({
            "cluster": { "name": "my-postgres" },
            "schedule": "0 15 * * * 1-5",
            "method": "barmanObjectStore",
            "backupOwnerReference": "self",
            "suspend": false,
        })
    );
    assert_eq!(json["metadata"]["namespace"], "team-a");
    assert_eq!(json["metadata"]["labels"][LABEL_CLUSTER], "my-postgres");
    assert_eq!(json["metadata"]["labels"][LABEL_ENGINE], "postgresql");
    assert_eq!(
        json["metadata"]["labels"][LABEL_MANAGED_BY],
        MANAGED_BY_VALUE
    );
    let owner = &scheduled[1].metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("DatabaseCluster", "my-postgres", Some(true))
    );
    // The operator watches and prunes ScheduledBackups like the Pooler.
    assert!(
        Cnpg.extra_resources()
            .iter()
            .any(|r| r.plural == "scheduledbackups" && r.group == "postgresql.cnpg.io")
    );
}

#[test]
fn s3_settings_cloudnativepg_has_no_value_field_for_are_reported() {
    let mut storage = s3();
    storage.spec.region = Some("eu-west-1".into());
    storage.spec.force_path_style = Some(true);
    storage.spec.verify_tls = false;
    storage.spec.endpoint_url = None;
    storage.spec.prefix = None;
    let cluster = with_backup(json!({
        "enabled": true,
        "schedules": [
            { "name": "daily", "schedule": "0 2 * * *", "retentionCopies": 7, "storageName": "minio" },
        ],
    }));
    let built = build_backups(&cluster, &[storage]).unwrap();
    assert_eq!(
        backup_json(&built)["barmanObjectStore"]["destinationPath"],
        "s3://backups/team-a/my-postgres"
    );
    assert_eq!(
        backup_json(&built)["barmanObjectStore"].get("endpointURL"),
        None
    );
    assert_eq!(backup_json(&built).get("retentionPolicy"), None);
    assert_eq!(
        fields(&built),
        vec![
            "backup.retentionCopies",
            "BackupStorage.region",
            "BackupStorage.forcePathStyle",
            "BackupStorage.verifyTLS",
        ]
    );
    assert_eq!(scheduled_of(&built).len(), 1);
}

#[test]
fn gcs_storage_uses_the_service_account_key() {
    let gcs = storage(
        "gcs",
        json!({ "type": "gcs", "bucket": "pg-backups", "credentialsSecretName": "gcs-sa" }),
    );
    let gcs = with_endpoint(gcs, "https://storage.example.com");
    let cluster =
        with_backup(json!({ "enabled": true, "schedule": "0 2 * * *", "storageName": "gcs" }));
    let built = build_backups(&cluster, &[gcs]).unwrap();
    assert_eq!(
        backup_json(&built),
        json!({
            "barmanObjectStore": {
                "destinationPath": "gs://pg-backups/team-a/my-postgres",
                "googleCredentials": {
                    "applicationCredentials": { "name": "gcs-credentials", "key": "GCS_CREDENTIALS" },
                },
            },
        })
    );
    assert_eq!(fields(&built), vec!["BackupStorage.endpointURL"]);
}

#[test]
fn azure_storage_puts_the_blob_endpoint_in_the_destination_and_requires_it() {
    let azure = |endpoint: Option<&str>| {
        let azure = storage(
            "azure",
            json!({ "type": "azure", "bucket": "pg", "credentialsSecretName": "azure-keys" }),
        );
        match endpoint {
            Some(endpoint) => with_endpoint(azure, endpoint),
            None => azure,
        }
    };
    let cluster =
        with_backup(json!({ "enabled": true, "schedule": "0 2 * * *", "storageName": "azure" }));
    let built = build_backups(
        &cluster,
        &[azure(Some("https://acct.blob.core.windows.net/"))],
    )
    .unwrap();
    assert_eq!(
        backup_json(&built),
        json!({
            "barmanObjectStore": {
                "destinationPath": "https://acct.blob.core.windows.net/pg/team-a/my-postgres",
                "azureCredentials": {
                    "storageAccount": { "name": "azure-credentials", "key": "AZURE_STORAGE_ACCOUNT_NAME" },
                    "storageKey": { "name": "azure-credentials", "key": "AZURE_STORAGE_ACCOUNT_KEY" },
                },
            },
        })
    );
    assert_eq!(fields(&built), Vec::<&str>::new());

    let why = invalid_backup(build_backups(&cluster, &[azure(None)]));
    assert!(why.contains("endpointURL"), "{why}");
}

#[test]
fn filesystem_storage_is_refused() {
    let pvc = storage(
        "nfs",
        json!({ "type": "filesystem", "persistentVolumeClaim": "backups" }),
    );
    let cluster =
        with_backup(json!({ "enabled": true, "schedule": "0 2 * * *", "storageName": "nfs" }));
    let why = invalid_backup(build_backups(&cluster, &[pvc]));
    assert!(why.contains("object stores only"), "{why}");
}

#[test]
fn every_schedule_and_pitr_must_use_one_storage() {
    let gcs = storage(
        "gcs",
        json!({ "type": "gcs", "bucket": "b", "credentialsSecretName": "gcs-sa" }),
    );
    let two_schedules = with_backup(json!({
        "enabled": true,
        "schedule": "0 2 * * *",
        "storageName": "minio",
        "schedules": [{ "name": "weekly", "schedule": "0 4 * * 0", "storageName": "gcs" }],
    }));
    let why = invalid_backup(build_backups(&two_schedules, &[s3(), gcs.clone()]));
    assert!(why.contains("one object store"), "{why}");
    assert!(why.contains("\"gcs\", \"minio\""), "{why}");

    let pitr_elsewhere = with_backup(json!({
        "enabled": true,
        "schedule": "0 2 * * *",
        "storageName": "minio",
        "pitr": { "enabled": true, "storageName": "gcs" },
    }));
    let why = invalid_backup(build_backups(&pitr_elsewhere, &[s3(), gcs]));
    assert!(why.contains("one object store"), "{why}");
}

#[test]
fn a_storage_the_operator_did_not_find_is_refused() {
    let cluster =
        with_backup(json!({ "enabled": true, "schedule": "0 2 * * *", "storageName": "minio" }));
    let why = invalid_backup(build_backups(&cluster, &[]));
    assert!(why.contains("\"minio\" was not found"), "{why}");
}

#[test]
fn disabled_backups_still_declare_the_storage_but_schedule_nothing() {
    let cluster = with_backup(json!({
        "enabled": false,
        "schedule": "0 2 * * *",
        "storageName": "minio",
        "schedules": [{ "name": "hourly", "schedule": "0 * * * *", "storageName": "minio" }],
    }));
    let built = build_backups(&cluster, &[s3()]).unwrap();
    assert_eq!(
        backup_json(&built)["barmanObjectStore"]["destinationPath"],
        "s3://backups/pg/team-a/my-postgres"
    );
    assert!(built.extra.is_empty(), "{:?}", built.extra);
    assert_eq!(fields(&built), Vec::<&str>::new());
}

#[test]
fn pitr_is_the_object_store_wal_archive() {
    // PITR alone: the store is declared (CloudNativePG then archives WAL),
    // no schedule runs.
    let pitr_only = with_backup(json!({ "pitr": { "enabled": true, "storageName": "minio" } }));
    let built = build_backups(&pitr_only, &[s3()]).unwrap();
    assert_eq!(
        backup_json(&built)["barmanObjectStore"]["destinationPath"],
        "s3://backups/pg/team-a/my-postgres"
    );
    assert!(built.extra.is_empty());
    assert_eq!(fields(&built), Vec::<&str>::new());

    // PITR falls back to the short form's storage.
    let fallback = with_backup(json!({
        "enabled": true,
        "schedule": "0 2 * * *",
        "storageName": "minio",
        "pitr": { "enabled": true },
    }));
    let built = build_backups(&fallback, &[s3()]).unwrap();
    assert!(backup_json(&built)["barmanObjectStore"].is_object());
    assert_eq!(fields(&built), Vec::<&str>::new());

    // Nowhere to archive to: the cluster is built and says so.
    let nowhere = with_backup(json!({ "pitr": { "enabled": true } }));
    let built = build_backups(&nowhere, &[]).unwrap();
    assert_eq!(backup_json(&built), Value::Null);
    assert_eq!(fields(&built), vec!["backup.pitr"]);

    // WAL archiving cannot be turned off while a store is configured.
    let off = with_backup(json!({
        "enabled": true,
        "schedule": "0 2 * * *",
        "storageName": "minio",
        "pitr": { "enabled": false },
    }));
    let built = build_backups(&off, &[s3()]).unwrap();
    assert!(backup_json(&built)["barmanObjectStore"].is_object());
    assert_eq!(fields(&built), vec!["backup.pitr"]);
}

#[test]
fn a_bad_cron_is_refused() {
    for cron in ["0 2 * *", "0 0 2 * * *", "61 2 * * *", "0 2 * * mon-xyz"] {
        let named = with_backup(json!({
            "enabled": true,
            "schedules": [{ "name": "bad", "schedule": cron, "storageName": "minio" }],
        }));
        let why = invalid_backup(build_backups(&named, &[s3()]));
        assert!(why.contains(cron), "{cron}: {why}");
        // The short form is checked even when it cannot run.
        let short = with_backup(json!({ "enabled": true, "schedule": cron }));
        invalid_backup(build_backups(&short, &[]));
    }
}

#[test]
fn a_named_schedule_cannot_take_the_short_forms_name() {
    let cluster = with_backup(json!({
        "enabled": true,
        "schedule": "0 2 * * *",
        "storageName": "minio",
        "schedules": [{ "name": "default", "schedule": "0 4 * * *", "storageName": "minio" }],
    }));
    let why = invalid_backup(build_backups(&cluster, &[s3()]));
    assert!(why.contains("\"default\""), "{why}");
}

#[test]
fn a_paused_cluster_suspends_its_schedules() {
    let mut cluster =
        with_backup(json!({ "enabled": true, "schedule": "0 2 * * *", "storageName": "minio" }));
    cluster.spec.paused = true;
    let built = build_backups(&cluster, &[s3()]).unwrap();
    assert_eq!(scheduled_of(&built)[0].spec.suspend, Some(true));
}

#[test]
fn the_provider_returns_schedules_beside_the_pooler() {
    let mut cluster =
        with_backup(json!({ "enabled": true, "schedule": "0 2 * * *", "storageName": "minio" }));
    cluster.spec.proxy = Some(serde_json::from_value(json!({ "type": "pgbouncer" })).unwrap());
    let storages = [s3()];
    let built = Cnpg
        .build(
            &cluster,
            &version(),
            &BuildInput {
                backup_storages: &storages,
                ..Default::default()
            },
        )
        .unwrap();
    let kinds: Vec<_> = built
        .extra
        .iter()
        .map(|o| o.types.as_ref().unwrap().kind.clone())
        .collect();
    assert_eq!(kinds, vec!["Pooler", "ScheduledBackup"]);
    assert_eq!(
        built.object.data["spec"]["backup"]["barmanObjectStore"]["destinationPath"],
        "s3://backups/pg/team-a/my-postgres"
    );
}

// ---- on-demand backups ----

fn database_backup() -> DatabaseBackup {
    serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1",
        "kind": "DatabaseBackup",
        "metadata": {
            "name": "before-upgrade",
            "namespace": "team-a",
            "uid": "7a1c1b64-0000-4000-8000-0000000000bb",
        },
        "spec": { "clusterName": "my-postgres" },
    }))
    .unwrap()
}

fn archiving_to_minio() -> DatabaseCluster {
    with_backup(json!({ "enabled": true, "schedule": "0 2 * * *", "storageName": "minio" }))
}

#[test]
fn build_backup_makes_a_barman_backup_owned_by_the_database_backup() {
    let object = Cnpg
        .build_backup(&database_backup(), &archiving_to_minio(), &s3())
        .unwrap();
    assert_eq!(
        serde_json::to_value(&object).unwrap(),
        json!({
            "apiVersion": "postgresql.cnpg.io/v1",
            "kind": "Backup",
            "metadata": {
                "name": "before-upgrade",
                "namespace": "team-a",
                "labels": {
                    LABEL_MANAGED_BY: MANAGED_BY_VALUE,
                    LABEL_CLUSTER: "my-postgres",
                    LABEL_ENGINE: "postgresql",
                    dbaas_api::backup::LABEL_BACKUP: "before-upgrade",
                },
                "ownerReferences": [{
                    "apiVersion": "dbaas.io/v1",
                    "kind": "DatabaseBackup",
                    "name": "before-upgrade",
                    "uid": "7a1c1b64-0000-4000-8000-0000000000bb",
                    "controller": true,
                }],
            },
            "spec": {
                "cluster": { "name": "my-postgres" },
                "method": "barmanObjectStore",
            },
        })
    );
    assert_eq!(Cnpg.backup_resource().unwrap().plural, "backups");
}

#[test]
fn build_backup_refuses_a_storage_the_cluster_does_not_archive_to() {
    let gcs = storage(
        "gcs",
        json!({ "type": "gcs", "bucket": "b", "credentialsSecretName": "gcs-sa" }),
    );
    let err = Cnpg
        .build_backup(&database_backup(), &archiving_to_minio(), &gcs)
        .unwrap_err();
    assert_eq!(err.reason(), "InvalidBackupSpec");
    assert!(err.to_string().contains("\"minio\""), "{err}");

    let err = Cnpg
        .build_backup(&database_backup(), &seed(), &s3())
        .unwrap_err();
    assert_eq!(err.reason(), "InvalidBackupSpec");
    assert!(err.to_string().contains("backup.storageName"), "{err}");

    let pvc = storage(
        "minio",
        json!({ "type": "filesystem", "persistentVolumeClaim": "backups" }),
    );
    let err = Cnpg
        .build_backup(&database_backup(), &archiving_to_minio(), &pvc)
        .unwrap_err();
    assert!(err.to_string().contains("object stores only"), "{err}");
}

fn engine_backup(status: Value) -> DynamicObject {
    let mut backup = serde_json::to_value(
        build_backup(&database_backup(), &archiving_to_minio(), &s3()).unwrap(),
    )
    .unwrap();
    backup["status"] = status;
    serde_json::from_value(backup).unwrap()
}

fn observed(status: Value) -> BackupObservation {
    Cnpg.observe_backup(&engine_backup(status))
}

#[test]
fn every_cnpg_backup_phase_maps_to_ours() {
    use super::backup::backup_phase as p;
    let cases = [
        (p::PENDING, BackupPhase::Pending),
        (p::STARTED, BackupPhase::Running),
        (p::RUNNING, BackupPhase::Running),
        (p::FINALIZING, BackupPhase::Running),
        (p::COMPLETED, BackupPhase::Succeeded),
        (p::FAILED, BackupPhase::Failed),
        (p::WAL_ARCHIVING_FAILING, BackupPhase::Failed),
        ("somethingNew", BackupPhase::Pending),
    ];
    for (text, phase) in cases {
        assert_eq!(observed(json!({ "phase": text })).phase, phase, "{text}");
    }
    assert_eq!(
        Cnpg.observe_backup(&engine_backup(Value::Null)),
        BackupObservation::pending()
    );
    assert_eq!(observed(json!({})), BackupObservation::pending());
    let unknown = observed(json!({ "phase": "somethingNew" }));
    assert!(unknown.message.unwrap().contains("somethingNew"));
}

#[test]
fn a_completed_backup_has_its_times_and_barman_location() {
    let o = observed(json!({
        "phase": "completed",
        "startedAt": "2026-03-01T02:00:01Z",
        "stoppedAt": "2026-03-01T02:04:30Z",
        "destinationPath": "s3://backups/pg/team-a/my-postgres",
        "serverName": "my-postgres",
        "backupId": "20260301T020001",
        "method": "barmanObjectStore",
    }));
    assert_eq!(
        o,
        BackupObservation {
            phase: BackupPhase::Succeeded,
            started_at: Some(time("2026-03-01T02:00:01Z")),
            completed_at: Some(time("2026-03-01T02:04:30Z")),
            destination: Some(
                "s3://backups/pg/team-a/my-postgres/my-postgres/base/20260301T020001".into()
            ),
            message: None,
        }
    );
}

#[test]
fn a_running_backup_has_no_completion_and_a_failed_one_says_why() {
    let running = observed(json!({
        "phase": "running",
        "startedAt": "2026-03-01T02:00:01Z",
        "destinationPath": "s3://backups/pg/team-a/my-postgres",
    }));
    assert_eq!(running.phase, BackupPhase::Running);
    assert_eq!(running.started_at, Some(time("2026-03-01T02:00:01Z")));
    assert_eq!(running.completed_at, None);
    assert_eq!(
        running.destination.as_deref(),
        Some("s3://backups/pg/team-a/my-postgres")
    );

    let failed = observed(json!({
        "phase": "failed",
        "startedAt": "2026-03-01T02:00:01Z",
        "stoppedAt": "2026-03-01T02:00:09Z",
        "error": "exit status 4",
        "commandError": "botocore.exceptions.ClientError: AccessDenied",
    }));
    assert_eq!(failed.phase, BackupPhase::Failed);
    assert_eq!(failed.message.as_deref(), Some("exit status 4"));
    assert_eq!(failed.completed_at, Some(time("2026-03-01T02:00:09Z")));

    let command_only = observed(json!({ "phase": "failed", "commandError": "AccessDenied" }));
    assert_eq!(command_only.message.as_deref(), Some("AccessDenied"));
    let silent = observed(json!({ "phase": "failed" }));
    assert!(silent.message.unwrap().contains("failed"));

    let wal = observed(json!({ "phase": "walArchivingFailing" }));
    assert_eq!(wal.phase, BackupPhase::Failed);
    assert!(wal.message.unwrap().contains("WAL archiving"));
}

#[test]
fn an_unreadable_backup_is_pending_with_the_reason() {
    let mut object = engine_backup(Value::Null);
    object.data["spec"] = json!("not an object");
    let o = Cnpg.observe_backup(&object);
    assert_eq!(o.phase, BackupPhase::Pending);
    assert!(o.message.unwrap().contains("cannot be read"));
}

// ---- restore (spec.dataSource) ----

use crate::restore::{RestoreBackup, RestoreInput};
use dbaas_api::cluster::{PitrTarget, PitrType};

/// A new cluster `restored` in team-a restoring `source`.
fn restoring(source: Value) -> DatabaseCluster {
    let mut cluster = with_spec(|s| {
        s.backup = None;
        s.data_source = Some(serde_json::from_value(source).unwrap());
    });
    cluster.metadata.name = Some("restored".into());
    cluster
}

fn taken(destination: Option<&str>) -> RestoreBackup {
    RestoreBackup::Taken {
        backup_name: "nightly".into(),
        source_cluster: "old-pg".into(),
        source_namespace: "team-a".into(),
        destination: destination.map(str::to_owned),
    }
}

fn restore_input(
    backup: RestoreBackup,
    storage: Option<StorageInput>,
    pitr: Option<PitrTarget>,
) -> RestoreInput {
    RestoreInput {
        backup,
        storage,
        pitr,
    }
}

fn build_restoring(
    cluster: &DatabaseCluster,
    source: &RestoreInput,
    storages: &[StorageInput],
) -> Result<Built, BuildError> {
    build_with(
        cluster,
        &version(),
        &BuildInput {
            backup_storages: storages,
            data_source: Some(source),
            ..Default::default()
        },
    )
}

fn spec_json(built: &Built) -> Value {
    serde_json::to_value(&built.cluster.spec).unwrap()
}

const WRITTEN: &str = "s3://backups/pg/team-a/old-pg/old-pg/base/20250101T020000";

#[test]
fn a_taken_backup_bootstraps_by_recovery_from_the_source_clusters_folder() {
    let cluster = restoring(json!({ "backupName": "nightly" }));
    let source = restore_input(taken(None), Some(s3()), None);
    let built = build_restoring(&cluster, &source, &[]).unwrap();
    let spec = spec_json(&built);
    // No initdb: the latest base backup, then every WAL after it.
    assert_eq!(
        spec["bootstrap"],
        json!({ "recovery": { "source": "origin" } })
    );
    assert_eq!(
        spec["externalClusters"],
        json!([{
            "name": "origin",
            "barmanObjectStore": {
                "destinationPath": "s3://backups/pg/team-a/old-pg",
                "serverName": "old-pg",
                "endpointURL": "http://minio.storage:9000",
                "s3Credentials": {
                    "accessKeyId": { "name": "minio-credentials", "key": "AWS_ACCESS_KEY_ID" },
                    "secretAccessKey": { "name": "minio-credentials", "key": "AWS_SECRET_ACCESS_KEY" },
                },
            },
        }])
    );
    // The admin credentials stay the cluster's own, outside the bootstrap.
    assert_eq!(spec["enableSuperuserAccess"], true);
    assert_eq!(spec.get("backup"), None);
    assert_eq!(fields(&built), Vec::<&str>::new());
}

#[test]
fn a_taken_backup_with_a_barman_id_restores_that_backup_unless_pitr_asks_otherwise() {
    let cluster = restoring(json!({ "backupName": "nightly" }));
    let source = restore_input(taken(Some(WRITTEN)), Some(s3()), None);
    let spec = spec_json(&build_restoring(&cluster, &source, &[]).unwrap());
    assert_eq!(
        spec["bootstrap"]["recovery"],
        json!({ "source": "origin", "recoveryTarget": { "backupID": "20250101T020000" } })
    );
    let store = &spec["externalClusters"][0]["barmanObjectStore"];
    assert_eq!(store["destinationPath"], "s3://backups/pg/team-a/old-pg");
    assert_eq!(store["serverName"], "old-pg");

    // A destination without an ID yet: the source's folder, latest backup.
    let pending = restore_input(
        taken(Some("s3://backups/pg/team-a/old-pg")),
        Some(s3()),
        None,
    );
    let spec = spec_json(&build_restoring(&cluster, &pending, &[]).unwrap());
    assert_eq!(spec["bootstrap"]["recovery"].get("recoveryTarget"), None);
    assert_eq!(
        spec["externalClusters"][0]["barmanObjectStore"]["destinationPath"],
        "s3://backups/pg/team-a/old-pg"
    );

    // latest: every archived WAL, from whichever base backup is latest.
    let latest = restore_input(
        taken(Some(WRITTEN)),
        Some(s3()),
        Some(PitrTarget {
            type_: PitrType::Latest,
            date: None,
        }),
    );
    let spec = spec_json(&build_restoring(&cluster, &latest, &[]).unwrap());
    assert_eq!(spec["bootstrap"]["recovery"], json!({ "source": "origin" }));
    assert_eq!(
        spec["externalClusters"][0]["barmanObjectStore"]["serverName"],
        "old-pg"
    );
}

#[test]
fn pitr_date_becomes_the_rfc3339_target_time() {
    let cluster = restoring(json!({
        "backupName": "nightly",
        "pitr": { "type": "date", "date": "2025-01-02T03:04:05Z" },
    }));
    let source = restore_input(
        taken(Some(WRITTEN)),
        Some(s3()),
        Some(PitrTarget {
            type_: PitrType::Date,
            date: Some(time("2025-01-02T03:04:05Z")),
        }),
    );
    let spec = spec_json(&build_restoring(&cluster, &source, &[]).unwrap());
    // No backupID: CloudNativePG picks the latest base backup before it.
    assert_eq!(
        spec["bootstrap"]["recovery"],
        json!({ "source": "origin", "recoveryTarget": { "targetTime": "2025-01-02T03:04:05Z" } })
    );

    let no_date = restore_input(
        taken(None),
        Some(s3()),
        Some(PitrTarget {
            type_: PitrType::Date,
            date: None,
        }),
    );
    let why = invalid_backup(build_restoring(&cluster, &no_date, &[]));
    assert!(why.contains("pitr.date"), "{why}");
}

#[test]
fn a_path_is_split_into_destination_and_server_name() {
    let cluster = restoring(json!({
        "backupSource": { "storageName": "minio", "path": "archive/team-b/db1/db1" },
    }));
    let restore_path = |path: &str| {
        let source = restore_input(RestoreBackup::Path(path.into()), Some(s3()), None);
        build_restoring(&cluster, &source, &[])
    };
    let spec = spec_json(&restore_path("/archive/team-b/db1/db1/").unwrap());
    let store = &spec["externalClusters"][0]["barmanObjectStore"];
    // Relative to the bucket: the storage's prefix does not apply.
    assert_eq!(store["destinationPath"], "s3://backups/archive/team-b/db1");
    assert_eq!(store["serverName"], "db1");
    assert_eq!(spec["bootstrap"]["recovery"].get("recoveryTarget"), None);

    let spec = spec_json(&restore_path("archive/db1/base/20250101T020000").unwrap());
    assert_eq!(
        spec["externalClusters"][0]["barmanObjectStore"]["destinationPath"],
        "s3://backups/archive"
    );
    assert_eq!(
        spec["externalClusters"][0]["barmanObjectStore"]["serverName"],
        "db1"
    );
    assert_eq!(
        spec["bootstrap"]["recovery"]["recoveryTarget"],
        json!({ "backupID": "20250101T020000" })
    );

    // A server folder at the bucket's top.
    let spec = spec_json(&restore_path("db1").unwrap());
    assert_eq!(
        spec["externalClusters"][0]["barmanObjectStore"]["destinationPath"],
        "s3://backups/"
    );
    assert_eq!(
        spec["externalClusters"][0]["barmanObjectStore"]["serverName"],
        "db1"
    );

    for (odd, why) in [
        ("", "names no folder"),
        ("//", "names no folder"),
        ("s3://backups/db1", "is a URL"),
        ("a//db1", "empty, . or .."),
        ("a/../db1", "empty, . or .."),
        ("a/db1/base", "without a backup ID"),
        ("base/20250101T020000", "names no server folder"),
    ] {
        let message = invalid_backup(restore_path(odd));
        assert!(message.contains(why), "{odd:?}: {message}");
        assert!(message.contains("[<prefix>/]ns/c/c"), "{message}");
    }
}

#[test]
fn restoring_from_azure_and_gcs_uses_their_credentials() {
    let azure = with_endpoint(
        storage(
            "azure",
            json!({ "type": "azure", "bucket": "pg", "credentialsSecretName": "azure-keys" }),
        ),
        "https://acct.blob.core.windows.net/",
    );
    let gcs = storage(
        "gcs",
        json!({ "type": "gcs", "bucket": "pg-backups", "credentialsSecretName": "gcs-sa" }),
    );
    let cluster = restoring(json!({ "backupName": "nightly" }));

    let source = restore_input(taken(None), Some(azure), None);
    let spec = spec_json(&build_restoring(&cluster, &source, &[]).unwrap());
    assert_eq!(
        spec["externalClusters"][0]["barmanObjectStore"],
        json!({
            "destinationPath": "https://acct.blob.core.windows.net/pg/team-a/old-pg",
            "serverName": "old-pg",
            "azureCredentials": {
                "storageAccount": { "name": "azure-credentials", "key": "AZURE_STORAGE_ACCOUNT_NAME" },
                "storageKey": { "name": "azure-credentials", "key": "AZURE_STORAGE_ACCOUNT_KEY" },
            },
        })
    );

    let source = restore_input(
        RestoreBackup::Path("team-a/db1/db1".into()),
        Some(gcs),
        None,
    );
    let spec = spec_json(&build_restoring(&cluster, &source, &[]).unwrap());
    assert_eq!(
        spec["externalClusters"][0]["barmanObjectStore"],
        json!({
            "destinationPath": "gs://pg-backups/team-a/db1",
            "serverName": "db1",
            "googleCredentials": {
                "applicationCredentials": { "name": "gcs-credentials", "key": "GCS_CREDENTIALS" },
            },
        })
    );
}

#[test]
fn restoring_from_a_filesystem_storage_is_refused() {
    let pvc = storage(
        "nfs",
        json!({ "type": "filesystem", "persistentVolumeClaim": "backups" }),
    );
    let cluster = restoring(json!({ "backupName": "nightly" }));
    for backup in [taken(None), RestoreBackup::Path("team-a/db1/db1".into())] {
        let source = restore_input(backup, Some(pvc.clone()), None);
        let why = invalid_backup(build_restoring(&cluster, &source, &[]));
        assert!(why.contains("restores from object stores only"), "{why}");
    }
}

#[test]
fn storage_notes_of_the_restore_are_reported_once() {
    let mut minio = s3();
    minio.spec.region = Some("eu-west-1".into());
    let mut cluster = restoring(json!({ "backupName": "nightly" }));
    cluster.spec.backup =
        Some(serde_json::from_value(json!({ "enabled": true, "storageName": "minio" })).unwrap());
    let source = restore_input(taken(None), Some(minio.clone()), None);
    let built = build_restoring(&cluster, &source, &[minio]).unwrap();
    assert_eq!(fields(&built), vec!["BackupStorage.region"]);
    // The new cluster archives to its own folder, beside the source's.
    let spec = spec_json(&built);
    assert_eq!(
        spec["backup"]["barmanObjectStore"]["destinationPath"],
        "s3://backups/pg/team-a/restored"
    );
    assert_eq!(
        spec["externalClusters"][0]["barmanObjectStore"]["destinationPath"],
        "s3://backups/pg/team-a/old-pg"
    );
}

#[test]
fn restoring_from_the_folder_the_cluster_archives_to_is_refused() {
    // A cluster recreated under its old name, backing up where it restores from.
    let mut cluster = restoring(json!({ "backupName": "nightly" }));
    cluster.metadata.name = Some("old-pg".into());
    cluster.spec.backup =
        Some(serde_json::from_value(json!({ "enabled": true, "storageName": "minio" })).unwrap());
    let source = restore_input(taken(Some(WRITTEN)), Some(s3()), None);
    let why = invalid_backup(build_restoring(&cluster, &source, &[s3()]));
    assert!(
        why.contains("s3://backups/pg/team-a/old-pg/old-pg"),
        "{why}"
    );
    assert!(why.contains("another name"), "{why}");

    // Without its own store it may restore under the old name.
    cluster.spec.backup = None;
    let spec = spec_json(&build_restoring(&cluster, &source, &[]).unwrap());
    assert_eq!(
        spec["externalClusters"][0]["barmanObjectStore"]["serverName"],
        "old-pg"
    );
}

#[test]
fn a_taken_backup_without_its_storage_is_read_from_the_cnpg_backup_of_the_same_namespace() {
    let cluster = restoring(json!({
        "backupName": "nightly",
        "pitr": { "type": "date", "date": "2025-01-02T03:04:05Z" },
    }));
    let source = restore_input(
        taken(Some(WRITTEN)),
        None,
        Some(PitrTarget {
            type_: PitrType::Date,
            date: Some(time("2025-01-02T03:04:05Z")),
        }),
    );
    let spec = spec_json(&build_restoring(&cluster, &source, &[]).unwrap());
    assert_eq!(
        spec["bootstrap"],
        json!({ "recovery": {
            "backup": { "name": "nightly" },
            "recoveryTarget": { "targetTime": "2025-01-02T03:04:05Z" },
        } })
    );
    assert_eq!(spec.get("externalClusters"), None);

    let elsewhere = restore_input(
        RestoreBackup::Taken {
            backup_name: "nightly".into(),
            source_cluster: "old-pg".into(),
            source_namespace: "team-b".into(),
            destination: None,
        },
        None,
        None,
    );
    let why = invalid_backup(build_restoring(&cluster, &elsewhere, &[]));
    assert!(why.contains("\"team-b\""), "{why}");

    // A path has no Backup to fall back on.
    let path = restore_input(RestoreBackup::Path("team-a/db1/db1".into()), None, None);
    let why = invalid_backup(build_restoring(&cluster, &path, &[]));
    assert!(why.contains("not looked up"), "{why}");
}

#[test]
fn the_restoring_cluster_reads_back_as_the_cnpg_type_with_nothing_lost() {
    let mut cluster = restoring(json!({
        "backupName": "nightly",
        "pitr": { "type": "date", "date": "2025-01-02T03:04:05Z" },
    }));
    cluster.spec.backup =
        Some(serde_json::from_value(json!({ "enabled": true, "storageName": "minio" })).unwrap());
    let storages = [s3()];
    for source in [
        restore_input(
            taken(Some(WRITTEN)),
            Some(s3()),
            Some(PitrTarget {
                type_: PitrType::Date,
                date: Some(time("2025-01-02T03:04:05Z")),
            }),
        ),
        restore_input(
            RestoreBackup::Path("archive/db1/base/20250101T020000".into()),
            Some(s3()),
            None,
        ),
    ] {
        let input = BuildInput {
            backup_storages: &storages,
            data_source: Some(&source),
            ..Default::default()
        };
        let object = Cnpg.build(&cluster, &version(), &input).unwrap().object;
        let sent = serde_json::to_value(&object).unwrap();
        assert!(sent["spec"]["bootstrap"]["recovery"].is_object(), "{sent}");
        assert!(sent["spec"]["externalClusters"][0]["barmanObjectStore"]["serverName"].is_string());
        let typed = object.try_parse::<Cluster>().unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap(), sent);
    }
}

#[test]
fn cnpg_does_not_restore_into_a_running_cluster() {
    let source = restore_input(taken(None), Some(s3()), None);
    assert!(Cnpg.restore_resource().is_none());
    let err = Cnpg.build_restore("r", &seed(), &source).unwrap_err();
    assert_eq!(err.reason(), "UnsupportedFeature");
}
