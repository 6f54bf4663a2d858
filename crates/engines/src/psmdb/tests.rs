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
    // backup.enabled is accepted but not applied yet: say so.
    assert_eq!(
        built.unapplied.iter().map(|u| u.field).collect::<Vec<_>>(),
        vec!["backup"]
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
fn data_source_is_refused_rather_than_creating_an_empty_cluster() {
    let cluster = with_spec(|s| {
        s.data_source = Some(from_json(json!({ "backupName": "nightly" })));
    });
    let err = build(&cluster, &version()).unwrap_err();
    assert_eq!(err.reason(), "UnsupportedFeature");
    assert!(err.to_string().contains("dataSource"), "{err}");
    assert!(err.to_string().contains("mongodb"), "{err}");
}

#[test]
fn monitoring_and_backup_are_reported_as_not_applied() {
    let cluster = with_spec(|s| {
        s.monitoring = Some(from_json(json!({ "monitoringConfigName": "pmm" })));
    });
    let built = build(&cluster, &version()).unwrap();
    assert_eq!(
        built.unapplied.iter().map(|u| u.field).collect::<Vec<_>>(),
        vec!["backup", "monitoring"]
    );
    let cluster = with_spec(|s| {
        s.backup = Some(from_json(
            json!({ "enabled": false, "pitr": { "enabled": true } }),
        ));
    });
    assert_eq!(
        build(&cluster, &version()).unwrap().unapplied[0].field,
        "backup"
    );
    let cluster = with_spec(|s| s.backup = Some(from_json(json!({ "enabled": false }))));
    assert!(build(&cluster, &version()).unwrap().unapplied.is_empty());
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
