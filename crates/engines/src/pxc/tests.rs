use dbaas_api::cluster::DatabaseClusterSpec;
use dbaas_api::common::{LABEL_CLUSTER, LABEL_ENGINE, LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_engine_crds::pxc_cluster::PerconaXtraDbClusterStatusPxc;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::catalog::resolve_version;
use crate::provider::provider_for;

const SEED_SAMPLE: &str = r#"
apiVersion: dbaas.io/v1
kind: DatabaseCluster
metadata:
  name: my-mysql
  namespace: team-a
  uid: 7a1c1b64-0000-4000-8000-000000000002
spec:
  engine:
    type: mysql
    version: "8.0.42-33.1"
  clusterSize: 3
  storage:
    size: 10Gi
  resources:
    requests:
      cpu: "1"
      memory: 2Gi
  proxy:
    type: haproxy
  backup:
    enabled: true
    schedule: "0 2 * * *"
  config:
    - name: max_connections
      value: "200"
"#;

const IMAGE: &str = "percona/percona-xtradb-cluster:8.0.42-33.1";

fn seed() -> DatabaseCluster {
    serde_saphyr::from_str(SEED_SAMPLE).unwrap()
}

fn version() -> ResolvedVersion {
    ResolvedVersion {
        version: "8.0.42-33.1".into(),
        image: IMAGE.into(),
    }
}

fn with_spec(edit: impl FnOnce(&mut DatabaseClusterSpec)) -> DatabaseCluster {
    let mut cluster = seed();
    edit(&mut cluster.spec);
    cluster
}

fn spec_json(cluster: &DatabaseCluster) -> Value {
    serde_json::to_value(build(cluster, &version()).unwrap().cluster.spec).unwrap()
}

fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

// ---- versions and the provider ----

#[test]
fn versions_are_percona_image_tags_newest_first_with_an_offered_default() {
    let versions = Pxc.versions();
    assert_eq!(versions[0].version, PXC_DEFAULT);
    assert_eq!(
        versions[0].image,
        "percona/percona-xtradb-cluster:8.4.8-8.1"
    );
    assert!(versions.iter().any(|v| v.version == "8.0.42-33.1"));
    assert!(versions.iter().any(|v| v.version == "8.4.5-5.1"));
    for v in &versions {
        assert_eq!(
            v.image,
            format!("percona/percona-xtradb-cluster:{}", v.version)
        );
    }
    // Within each major, newest first.
    for major in ["8.4.", "8.0."] {
        let minors = versions
            .iter()
            .filter(|v| v.version.starts_with(major))
            .map(|v| {
                v.version[major.len()..]
                    .split('-')
                    .next()
                    .unwrap()
                    .parse::<u32>()
                    .unwrap()
            })
            .collect::<Vec<_>>();
        assert!(
            minors.windows(2).all(|w| w[0] > w[1]),
            "{major}: {minors:?}"
        );
    }
    let resolved = resolve_version(&Pxc, None, None).unwrap();
    assert_eq!(resolved.version, PXC_DEFAULT);
    let resolved = resolve_version(&Pxc, Some("8.0.42-33.1"), None).unwrap();
    assert_eq!(resolved, version());
    assert!(resolve_version(&Pxc, Some("5.7.44-31.65"), None).is_err());
}

#[test]
fn provider_is_registered_for_mysql() {
    let provider = provider_for(EngineType::Mysql).unwrap();
    assert_eq!(provider.engine(), EngineType::Mysql);
    let resource = provider.resource();
    assert_eq!(
        (
            resource.group.as_str(),
            resource.version.as_str(),
            resource.kind.as_str(),
            resource.plural.as_str()
        ),
        (
            "pxc.percona.com",
            "v1",
            "PerconaXtraDBCluster",
            "perconaxtradbclusters"
        )
    );
    let ops = provider.supported_operations();
    assert!(ops.contains(&OpsType::HorizontalScaling) && ops.contains(&OpsType::Stop));
    assert!(!ops.contains(&OpsType::Switchover));
}

#[test]
fn provider_build_gives_a_dynamic_object_to_apply() {
    let built = Pxc
        .build(&seed(), &version(), &BuildInput::default())
        .unwrap();
    assert_eq!(
        built.object.types.as_ref().map(|t| t.api_version.as_str()),
        Some("pxc.percona.com/v1")
    );
    assert_eq!(
        built.object.types.as_ref().map(|t| t.kind.as_str()),
        Some("PerconaXtraDBCluster")
    );
    assert_eq!(built.object.data["spec"]["pxc"]["size"], 3);
    assert_eq!(built.object.data.get("status"), None);
    assert_eq!(built.unapplied.len(), 1);
}

// ---- build ----

#[test]
fn seed_sample_builds_the_pxc_cluster() {
    let built = build(&seed(), &version()).unwrap();
    let c = &built.cluster;
    assert_eq!(
        serde_json::to_value(&c.spec).unwrap(),
        json!({
            "crVersion": "1.20.0",
            "upgradeOptions": { "apply": "disabled" },
            "secretsName": "my-mysql-secrets",
            "pause": false,
            "enableVolumeExpansion": true,
            "pxc": {
                "size": 3,
                "image": IMAGE,
                "volumeSpec": {
                    "persistentVolumeClaim": {
                        "resources": { "requests": { "storage": "10Gi" } },
                    },
                },
                "resources": { "requests": { "cpu": "1", "memory": "2Gi" } },
                "configuration": "[mysqld]\nmax_connections=200\n",
            },
            "haproxy": {
                "enabled": true,
                "size": 3,
                "image": "percona/haproxy:2.8.18-1",
            },
            "proxysql": { "enabled": false },
        })
    );
    assert_eq!(c.metadata.name.as_deref(), Some("my-mysql"));
    assert_eq!(c.metadata.namespace.as_deref(), Some("team-a"));
    assert_eq!(c.metadata.annotations, None);
    let labels = c.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[LABEL_MANAGED_BY], MANAGED_BY_VALUE);
    assert_eq!(labels[LABEL_CLUSTER], "my-mysql");
    assert_eq!(labels[LABEL_ENGINE], "mysql");
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
            "my-mysql",
            "7a1c1b64-0000-4000-8000-000000000002",
            Some(true)
        )
    );
    assert!(c.status.is_none());
    // The seed's schedule names no storage: it cannot run, say so.
    assert_eq!(
        built.unapplied.iter().map(|u| u.field).collect::<Vec<_>>(),
        vec!["backup.schedule"]
    );
}

#[test]
fn custom_credentials_secret_becomes_the_secrets_name() {
    let cluster = with_spec(|s| s.credentials_secret_name = Some("mysql-admin".into()));
    assert_eq!(spec_json(&cluster)["secretsName"], "mysql-admin");
    assert_eq!(credentials_secret_name(&cluster), "mysql-admin");
    assert_eq!(credentials_secret_name(&seed()), "my-mysql-secrets");
    assert_eq!(Pxc.credentials_secret_name(&seed()), "my-mysql-secrets");
}

#[test]
fn single_node_sets_the_unsafe_size_flags() {
    // With a proxy: one proxy pod by default, which Percona also calls unsafe.
    let spec = spec_json(&with_spec(|s| s.cluster_size = 1));
    assert_eq!(spec["pxc"]["size"], 1);
    assert_eq!(spec["haproxy"]["size"], 1);
    assert_eq!(
        spec["unsafeFlags"],
        json!({ "pxcSize": true, "proxySize": true })
    );
    // Without a proxy only the PXC size is unsafe.
    let spec = spec_json(&with_spec(|s| {
        s.cluster_size = 1;
        s.proxy = None;
    }));
    assert_eq!(spec["unsafeFlags"], json!({ "pxcSize": true }));
    // Two proxy pods in front of one node are safe for Percona.
    let spec = spec_json(&with_spec(|s| {
        s.cluster_size = 1;
        s.proxy = Some(from_json(json!({ "type": "proxysql", "replicas": 2 })));
    }));
    assert_eq!(spec["unsafeFlags"], json!({ "pxcSize": true }));
}

#[test]
fn safe_sizes_send_no_unsafe_flags_and_large_ones_do() {
    for size in [3, 5] {
        let spec = spec_json(&with_spec(|s| s.cluster_size = size));
        assert_eq!(spec["pxc"]["size"], size);
        assert_eq!(spec.get("unsafeFlags"), None, "size {size}");
    }
    // Percona refuses more than 5 nodes unless told; our API allows 7, 9, ...
    let spec = spec_json(&with_spec(|s| s.cluster_size = 7));
    assert_eq!(spec["unsafeFlags"], json!({ "pxcSize": true }));
    assert_eq!(
        spec["haproxy"]["size"], 3,
        "default proxy size is at most 3"
    );
    // One proxy pod in front of three nodes.
    let spec = spec_json(&with_spec(|s| {
        s.proxy = Some(from_json(json!({ "type": "haproxy", "replicas": 1 })))
    }));
    assert_eq!(spec["unsafeFlags"], json!({ "proxySize": true }));
}

#[test]
fn config_renders_as_my_cnf() {
    let cluster = with_spec(|s| {
        s.config = from_json(json!([
            { "name": "max_connections", "value": "300" },
            { "name": "innodb-log-file-size", "value": "256M" },
            { "name": "skip_name_resolve", "value": "" },
            { "name": "loose.group_replication", "value": "'a=b, c'" },
        ]))
    });
    assert_eq!(
        spec_json(&cluster)["pxc"]["configuration"],
        "[mysqld]\nmax_connections=300\ninnodb-log-file-size=256M\nskip_name_resolve\nloose.group_replication='a=b, c'\n"
    );
    // No config, no configuration field at all.
    let spec = spec_json(&with_spec(|s| s.config.clear()));
    assert_eq!(spec["pxc"].get("configuration"), None);
}

#[test]
fn config_that_would_inject_into_my_cnf_is_refused() {
    let cases = [
        ("max_connections", "200\n[client]\npassword=x", "line break"),
        ("max_connections", "200\r", "line break"),
        ("max_connections", "200\u{0}", "control character"),
        ("max_connections", "[client]", "'['"),
        ("sql_mode", "{% ssi \"/etc/passwd\" %}", "template tag"),
        ("sql_mode", "{# hidden #}", "template tag"),
        ("max_connections\nbind-address", "1", "option name"),
        ("[client]", "1", "option name"),
        ("max_connections=1\nx", "1", "option name"),
        ("bind address", "1", "option name"),
        ("", "1", "option name"),
    ];
    for (name, value, why) in cases {
        let cluster = with_spec(|s| {
            s.config = from_json(json!([
                { "name": "ok", "value": "1" },
                { "name": name, "value": value },
            ]))
        });
        let err = build(&cluster, &version()).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.reason(), "InvalidSpec", "{name:?}={value:?}");
        assert!(
            text.contains("config[1]") && text.contains(why),
            "{name:?}={value:?}: {text}"
        );
    }
}

#[test]
fn template_expressions_need_a_memory_limit() {
    let expression =
        json!([{ "name": "innodb_buffer_pool_size", "value": "{{containerMemoryLimit * 3 / 4}}" }]);
    let cluster = with_spec(|s| s.config = from_json(expression.clone()));
    let err = build(&cluster, &version()).unwrap_err();
    assert!(err.to_string().contains("resources.limits.memory"), "{err}");

    let cluster = with_spec(|s| {
        s.config = from_json(expression);
        s.resources = Some(from_json(json!({ "limits": { "memory": "4Gi" } })));
    });
    let spec = spec_json(&cluster);
    assert_eq!(
        spec["pxc"]["configuration"],
        "[mysqld]\ninnodb_buffer_pool_size={{containerMemoryLimit * 3 / 4}}\n"
    );
    assert_eq!(
        spec["pxc"]["resources"],
        json!({ "limits": { "memory": "4Gi" } })
    );
}

#[test]
fn haproxy_proxy_with_replicas_and_resources() {
    let cluster = with_spec(|s| {
        s.proxy = Some(from_json(json!({
            "type": "haproxy",
            "replicas": 2,
            "resources": { "requests": { "cpu": "200m", "memory": "256Mi" }, "limits": { "memory": "512Mi" } },
        })))
    });
    let spec = spec_json(&cluster);
    assert_eq!(
        spec["haproxy"],
        json!({
            "enabled": true,
            "size": 2,
            "image": "percona/haproxy:2.8.18-1",
            "resources": {
                "requests": { "cpu": "200m", "memory": "256Mi" },
                "limits": { "memory": "512Mi" },
            },
        })
    );
    assert_eq!(spec["proxysql"], json!({ "enabled": false }));
}

#[test]
fn proxysql_proxy_gets_its_volume() {
    let cluster = with_spec(|s| {
        s.proxy = Some(from_json(json!({ "type": "proxysql" })));
        s.storage.class = Some("fast".into());
    });
    let spec = spec_json(&cluster);
    assert_eq!(
        spec["proxysql"],
        json!({
            "enabled": true,
            "size": 3,
            "image": "percona/proxysql2:2.7.3-1.3",
            "volumeSpec": { "persistentVolumeClaim": {
                "storageClassName": "fast",
                "resources": { "requests": { "storage": "2Gi" } },
            } },
        })
    );
    assert_eq!(spec["haproxy"], json!({ "enabled": false }));
    assert_eq!(
        spec["pxc"]["volumeSpec"]["persistentVolumeClaim"]["storageClassName"],
        "fast"
    );
}

#[test]
fn no_proxy_disables_both() {
    for proxy in [None, Some(json!({ "type": "none" })), Some(json!({}))] {
        let cluster = with_spec(|s| s.proxy = proxy.clone().map(from_json));
        let spec = spec_json(&cluster);
        assert_eq!(spec["haproxy"], json!({ "enabled": false }), "{proxy:?}");
        assert_eq!(spec["proxysql"], json!({ "enabled": false }), "{proxy:?}");
    }
}

#[test]
fn proxy_without_pods_is_refused_and_proxy_config_is_reported() {
    let cluster =
        with_spec(|s| s.proxy = Some(from_json(json!({ "type": "haproxy", "replicas": 0 }))));
    let err = build(&cluster, &version()).unwrap_err();
    assert_eq!(err.reason(), "UnsupportedFeature");
    assert!(err.to_string().contains("proxy.replicas"), "{err}");

    let cluster = with_spec(|s| {
        s.proxy = Some(from_json(json!({
            "type": "haproxy",
            "config": [{ "name": "timeout client", "value": "28800s" }],
        })));
        s.backup = None;
    });
    let built = build(&cluster, &version()).unwrap();
    assert_eq!(
        built.unapplied.iter().map(|u| u.field).collect::<Vec<_>>(),
        vec!["proxy.config"]
    );
}

#[test]
fn external_expose_opens_the_proxy_or_the_nodes() {
    let external =
        json!({ "type": "external", "ipSourceRanges": ["10.0.0.0/8", "192.168.0.0/16"] });
    let load_balancer = json!({
        "type": "LoadBalancer",
        "loadBalancerSourceRanges": ["10.0.0.0/8", "192.168.0.0/16"],
    });

    let spec = spec_json(&with_spec(|s| s.expose = Some(from_json(external.clone()))));
    assert_eq!(spec["haproxy"]["exposePrimary"], load_balancer);
    assert_eq!(spec["pxc"].get("expose"), None);

    let spec = spec_json(&with_spec(|s| {
        s.expose = Some(from_json(external.clone()));
        s.proxy = Some(from_json(json!({ "type": "proxysql" })));
    }));
    assert_eq!(spec["proxysql"]["expose"], load_balancer);

    let spec = spec_json(&with_spec(|s| {
        s.expose = Some(from_json(external.clone()));
        s.proxy = None;
    }));
    assert_eq!(
        spec["pxc"]["expose"],
        json!({
            "enabled": true,
            "type": "LoadBalancer",
            "loadBalancerSourceRanges": ["10.0.0.0/8", "192.168.0.0/16"],
        })
    );

    // Everyone may connect when no ranges are given.
    let spec = spec_json(&with_spec(|s| {
        s.expose = Some(from_json(json!({ "type": "external" })))
    }));
    assert_eq!(
        spec["haproxy"]["exposePrimary"],
        json!({ "type": "LoadBalancer" })
    );

    // Internal is Percona's default: nothing sent.
    let spec = spec_json(&with_spec(|s| {
        s.expose = Some(from_json(json!({ "type": "internal" })))
    }));
    assert_eq!(spec["haproxy"].get("exposePrimary"), None);
    assert_eq!(spec["pxc"].get("expose"), None);
}

#[test]
fn scheduling_maps_to_the_pxc_pods() {
    let affinity = json!({
        "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{ "matchExpressions": [{ "key": "zone", "operator": "In", "values": ["a"] }] }]
        } },
        "podAntiAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": { "matchLabels": { "app.kubernetes.io/component": "pxc" } },
            "topologyKey": "kubernetes.io/hostname",
        }] },
    });
    let cluster = with_spec(|s| {
        s.scheduling = Some(from_json(json!({
            "nodeSelector": { "disk": "ssd" },
            "tolerations": [{ "key": "db", "operator": "Exists", "effect": "NoSchedule" }],
            "affinity": affinity.clone(),
            "priorityClassName": "databases",
        })))
    });
    let spec = spec_json(&cluster);
    let pxc = &spec["pxc"];
    assert_eq!(pxc["nodeSelector"], json!({ "disk": "ssd" }));
    assert_eq!(
        pxc["tolerations"],
        json!([{ "key": "db", "operator": "Exists", "effect": "NoSchedule" }])
    );
    assert_eq!(pxc["affinity"], json!({ "advanced": affinity }));
    assert_eq!(pxc["priorityClassName"], "databases");
    // The proxies keep Percona's defaults.
    assert_eq!(spec["haproxy"].get("nodeSelector"), None);
    assert_eq!(spec["haproxy"].get("affinity"), None);

    // Empty scheduling sends nothing.
    let spec = spec_json(&with_spec(|s| s.scheduling = Some(Default::default())));
    for field in [
        "nodeSelector",
        "tolerations",
        "affinity",
        "priorityClassName",
    ] {
        assert_eq!(spec["pxc"].get(field), None, "{field}");
    }
}

#[test]
fn paused_pauses() {
    let spec = spec_json(&with_spec(|s| s.paused = true));
    assert_eq!(spec["pause"], true);
    // Sizes stay: Percona scales to zero itself while paused.
    assert_eq!(spec["pxc"]["size"], 3);
}

#[test]
fn names_longer_than_percona_allows_are_refused() {
    let mut cluster = seed();
    cluster.metadata.name = Some("a".repeat(22));
    assert!(build(&cluster, &version()).is_ok());
    cluster.metadata.name = Some("a".repeat(23));
    let err = build(&cluster, &version()).unwrap_err();
    assert_eq!(err.reason(), "UnsupportedFeature");
    assert!(err.to_string().contains("22 characters"), "{err}");
}

#[test]
fn monitoring_and_pitr_are_reported_as_not_applied() {
    let cluster = with_spec(|s| {
        s.backup = Some(from_json(
            json!({ "enabled": false, "pitr": { "enabled": true } }),
        ));
        s.monitoring = Some(from_json(json!({ "monitoringConfigName": "pmm" })));
    });
    let built = build(&cluster, &version()).unwrap();
    assert_eq!(
        built.unapplied.iter().map(|u| u.field).collect::<Vec<_>>(),
        vec!["backup.pitr", "monitoring"]
    );
    let cluster = with_spec(|s| s.backup = None);
    assert!(build(&cluster, &version()).unwrap().unapplied.is_empty());
}

// ---- status ----

fn time(s: &str) -> Time {
    Time(s.parse::<Timestamp>().unwrap())
}

fn engine_with(status: Option<PerconaXtraDbClusterStatus>) -> PerconaXtraDbCluster {
    let mut c = build(&seed(), &version()).unwrap().cluster;
    c.metadata.generation = Some(2);
    c.status = status;
    c
}

/// A status as Percona writes it for `state` at generation `observed`.
fn status(state: &str, observed: i64, ready: i32) -> PerconaXtraDbClusterStatus {
    PerconaXtraDbClusterStatus {
        state: Some(state.into()),
        observed_generation: Some(observed),
        host: Some("my-mysql-haproxy.team-a".into()),
        pxc: Some(PerconaXtraDbClusterStatusPxc {
            size: Some(3),
            ready: Some(ready),
            status: Some(state.into()),
            image: Some(IMAGE.into()),
            version: Some("8.0.42-33".into()),
            ..Default::default()
        }),
        size: Some(6),
        ready: Some(ready * 2),
        ..Default::default()
    }
}

fn input(previous: Option<ClusterPhase>) -> ObserveInput<'static> {
    ObserveInput {
        desired_instances: 3,
        desired_image: IMAGE,
        applied_generation: Some(2),
        applied_at: None,
        applied_resource_version: None,
        paused: false,
        previous_phase: previous,
        now: None,
    }
}

fn phase_of(
    status: PerconaXtraDbClusterStatus,
    input: &ObserveInput<'_>,
) -> (ClusterPhase, &'static str) {
    let o = observe(&engine_with(Some(status)), input);
    (o.phase.phase, o.phase.reason)
}

#[test]
fn no_status_yet_is_pending() {
    let o = observe(&engine_with(None), &input(None));
    assert_eq!(
        (o.phase.phase, o.phase.reason),
        (ClusterPhase::Pending, "WaitingForEngine")
    );
    assert!(!o.saw_latest_spec);
    assert_eq!((o.host, o.port, o.ready_instances), (None, None, 0));
    // A status without a state yet is no better.
    let o = observe(
        &engine_with(Some(PerconaXtraDbClusterStatus {
            state: Some(String::new()),
            ..Default::default()
        })),
        &input(None),
    );
    assert_eq!(o.phase.phase, ClusterPhase::Pending);
}

#[test]
fn ready_and_seen_is_ready_with_endpoint() {
    let o = observe(
        &engine_with(Some(status(state::READY, 2, 3))),
        &input(Some(ClusterPhase::Creating)),
    );
    assert_eq!(
        (o.phase.phase, o.phase.reason),
        (ClusterPhase::Ready, "EngineHealthy")
    );
    assert!(o.saw_latest_spec);
    assert_eq!(o.host.as_deref(), Some("my-mysql-haproxy.team-a"));
    assert_eq!(o.port, Some(3306));
    assert_eq!(o.ready_instances, 3);
}

#[test]
fn ready_status_of_an_older_generation_is_not_ready() {
    // Percona said "ready" about generation 1; we applied generation 2.
    let o = observe(
        &engine_with(Some(status(state::READY, 1, 3))),
        &input(Some(ClusterPhase::Ready)),
    );
    assert!(!o.saw_latest_spec);
    assert_eq!(
        (o.phase.phase, o.phase.reason),
        (ClusterPhase::Updating, "WaitingForEngine")
    );
    // Without a known applied generation nothing counts as seen.
    let mut unknown = input(Some(ClusterPhase::Ready));
    unknown.applied_generation = None;
    let o = observe(&engine_with(Some(status(state::READY, 2, 3))), &unknown);
    assert!(!o.saw_latest_spec);
    assert_ne!(o.phase.phase, ClusterPhase::Ready);
    // Neither does a status without observedGeneration.
    let mut s = status(state::READY, 2, 3);
    s.observed_generation = None;
    let o = observe(&engine_with(Some(s)), &input(Some(ClusterPhase::Ready)));
    assert!(!o.saw_latest_spec);
    // A newer generation than ours (someone else's edit after ours) counts.
    assert!(observe(&engine_with(Some(status(state::READY, 3, 3))), &input(None)).saw_latest_spec);
}

#[test]
fn scaling_in_progress_is_creating_then_updating() {
    let s = status(state::READY, 2, 2);
    assert_eq!(
        phase_of(s.clone(), &input(None)),
        (ClusterPhase::Creating, "Scaling")
    );
    assert_eq!(
        phase_of(s, &input(Some(ClusterPhase::Ready))),
        (ClusterPhase::Updating, "Scaling")
    );
    // Percona reports the size it was asked for; ours changed (3 -> 5).
    let mut scaled = input(Some(ClusterPhase::Ready));
    scaled.desired_instances = 5;
    assert_eq!(
        phase_of(status(state::READY, 2, 3), &scaled),
        (ClusterPhase::Updating, "Scaling")
    );
}

#[test]
fn old_image_still_running_is_rolling_out() {
    let mut s = status(state::READY, 2, 3);
    s.pxc.as_mut().unwrap().image = Some("percona/percona-xtradb-cluster:8.0.41-32.1".into());
    let o = observe(&engine_with(Some(s)), &input(Some(ClusterPhase::Ready)));
    assert_eq!(
        (o.phase.phase, o.phase.reason),
        (ClusterPhase::Updating, "RollingOut")
    );
    assert!(
        o.phase.message.contains("8.0.41-32.1"),
        "{}",
        o.phase.message
    );
    // Percona has not recorded an image yet: sizes decide.
    let mut s = status(state::READY, 2, 3);
    s.pxc.as_mut().unwrap().image = None;
    assert_eq!(phase_of(s, &input(None)).0, ClusterPhase::Ready);
}

#[test]
fn every_state_maps_and_unknown_text_is_tolerated() {
    let first = input(None);
    let later = input(Some(ClusterPhase::Ready));
    let cases = [
        (
            state::INITIALIZING,
            &first,
            ClusterPhase::Creating,
            "EngineInitializing",
        ),
        (
            state::INITIALIZING,
            &later,
            ClusterPhase::Updating,
            "EngineInitializing",
        ),
        (state::READY, &later, ClusterPhase::Ready, "EngineHealthy"),
        (state::ERROR, &first, ClusterPhase::Error, "EngineError"),
        (state::ERROR, &later, ClusterPhase::Error, "EngineError"),
        // Not paused by us, but Percona still stops or is stopped: resuming.
        (state::STOPPING, &later, ClusterPhase::Updating, "Resuming"),
        (state::PAUSED, &later, ClusterPhase::Updating, "Resuming"),
        (
            state::UNKNOWN,
            &later,
            ClusterPhase::Unknown,
            "EngineStateUnknown",
        ),
        (
            "Some state from a newer Percona",
            &later,
            ClusterPhase::Unknown,
            "UnknownEnginePhase",
        ),
        ("READY", &later, ClusterPhase::Unknown, "UnknownEnginePhase"),
    ];
    for (text, input, phase, reason) in cases {
        assert_eq!(
            phase_of(status(text, 2, 3), input),
            (phase, reason),
            "{text} after {:?}",
            input.previous_phase
        );
    }
}

#[test]
fn errors_carry_percona_messages() {
    let mut s = status(state::ERROR, 1, 0);
    s.message = Some(vec![
        "Error: validate cr: PXC size must be at least 3".into(),
    ]);
    let o = observe(
        &engine_with(Some(s.clone())),
        &input(Some(ClusterPhase::Ready)),
    );
    // Percona does not move observedGeneration on a failed reconcile: the
    // error counts even though generation 1 is older than ours.
    assert_eq!(o.phase.phase, ClusterPhase::Error);
    assert!(
        o.phase.message.contains("PXC size must be at least 3"),
        "{}",
        o.phase.message
    );

    s.message = None;
    s.conditions = Some(vec![
        Condition {
            type_: "initializing".into(),
            status: "True".into(),
            reason: String::new(),
            message: String::new(),
            last_transition_time: time("2026-01-01T00:00:00Z"),
            observed_generation: None,
        },
        Condition {
            type_: "error".into(),
            status: "True".into(),
            reason: "ErrorReconcile".into(),
            message: "pxc.Image can't be empty".into(),
            last_transition_time: time("2026-01-01T00:01:00Z"),
            observed_generation: None,
        },
    ]);
    let o = observe(&engine_with(Some(s)), &input(None));
    assert!(
        o.phase.message.contains("pxc.Image can't be empty"),
        "{}",
        o.phase.message
    );
}

#[test]
fn paused_is_paused_once_percona_reports_it_for_our_spec() {
    let mut paused = input(Some(ClusterPhase::Ready));
    paused.paused = true;
    // Percona stops the pods first.
    assert_eq!(
        phase_of(status(state::STOPPING, 3, 2), &paused),
        (ClusterPhase::Updating, "Pausing")
    );
    // A "ready" from before the pause is not paused.
    assert_eq!(
        phase_of(status(state::READY, 2, 3), &paused),
        (ClusterPhase::Updating, "Pausing")
    );
    // A "paused" of an older generation is not ours yet.
    paused.applied_generation = Some(3);
    assert_eq!(
        phase_of(status(state::PAUSED, 2, 0), &paused),
        (ClusterPhase::Updating, "Pausing")
    );
    let o = observe(&engine_with(Some(status(state::PAUSED, 3, 0))), &paused);
    assert_eq!(
        (o.phase.phase, o.phase.reason),
        (ClusterPhase::Paused, "Paused")
    );
    assert_eq!(o.ready_instances, 0);
    // An error while pausing is still an error.
    assert_eq!(
        phase_of(status(state::ERROR, 3, 0), &paused).0,
        ClusterPhase::Error
    );
}

#[test]
fn provider_reads_the_dynamic_object_and_tolerates_odd_conditions() {
    let mut object = Pxc
        .build(&seed(), &version(), &BuildInput::default())
        .unwrap()
        .object;
    object.metadata.generation = Some(2);
    object.data["status"] = json!({
        "state": "ready",
        "observedGeneration": 2,
        "host": "my-mysql-haproxy.team-a",
        "pxc": { "size": 3, "ready": 3, "status": "ready", "image": IMAGE },
        "haproxy": { "size": 3, "ready": 3, "status": "ready" },
        "size": 6,
        "ready": 6,
        // Percona's conditions need not carry reason, message, or here even
        // a lastTransitionTime.
        "conditions": [{ "type": "ready", "status": "True" }],
    });
    let o = Pxc.observe(&object, &input(None));
    assert_eq!(o.phase.phase, ClusterPhase::Ready, "{:?}", o.phase);
    assert_eq!(o.host.as_deref(), Some("my-mysql-haproxy.team-a"));

    object.data["status"]["pxc"]["ready"] = json!("three");
    let o = Pxc.observe(&object, &input(None));
    assert_eq!(
        (o.phase.phase, o.phase.reason),
        (ClusterPhase::Unknown, "EngineStatusUnreadable")
    );
}

// ---- backups ----

use super::backup::{
    BACKUP_IMAGE_80, BACKUP_IMAGE_84, backup_image, backup_state, binlog_storage_key,
};
use crate::backup::StorageInput;
use dbaas_api::BackupStorageSpec;
use dbaas_api::backup::BackupPhase;

fn storage(name: &str, spec: Value) -> StorageInput {
    let spec: BackupStorageSpec = from_json(spec);
    let credentials_secret = (spec.type_
        != dbaas_api::backup_storage::BackupStorageType::Filesystem)
        .then(|| format!("{name}-credentials"));
    StorageInput {
        name: name.to_owned(),
        spec,
        credentials_secret,
    }
}

fn s3_storage() -> StorageInput {
    let mut minio = storage(
        "minio",
        json!({
            "type": "s3",
            "bucket": "backups",
            "region": "us-east-1",
            "forcePathStyle": true,
            "prefix": "/dbaas/",
            "credentialsSecretName": "minio-keys"
        }),
    );
    minio.spec.endpoint_url = Some("https://minio.example:9000".into());
    minio.spec.verify_tls = false;
    minio
}

fn azure_storage() -> StorageInput {
    let mut blob = storage(
        "blob",
        json!({
            "type": "azure",
            "bucket": "pxc-container",
            "credentialsSecretName": "azure-keys"
        }),
    );
    blob.spec.endpoint_url = Some("https://acct.blob.core.windows.net".into());
    blob
}

fn backed_up(backup: Value) -> DatabaseCluster {
    with_spec(|s| s.backup = Some(from_json(backup)))
}

fn build_with_storages(
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

fn backup_json(cluster: &DatabaseCluster, storages: &[StorageInput]) -> Value {
    let built = build_with_storages(cluster, storages).unwrap();
    serde_json::to_value(built.cluster.spec.backup).unwrap()
}

fn refusal(cluster: &DatabaseCluster, storages: &[StorageInput]) -> String {
    let err = build_with_storages(cluster, storages).unwrap_err();
    assert_eq!(err.reason(), "InvalidBackupSpec", "{err}");
    err.to_string()
}

#[test]
fn s3_storage_with_schedules_renders_percona_storages_and_schedules() {
    let cluster = backed_up(json!({
        "enabled": true,
        "schedule": "0 2 * * *",
        "retentionCopies": 7,
        "storageName": "minio",
        "schedules": [
            { "name": "weekly", "schedule": "30 3 * * 0", "storageName": "minio" },
            { "name": "off", "enabled": false, "schedule": "0 4 * * *", "storageName": "minio" }
        ]
    }));
    assert_eq!(
        backup_json(&cluster, &[s3_storage()]),
        json!({
            "image": BACKUP_IMAGE_80,
            "storages": {
                "minio": {
                    "type": "s3",
                    "verifyTLS": false,
                    "s3": {
                        "bucket": "backups/dbaas/team-a/my-mysql",
                        "credentialsSecret": "minio-credentials",
                        "region": "us-east-1",
                        "endpointUrl": "https://minio.example:9000",
                        "forcePathStyle": true
                    }
                }
            },
            "schedule": [
                {
                    "name": "default",
                    "schedule": "0 2 * * *",
                    "storageName": "minio",
                    "retention": { "type": "count", "count": 7, "deleteFromStorage": true }
                },
                { "name": "weekly", "schedule": "30 3 * * 0", "storageName": "minio" }
            ]
        })
    );
    let built = build_with_storages(&cluster, &[s3_storage()]).unwrap();
    assert!(built.unapplied.is_empty(), "{:?}", built.unapplied);
}

#[test]
fn azure_storage_renders_a_container_path() {
    let cluster = backed_up(json!({
        "enabled": true,
        "schedules": [{ "name": "nightly", "schedule": "0 1 * * *", "storageName": "blob" }]
    }));
    assert_eq!(
        backup_json(&cluster, &[azure_storage()]),
        json!({
            "image": BACKUP_IMAGE_80,
            "storages": {
                "blob": {
                    "type": "azure",
                    "verifyTLS": true,
                    "azure": {
                        "container": "pxc-container/team-a/my-mysql",
                        "credentialsSecret": "blob-credentials",
                        "endpointUrl": "https://acct.blob.core.windows.net"
                    }
                }
            },
            "schedule": [{ "name": "nightly", "schedule": "0 1 * * *", "storageName": "blob" }]
        })
    );
}

#[test]
fn disabled_backups_still_declare_their_storages_without_schedules() {
    let cluster = backed_up(json!({
        "enabled": false,
        "schedule": "0 2 * * *",
        "storageName": "minio",
        "schedules": [{ "name": "nightly", "schedule": "0 1 * * *", "storageName": "blob" }]
    }));
    let backup = backup_json(&cluster, &[s3_storage(), azure_storage()]);
    assert_eq!(
        backup["storages"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["blob", "minio"]
    );
    assert_eq!(backup.get("schedule"), None);
    assert_eq!(backup.get("pitr"), None);
}

#[test]
fn no_storage_named_means_no_backup_section_and_a_storageless_schedule_is_reported() {
    // The seed: enabled, a cron, but no storage.
    let built = build_with_storages(&seed(), &[s3_storage()]).unwrap();
    assert_eq!(built.cluster.spec.backup, None);
    assert_eq!(
        built.unapplied.iter().map(|u| u.field).collect::<Vec<_>>(),
        vec!["backup.schedule"]
    );
    let cluster = with_spec(|s| s.backup = None);
    let built = build_with_storages(&cluster, &[]).unwrap();
    assert_eq!(built.cluster.spec.backup, None);
    assert!(built.unapplied.is_empty());
}

#[test]
fn the_backup_image_follows_the_pxc_major_version() {
    let image_for = |version: &str| {
        backup_image(&ResolvedVersion {
            version: version.into(),
            image: format!("percona/percona-xtradb-cluster:{version}"),
        })
    };
    assert_eq!(image_for("8.4.8-8.1").unwrap(), BACKUP_IMAGE_84);
    assert_eq!(image_for("8.0.45-36.1").unwrap(), BACKUP_IMAGE_80);
    assert_eq!(
        image_for("5.7.44-31.65").unwrap(),
        "percona/percona-xtrabackup:2.4.29"
    );
    // A policy version named otherwise is judged by its image tag.
    let by_tag = backup_image(&ResolvedVersion {
        version: "house-build".into(),
        image: "registry.local/pxc:8.4.9-9.1".into(),
    });
    assert_eq!(by_tag.unwrap(), BACKUP_IMAGE_84);
    let err = image_for("9.1.0").unwrap_err();
    assert_eq!(err.reason(), "InvalidBackupSpec");
    // Every version we offer has one.
    for offered in Pxc.versions() {
        assert!(backup_image(&offered).is_ok(), "{}", offered.version);
    }
    let cluster = backed_up(json!({ "enabled": true, "storageName": "minio" }));
    let built = build_with(
        &cluster,
        &resolve_version(&Pxc, Some("8.4.8-8.1"), None).unwrap(),
        &BuildInput {
            backup_storages: &[s3_storage()],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        built.cluster.spec.backup.unwrap().image.as_deref(),
        Some(BACKUP_IMAGE_84)
    );
}

#[test]
fn gcs_and_filesystem_storages_are_refused_with_advice() {
    let gcs = storage(
        "gcs",
        json!({ "type": "gcs", "bucket": "b", "credentialsSecretName": "gcs-keys" }),
    );
    let cluster = backed_up(json!({ "enabled": true, "storageName": "gcs" }));
    let why = refusal(&cluster, &[gcs]);
    assert!(why.contains("type s3"), "{why}");
    assert!(why.contains("https://storage.googleapis.com"), "{why}");
    assert!(why.contains("HMAC"), "{why}");

    let pvc = storage(
        "nfs",
        json!({ "type": "filesystem", "persistentVolumeClaim": "backup-pvc" }),
    );
    let cluster = backed_up(json!({ "enabled": false, "storageName": "nfs" }));
    let why = refusal(&cluster, &[pvc]);
    assert!(why.contains("\"backup-pvc\""), "{why}");
    assert!(why.contains("new PVC for every backup"), "{why}");
}

#[test]
fn a_storage_that_was_not_found_is_refused() {
    let cluster = backed_up(json!({ "enabled": true, "storageName": "minio" }));
    let why = refusal(&cluster, &[azure_storage()]);
    assert!(why.contains("\"minio\" was not found"), "{why}");
}

#[test]
fn a_bad_cron_is_refused() {
    for cron in ["0 2 * *", "61 2 * * *", "0 0 2 * * *"] {
        let cluster = backed_up(json!({
            "enabled": true,
            "schedules": [{ "name": "bad", "schedule": cron, "storageName": "minio" }]
        }));
        let why = refusal(&cluster, &[s3_storage()]);
        assert!(why.contains(cron), "{why}");
    }
}

#[test]
fn a_named_schedule_called_default_clashes_with_the_short_form() {
    let cluster = backed_up(json!({
        "enabled": true,
        "schedule": "0 2 * * *",
        "storageName": "minio",
        "schedules": [{ "name": "default", "schedule": "0 3 * * *", "storageName": "minio" }]
    }));
    let why = refusal(&cluster, &[s3_storage()]);
    assert!(why.contains("unique schedule names"), "{why}");
}

#[test]
fn pitr_uploads_binlogs_to_their_own_folder_of_the_storage() {
    let cluster = backed_up(json!({
        "enabled": true,
        "schedule": "0 2 * * *",
        "storageName": "minio",
        "pitr": { "enabled": true }
    }));
    let backup = backup_json(&cluster, &[s3_storage()]);
    assert_eq!(
        backup["pitr"],
        json!({ "enabled": true, "storageName": "minio-binlogs", "timeBetweenUploads": 60.0 })
    );
    assert_eq!(binlog_storage_key("minio"), "minio-binlogs");
    assert_eq!(
        backup["storages"]["minio-binlogs"],
        json!({
            "type": "s3",
            "verifyTLS": false,
            "s3": {
                "bucket": "backups/dbaas/team-a/my-mysql/binlogs",
                "credentialsSecret": "minio-credentials",
                "region": "us-east-1",
                "endpointUrl": "https://minio.example:9000",
                "forcePathStyle": true
            }
        })
    );
    // Full backups keep the cluster's own folder.
    assert_eq!(
        backup["storages"]["minio"]["s3"]["bucket"],
        "backups/dbaas/team-a/my-mysql"
    );

    // Its own storage, on Azure, with scheduled backups off.
    let cluster = backed_up(json!({
        "enabled": false,
        "storageName": "minio",
        "pitr": { "enabled": true, "storageName": "blob" }
    }));
    let backup = backup_json(&cluster, &[s3_storage(), azure_storage()]);
    assert_eq!(backup["pitr"]["storageName"], "blob-binlogs");
    assert_eq!(
        backup["storages"]["blob-binlogs"]["azure"]["container"],
        "pxc-container/team-a/my-mysql/binlogs"
    );
    assert_eq!(backup.get("schedule"), None);

    // PITR off: no pitr section, no binlog storage.
    let cluster = backed_up(json!({
        "enabled": true,
        "storageName": "minio",
        "pitr": { "enabled": false, "storageName": "minio" }
    }));
    let backup = backup_json(&cluster, &[s3_storage()]);
    assert_eq!(backup.get("pitr"), None);
    assert_eq!(backup["storages"].as_object().unwrap().len(), 1);
}

#[test]
fn pitr_refusals_and_a_pitr_without_storage() {
    let mut regionless = s3_storage();
    regionless.spec.region = None;
    let cluster = backed_up(json!({
        "enabled": true,
        "storageName": "minio",
        "pitr": { "enabled": true }
    }));
    let why = refusal(&cluster, &[regionless.clone()]);
    assert!(why.contains("no region"), "{why}");
    // Full backups alone do not need the region.
    let cluster = backed_up(json!({ "enabled": true, "storageName": "minio" }));
    assert!(build_with_storages(&cluster, &[regionless]).is_ok());

    // PITR on a filesystem storage is refused like any filesystem storage.
    let pvc = storage(
        "nfs",
        json!({ "type": "filesystem", "persistentVolumeClaim": "backup-pvc" }),
    );
    let cluster = backed_up(json!({ "pitr": { "enabled": true, "storageName": "nfs" } }));
    assert!(refusal(&cluster, &[pvc]).contains("filesystem"));

    // A user storage named like the binlog entry.
    let mut twin = azure_storage();
    twin.name = "minio-binlogs".into();
    let cluster = backed_up(json!({
        "enabled": true,
        "storageName": "minio",
        "schedules": [{ "name": "az", "schedule": "0 1 * * *", "storageName": "minio-binlogs" }],
        "pitr": { "enabled": true }
    }));
    assert!(refusal(&cluster, &[s3_storage(), twin]).contains("rename one"));
}

fn database_backup(storage: Option<&str>) -> DatabaseBackup {
    let mut spec = json!({ "clusterName": "my-mysql" });
    if let Some(storage) = storage {
        spec["storageName"] = json!(storage);
    }
    from_json(json!({
        "apiVersion": "dbaas.io/v1",
        "kind": "DatabaseBackup",
        "metadata": {
            "name": "before-upgrade",
            "namespace": "team-a",
            "uid": "7a1c1b64-0000-4000-8000-0000000000b1"
        },
        "spec": spec
    }))
}

#[test]
fn build_backup_makes_a_percona_backup_owned_by_the_database_backup() {
    let cluster = backed_up(json!({ "enabled": true, "storageName": "minio" }));
    let object = Pxc
        .build_backup(&database_backup(Some("minio")), &cluster, &s3_storage())
        .unwrap();
    assert_eq!(
        serde_json::to_value(&object).unwrap(),
        json!({
            "apiVersion": "pxc.percona.com/v1",
            "kind": "PerconaXtraDBClusterBackup",
            "metadata": {
                "name": "before-upgrade",
                "namespace": "team-a",
                "labels": {
                    LABEL_MANAGED_BY: MANAGED_BY_VALUE,
                    LABEL_CLUSTER: "my-mysql",
                    LABEL_ENGINE: "mysql",
                    "dbaas.io/backup": "before-upgrade"
                },
                "ownerReferences": [{
                    "apiVersion": "dbaas.io/v1",
                    "kind": "DatabaseBackup",
                    "name": "before-upgrade",
                    "uid": "7a1c1b64-0000-4000-8000-0000000000b1",
                    "controller": true
                }]
            },
            "spec": { "pxcCluster": "my-mysql", "storageName": "minio" }
        })
    );
    let resource = Pxc.backup_resource().unwrap();
    assert_eq!(
        (
            resource.group.as_str(),
            resource.version.as_str(),
            resource.kind.as_str(),
            resource.plural.as_str()
        ),
        (
            "pxc.percona.com",
            "v1",
            "PerconaXtraDBClusterBackup",
            "perconaxtradbclusterbackups"
        )
    );
}

#[test]
fn build_backup_refuses_storages_the_cluster_does_not_declare_or_percona_cannot_use() {
    let cluster = backed_up(json!({ "enabled": true, "storageName": "minio" }));
    let err = Pxc
        .build_backup(&database_backup(Some("blob")), &cluster, &azure_storage())
        .unwrap_err();
    assert_eq!(err.reason(), "InvalidBackupSpec");
    assert!(
        err.to_string()
            .contains("does not use BackupStorage \"blob\""),
        "{err}"
    );

    let gcs = storage(
        "minio",
        json!({ "type": "gcs", "bucket": "b", "credentialsSecretName": "k" }),
    );
    let err = Pxc
        .build_backup(&database_backup(None), &cluster, &gcs)
        .unwrap_err();
    assert!(err.to_string().contains("storage.googleapis.com"), "{err}");
}

fn percona_backup(status: Option<Value>) -> DynamicObject {
    let mut object = json!({
        "apiVersion": "pxc.percona.com/v1",
        "kind": "PerconaXtraDBClusterBackup",
        "metadata": { "name": "before-upgrade", "namespace": "team-a" },
        "spec": { "pxcCluster": "my-mysql", "storageName": "minio" }
    });
    if let Some(status) = status {
        object["status"] = status;
    }
    from_json(object)
}

#[test]
fn observe_backup_maps_every_percona_state() {
    let destination = "s3://backups/dbaas/team-a/my-mysql/my-mysql-2026-11-24-05:00:00-full";
    let observe = |status: Option<Value>| Pxc.observe_backup(&percona_backup(status));

    assert_eq!(observe(None), BackupObservation::pending());
    let new = observe(Some(json!({ "state": "", "storage_type": "" })));
    assert_eq!((new.phase, new.message), (BackupPhase::Pending, None));

    let suspended = observe(Some(json!({ "state": backup_state::SUSPENDED })));
    assert_eq!(suspended.phase, BackupPhase::Pending);
    assert!(suspended.message.unwrap().contains("suspended"));

    for state in [backup_state::STARTING, backup_state::RUNNING] {
        let running = observe(Some(json!({
            "state": state,
            "destination": destination,
            "storageName": "minio"
        })));
        assert_eq!(running.phase, BackupPhase::Running, "{state}");
        assert_eq!(running.destination.as_deref(), Some(destination));
        assert_eq!(running.completed_at, None);
        assert_eq!(running.message, Some(format!("Percona: {state}")));
    }

    let done = observe(Some(json!({
        "state": backup_state::SUCCEEDED,
        "destination": destination,
        "completed": "2026-11-24T05:03:19Z"
    })));
    assert_eq!(
        done,
        BackupObservation {
            phase: BackupPhase::Succeeded,
            started_at: None,
            completed_at: Some(time("2026-11-24T05:03:19Z")),
            destination: Some(destination.to_owned()),
            message: Some("Percona: Succeeded".to_owned()),
        }
    );

    let failed = observe(Some(json!({
        "state": backup_state::FAILED,
        "error": "xbcloud: Probe failed. Please check your credentials and endpoint settings"
    })));
    assert_eq!(failed.phase, BackupPhase::Failed);
    assert!(failed.message.unwrap().contains("Probe failed"));
    // Without `error`, the last condition's message; without either, a
    // plain statement.
    let failed = observe(Some(json!({
        "state": backup_state::FAILED,
        "conditions": [{ "type": "Failed", "status": "True", "message": "job failed: deadline" }]
    })));
    assert_eq!(failed.message.as_deref(), Some("job failed: deadline"));
    let failed = observe(Some(json!({ "state": backup_state::FAILED })));
    assert_eq!(failed.phase, BackupPhase::Failed);
    assert!(failed.message.is_some());

    let odd = observe(Some(
        json!({ "state": "Paused", "completed": "not a time" }),
    ));
    assert_eq!(odd.phase, BackupPhase::Pending);
    assert_eq!(odd.completed_at, None);
    assert!(odd.message.unwrap().contains("Paused"));
}

// ---- restores ----

mod restores {
    use dbaas_api::cluster::{PitrTarget, PitrType};
    use dbaas_engine_crds::pxc_restore::PerconaXtraDbClusterRestore;
    use pretty_assertions::assert_eq;
    use serde_json::{Value, json};

    use super::super::restore::restore_state;
    use super::*;
    use crate::restore::{
        LABEL_RESTORE, RestoreBackup, RestoreInput, RestoreObservation, RestorePhase,
    };

    const DESTINATION: &str =
        "s3://backups/dbaas/team-a/my-mysql/my-mysql-2026-11-24-05:00:00-full";

    fn taken(destination: Option<&str>) -> RestoreBackup {
        RestoreBackup::Taken {
            backup_name: "before-upgrade".to_owned(),
            source_cluster: "my-mysql".to_owned(),
            source_namespace: "team-a".to_owned(),
            destination: destination.map(str::to_owned),
        }
    }

    fn input(
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

    fn at(date: &str) -> Option<PitrTarget> {
        Some(PitrTarget {
            type_: PitrType::Date,
            date: Some(time(date)),
        })
    }

    fn latest() -> Option<PitrTarget> {
        Some(PitrTarget {
            type_: PitrType::Latest,
            date: None,
        })
    }

    /// The cluster restored into: its backup spec names a storage (with
    /// backups off), so it has the backup section Percona restores with.
    fn target() -> DatabaseCluster {
        backed_up(json!({ "enabled": false, "storageName": "minio" }))
    }

    /// The restore as the provider renders it, checked to read back into
    /// Percona's type with nothing lost (no field the CRD does not have).
    fn restore_json(source: &RestoreInput) -> Value {
        let object = Pxc.build_restore("restore-1", &target(), source).unwrap();
        let rendered = serde_json::to_value(&object).unwrap();
        let typed: PerconaXtraDbClusterRestore = from_json(rendered.clone());
        assert_eq!(serde_json::to_value(&typed).unwrap(), rendered);
        rendered
    }

    fn refusal(source: &RestoreInput) -> String {
        let err = Pxc
            .build_restore("restore-1", &target(), source)
            .unwrap_err();
        assert_eq!(err.reason(), "InvalidBackupSpec", "{err}");
        err.to_string()
    }

    #[test]
    fn a_taken_backup_is_restored_from_its_recorded_destination() {
        let rendered = restore_json(&input(taken(Some(DESTINATION)), Some(s3_storage()), None));
        assert_eq!(
            rendered,
            json!({
                "apiVersion": "pxc.percona.com/v1",
                "kind": "PerconaXtraDBClusterRestore",
                "metadata": {
                    "name": "restore-1",
                    "namespace": "team-a",
                    "labels": {
                        LABEL_MANAGED_BY: MANAGED_BY_VALUE,
                        LABEL_CLUSTER: "my-mysql",
                        LABEL_ENGINE: "mysql",
                        LABEL_RESTORE: "restore-1"
                    }
                },
                "spec": {
                    "pxcCluster": "my-mysql",
                    "backupSource": {
                        "destination": DESTINATION,
                        "storage_type": "s3",
                        "verifyTLS": false,
                        "s3": {
                            "bucket": "backups/dbaas/team-a/my-mysql",
                            "credentialsSecret": "minio-credentials",
                            "endpointUrl": "https://minio.example:9000",
                            "region": "us-east-1",
                            "forcePathStyle": true
                        }
                    }
                }
            })
        );
        // Never by backupName: Percona refuses both at once, and the
        // PerconaXtraDBClusterBackup may be gone or in another namespace.
        assert_eq!(rendered["spec"].get("backupName"), None);

        let resource = Pxc.restore_resource().unwrap();
        assert_eq!(
            (
                resource.group.as_str(),
                resource.version.as_str(),
                resource.kind.as_str(),
                resource.plural.as_str()
            ),
            (
                "pxc.percona.com",
                "v1",
                "PerconaXtraDBClusterRestore",
                "perconaxtradbclusterrestores"
            )
        );
    }

    #[test]
    fn a_taken_azure_backup_names_its_container_folder() {
        let destination = "azure://pxc-container/team-a/my-mysql/my-mysql-2026-11-24-05:00:00-full";
        let rendered = restore_json(&input(
            taken(Some(destination)),
            Some(azure_storage()),
            None,
        ));
        assert_eq!(
            rendered["spec"]["backupSource"],
            json!({
                "destination": destination,
                "storage_type": "azure",
                "verifyTLS": true,
                "azure": {
                    "container": "pxc-container/team-a/my-mysql",
                    "credentialsSecret": "blob-credentials",
                    "endpointUrl": "https://acct.blob.core.windows.net"
                }
            })
        );
    }

    #[test]
    fn a_backup_path_is_a_destination_in_the_storage_bucket() {
        let rendered = restore_json(&input(
            RestoreBackup::Path("/elsewhere/old-db/old-db-2026-01-01-00:00:00-full/".to_owned()),
            Some(s3_storage()),
            None,
        ));
        let source = &rendered["spec"]["backupSource"];
        assert_eq!(
            source["destination"],
            "s3://backups/elsewhere/old-db/old-db-2026-01-01-00:00:00-full"
        );
        assert_eq!(source["s3"]["bucket"], "backups/elsewhere/old-db");
        assert_eq!(source["s3"]["credentialsSecret"], "minio-credentials");
        assert_eq!(rendered["spec"].get("pitr"), None);

        // At the top of the bucket, the folder is the bucket itself.
        let rendered = restore_json(&input(
            RestoreBackup::Path("full-backup".to_owned()),
            Some(azure_storage()),
            None,
        ));
        let source = &rendered["spec"]["backupSource"];
        assert_eq!(source["destination"], "azure://pxc-container/full-backup");
        assert_eq!(source["azure"]["container"], "pxc-container");
    }

    #[test]
    fn pitr_to_a_date_reads_the_source_clusters_binlogs() {
        // A backup of another cluster, in another namespace.
        let backup = RestoreBackup::Taken {
            backup_name: "nightly".to_owned(),
            source_cluster: "orders".to_owned(),
            source_namespace: "team-b".to_owned(),
            destination: Some("s3://backups/dbaas/team-b/orders/orders-full".to_owned()),
        };
        let rendered = restore_json(&input(
            backup,
            Some(s3_storage()),
            at("2026-11-24T05:30:07Z"),
        ));
        assert_eq!(
            rendered["spec"]["pitr"],
            json!({
                "type": "date",
                "date": "2026-11-24 05:30:07",
                "backupSource": {
                    "storage_type": "s3",
                    "verifyTLS": false,
                    "s3": {
                        "bucket": "backups/dbaas/team-b/orders/binlogs",
                        "credentialsSecret": "minio-credentials",
                        "endpointUrl": "https://minio.example:9000",
                        "region": "us-east-1",
                        "forcePathStyle": true
                    }
                }
            })
        );
        assert_eq!(
            rendered["spec"]["backupSource"]["s3"]["bucket"],
            "backups/dbaas/team-b/orders"
        );
    }

    #[test]
    fn pitr_reads_the_folder_the_clusters_own_pitr_uploads_to() {
        let cluster = backed_up(json!({
            "enabled": true,
            "storageName": "minio",
            "pitr": { "enabled": true }
        }));
        let declared = backup_json(&cluster, &[s3_storage()]);
        let rendered = restore_json(&input(
            taken(Some(DESTINATION)),
            Some(s3_storage()),
            latest(),
        ));
        assert_eq!(
            rendered["spec"]["pitr"]["backupSource"]["s3"]["bucket"],
            declared["storages"][binlog_storage_key("minio")]["s3"]["bucket"]
        );
        assert_eq!(
            rendered["spec"]["backupSource"]["s3"]["bucket"],
            declared["storages"]["minio"]["s3"]["bucket"]
        );
    }

    #[test]
    fn pitr_to_the_latest_binlog_on_azure() {
        let destination = "azure://pxc-container/team-a/my-mysql/my-mysql-full";
        let rendered = restore_json(&input(
            taken(Some(destination)),
            Some(azure_storage()),
            latest(),
        ));
        assert_eq!(
            rendered["spec"]["pitr"],
            json!({
                "type": "latest",
                "backupSource": {
                    "storage_type": "azure",
                    "verifyTLS": true,
                    "azure": {
                        "container": "pxc-container/team-a/my-mysql/binlogs",
                        "credentialsSecret": "blob-credentials",
                        "endpointUrl": "https://acct.blob.core.windows.net"
                    }
                }
            })
        );
    }

    #[test]
    fn pitr_of_a_backup_path_is_refused() {
        let why = refusal(&input(
            RestoreBackup::Path("elsewhere/old-db/full".to_owned()),
            Some(s3_storage()),
            latest(),
        ));
        assert!(why.contains("binlogs"), "{why}");
        assert!(why.contains("without pitr"), "{why}");
    }

    #[test]
    fn a_pitr_date_without_a_date_is_refused() {
        let why = refusal(&input(
            taken(Some(DESTINATION)),
            Some(s3_storage()),
            Some(PitrTarget {
                type_: PitrType::Date,
                date: None,
            }),
        ));
        assert!(why.contains("pitr.date"), "{why}");
    }

    #[test]
    fn a_taken_backup_without_a_usable_destination_is_refused() {
        let why = refusal(&input(taken(None), Some(s3_storage()), None));
        assert!(why.contains("no recorded destination"), "{why}");
        let why = refusal(&input(taken(Some("  ")), Some(s3_storage()), None));
        assert!(why.contains("no recorded destination"), "{why}");

        // Written somewhere else than the storage given.
        for elsewhere in [
            "s3://other-bucket/dbaas/team-a/my-mysql/full",
            "azure://backups/dbaas/team-a/my-mysql/full",
            "pvc/xb-before-upgrade",
            "s3://backups",
            "s3://backups/",
        ] {
            let why = refusal(&input(taken(Some(elsewhere)), Some(s3_storage()), None));
            assert!(why.contains("is not a backup in s3://backups/"), "{why}");
        }
        let why = refusal(&input(
            RestoreBackup::Path(" / ".to_owned()),
            Some(s3_storage()),
            None,
        ));
        assert!(why.contains("path"), "{why}");
    }

    #[test]
    fn storages_percona_cannot_restore_from_are_refused() {
        let filesystem = storage(
            "nfs",
            json!({ "type": "filesystem", "persistentVolumeClaim": "backups-pvc" }),
        );
        let why = refusal(&input(taken(Some(DESTINATION)), Some(filesystem), None));
        assert!(why.contains("type filesystem"), "{why}");
        assert!(why.contains("backups-pvc"), "{why}");

        let gcs = storage(
            "gcs",
            json!({ "type": "gcs", "bucket": "backups", "credentialsSecretName": "k" }),
        );
        let why = refusal(&input(taken(Some(DESTINATION)), Some(gcs), None));
        assert!(why.contains("storage.googleapis.com"), "{why}");

        let why = refusal(&input(taken(Some(DESTINATION)), None, None));
        assert!(why.contains("not looked up"), "{why}");

        let mut keyless = s3_storage();
        keyless.credentials_secret = None;
        let why = refusal(&input(taken(Some(DESTINATION)), Some(keyless), None));
        assert!(why.contains("no credentials Secret"), "{why}");

        let mut bucketless = s3_storage();
        bucketless.spec.bucket = Some("/".to_owned());
        let why = refusal(&input(taken(Some(DESTINATION)), Some(bucketless), None));
        assert!(why.contains("has no bucket"), "{why}");
    }

    #[test]
    fn a_cluster_without_a_backup_section_is_refused() {
        let source = input(taken(Some(DESTINATION)), Some(s3_storage()), None);
        // The seed's backup spec names no storage, so its PerconaXtraDBCluster
        // has no spec.backup and no XtraBackup image to restore with.
        assert_eq!(
            build(&seed(), &version()).unwrap().cluster.spec.backup,
            None
        );
        let err = Pxc
            .build_restore("restore-1", &seed(), &source)
            .unwrap_err();
        assert_eq!(err.reason(), "InvalidBackupSpec");
        assert!(err.to_string().contains("backup.storageName"), "{err}");

        // A storage named with backups off is enough.
        let built = build_with_storages(&target(), &[s3_storage()]).unwrap();
        assert!(built.cluster.spec.backup.unwrap().image.is_some());
        assert!(Pxc.build_restore("restore-1", &target(), &source).is_ok());
    }

    fn percona_restore(status: Option<Value>) -> DynamicObject {
        let mut object = json!({
            "apiVersion": "pxc.percona.com/v1",
            "kind": "PerconaXtraDBClusterRestore",
            "metadata": { "name": "restore-1", "namespace": "team-a" },
            "spec": { "pxcCluster": "my-mysql", "backupSource": { "destination": DESTINATION } }
        });
        if let Some(status) = status {
            object["status"] = status;
        }
        from_json(object)
    }

    #[test]
    fn observe_restore_maps_every_percona_state() {
        let observe = |status: Option<Value>| Pxc.observe_restore(&percona_restore(status));

        assert_eq!(observe(None), RestoreObservation::pending());
        assert_eq!(
            observe(Some(json!({ "state": "" }))),
            RestoreObservation::pending()
        );

        for state in [
            restore_state::STARTING,
            restore_state::STOPPING_CLUSTER,
            restore_state::RESTORING,
            restore_state::STARTING_CLUSTER,
            restore_state::PITR,
            restore_state::PREPARING_CLUSTER,
        ] {
            let running = observe(Some(json!({ "state": state })));
            assert_eq!(
                running,
                RestoreObservation {
                    phase: RestorePhase::Running,
                    completed_at: None,
                    message: Some(format!("Percona: {state}")),
                },
                "{state}"
            );
        }
        // The case Percona's docs write it in is read too.
        assert_eq!(
            observe(Some(json!({ "state": "Stopping cluster" }))).phase,
            RestorePhase::Running
        );

        let done = observe(Some(json!({
            "state": restore_state::SUCCEEDED,
            "completed": "2026-11-24T06:12:40Z",
            "clusterSize": 3
        })));
        assert_eq!(
            done,
            RestoreObservation {
                phase: RestorePhase::Succeeded,
                completed_at: Some(time("2026-11-24T06:12:40Z")),
                message: Some("Percona: Succeeded".to_owned()),
            }
        );

        let failed = observe(Some(json!({
            "state": restore_state::FAILED,
            "comments": "backup not found"
        })));
        assert_eq!(
            failed,
            RestoreObservation {
                phase: RestorePhase::Failed,
                completed_at: None,
                message: Some("backup not found".to_owned()),
            }
        );
        let failed = observe(Some(json!({ "state": restore_state::FAILED })));
        assert_eq!(failed.phase, RestorePhase::Failed);
        assert!(failed.message.is_some());

        // A state this provider does not know yet: Percona has taken the
        // restore up, so it is under way; an odd time is no time.
        let odd = observe(Some(json!({
            "state": "Validating",
            "comments": "checking binlogs",
            "completed": "not a time"
        })));
        assert_eq!(odd.phase, RestorePhase::Running);
        assert_eq!(odd.completed_at, None);
        let message = odd.message.unwrap();
        assert!(
            message.contains("Validating") && message.contains("checking binlogs"),
            "{message}"
        );
    }
}
