use dbaas_api::cluster::DatabaseClusterSpec;
use dbaas_api::common::FIELD_MANAGER;
use dbaas_api::common::{LABEL_CLUSTER, LABEL_ENGINE, LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_engine_crds::cnpg_cluster::ClusterStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ManagedFieldsEntry, Time};
use k8s_openapi::jiff::Timestamp;
use pretty_assertions::assert_eq;
use serde_json::Value;

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
    // backup.enabled is accepted but not applied yet: say so.
    assert_eq!(
        built.unapplied.iter().map(|u| u.field).collect::<Vec<_>>(),
        vec!["backup"]
    );
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
fn data_source_is_refused_rather_than_creating_an_empty_cluster() {
    let cluster = with_spec(|s| {
        s.data_source = Some(serde_json::from_value(json!({ "backupName": "nightly" })).unwrap())
    });
    let err = build(&cluster, &version()).unwrap_err();
    assert_eq!(err.reason(), "UnsupportedFeature");
    assert!(err.to_string().contains("dataSource"), "{err}");
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
