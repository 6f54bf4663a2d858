use dbaas_api::cluster::DatabaseClusterSpec;
use dbaas_api::common::FIELD_MANAGER;
use dbaas_api::common::{LABEL_CLUSTER, LABEL_ENGINE, LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, Time};
use k8s_openapi::jiff::Timestamp;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::catalog::resolve_version;

const SAMPLE: &str = r#"
apiVersion: dbaas.io/v1
kind: DatabaseCluster
metadata:
  name: my-mongodb
  namespace: team-a
  uid: 7a1c1b64-0000-4000-8000-000000000002
spec:
  engine:
    type: mongodb
    version: "7.0.18-11"
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
    - name: operationProfiling.slowOpThresholdMs
      value: "200"
    - name: net.maxIncomingConnections
      value: "1000"
"#;

const IMAGE: &str = "percona/percona-server-mongodb:7.0.18-11";

fn sample() -> DatabaseCluster {
    serde_saphyr::from_str(SAMPLE).unwrap()
}

fn version() -> ResolvedVersion {
    ResolvedVersion {
        version: "7.0.18-11".into(),
        image: IMAGE.into(),
    }
}

fn with_spec(edit: impl FnOnce(&mut DatabaseClusterSpec)) -> DatabaseCluster {
    let mut cluster = sample();
    edit(&mut cluster.spec);
    cluster
}

fn spec_json(cluster: &DatabaseCluster) -> Value {
    serde_json::to_value(build(cluster, &version()).unwrap().cluster.spec).unwrap()
}

fn params(pairs: &[(&str, &str)]) -> Vec<ConfigParameter> {
    pairs
        .iter()
        .map(|(name, value)| ConfigParameter {
            name: (*name).into(),
            value: (*value).into(),
        })
        .collect()
}

fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

// ---- build ----

#[test]
fn sample_builds_the_percona_server_mongodb() {
    let built = build(&sample(), &version()).unwrap();
    let c = &built.cluster;
    assert_eq!(
        serde_json::to_value(&c.spec).unwrap(),
        json!({
            "crVersion": "1.23.0",
            "upgradeOptions": { "apply": "disabled" },
            "image": IMAGE,
            "pause": false,
            "replsets": [{
                "name": "rs0",
                "size": 3,
                "volumeSpec": { "persistentVolumeClaim": {
                    "resources": { "requests": { "storage": "10Gi" } },
                } },
                "resources": { "requests": { "cpu": "1", "memory": "2Gi" } },
                "configuration": "net:\n  maxIncomingConnections: 1000\noperationProfiling:\n  slowOpThresholdMs: 200\n",
            }],
            "sharding": { "enabled": false },
            "secrets": { "users": "my-mongodb-secrets" },
            "storageScaling": { "enableVolumeScaling": true },
        })
    );
    assert_eq!(c.metadata.name.as_deref(), Some("my-mongodb"));
    assert_eq!(c.metadata.namespace.as_deref(), Some("team-a"));
    let labels = c.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[LABEL_MANAGED_BY], MANAGED_BY_VALUE);
    assert_eq!(labels[LABEL_CLUSTER], "my-mongodb");
    assert_eq!(labels[LABEL_ENGINE], "mongodb");
    let owner = &c.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.uid.as_str(),
            owner.controller
        ),
        (
            "DatabaseCluster",
            "my-mongodb",
            "7a1c1b64-0000-4000-8000-000000000002",
            Some(true)
        )
    );
    assert_eq!(c.metadata.annotations, None, "nothing we do not need");
    // The short-form schedule names no storage: it cannot run; say so.
    assert_eq!(
        built.unapplied.iter().map(|u| u.field).collect::<Vec<_>>(),
        vec!["backup.schedule"]
    );
}

#[test]
fn the_provider_builds_a_dynamic_object_of_the_percona_kind() {
    let built = Psmdb
        .build(&sample(), &version(), &BuildInput::default())
        .unwrap();
    let types = built.object.types.as_ref().unwrap();
    assert_eq!(
        (types.api_version.as_str(), types.kind.as_str()),
        ("psmdb.percona.com/v1", "PerconaServerMongoDB")
    );
    assert_eq!(built.object.data["spec"]["replsets"][0]["size"], 3);
    let resource = Psmdb.resource();
    assert_eq!(
        (resource.group.as_str(), resource.plural.as_str()),
        ("psmdb.percona.com", "perconaservermongodbs")
    );
    assert_eq!(Psmdb.engine(), EngineType::Mongodb);
}

#[test]
fn catalogue_offers_percona_images_and_a_default() {
    let versions = Psmdb.versions();
    assert!(versions.iter().any(|v| v.version == MONGODB_DEFAULT));
    for major in ["6.0.", "7.0.", "8.0."] {
        assert!(
            versions.iter().any(|v| v.version.starts_with(major)),
            "{major}"
        );
    }
    for v in &versions {
        assert_eq!(
            v.image,
            format!("percona/percona-server-mongodb:{}", v.version)
        );
    }
    let v = resolve_version(&Psmdb, Some("8.0.8-3"), None).unwrap();
    assert_eq!(v.image, "percona/percona-server-mongodb:8.0.8-3");
    assert_eq!(
        resolve_version(&Psmdb, None, None).unwrap().version,
        MONGODB_DEFAULT
    );
    let err = resolve_version(&Psmdb, Some("4.4.29-28"), None).unwrap_err();
    assert!(err.to_string().contains("8.0.19-7"), "{err}");
}

#[test]
fn custom_credentials_secret_becomes_the_users_secret() {
    let cluster = with_spec(|s| s.credentials_secret_name = Some("mongo-admin".into()));
    assert_eq!(
        spec_json(&cluster)["secrets"],
        json!({ "users": "mongo-admin" })
    );
    assert_eq!(credentials_secret_name(&cluster), "mongo-admin");
    assert_eq!(credentials_secret_name(&sample()), "my-mongodb-secrets");
    assert_eq!(
        Psmdb.credentials_secret_name(&sample()),
        "my-mongodb-secrets"
    );
}

#[test]
fn a_single_member_needs_the_unsafe_replset_size_flag() {
    let spec = spec_json(&with_spec(|s| s.cluster_size = 1));
    assert_eq!(spec["replsets"][0]["size"], 1);
    assert_eq!(spec["unsafeFlags"], json!({ "replsetSize": true }));
    // Safe sizes send no unsafe flag at all.
    for size in [3, 5, 7] {
        let spec = spec_json(&with_spec(|s| s.cluster_size = size));
        assert_eq!(spec["replsets"][0]["size"], size);
        assert_eq!(spec.get("unsafeFlags"), None, "size {size}");
    }
}

#[test]
fn storage_class_and_limits_reach_the_volume_and_pods() {
    let cluster = with_spec(|s| {
        s.storage = from_json(json!({ "size": "50Gi", "class": "fast" }));
        s.resources = Some(from_json(json!({
            "requests": { "cpu": "500m", "memory": "1Gi" },
            "limits": { "cpu": "2", "memory": "4Gi" },
        })));
    });
    let rs0 = &spec_json(&cluster)["replsets"][0];
    assert_eq!(
        rs0["volumeSpec"],
        json!({ "persistentVolumeClaim": {
            "storageClassName": "fast",
            "resources": { "requests": { "storage": "50Gi" } },
        } })
    );
    assert_eq!(
        rs0["resources"],
        json!({
            "requests": { "cpu": "500m", "memory": "1Gi" },
            "limits": { "cpu": "2", "memory": "4Gi" },
        })
    );
}

#[test]
fn paused_pauses_the_cluster() {
    assert_eq!(spec_json(&with_spec(|s| s.paused = true))["pause"], true);
    assert_eq!(spec_json(&sample())["pause"], false);
}

#[test]
fn monitoring_not_looked_up_and_a_storageless_schedule_are_reported_as_not_applied() {
    let cluster = with_spec(|s| {
        s.monitoring = Some(from_json(json!({ "monitoringConfigName": "pmm" })));
    });
    let built = build(&cluster, &version()).unwrap();
    assert_eq!(
        built.unapplied.iter().map(|u| u.field).collect::<Vec<_>>(),
        vec!["backup.schedule", "monitoring"]
    );
    // Off, the short-form schedule does not run anyway: nothing to report,
    // and no storage means no backup section.
    let cluster = with_spec(|s| {
        s.backup = Some(from_json(
            json!({ "enabled": false, "schedule": "0 2 * * *" }),
        ))
    });
    let built = build(&cluster, &version()).unwrap();
    assert!(built.unapplied.is_empty());
    assert_eq!(built.cluster.spec.backup, None);
}

// ---- config ----

#[test]
fn config_names_are_nested_and_numbers_and_booleans_stay_scalars() {
    let rendered = render_config(
        "config",
        &params(&[
            ("storage.wiredTiger.engineConfig.cacheSizeGB", "0.25"),
            ("net.maxIncomingConnections", "1000"),
            ("operationProfiling.mode", "slowOp"),
            ("operationProfiling.slowOpThresholdMs", "100"),
            ("net.compression.compressors", "snappy,zstd"),
            ("setParameter.enableLocalhostAuthBypass", "false"),
            ("setParameter.ttlMonitorSleepSecs", "-1"),
            ("security.redactClientLogData", "true"),
        ]),
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        rendered,
        "\
net:
  compression:
    compressors: \"snappy,zstd\"
  maxIncomingConnections: 1000
operationProfiling:
  mode: \"slowOp\"
  slowOpThresholdMs: 100
security:
  redactClientLogData: true
setParameter:
  enableLocalhostAuthBypass: false
  ttlMonitorSleepSecs: -1
storage:
  wiredTiger:
    engineConfig:
      cacheSizeGB: 0.25
"
    );
    assert_eq!(render_config("config", &[]).unwrap(), None);
}

#[test]
fn values_that_yaml_could_misread_are_quoted() {
    let rendered = render_config(
        "config",
        &params(&[
            ("a.octal", "007"),
            ("a.exp", "1e3"),
            ("a.hex", "0x10"),
            ("a.word", "yes"),
            ("a.nothing", "null"),
            ("a.tilde", "~"),
            ("a.empty", ""),
            ("a.colon", "x: y"),
            ("a.hash", "x # y"),
            ("a.quote", "say \"hi\" \\ bye"),
            ("a.flow", "{evil: 1}"),
            ("a.capital", "True"),
            ("a.dot", "1."),
            ("a.unicode", "Grüße"),
        ]),
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        rendered,
        r#"a:
  capital: "True"
  colon: "x: y"
  dot: "1."
  empty: ""
  exp: "1e3"
  flow: "{evil: 1}"
  hash: "x # y"
  hex: "0x10"
  nothing: "null"
  octal: "007"
  quote: "say \"hi\" \\ bye"
  tilde: "~"
  unicode: "Grüße"
  word: "yes"
"#
    );
}

#[test]
fn config_that_could_inject_yaml_is_refused() {
    let bad_names = [
        "net.port: 1\nsecurity.authorization",
        "net..port",
        ".net",
        "net.",
        "net.max-connections",
        "net port",
        "net.port:",
        "9lives",
        "net.[0]",
        "security.authorization #",
        "setParameter.on",
        "a.Null",
        "",
    ];
    for name in bad_names {
        let err = render_config("config", &params(&[(name, "1")])).unwrap_err();
        assert_eq!(err.reason(), "InvalidSpec", "{name:?}");
        assert!(err.to_string().contains("spec.config"), "{err}");
    }
    for value in [
        "1\nsecurity:\n  authorization: disabled",
        "x\r",
        "tab\there",
        "nul\u{0}",
    ] {
        let err = render_config("config", &params(&[("net.bindIp", value)])).unwrap_err();
        assert!(err.to_string().contains("single line"), "{err}");
    }
    // A name cannot be both a value and a section, in either order.
    for pairs in [
        [("net", "1"), ("net.port", "2")],
        [("net.port", "2"), ("net", "1")],
    ] {
        let err = render_config("config", &params(&pairs)).unwrap_err();
        assert!(
            err.to_string().contains("both a value and a section"),
            "{err}"
        );
    }
    // The whole build refuses, naming the field.
    let cluster = with_spec(|s| s.config = params(&[("net.port\n", "1")]));
    let err = build(&cluster, &version()).unwrap_err();
    assert_eq!(err.reason(), "InvalidSpec");
    assert!(err.to_string().starts_with("spec.config "), "{err}");
}

// ---- proxy / sharding ----

#[test]
fn mongos_proxy_makes_a_sharded_cluster() {
    let cluster = with_spec(|s| {
        s.storage = from_json(json!({ "size": "20Gi", "class": "fast" }));
        s.proxy = Some(from_json(json!({
            "type": "mongos",
            "resources": { "requests": { "cpu": "300m", "memory": "512Mi" } },
            "config": [{ "name": "net.maxIncomingConnections", "value": "5000" }],
        })));
    });
    let built = build(&cluster, &version()).unwrap();
    assert!(built.unapplied.iter().all(|u| u.field != "proxy"));
    let spec = serde_json::to_value(&built.cluster.spec).unwrap();
    let volume = json!({ "persistentVolumeClaim": {
        "storageClassName": "fast",
        "resources": { "requests": { "storage": "20Gi" } },
    } });
    assert_eq!(
        spec["sharding"],
        json!({
            "enabled": true,
            "configsvrReplSet": { "size": 3, "volumeSpec": volume },
            "mongos": {
                "size": 3,
                "resources": { "requests": { "cpu": "300m", "memory": "512Mi" } },
                "configuration": "net:\n  maxIncomingConnections: 5000\n",
            },
        })
    );
    assert_eq!(spec["replsets"][0]["volumeSpec"], volume);
    assert_eq!(spec.get("unsafeFlags"), None);
}

#[test]
fn mongos_replicas_are_honoured_and_fewer_than_two_are_flagged_unsafe() {
    let mongos = |replicas: i32| {
        spec_json(&with_spec(|s| {
            s.proxy = Some(from_json(json!({ "type": "mongos", "replicas": replicas })));
        }))
    };
    let spec = mongos(5);
    assert_eq!(spec["sharding"]["mongos"]["size"], 5);
    assert_eq!(spec.get("unsafeFlags"), None);
    let spec = mongos(1);
    assert_eq!(spec["sharding"]["mongos"]["size"], 1);
    assert_eq!(spec["unsafeFlags"], json!({ "mongosSize": true }));
    // A single-member shard behind one mongos: both flags.
    let spec = spec_json(&with_spec(|s| {
        s.cluster_size = 1;
        s.proxy = Some(from_json(json!({ "type": "mongos", "replicas": 1 })));
    }));
    assert_eq!(
        spec["unsafeFlags"],
        json!({ "replsetSize": true, "mongosSize": true })
    );
}

#[test]
fn no_proxy_is_a_plain_replica_set() {
    for proxy in [None, Some(json!({ "type": "none" }))] {
        let cluster = with_spec(|s| s.proxy = proxy.clone().map(from_json));
        let built = build(&cluster, &version()).unwrap();
        let spec = serde_json::to_value(&built.cluster.spec).unwrap();
        assert_eq!(spec["sharding"], json!({ "enabled": false }), "{proxy:?}");
        assert!(built.unapplied.iter().all(|u| u.field != "proxy"));
    }
    // Proxy settings without mongos have nowhere to go: say so.
    let cluster = with_spec(|s| {
        s.proxy = Some(from_json(json!({ "type": "none", "replicas": 2 })));
    });
    let built = build(&cluster, &version()).unwrap();
    assert!(built.unapplied.iter().any(|u| u.field == "proxy"));
}

// ---- expose ----

#[test]
fn external_expose_puts_the_replica_set_behind_load_balancers() {
    let cluster = with_spec(|s| {
        s.expose = Some(from_json(
            json!({ "type": "external", "ipSourceRanges": ["10.0.0.0/8", "192.168.1.0/24"] }),
        ));
    });
    let spec = spec_json(&cluster);
    assert_eq!(
        spec["replsets"][0]["expose"],
        json!({
            "enabled": true,
            "type": "LoadBalancer",
            "loadBalancerSourceRanges": ["10.0.0.0/8", "192.168.1.0/24"],
        })
    );
    // Without ranges: open to everyone, no empty list sent.
    let cluster = with_spec(|s| s.expose = Some(from_json(json!({ "type": "external" }))));
    assert_eq!(
        spec_json(&cluster)["replsets"][0]["expose"],
        json!({ "enabled": true, "type": "LoadBalancer" })
    );
    // Internal: Percona's default ClusterIP services, nothing sent.
    let cluster = with_spec(|s| s.expose = Some(from_json(json!({ "type": "internal" }))));
    assert_eq!(spec_json(&cluster)["replsets"][0].get("expose"), None);
}

#[test]
fn external_expose_of_a_sharded_cluster_exposes_mongos() {
    let cluster = with_spec(|s| {
        s.proxy = Some(from_json(json!({ "type": "mongos" })));
        s.expose = Some(from_json(
            json!({ "type": "external", "ipSourceRanges": ["10.0.0.0/8"] }),
        ));
    });
    let spec = spec_json(&cluster);
    assert_eq!(
        spec["sharding"]["mongos"]["expose"],
        json!({ "type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8"] })
    );
    assert_eq!(spec["replsets"][0].get("expose"), None);
    let cluster = with_spec(|s| s.proxy = Some(from_json(json!({ "type": "mongos" }))));
    assert_eq!(
        spec_json(&cluster)["sharding"]["mongos"].get("expose"),
        None
    );
}

// ---- scheduling ----

fn scheduling() -> Value {
    json!({
        "nodeSelector": { "disk": "ssd" },
        "tolerations": [{ "key": "db", "operator": "Exists", "effect": "NoSchedule" }],
        "affinity": {
            "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{ "matchExpressions": [{ "key": "zone", "operator": "In", "values": ["a"] }] }]
            } },
            "podAntiAffinity": { "preferredDuringSchedulingIgnoredDuringExecution": [{
                "weight": 100,
                "podAffinityTerm": { "topologyKey": "kubernetes.io/hostname", "labelSelector": { "matchLabels": { "app": "db" } } }
            }] },
        },
        "priorityClassName": "databases",
    })
}

#[test]
fn scheduling_maps_to_the_replica_set() {
    let cluster = with_spec(|s| s.scheduling = Some(from_json(scheduling())));
    let rs0 = spec_json(&cluster)["replsets"][0].clone();
    let expected = scheduling();
    assert_eq!(rs0["nodeSelector"], expected["nodeSelector"]);
    assert_eq!(rs0["tolerations"], expected["tolerations"]);
    assert_eq!(rs0["affinity"], json!({ "advanced": expected["affinity"] }));
    assert_eq!(rs0["priorityClassName"], "databases");
}

#[test]
fn scheduling_also_places_config_servers_and_mongos() {
    let cluster = with_spec(|s| {
        s.scheduling = Some(from_json(scheduling()));
        s.proxy = Some(from_json(json!({ "type": "mongos" })));
    });
    let spec = spec_json(&cluster);
    let expected = scheduling();
    for part in [
        &spec["replsets"][0],
        &spec["sharding"]["configsvrReplSet"],
        &spec["sharding"]["mongos"],
    ] {
        assert_eq!(part["nodeSelector"], expected["nodeSelector"]);
        assert_eq!(part["tolerations"], expected["tolerations"]);
        assert_eq!(
            part["affinity"],
            json!({ "advanced": expected["affinity"] })
        );
        assert_eq!(part["priorityClassName"], "databases");
    }
}

#[test]
fn empty_scheduling_sends_nothing() {
    let cluster = with_spec(|s| s.scheduling = Some(from_json(json!({}))));
    let rs0 = spec_json(&cluster)["replsets"][0].clone();
    for field in [
        "nodeSelector",
        "tolerations",
        "affinity",
        "priorityClassName",
    ] {
        assert_eq!(rs0.get(field), None, "{field}");
    }
}

// ---- status ----

fn engine_with(status: Option<Value>) -> PerconaServerMongoDb {
    let mut c = build(&sample(), &version()).unwrap().cluster;
    c.status = status.map(from_json);
    c.metadata.generation = Some(2);
    c.metadata.resource_version = Some("101".into());
    c
}

fn time(s: &str) -> Time {
    Time(s.parse::<Timestamp>().unwrap())
}

fn input(applied_at: &Time, previous: Option<ClusterPhase>) -> ObserveInput<'_> {
    ObserveInput {
        desired_instances: 3,
        desired_image: IMAGE,
        applied_generation: Some(2),
        applied_at: Some(applied_at),
        applied_resource_version: Some("100"),
        paused: false,
        previous_phase: previous,
        now: None,
    }
}

/// Percona's status for a healthy, unsharded cluster of `ready` of `size`.
fn status(state: &str, size: i32, ready: i32, observed: i64) -> Value {
    json!({
        "state": state,
        "observedGeneration": observed,
        "size": size,
        "ready": ready,
        "host": "my-mongodb-rs0.team-a.svc.cluster.local",
        "mongoImage": IMAGE,
        "mongoVersion": "7.0.18-11",
        "replsets": { "rs0": { "initialized": true, "size": size, "ready": ready, "status": state } },
        "conditions": [{
            "type": state, "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z",
        }],
    })
}

fn applied() -> Time {
    time("2026-01-01T00:00:00Z")
}

#[test]
fn no_status_yet_is_pending() {
    let at = applied();
    let o = observe(&engine_with(None), &input(&at, None));
    assert_eq!(
        (o.phase.phase, o.phase.reason),
        (ClusterPhase::Pending, "WaitingForEngine")
    );
    assert_eq!((o.host, o.port, o.ready_instances), (None, None, 0));
    assert!(!o.saw_latest_spec);
    // A status without a state yet says nothing either.
    let o = observe(
        &engine_with(Some(json!({ "size": 0, "ready": 0 }))),
        &input(&at, None),
    );
    assert_eq!(o.phase.phase, ClusterPhase::Pending);
}

#[test]
fn ready_and_seen_is_ready_with_endpoint() {
    let at = applied();
    let o = observe(
        &engine_with(Some(status("ready", 3, 3, 2))),
        &input(&at, Some(ClusterPhase::Creating)),
    );
    assert_eq!(
        (o.phase.phase, o.phase.reason),
        (ClusterPhase::Ready, "EngineHealthy")
    );
    assert!(o.saw_latest_spec);
    assert_eq!(
        o.host.as_deref(),
        Some("my-mongodb-rs0.team-a.svc.cluster.local")
    );
    assert_eq!(o.port, Some(27017));
    assert_eq!(o.ready_instances, 3);
}

#[test]
fn a_port_in_the_host_is_split_off() {
    let at = applied();
    let mut s = status("ready", 3, 3, 2);
    s["host"] = json!("my-mongodb-mongos.team-a.svc.cluster.local:27018");
    let o = observe(&engine_with(Some(s)), &input(&at, None));
    assert_eq!(
        (o.host.as_deref(), o.port),
        (
            Some("my-mongodb-mongos.team-a.svc.cluster.local"),
            Some(27018)
        )
    );
    let mut s = status("ready", 3, 3, 2);
    s["host"] = json!("203.0.113.7");
    let o = observe(&engine_with(Some(s)), &input(&at, None));
    assert_eq!(
        (o.host.as_deref(), o.port),
        (Some("203.0.113.7"), Some(27017))
    );
}

#[test]
fn a_status_of_an_older_generation_is_not_ready() {
    // Percona has not reconciled our latest spec (generation 2) yet.
    let at = applied();
    let o = observe(
        &engine_with(Some(status("ready", 3, 3, 1))),
        &input(&at, Some(ClusterPhase::Ready)),
    );
    assert!(!o.saw_latest_spec);
    assert_eq!(
        (o.phase.phase, o.phase.reason),
        (ClusterPhase::Updating, "WaitingForEngine")
    );
    // Without a generation of our apply nothing counts as seen.
    let mut no_generation = input(&at, Some(ClusterPhase::Ready));
    no_generation.applied_generation = None;
    let o = observe(&engine_with(Some(status("ready", 3, 3, 2))), &no_generation);
    assert!(!o.saw_latest_spec);
}

#[test]
fn without_observed_generation_the_status_write_time_decides() {
    let at = applied();
    let mut s = status("ready", 3, 3, 0);
    s.as_object_mut().unwrap().remove("observedGeneration");
    let mut engine = engine_with(Some(s));
    let entry = |manager: &str, at: &str| ManagedFieldsEntry {
        manager: Some(manager.into()),
        operation: Some("Update".into()),
        subresource: Some("status".into()),
        time: Some(time(at)),
        ..Default::default()
    };
    engine.metadata.managed_fields = Some(vec![entry(
        "percona-server-mongodb-operator",
        "2025-12-31T23:59:00Z",
    )]);
    assert!(!observe(&engine, &input(&at, Some(ClusterPhase::Ready))).saw_latest_spec);
    engine.metadata.managed_fields = Some(vec![entry(FIELD_MANAGER, "2026-01-01T00:00:09Z")]);
    assert!(
        !observe(&engine, &input(&at, None)).saw_latest_spec,
        "our own status writes do not count"
    );
    engine.metadata.managed_fields = Some(vec![entry(
        "percona-server-mongodb-operator",
        "2026-01-01T00:00:05Z",
    )]);
    let o = observe(&engine, &input(&at, Some(ClusterPhase::Ready)));
    assert!(o.saw_latest_spec);
    assert_eq!(o.phase.phase, ClusterPhase::Ready);
}

#[test]
fn members_still_starting_is_creating_then_updating() {
    let at = applied();
    let engine = engine_with(Some(status("ready", 3, 2, 2)));
    let o = observe(&engine, &input(&at, None));
    assert_eq!(
        (o.phase.phase, o.phase.reason),
        (ClusterPhase::Creating, "Scaling")
    );
    assert_eq!(o.ready_instances, 2);
    let o = observe(&engine, &input(&at, Some(ClusterPhase::Ready)));
    assert_eq!(
        (o.phase.phase, o.phase.reason),
        (ClusterPhase::Updating, "Scaling")
    );
    assert!(o.phase.message.contains("2 of 3"), "{}", o.phase.message);
    // Percona reports the old member count after a scale to 5.
    let mut five = input(&at, Some(ClusterPhase::Ready));
    five.desired_instances = 5;
    let o = observe(&engine_with(Some(status("ready", 3, 3, 2))), &five);
    assert_eq!(o.phase.reason, "Scaling");
}

#[test]
fn old_image_still_running_is_rolling_out() {
    let at = applied();
    let mut s = status("ready", 3, 3, 2);
    s["mongoImage"] = json!("percona/percona-server-mongodb:6.0.21-18");
    let o = observe(
        &engine_with(Some(s)),
        &input(&at, Some(ClusterPhase::Ready)),
    );
    assert_eq!(
        (o.phase.phase, o.phase.reason),
        (ClusterPhase::Updating, "RollingOut")
    );
    // Percona fills mongoImage in later; its absence does not block Ready.
    let mut s = status("ready", 3, 3, 2);
    s.as_object_mut().unwrap().remove("mongoImage");
    let o = observe(
        &engine_with(Some(s)),
        &input(&at, Some(ClusterPhase::Ready)),
    );
    assert_eq!(o.phase.phase, ClusterPhase::Ready);
}

#[test]
fn every_state_maps_and_unknown_states_are_tolerated() {
    let at = applied();
    let cases = [
        (
            state::INITIALIZING,
            None,
            ClusterPhase::Creating,
            "EngineInitializing",
        ),
        (
            state::INITIALIZING,
            Some(ClusterPhase::Ready),
            ClusterPhase::Updating,
            "EngineInitializing",
        ),
        (state::SHARDING, None, ClusterPhase::Creating, "Sharding"),
        (
            state::SHARDING,
            Some(ClusterPhase::Ready),
            ClusterPhase::Updating,
            "Sharding",
        ),
        (
            state::STOPPING,
            Some(ClusterPhase::Ready),
            ClusterPhase::Updating,
            "EngineStopping",
        ),
        (
            state::PAUSED,
            Some(ClusterPhase::Paused),
            ClusterPhase::Updating,
            "Resuming",
        ),
        (state::ERROR, None, ClusterPhase::Error, "EngineError"),
        (
            state::ERROR,
            Some(ClusterPhase::Ready),
            ClusterPhase::Error,
            "EngineError",
        ),
        (state::READY, None, ClusterPhase::Ready, "EngineHealthy"),
        (
            "resharding",
            None,
            ClusterPhase::Unknown,
            "UnknownEnginePhase",
        ),
        ("Ready", None, ClusterPhase::Unknown, "UnknownEnginePhase"),
    ];
    for (text, previous, phase, reason) in cases {
        let o = observe(
            &engine_with(Some(status(text, 3, 3, 2))),
            &input(&at, previous),
        );
        assert_eq!((o.phase.phase, o.phase.reason), (phase, reason), "{text}");
    }
    let o = observe(
        &engine_with(Some(status("resharding", 3, 3, 2))),
        &input(&at, None),
    );
    assert!(
        o.phase.message.contains("resharding"),
        "{}",
        o.phase.message
    );
}

#[test]
fn errors_carry_percona_s_message() {
    let at = applied();
    let mut s = status("error", 3, 0, 2);
    s["message"] = json!("Error: TLS must be enabled");
    let o = observe(&engine_with(Some(s)), &input(&at, None));
    assert_eq!(o.phase.phase, ClusterPhase::Error);
    assert!(
        o.phase.message.contains("TLS must be enabled"),
        "{}",
        o.phase.message
    );
    // Without status.message, the error condition's message.
    let mut s = status("error", 3, 0, 2);
    s["conditions"] = json!([
        { "type": "ready", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z" },
        { "type": "error", "status": "True", "reason": "ErrorReconcile",
          "message": "replset size must be odd", "lastTransitionTime": "2026-01-01T00:00:00Z" },
    ]);
    let o = observe(&engine_with(Some(s)), &input(&at, None));
    assert!(
        o.phase.message.contains("replset size must be odd"),
        "{}",
        o.phase.message
    );
}

#[test]
fn progress_messages_include_percona_s_message() {
    let at = applied();
    let mut s = status("initializing", 3, 1, 2);
    s["message"] = json!("rs0: waiting for members");
    let o = observe(&engine_with(Some(s)), &input(&at, None));
    assert_eq!(o.phase.message, "initializing: rs0: waiting for members");
}

/// Seen from the real Percona Operator for MongoDB 1.20.1 on the local node:
/// a pause it cannot carry out leaves it in `error` (with the generation not
/// observed), which is an Error, not an endless "pausing".
#[test]
fn an_error_while_pausing_is_an_error() {
    let at = applied();
    let mut paused = input(&at, Some(ClusterPhase::Creating));
    paused.paused = true;
    let mut s = status("error", 1, 0, 1);
    s["message"] =
        json!("Error: delete psmdb pods: is pod primary: failed to create standalone client");
    let o = observe(&engine_with(Some(s)), &paused);
    assert_eq!(
        (o.phase.phase, o.phase.reason),
        (ClusterPhase::Error, "EngineError")
    );
    assert!(
        o.phase.message.contains("is pod primary"),
        "{}",
        o.phase.message
    );
}

#[test]
fn paused_is_paused_once_percona_reports_it_for_our_spec() {
    let at = applied();
    let mut paused = input(&at, Some(ClusterPhase::Ready));
    paused.paused = true;
    for (text, observed_generation, expected) in [
        (state::READY, 2, ClusterPhase::Updating),
        (state::STOPPING, 2, ClusterPhase::Updating),
        (state::PAUSED, 1, ClusterPhase::Updating),
        (state::PAUSED, 2, ClusterPhase::Paused),
    ] {
        let o = observe(
            &engine_with(Some(status(text, 3, 0, observed_generation))),
            &paused,
        );
        assert_eq!(o.phase.phase, expected, "{text} {observed_generation}");
    }
    let o = observe(
        &engine_with(Some(status(state::STOPPING, 3, 1, 2))),
        &paused,
    );
    assert_eq!(o.phase.reason, "Pausing");
}

fn sharded_engine(status: Value) -> PerconaServerMongoDb {
    let cluster = with_spec(|s| {
        s.proxy = Some(from_json(json!({ "type": "mongos", "replicas": 2 })));
    });
    let mut c = build(&cluster, &version()).unwrap().cluster;
    c.status = Some(from_json(status));
    c.metadata.generation = Some(2);
    c
}

#[test]
fn a_sharded_cluster_is_ready_once_mongos_is_ready() {
    let at = applied();
    let mut s = status("ready", 8, 7, 2);
    s["host"] = json!("my-mongodb-mongos.team-a.svc.cluster.local");
    s["replsets"]["rs0"] =
        json!({ "size": 3, "ready": 3, "status": "ready", "clusterRole": "shardsvr" });
    s["replsets"]["cfg"] =
        json!({ "size": 3, "ready": 3, "status": "ready", "clusterRole": "configsvr" });
    s["mongos"] = json!({ "size": 2, "ready": 1, "status": "initializing" });
    let o = observe(
        &sharded_engine(s.clone()),
        &input(&at, Some(ClusterPhase::Ready)),
    );
    assert_eq!(
        (o.phase.phase, o.phase.reason),
        (ClusterPhase::Updating, "Scaling")
    );
    assert!(o.phase.message.contains("mongos"), "{}", o.phase.message);
    assert_eq!(o.ready_instances, 3, "rs0 members, not every pod");
    s["mongos"] = json!({ "size": 2, "ready": 2, "status": "ready" });
    let o = observe(
        &sharded_engine(s.clone()),
        &input(&at, Some(ClusterPhase::Ready)),
    );
    assert_eq!(o.phase.phase, ClusterPhase::Ready);
    assert_eq!(
        o.host.as_deref(),
        Some("my-mongodb-mongos.team-a.svc.cluster.local")
    );
    // No mongos status at all yet.
    s.as_object_mut().unwrap().remove("mongos");
    let o = observe(&sharded_engine(s), &input(&at, None));
    assert_eq!(o.phase.phase, ClusterPhase::Creating);
}

#[test]
fn an_unreadable_engine_object_is_unknown_not_a_panic() {
    let mut object = Psmdb
        .build(&sample(), &version(), &BuildInput::default())
        .unwrap()
        .object;
    object.data["status"] = json!({ "state": "ready", "size": "three", "ready": [] });
    let at = applied();
    let o = Psmdb.observe(&object, &input(&at, None));
    assert_eq!(
        (o.phase.phase, o.phase.reason),
        (ClusterPhase::Unknown, "EngineStatusUnreadable")
    );
    // A readable one goes through the typed mapping.
    object.data["status"] = status("ready", 3, 3, 2);
    object.metadata.generation = Some(2);
    let o = Psmdb.observe(&object, &input(&at, None));
    assert_eq!(o.phase.phase, ClusterPhase::Ready);
}

#[test]
fn supported_operations_are_what_the_percona_resource_can_do() {
    let ops = Psmdb.supported_operations();
    for op in [
        OpsType::Start,
        OpsType::Stop,
        OpsType::HorizontalScaling,
        OpsType::VerticalScaling,
        OpsType::VolumeExpansion,
        OpsType::Reconfiguring,
        OpsType::Upgrade,
        OpsType::Expose,
    ] {
        assert!(ops.contains(&op), "{op:?}");
    }
    for op in [
        OpsType::Switchover,
        OpsType::RebuildInstance,
        OpsType::Custom,
    ] {
        assert!(!ops.contains(&op), "{op:?}");
    }
}

// ---- backups ----

mod backups {
    use dbaas_api::backup::BackupPhase;
    use dbaas_api::backup_storage::BackupStorageType;
    use dbaas_api::{BackupStorageSpec, DatabaseBackup};
    use kube::core::DynamicObject;
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::backup::{BackupObservation, StorageInput};
    use crate::psmdb::backup::{PBM_IMAGE, state};

    fn storage_spec(type_: BackupStorageType) -> BackupStorageSpec {
        BackupStorageSpec {
            type_,
            bucket: None,
            region: None,
            endpoint_url: None,
            force_path_style: None,
            verify_tls: true,
            prefix: None,
            credentials_secret_name: None,
            persistent_volume_claim: None,
            allowed_namespaces: Vec::new(),
        }
    }

    fn s3(name: &str) -> StorageInput {
        StorageInput {
            name: name.into(),
            spec: BackupStorageSpec {
                bucket: Some("backups".into()),
                region: Some("eu-west-1".into()),
                credentials_secret_name: Some("s3-keys".into()),
                ..storage_spec(BackupStorageType::S3)
            },
            credentials_secret: Some(format!("{name}-credentials")),
        }
    }

    fn azure(name: &str) -> StorageInput {
        StorageInput {
            name: name.into(),
            spec: BackupStorageSpec {
                bucket: Some("container-1".into()),
                endpoint_url: Some("https://acct.blob.core.windows.net".into()),
                prefix: Some("mongo".into()),
                credentials_secret_name: Some("azure-keys".into()),
                ..storage_spec(BackupStorageType::Azure)
            },
            credentials_secret: Some(format!("{name}-credentials")),
        }
    }

    fn filesystem(name: &str, claim: &str) -> StorageInput {
        StorageInput {
            name: name.into(),
            spec: BackupStorageSpec {
                persistent_volume_claim: Some(claim.into()),
                ..storage_spec(BackupStorageType::Filesystem)
            },
            credentials_secret: None,
        }
    }

    fn with_backup(backup: Value) -> DatabaseCluster {
        with_spec(|s| s.backup = Some(from_json(backup)))
    }

    fn build_in(cluster: &DatabaseCluster, storages: &[StorageInput]) -> Result<Built, BuildError> {
        let input = BuildInput {
            backup_storages: storages,
            ..Default::default()
        };
        build_with(cluster, &version(), &input)
    }

    fn backup_json(cluster: &DatabaseCluster, storages: &[StorageInput]) -> Value {
        let built = build_in(cluster, storages).unwrap();
        serde_json::to_value(built.cluster.spec.backup).unwrap()
    }

    fn invalid(result: Result<Built, BuildError>) -> String {
        match result {
            Err(err @ BuildError::InvalidBackup { .. }) => {
                assert_eq!(err.reason(), "InvalidBackupSpec");
                err.to_string()
            }
            other => panic!("expected InvalidBackup, got {other:?}"),
        }
    }

    #[test]
    fn an_s3_storage_and_the_short_form_schedule_render_into_percona_fields() {
        let cluster = with_backup(json!({
            "enabled": true,
            "schedule": "0 2 * * *",
            "retentionCopies": 7,
            "storageName": "nightly",
        }));
        let mut storage = s3("nightly");
        storage.spec.endpoint_url = Some("https://minio.local:9000".into());
        storage.spec.force_path_style = Some(true);
        storage.spec.verify_tls = false;
        storage.spec.prefix = Some("/dbaas/".into());
        let built = build_in(&cluster, &[storage]).unwrap();
        assert!(built.unapplied.is_empty(), "{:?}", built.unapplied);
        assert_eq!(
            serde_json::to_value(&built.cluster.spec.backup).unwrap(),
            json!({
                "enabled": true,
                "image": PBM_IMAGE,
                "storages": {
                    "nightly": {
                        "type": "s3",
                        "main": true,
                        "s3": {
                            "bucket": "backups",
                            "prefix": "dbaas/team-a/my-mongodb",
                            "region": "eu-west-1",
                            "endpointUrl": "https://minio.local:9000",
                            "forcePathStyle": true,
                            "insecureSkipTLSVerify": true,
                            "credentialsSecret": "nightly-credentials",
                        },
                    },
                },
                "tasks": [{
                    "name": "default",
                    "enabled": true,
                    "schedule": "0 2 * * *",
                    "storageName": "nightly",
                    "type": "logical",
                    "retention": { "type": "count", "count": 7, "deleteFromStorage": true },
                }],
                "pitr": { "enabled": false },
            })
        );
        // Nothing to mount for object storages.
        let rs0 = &built.cluster.spec.replsets.as_ref().unwrap()[0];
        assert_eq!(rs0.sidecar_volumes, None);
    }

    #[test]
    fn tls_is_verified_by_default_and_the_path_is_namespace_and_cluster() {
        let cluster = with_backup(json!({ "enabled": true, "storageName": "s" }));
        let backup = backup_json(&cluster, &[s3("s")]);
        assert_eq!(
            backup["storages"]["s"]["s3"]["insecureSkipTLSVerify"],
            false
        );
        assert_eq!(backup["storages"]["s"]["s3"]["prefix"], "team-a/my-mongodb");
        assert_eq!(backup["storages"]["s"]["s3"].get("forcePathStyle"), None);
        assert_eq!(backup["storages"]["s"]["s3"].get("endpointUrl"), None);
        assert_eq!(backup.get("tasks"), None, "no schedule, no task");
    }

    #[test]
    fn an_azure_storage_renders_its_container_and_prefix() {
        let cluster = with_backup(json!({
            "enabled": true,
            "schedules": [{ "name": "hourly", "schedule": "0 * * * *", "storageName": "blob" }],
        }));
        let built = build_in(&cluster, &[azure("blob")]).unwrap();
        assert!(built.unapplied.is_empty(), "{:?}", built.unapplied);
        let backup = serde_json::to_value(&built.cluster.spec.backup).unwrap();
        assert_eq!(
            backup["storages"],
            json!({
                "blob": {
                    "type": "azure",
                    "main": true,
                    "azure": {
                        "container": "container-1",
                        "prefix": "mongo/team-a/my-mongodb",
                        "endpointUrl": "https://acct.blob.core.windows.net",
                        "credentialsSecret": "blob-credentials",
                    },
                },
            })
        );
        assert_eq!(
            backup["tasks"],
            json!([{
                "name": "hourly",
                "enabled": true,
                "schedule": "0 * * * *",
                "storageName": "blob",
                "type": "logical",
            }])
        );
    }

    #[test]
    fn an_azure_storage_that_skips_tls_verification_is_reported_not_applied() {
        let cluster = with_backup(json!({ "enabled": true, "storageName": "blob" }));
        let mut storage = azure("blob");
        storage.spec.verify_tls = false;
        let built = build_in(&cluster, &[storage]).unwrap();
        assert_eq!(
            built.unapplied.iter().map(|u| u.field).collect::<Vec<_>>(),
            vec!["backup"]
        );
        assert!(built.unapplied[0].why.contains("verifyTLS"));
    }

    #[test]
    fn a_filesystem_storage_mounts_its_claim_into_every_pbm_agent() {
        let cluster = with_backup(json!({
            "enabled": true,
            "schedule": "30 1 * * 0",
            "storageName": "nfs",
        }));
        let built = build_in(&cluster, &[filesystem("nfs", "backup-pvc")]).unwrap();
        let spec = serde_json::to_value(&built.cluster.spec).unwrap();
        assert_eq!(
            spec["backup"]["storages"],
            json!({
                "nfs": {
                    "type": "filesystem",
                    "main": true,
                    "filesystem": { "path": "/backup-storage/nfs" },
                },
            })
        );
        assert_eq!(
            spec["backup"]["volumeMounts"],
            json!([{
                "name": "backup-fs-0",
                "mountPath": "/backup-storage/nfs",
                "subPath": "team-a/my-mongodb",
            }])
        );
        assert_eq!(
            spec["replsets"][0]["sidecarVolumes"],
            json!([{ "name": "backup-fs-0", "persistentVolumeClaim": { "claimName": "backup-pvc" } }])
        );
        // No config servers without sharding.
        assert_eq!(spec["sharding"], json!({ "enabled": false }));
    }

    #[test]
    fn a_sharded_cluster_mounts_filesystem_storages_on_config_servers_too() {
        let mut cluster = with_backup(json!({
            "enabled": true,
            "storageName": "nfs-a",
            "schedules": [{ "name": "weekly", "schedule": "0 3 * * 6", "storageName": "nfs-b" }],
        }));
        cluster.spec.proxy = Some(from_json(json!({ "type": "mongos" })));
        let built = build_in(
            &cluster,
            &[filesystem("nfs-a", "pvc-a"), filesystem("nfs-b", "pvc-b")],
        )
        .unwrap();
        let spec = serde_json::to_value(&built.cluster.spec).unwrap();
        let volumes = json!([
            { "name": "backup-fs-0", "persistentVolumeClaim": { "claimName": "pvc-a" } },
            { "name": "backup-fs-1", "persistentVolumeClaim": { "claimName": "pvc-b" } },
        ]);
        assert_eq!(spec["replsets"][0]["sidecarVolumes"], volumes);
        assert_eq!(
            spec["sharding"]["configsvrReplSet"]["sidecarVolumes"],
            volumes
        );
        assert_eq!(spec["sharding"]["mongos"].get("sidecarVolumes"), None);
        assert_eq!(
            spec["backup"]["volumeMounts"][1],
            json!({ "name": "backup-fs-1", "mountPath": "/backup-storage/nfs-b", "subPath": "team-a/my-mongodb" })
        );
        // Two storages: exactly one is main (the short form's).
        assert_eq!(spec["backup"]["storages"]["nfs-a"]["main"], true);
        assert_eq!(spec["backup"]["storages"]["nfs-b"].get("main"), None);
    }

    #[test]
    fn a_gcs_storage_is_refused() {
        let cluster = with_backup(json!({ "enabled": true, "storageName": "g" }));
        let storage = StorageInput {
            name: "g".into(),
            spec: BackupStorageSpec {
                bucket: Some("b".into()),
                credentials_secret_name: Some("gcs".into()),
                ..storage_spec(BackupStorageType::Gcs)
            },
            credentials_secret: Some("g-credentials".into()),
        };
        let why = invalid(build_in(&cluster, &[storage]));
        assert!(why.contains("gcs"), "{why}");
        assert!(why.contains("\"g\""), "{why}");
    }

    #[test]
    fn a_storage_that_was_not_found_is_refused() {
        let cluster = with_backup(json!({ "enabled": true, "storageName": "missing" }));
        let why = invalid(build_in(&cluster, &[s3("other")]));
        assert!(why.contains("\"missing\" was not found"), "{why}");
    }

    #[test]
    fn named_schedules_become_tasks_and_disabled_ones_are_left_out() {
        let cluster = with_backup(json!({
            "enabled": true,
            "schedule": "0 2 * * *",
            "storageName": "a",
            "schedules": [
                { "name": "hourly", "schedule": "15 * * * *", "storageName": "b", "retentionCopies": 24 },
                { "name": "paused", "enabled": false, "schedule": "0 4 * * *", "storageName": "a" },
            ],
        }));
        let backup = backup_json(&cluster, &[s3("a"), s3("b")]);
        assert_eq!(
            backup["tasks"],
            json!([
                {
                    "name": "default", "enabled": true, "schedule": "0 2 * * *",
                    "storageName": "a", "type": "logical",
                },
                {
                    "name": "hourly", "enabled": true, "schedule": "15 * * * *",
                    "storageName": "b", "type": "logical",
                    "retention": { "type": "count", "count": 24, "deleteFromStorage": true },
                },
            ])
        );
        assert_eq!(backup["storages"]["a"]["main"], true);
        assert_eq!(backup["storages"]["b"].get("main"), None);
    }

    #[test]
    fn a_named_schedule_called_default_clashes_with_the_short_form() {
        let cluster = with_backup(json!({
            "enabled": true,
            "schedule": "0 2 * * *",
            "storageName": "a",
            "schedules": [{ "name": "default", "schedule": "0 3 * * *", "storageName": "a" }],
        }));
        let why = invalid(build_in(&cluster, &[s3("a")]));
        assert!(why.contains("\"default\""), "{why}");
    }

    #[test]
    fn disabled_backups_still_declare_their_storages_but_schedule_nothing() {
        let cluster = with_backup(json!({
            "enabled": false,
            "schedule": "0 2 * * *",
            "storageName": "a",
            "schedules": [{ "name": "hourly", "schedule": "0 * * * *", "storageName": "b" }],
        }));
        let built = build_in(&cluster, &[s3("a"), s3("b")]).unwrap();
        assert!(built.unapplied.is_empty(), "{:?}", built.unapplied);
        let backup = serde_json::to_value(&built.cluster.spec.backup).unwrap();
        // The pbm-agent runs (on-demand backups need it).
        assert_eq!(backup["enabled"], true);
        assert_eq!(
            backup["storages"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            vec!["a", "b"]
        );
        assert_eq!(backup.get("tasks"), None);
        assert_eq!(backup["pitr"], json!({ "enabled": false }));
    }

    #[test]
    fn pitr_makes_its_storage_the_main_one() {
        let cluster = with_backup(json!({
            "enabled": true,
            "schedule": "0 2 * * *",
            "storageName": "a",
            "pitr": { "enabled": true, "storageName": "b" },
        }));
        let backup = backup_json(&cluster, &[s3("a"), s3("b")]);
        assert_eq!(backup["pitr"], json!({ "enabled": true }));
        assert_eq!(backup["storages"]["b"]["main"], true);
        assert_eq!(backup["storages"]["a"].get("main"), None);
        // Without its own storage PITR uses the short form's.
        let cluster = with_backup(json!({
            "enabled": true,
            "storageName": "a",
            "schedules": [{ "name": "n", "schedule": "0 2 * * *", "storageName": "b" }],
            "pitr": { "enabled": true },
        }));
        let backup = backup_json(&cluster, &[s3("a"), s3("b")]);
        assert_eq!(backup["pitr"]["enabled"], true);
        assert_eq!(backup["storages"]["a"]["main"], true);
        assert_eq!(backup["storages"]["b"].get("main"), None);
    }

    #[test]
    fn pitr_while_scheduled_backups_are_off_still_archives() {
        let cluster = with_backup(json!({
            "enabled": false,
            "pitr": { "enabled": true, "storageName": "a" },
        }));
        let backup = backup_json(&cluster, &[s3("a")]);
        assert_eq!(backup["enabled"], true);
        assert_eq!(backup["pitr"], json!({ "enabled": true }));
        assert_eq!(backup["storages"]["a"]["main"], true);
        assert_eq!(backup.get("tasks"), None);
    }

    #[test]
    fn pitr_without_any_storage_is_refused() {
        let cluster = with_backup(json!({ "enabled": true, "pitr": { "enabled": true } }));
        let why = invalid(build_in(&cluster, &[]));
        assert!(why.contains("PITR"), "{why}");
    }

    #[test]
    fn bad_crons_are_refused_even_on_schedules_that_are_off() {
        for backup in [
            json!({ "enabled": true, "schedule": "0 2 * *", "storageName": "a" }),
            json!({ "enabled": true, "schedule": "61 2 * * *", "storageName": "a" }),
            json!({ "enabled": true, "schedule": "0 0 2 * * *", "storageName": "a" }),
            json!({
                "enabled": true,
                "schedules": [{ "name": "n", "enabled": false, "schedule": "x y z a b", "storageName": "a" }],
            }),
            json!({ "enabled": false, "schedule": "0 25 * * *", "storageName": "a" }),
        ] {
            let why = invalid(build_in(&with_backup(backup.clone()), &[s3("a")]));
            assert!(why.contains("backup schedule"), "{backup}: {why}");
        }
    }

    #[test]
    fn the_provider_passes_storages_through_build() {
        let cluster = with_backup(json!({ "enabled": true, "storageName": "a" }));
        let storages = [s3("a")];
        let input = BuildInput {
            backup_storages: &storages,
            ..Default::default()
        };
        let built = Psmdb.build(&cluster, &version(), &input).unwrap();
        assert_eq!(built.object.data["spec"]["backup"]["image"], PBM_IMAGE);
        assert_eq!(
            built.object.data["spec"]["backup"]["storages"]["a"]["s3"]["bucket"],
            "backups"
        );
    }

    // ---- on-demand ----

    const BACKUP: &str = r#"
apiVersion: dbaas.io/v1
kind: DatabaseBackup
metadata:
  name: before-upgrade
  namespace: team-a
  uid: 0b5c1b64-0000-4000-8000-000000000009
spec:
  clusterName: my-mongodb
"#;

    fn database_backup() -> DatabaseBackup {
        serde_saphyr::from_str(BACKUP).unwrap()
    }

    fn referencing(storage: &str) -> DatabaseCluster {
        with_backup(json!({ "enabled": false, "storageName": storage }))
    }

    #[test]
    fn an_on_demand_backup_is_a_logical_percona_backup_owned_by_ours() {
        let object = Psmdb
            .build_backup(&database_backup(), &referencing("nightly"), &s3("nightly"))
            .unwrap();
        let mut value = serde_json::to_value(&object).unwrap();
        let owner = value["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("ownerReferences")
            .unwrap();
        assert_eq!(
            value,
            json!({
                "apiVersion": "psmdb.percona.com/v1",
                "kind": "PerconaServerMongoDBBackup",
                "metadata": {
                    "name": "before-upgrade",
                    "namespace": "team-a",
                    "labels": {
                        "app.kubernetes.io/managed-by": MANAGED_BY_VALUE,
                        (LABEL_CLUSTER): "my-mongodb",
                        (LABEL_ENGINE): "mongodb",
                        "dbaas.io/backup": "before-upgrade",
                    },
                },
                "spec": {
                    "clusterName": "my-mongodb",
                    "storageName": "nightly",
                    "type": "logical",
                },
            })
        );
        assert_eq!(
            owner,
            json!([{
                "apiVersion": "dbaas.io/v1",
                "kind": "DatabaseBackup",
                "name": "before-upgrade",
                "uid": "0b5c1b64-0000-4000-8000-000000000009",
                "controller": true,
            }])
        );
        let resource = Psmdb.backup_resource().unwrap();
        assert_eq!(
            (
                resource.group.as_str(),
                resource.version.as_str(),
                resource.kind.as_str(),
                resource.plural.as_str()
            ),
            (
                "psmdb.percona.com",
                "v1",
                "PerconaServerMongoDBBackup",
                "perconaservermongodbbackups"
            )
        );
    }

    #[test]
    fn an_on_demand_backup_into_a_storage_the_cluster_does_not_declare_is_refused() {
        let err = Psmdb
            .build_backup(
                &database_backup(),
                &referencing("nightly"),
                &s3("elsewhere"),
            )
            .unwrap_err();
        assert!(matches!(err, BuildError::InvalidBackup { .. }), "{err}");
        assert!(err.to_string().contains("\"elsewhere\""), "{err}");
        let gcs = StorageInput {
            name: "nightly".into(),
            spec: storage_spec(BackupStorageType::Gcs),
            credentials_secret: None,
        };
        let err = Psmdb
            .build_backup(&database_backup(), &referencing("nightly"), &gcs)
            .unwrap_err();
        assert!(err.to_string().contains("gcs"), "{err}");
    }

    fn percona_backup(status: Option<Value>) -> DynamicObject {
        let mut object = json!({
            "apiVersion": "psmdb.percona.com/v1",
            "kind": "PerconaServerMongoDBBackup",
            "metadata": { "name": "before-upgrade", "namespace": "team-a" },
            "spec": { "clusterName": "my-mongodb", "storageName": "nightly", "type": "logical" },
        });
        if let Some(status) = status {
            object["status"] = status;
        }
        from_json(object)
    }

    fn observed(status: Value) -> BackupObservation {
        Psmdb.observe_backup(&percona_backup(Some(status)))
    }

    #[test]
    fn a_backup_percona_has_not_touched_is_pending() {
        assert_eq!(
            Psmdb.observe_backup(&percona_backup(None)),
            BackupObservation::pending()
        );
        assert_eq!(observed(json!({})), BackupObservation::pending());
        assert_eq!(
            observed(json!({ "state": state::NEW })),
            BackupObservation::pending()
        );
    }

    #[test]
    fn waiting_is_pending_with_a_reason() {
        let o = observed(json!({ "state": state::WAITING }));
        assert_eq!(o.phase, BackupPhase::Pending);
        assert!(o.message.unwrap().starts_with("waiting"));
        // Percona's own words win when it gives some.
        let o = observed(json!({ "state": state::WAITING, "error": "cluster is not ready" }));
        assert_eq!(o.message.as_deref(), Some("cluster is not ready"));
    }

    #[test]
    fn requested_and_running_are_running_with_the_start_time() {
        for text in [state::REQUESTED, state::RUNNING] {
            let o = observed(json!({
                "state": text,
                "start": "2026-03-01T02:00:05Z",
                "destination": "s3://backups/team-a/my-mongodb/2026-03-01T02:00:00Z",
                "storageName": "nightly",
            }));
            assert_eq!(
                o,
                BackupObservation {
                    phase: BackupPhase::Running,
                    started_at: Some(time("2026-03-01T02:00:05Z")),
                    completed_at: None,
                    destination: Some("s3://backups/team-a/my-mongodb/2026-03-01T02:00:00Z".into()),
                    message: Some(text.into()),
                },
                "{text}"
            );
        }
    }

    #[test]
    fn ready_is_succeeded_with_times_and_destination() {
        let o = observed(json!({
            "state": state::READY,
            "start": "2026-03-01T02:00:05Z",
            "completed": "2026-03-01T02:04:10Z",
            "lastTransition": "2026-03-01T02:04:10Z",
            "destination": "s3://backups/team-a/my-mongodb/2026-03-01T02:00:00Z",
            "pbmName": "2026-03-01T02:00:00Z",
            "size": "1.2MB",
            "type": "logical",
        }));
        assert_eq!(
            o,
            BackupObservation {
                phase: BackupPhase::Succeeded,
                started_at: Some(time("2026-03-01T02:00:05Z")),
                completed_at: Some(time("2026-03-01T02:04:10Z")),
                destination: Some("s3://backups/team-a/my-mongodb/2026-03-01T02:00:00Z".into()),
                message: Some("ready".into()),
            }
        );
    }

    #[test]
    fn error_and_rejected_are_failed_with_percona_s_error() {
        let o = observed(json!({
            "state": state::ERROR,
            "start": "2026-03-01T02:00:05Z",
            "error": "starting deadline exceeded",
            "destination": "",
        }));
        assert_eq!(o.phase, BackupPhase::Failed);
        assert_eq!(o.message.as_deref(), Some("starting deadline exceeded"));
        assert_eq!(o.started_at, Some(time("2026-03-01T02:00:05Z")));
        assert_eq!(o.destination, None, "an empty destination is none");
        let o = observed(json!({ "state": state::REJECTED }));
        assert_eq!(o.phase, BackupPhase::Failed);
        assert!(o.message.unwrap().contains("rejected"));
    }

    #[test]
    fn an_unknown_state_is_pending_and_said_so() {
        let o = observed(json!({ "state": "snapshotting" }));
        assert_eq!(o.phase, BackupPhase::Pending);
        assert!(o.message.unwrap().contains("snapshotting"));
    }

    #[test]
    fn an_unreadable_backup_is_pending_with_the_reason() {
        let o = observed(json!({ "state": 7 }));
        assert_eq!(o.phase, BackupPhase::Pending);
        assert!(
            o.message.unwrap().contains("cannot be read"),
            "a wrong type is reported, not a panic"
        );
    }
}

// ---- restores ----

mod restores {
    use dbaas_api::BackupStorageSpec;
    use dbaas_api::backup_storage::BackupStorageType;
    use dbaas_api::cluster::{PitrTarget, PitrType};
    use dbaas_engine_crds::psmdb_restore::PerconaServerMongoDbRestore;
    use kube::core::DynamicObject;
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::backup::StorageInput;
    use crate::psmdb::restore::state;
    use crate::restore::{
        LABEL_RESTORE, RestoreBackup, RestoreInput, RestoreObservation, RestorePhase,
    };

    const PBM_NAME: &str = "2026-03-01T02:00:00Z";

    fn storage(name: &str, type_: BackupStorageType) -> StorageInput {
        StorageInput {
            name: name.into(),
            spec: BackupStorageSpec {
                type_,
                bucket: None,
                region: None,
                endpoint_url: None,
                force_path_style: None,
                verify_tls: true,
                prefix: None,
                credentials_secret_name: None,
                persistent_volume_claim: None,
                allowed_namespaces: Vec::new(),
            },
            credentials_secret: None,
        }
    }

    fn s3() -> StorageInput {
        let mut s = storage("nightly", BackupStorageType::S3);
        s.spec.bucket = Some("backups".into());
        s.spec.region = Some("eu-west-1".into());
        s.spec.endpoint_url = Some("https://minio.example:9000".into());
        s.spec.force_path_style = Some(true);
        s.spec.prefix = Some("mongo".into());
        s.spec.credentials_secret_name = Some("s3-keys".into());
        s.credentials_secret = Some("nightly-credentials".into());
        s
    }

    fn azure() -> StorageInput {
        let mut s = storage("blob", BackupStorageType::Azure);
        s.spec.bucket = Some("container-1".into());
        s.spec.endpoint_url = Some("https://acct.blob.core.windows.net/".into());
        s.spec.credentials_secret_name = Some("azure-keys".into());
        s.credentials_secret = Some("blob-credentials".into());
        s
    }

    fn filesystem() -> StorageInput {
        let mut s = storage("local", BackupStorageType::Filesystem);
        s.spec.persistent_volume_claim = Some("backup-pvc".into());
        s
    }

    /// The sample cluster (team-a/my-mongodb) declaring `storage`.
    fn declaring(storage: &str) -> DatabaseCluster {
        with_spec(|s| {
            s.backup = Some(from_json(
                json!({ "enabled": false, "storageName": storage }),
            ))
        })
    }

    fn taken(source_cluster: &str, destination: Option<&str>) -> RestoreBackup {
        RestoreBackup::Taken {
            backup_name: "before-upgrade".into(),
            source_cluster: source_cluster.into(),
            source_namespace: "team-a".into(),
            destination: destination.map(Into::into),
        }
    }

    fn input(backup: RestoreBackup, storage: StorageInput) -> RestoreInput {
        RestoreInput {
            backup,
            storage: Some(storage),
            pitr: None,
        }
    }

    /// Builds the restore, and checks that the kopium type reads it back
    /// with nothing lost (a field it does not know would be dropped).
    fn built(cluster: &DatabaseCluster, source: &RestoreInput) -> Value {
        let object = Psmdb.build_restore("restore-1", cluster, source).unwrap();
        let value = serde_json::to_value(&object).unwrap();
        let typed: PerconaServerMongoDbRestore = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(
            serde_json::to_value(&typed).unwrap(),
            value,
            "lost in the kopium type"
        );
        value
    }

    fn spec_of(cluster: &DatabaseCluster, source: &RestoreInput) -> Value {
        built(cluster, source)["spec"].clone()
    }

    fn refused(cluster: &DatabaseCluster, source: &RestoreInput) -> String {
        match Psmdb.build_restore("restore-1", cluster, source) {
            Err(err @ BuildError::InvalidBackup { .. }) => {
                assert_eq!(err.reason(), "InvalidBackupSpec");
                err.to_string()
            }
            other => panic!("expected InvalidBackup, got {other:?}"),
        }
    }

    #[test]
    fn a_taken_backup_on_s3_restores_from_its_recorded_destination() {
        let destination = format!("s3://backups/mongo/team-a/other-cluster/{PBM_NAME}");
        let source = input(taken("other-cluster", Some(&destination)), s3());
        assert_eq!(
            built(&sample(), &source),
            json!({
                "apiVersion": "psmdb.percona.com/v1",
                "kind": "PerconaServerMongoDBRestore",
                "metadata": {
                    "name": "restore-1",
                    "namespace": "team-a",
                    "labels": {
                        "app.kubernetes.io/managed-by": MANAGED_BY_VALUE,
                        (LABEL_CLUSTER): "my-mongodb",
                        (LABEL_ENGINE): "mongodb",
                        (LABEL_RESTORE): "restore-1",
                    },
                },
                "spec": {
                    "clusterName": "my-mongodb",
                    "backupSource": {
                        "type": "logical",
                        "destination": destination,
                        "s3": {
                            "bucket": "backups",
                            "prefix": "mongo/team-a/other-cluster",
                            "region": "eu-west-1",
                            "endpointUrl": "https://minio.example:9000",
                            "forcePathStyle": true,
                            "insecureSkipTLSVerify": false,
                            "credentialsSecret": "nightly-credentials",
                        },
                    },
                },
            })
        );
        let resource = Psmdb.restore_resource().unwrap();
        assert_eq!(
            (
                resource.group.as_str(),
                resource.version.as_str(),
                resource.kind.as_str(),
                resource.plural.as_str()
            ),
            (
                "psmdb.percona.com",
                "v1",
                "PerconaServerMongoDBRestore",
                "perconaservermongodbrestores"
            )
        );
    }

    #[test]
    fn a_backup_at_a_path_on_s3_restores_from_that_directory() {
        let source = input(
            RestoreBackup::Path(format!("/imported/prod/{PBM_NAME}/")),
            s3(),
        );
        let spec = spec_of(&sample(), &source);
        assert_eq!(
            spec["backupSource"]["destination"],
            format!("s3://backups/imported/prod/{PBM_NAME}")
        );
        assert_eq!(spec["backupSource"]["s3"]["prefix"], "imported/prod");
        assert_eq!(spec["backupSource"]["type"], "logical");
        assert!(spec.get("storageName").is_none(), "{spec}");
        assert!(spec.get("pitr").is_none(), "{spec}");

        // At the bucket's root: no prefix at all.
        let source = input(RestoreBackup::Path(PBM_NAME.into()), s3());
        let spec = spec_of(&sample(), &source);
        assert_eq!(
            spec["backupSource"]["destination"],
            format!("s3://backups/{PBM_NAME}")
        );
        assert!(spec["backupSource"]["s3"].get("prefix").is_none(), "{spec}");
    }

    #[test]
    fn a_path_that_names_no_backup_is_refused() {
        for path in ["", "/", "//"] {
            let err = refused(&sample(), &input(RestoreBackup::Path(path.into()), s3()));
            assert!(err.contains("names no backup"), "{path:?}: {err}");
        }
    }

    #[test]
    fn pitr_to_a_date_and_to_the_latest_time() {
        let destination = format!("s3://backups/mongo/team-a/my-mongodb/{PBM_NAME}");
        let mut source = input(taken("my-mongodb", Some(&destination)), s3());
        source.pitr = Some(PitrTarget {
            type_: PitrType::Date,
            date: Some(time("2026-03-01T02:30:05Z")),
        });
        assert_eq!(
            spec_of(&sample(), &source)["pitr"],
            json!({ "type": "date", "date": "2026-03-01 02:30:05" })
        );
        source.pitr = Some(PitrTarget {
            type_: PitrType::Latest,
            date: None,
        });
        assert_eq!(
            spec_of(&sample(), &source)["pitr"],
            json!({ "type": "latest" })
        );
        // A date beside `latest` is not sent (Percona's CRD refuses it).
        source.pitr = Some(PitrTarget {
            type_: PitrType::Latest,
            date: Some(time("2026-03-01T02:30:05Z")),
        });
        assert_eq!(
            spec_of(&sample(), &source)["pitr"],
            json!({ "type": "latest" })
        );
    }

    #[test]
    fn pitr_from_a_backup_at_a_path_reads_the_oplog_from_the_same_storage() {
        let mut source = input(RestoreBackup::Path(format!("imported/{PBM_NAME}")), s3());
        source.pitr = Some(PitrTarget {
            type_: PitrType::Latest,
            date: None,
        });
        let spec = spec_of(&sample(), &source);
        assert_eq!(spec["pitr"], json!({ "type": "latest" }));
        assert_eq!(spec["backupSource"]["s3"]["prefix"], "imported");
    }

    #[test]
    fn pitr_to_a_date_without_a_date_is_refused() {
        let mut source = input(RestoreBackup::Path(PBM_NAME.into()), s3());
        source.pitr = Some(PitrTarget {
            type_: PitrType::Date,
            date: None,
        });
        let err = refused(&sample(), &source);
        assert!(err.contains("pitr.date"), "{err}");
    }

    #[test]
    fn a_taken_backup_without_a_recorded_destination_is_refused() {
        for destination in [None, Some("")] {
            let err = refused(&sample(), &input(taken("my-mongodb", destination), s3()));
            assert!(err.contains("no recorded destination"), "{err}");
            assert!(err.contains("\"before-upgrade\""), "{err}");
        }
    }

    #[test]
    fn a_destination_outside_the_storage_is_refused() {
        let elsewhere = format!("s3://other-bucket/mongo/team-a/my-mongodb/{PBM_NAME}");
        let err = refused(
            &sample(),
            &input(taken("my-mongodb", Some(&elsewhere)), s3()),
        );
        assert!(err.contains("other-bucket"), "{err}");
        assert!(err.contains("\"nightly\""), "{err}");
        // An s3 destination is not in an azure storage either.
        let s3_destination = format!("s3://container-1/{PBM_NAME}");
        let err = refused(
            &sample(),
            &input(taken("my-mongodb", Some(&s3_destination)), azure()),
        );
        assert!(err.contains("\"blob\""), "{err}");
    }

    #[test]
    fn no_storage_no_bucket_or_no_credentials_is_refused() {
        let mut source = input(RestoreBackup::Path(PBM_NAME.into()), s3());
        source.storage = None;
        let err = refused(&sample(), &source);
        assert!(err.contains("not looked up"), "{err}");

        let mut bucketless = s3();
        bucketless.spec.bucket = None;
        let err = refused(
            &sample(),
            &input(RestoreBackup::Path(PBM_NAME.into()), bucketless),
        );
        assert!(err.contains("names no bucket"), "{err}");

        for mut keyless in [s3(), azure()] {
            keyless.credentials_secret = None;
            let err = refused(
                &sample(),
                &input(RestoreBackup::Path(PBM_NAME.into()), keyless),
            );
            assert!(err.contains("no credentials Secret"), "{err}");
        }
    }

    #[test]
    fn azure_restores_from_the_container_in_both_destination_spellings() {
        let expected = |destination: &str, prefix: &str| {
            json!({
                "type": "logical",
                "destination": destination,
                "azure": {
                    "container": "container-1",
                    "prefix": prefix,
                    "endpointUrl": "https://acct.blob.core.windows.net/",
                    "credentialsSecret": "blob-credentials",
                },
            })
        };
        for destination in [
            format!("azure://container-1/team-a/my-mongodb/{PBM_NAME}"),
            format!("https://acct.blob.core.windows.net/container-1/team-a/my-mongodb/{PBM_NAME}"),
        ] {
            let source = input(taken("my-mongodb", Some(&destination)), azure());
            assert_eq!(
                spec_of(&sample(), &source)["backupSource"],
                expected(&destination, "team-a/my-mongodb"),
                "{destination}"
            );
        }
        let source = input(RestoreBackup::Path(format!("old/{PBM_NAME}")), azure());
        assert_eq!(
            spec_of(&sample(), &source)["backupSource"],
            expected(&format!("azure://container-1/old/{PBM_NAME}"), "old")
        );
    }

    #[test]
    fn filesystem_restores_the_cluster_s_own_backups_through_its_mount() {
        let cluster = declaring("local");
        let expected = json!({
            "clusterName": "my-mongodb",
            "storageName": "local",
            "backupSource": {
                "type": "logical",
                "destination": format!("/backup-storage/local/{PBM_NAME}"),
                "filesystem": { "path": "/backup-storage/local" },
            },
        });
        let recorded = format!("/backup-storage/local/{PBM_NAME}");
        let source = input(taken("my-mongodb", Some(&recorded)), filesystem());
        assert_eq!(spec_of(&cluster, &source), expected);
        // A path is relative to the volume: the cluster's directory, then the backup.
        let source = input(
            RestoreBackup::Path(format!("team-a/my-mongodb/{PBM_NAME}")),
            filesystem(),
        );
        assert_eq!(spec_of(&cluster, &source), expected);
    }

    #[test]
    fn filesystem_refuses_what_the_cluster_s_mount_cannot_show() {
        let cluster = declaring("local");
        let recorded = format!("/backup-storage/local/{PBM_NAME}");
        // Another cluster's backup (its own directory of the volume).
        let err = refused(
            &cluster,
            &input(taken("other-cluster", Some(&recorded)), filesystem()),
        );
        assert!(err.contains("other-cluster"), "{err}");
        assert!(err.contains("s3 or azure"), "{err}");
        // The same name in another namespace is another cluster too.
        let other_namespace = RestoreBackup::Taken {
            backup_name: "before-upgrade".into(),
            source_cluster: "my-mongodb".into(),
            source_namespace: "team-b".into(),
            destination: Some(recorded.clone()),
        };
        let err = refused(&cluster, &input(other_namespace, filesystem()));
        assert!(err.contains("team-b/my-mongodb"), "{err}");
        // A path outside the cluster's directory.
        let err = refused(
            &cluster,
            &input(
                RestoreBackup::Path(format!("team-a/other/{PBM_NAME}")),
                filesystem(),
            ),
        );
        assert!(err.contains("team-a/my-mongodb"), "{err}");
        // A path below a sub-directory PBM does not read.
        let err = refused(
            &cluster,
            &input(
                RestoreBackup::Path(format!("team-a/my-mongodb/old/{PBM_NAME}")),
                filesystem(),
            ),
        );
        assert!(err.contains("sub-directory"), "{err}");
        // A storage the cluster does not declare is not mounted at all.
        let err = refused(
            &declaring("elsewhere"),
            &input(taken("my-mongodb", Some(&recorded)), filesystem()),
        );
        assert!(err.contains("not named in the backup spec"), "{err}");
    }

    #[test]
    fn gcs_is_refused() {
        let mut gcs = storage("gcs", BackupStorageType::Gcs);
        gcs.spec.bucket = Some("backups".into());
        let err = refused(&sample(), &input(RestoreBackup::Path(PBM_NAME.into()), gcs));
        assert!(err.contains("gcs"), "{err}");
    }

    fn percona_restore(status: Option<Value>) -> DynamicObject {
        let mut object = json!({
            "apiVersion": "psmdb.percona.com/v1",
            "kind": "PerconaServerMongoDBRestore",
            "metadata": { "name": "restore-1", "namespace": "team-a" },
            "spec": {
                "clusterName": "my-mongodb",
                "backupSource": { "type": "logical", "destination": format!("s3://backups/{PBM_NAME}") },
            },
        });
        if let Some(status) = status {
            object["status"] = status;
        }
        from_json(object)
    }

    fn observed(status: Value) -> RestoreObservation {
        Psmdb.observe_restore(&percona_restore(Some(status)))
    }

    #[test]
    fn a_restore_percona_has_not_touched_is_pending() {
        assert_eq!(
            Psmdb.observe_restore(&percona_restore(None)),
            RestoreObservation::pending()
        );
        assert_eq!(observed(json!({})), RestoreObservation::pending());
        assert_eq!(
            observed(json!({ "state": state::NEW })),
            RestoreObservation::pending()
        );
    }

    #[test]
    fn waiting_is_pending_with_a_reason() {
        let o = observed(json!({ "state": state::WAITING }));
        assert_eq!(o.phase, RestorePhase::Pending);
        assert!(o.message.unwrap().starts_with("waiting"));
        let o = observed(json!({ "state": state::WAITING, "error": "waiting for pbm-agent" }));
        assert_eq!(o.message.as_deref(), Some("waiting for pbm-agent"));
    }

    #[test]
    fn requested_and_running_are_running() {
        for text in [state::REQUESTED, state::RUNNING] {
            let o = observed(json!({ "state": text, "pbmName": "2026-03-02T10:00:00.123Z" }));
            assert_eq!(
                o,
                RestoreObservation {
                    phase: RestorePhase::Running,
                    completed_at: None,
                    message: Some(text.into()),
                },
                "{text}"
            );
        }
    }

    #[test]
    fn ready_is_succeeded_with_the_completion_time() {
        let o = observed(json!({
            "state": state::READY,
            "pbmName": "2026-03-02T10:00:00.123Z",
            "completed": "2026-03-02T10:04:10Z",
            "lastTransition": "2026-03-02T10:04:10Z",
        }));
        assert_eq!(
            o,
            RestoreObservation {
                phase: RestorePhase::Succeeded,
                completed_at: Some(time("2026-03-02T10:04:10Z")),
                message: Some("ready".into()),
            }
        );
    }

    #[test]
    fn error_and_rejected_are_failed_with_percona_s_error() {
        let o = observed(json!({
            "state": state::ERROR,
            "error": "no chunk with the target time",
            "completed": "2026-03-02T10:04:10Z",
        }));
        assert_eq!(
            o,
            RestoreObservation {
                phase: RestorePhase::Failed,
                completed_at: None,
                message: Some("no chunk with the target time".into()),
            }
        );
        let o = observed(json!({ "state": state::REJECTED, "error": "" }));
        assert_eq!(o.phase, RestorePhase::Failed);
        assert!(o.message.unwrap().contains("rejected"));
        let o = observed(json!({ "state": state::ERROR }));
        assert_eq!(o.phase, RestorePhase::Failed);
        assert!(o.message.unwrap().contains("without an error message"));
    }

    #[test]
    fn an_unknown_state_is_pending_and_said_so() {
        let o = observed(json!({ "state": "resyncing" }));
        assert_eq!(o.phase, RestorePhase::Pending);
        assert!(o.message.unwrap().contains("resyncing"));
    }

    #[test]
    fn an_unreadable_restore_is_pending_with_the_reason() {
        let o = observed(json!({ "state": ["ready"] }));
        assert_eq!(o.phase, RestorePhase::Pending);
        assert!(o.message.unwrap().contains("cannot be read"));
    }
}
