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
    // backup.enabled is accepted but not applied yet: say so.
    assert_eq!(
        built.unapplied.iter().map(|u| u.field).collect::<Vec<_>>(),
        vec!["backup"]
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
fn data_source_is_refused_rather_than_creating_an_empty_cluster() {
    let cluster =
        with_spec(|s| s.data_source = Some(from_json(json!({ "backupName": "nightly" }))));
    let err = build(&cluster, &version()).unwrap_err();
    assert_eq!(err.reason(), "UnsupportedFeature");
    assert!(err.to_string().contains("dataSource"), "{err}");
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
        vec!["backup", "monitoring"]
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
