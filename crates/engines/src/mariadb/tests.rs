use dbaas_api::backup_storage::BackupStorageType;
use dbaas_api::cluster::{DatabaseClusterSpec, PitrTarget, PitrType};
use dbaas_api::common::{LABEL_CLUSTER, LABEL_ENGINE};
use dbaas_api::{BackupStorageSpec, DatabaseBackup};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, Time};
use k8s_openapi::jiff::Timestamp;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::backup::StorageInput;
use crate::catalog::resolve_version;
use crate::provider::provider_for;
use crate::restore::{RestoreBackup, RestoreInput, RestorePhase};

const SAMPLE: &str = r#"
apiVersion: dbaas.io/v1
kind: DatabaseCluster
metadata:
  name: shop
  namespace: team-a
  uid: 7a1c1b64-0000-4000-8000-000000000004
spec:
  engine:
    type: mariadb
    version: "11.8.2"
  clusterSize: 3
  storage:
    size: 10Gi
  resources:
    requests:
      cpu: "1"
      memory: 2Gi
  config:
    - name: max_connections
      value: "200"
"#;

const IMAGE: &str = "docker-registry1.mariadb.com/library/mariadb:11.8.2";

fn seed() -> DatabaseCluster {
    serde_saphyr::from_str(SAMPLE).unwrap()
}

fn version() -> ResolvedVersion {
    ResolvedVersion {
        version: "11.8.2".into(),
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
fn versions_are_mariadb_image_tags_with_the_operators_default_first() {
    let versions = Mariadb.versions();
    assert_eq!(versions[0].version, MARIADB_DEFAULT);
    assert_eq!(versions[0].image, IMAGE);
    assert!(versions.iter().all(|v| v.image.ends_with(&v.version)));
    let provider = provider_for(EngineType::Mariadb).unwrap();
    assert_eq!(provider.engine(), EngineType::Mariadb);
    // An upstream version the catalogue does not offer names the nearest.
    let err = resolve_version(provider, Some("11.8.9"), None).unwrap_err();
    assert!(err.to_string().contains("11.8.2"), "{err}");
}

// ---- build ----

#[test]
fn a_replication_cluster_becomes_a_mariadb_with_replication_and_our_identity() {
    let built = build(&seed(), &version()).unwrap();
    let meta = &built.cluster.metadata;
    assert_eq!(meta.name.as_deref(), Some("shop"));
    assert_eq!(meta.namespace.as_deref(), Some("team-a"));
    let labels = meta.labels.as_ref().unwrap();
    assert_eq!(labels[LABEL_CLUSTER], "shop");
    assert_eq!(labels[LABEL_ENGINE], "mariadb");
    assert_eq!(
        meta.owner_references.as_ref().unwrap()[0].uid,
        "7a1c1b64-0000-4000-8000-000000000004"
    );
    // No MaxScale without the proxy; the template new replicas are seeded from.
    let [template] = built.extra.as_slice() else {
        panic!("only the seed template expected: {:?}", built.extra)
    };
    let seed_template = template;
    assert_eq!(seed_template.types.as_ref().unwrap().kind, "PhysicalBackup");
    assert_eq!(
        seed_template.metadata.name.as_deref(),
        Some("shop-replica-seed")
    );
    assert_eq!(
        seed_template.metadata.labels.as_ref().unwrap()[LABEL_CLUSTER],
        "shop"
    );
    assert_eq!(
        seed_template.data["spec"],
        json!({
            "mariaDbRef": {"name": "shop"},
            "schedule": {"suspend": true},
            "storage": {"persistentVolumeClaim": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "10Gi"}},
            }},
        })
    );
    assert!(built.unapplied.is_empty(), "{:?}", built.unapplied);
    assert_eq!(
        spec_json(&seed()),
        json!({
            "image": IMAGE,
            "replicas": 3,
            "replication": {
                "enabled": true,
                "replica": {"bootstrapFrom": {"physicalBackupTemplateRef": {"name": "shop-replica-seed"}}},
            },
            "rootPasswordSecretKeyRef": {"name": "shop-credentials", "key": "root", "generate": true},
            "storage": {"size": "10Gi", "resizeInUseVolumes": true, "waitForVolumeResize": true},
            "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
            "myCnf": "[mariadb]\nmax_connections=200\n",
        })
    );
}

#[test]
fn a_single_instance_is_a_standalone_mariadb_at_its_own_service() {
    let cluster = with_spec(|s| {
        s.cluster_size = 1;
        s.expose = Some(from_json(json!({"type": "external"})));
    });
    let built = build(&cluster, &version()).unwrap();
    let spec = serde_json::to_value(&built.cluster.spec).unwrap();
    assert!(spec.get("replication").is_none() && spec.get("galera").is_none());
    assert!(
        spec.get("primaryService").is_none(),
        "no primary Service without replicas"
    );
    assert_eq!(spec["service"], json!({"type": "LoadBalancer"}));
    assert!(built.extra.is_empty(), "nothing to seed");
    let mut standalone = built.cluster;
    standalone.status = Some(from_json(
        json!({"replicas": 1, "conditions": [ready("True", "StatefulSetReady", "Running")]}),
    ));
    standalone.metadata.namespace = Some("team-a".into());
    let observed = observe(&standalone, &input(None, None));
    assert_eq!(observed.host.as_deref(), Some("shop.team-a.svc"));
    // It cannot grow into replication, nor a replicated one shrink to one.
    assert!(Mariadb.scaling_refusal(1, 3).is_some());
    assert!(Mariadb.scaling_refusal(3, 1).is_some());
    assert_eq!(Mariadb.scaling_refusal(2, 5), None);
}

#[test]
fn galera_topology_enables_galera_instead_of_replication() {
    let cluster = with_spec(|s| s.engine.topology = Some(Topology::Galera));
    let spec = spec_json(&cluster);
    assert_eq!(spec["galera"], json!({"enabled": true}));
    assert!(spec.get("replication").is_none());
    // Galera seeds a new member itself (SST): no template.
    assert!(build(&cluster, &version()).unwrap().extra.is_empty());
}

#[test]
fn a_users_credentials_secret_is_read_not_generated() {
    let cluster = with_spec(|s| s.credentials_secret_name = Some("shop-root".into()));
    assert_eq!(
        spec_json(&cluster)["rootPasswordSecretKeyRef"],
        json!({"name": "shop-root", "key": "root", "generate": false})
    );
    assert_eq!(Mariadb.credentials_secret_name(&cluster), "shop-root");
}

#[test]
fn maxscale_proxy_adds_a_maxscale_referencing_the_mariadb() {
    let cluster = with_spec(|s| {
        s.proxy = Some(from_json(json!({"type": "maxscale", "replicas": 2})));
        s.expose = Some(from_json(
            json!({"type": "external", "ipSourceRanges": ["10.0.0.0/8"]}),
        ));
    });
    let built = build(&cluster, &version()).unwrap();
    assert_eq!(
        serde_json::to_value(&built.cluster.spec.max_scale_ref).unwrap(),
        json!({"name": "shop-maxscale"})
    );
    // External exposure goes through MaxScale, not the instances.
    assert!(built.cluster.spec.primary_service.is_none());
    let maxscale = built
        .extra
        .iter()
        .find(|o| o.types.as_ref().is_some_and(|t| t.kind == "MaxScale"))
        .expect("a MaxScale");
    assert_eq!(maxscale.types.as_ref().unwrap().kind, "MaxScale");
    assert_eq!(maxscale.metadata.name.as_deref(), Some("shop-maxscale"));
    assert_eq!(
        maxscale.data["spec"],
        json!({
            "mariaDbRef": {"name": "shop"},
            "replicas": 2,
            "image": MAXSCALE_IMAGE,
            "kubernetesService": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8"]},
        })
    );
    let no_pods =
        with_spec(|s| s.proxy = Some(from_json(json!({"type": "maxscale", "replicas": 0}))));
    let err = build(&no_pods, &version()).unwrap_err();
    assert_eq!(err.reason(), "UnsupportedFeature");
}

#[test]
fn external_exposure_without_a_proxy_makes_the_services_load_balancers() {
    let cluster = with_spec(|s| {
        s.expose = Some(from_json(json!({"type": "external"})));
    });
    let spec = spec_json(&cluster);
    assert_eq!(spec["primaryService"], json!({"type": "LoadBalancer"}));
    assert_eq!(spec["service"], json!({"type": "LoadBalancer"}));
}

#[test]
fn paused_is_refused_because_mariadb_operator_cannot_stop_a_mariadb() {
    let err = build(&with_spec(|s| s.paused = true), &version()).unwrap_err();
    assert_eq!(err.reason(), "UnsupportedFeature");
    assert!(err.to_string().contains("cannot stop"), "{err}");
}

#[test]
fn config_that_would_leave_its_line_is_refused() {
    for (name, value) in [
        ("max_connections", "1\n[client]"),
        ("bad name", "1"),
        ("x", "[mysqld]"),
    ] {
        let cluster = with_spec(|s| {
            s.config = vec![from_json(json!({"name": name, "value": value}))];
        });
        let err = build(&cluster, &version()).unwrap_err();
        assert_eq!(err.reason(), "InvalidSpec", "{name}={value:?}");
    }
    // A bare option (MariaDB's boolean form) is written without "=".
    let cluster = with_spec(|s| {
        s.config = vec![from_json(json!({"name": "skip-name-resolve", "value": ""}))];
    });
    assert_eq!(
        spec_json(&cluster)["myCnf"],
        "[mariadb]\nskip-name-resolve\n"
    );
}

#[test]
fn scheduling_carries_over_and_pod_affinity_is_reported_unapplied() {
    let cluster = with_spec(|s| {
        s.scheduling = Some(from_json(json!({
            "nodeSelector": {"disk": "ssd"},
            "tolerations": [{"key": "db", "operator": "Exists"}],
            "priorityClassName": "databases",
            "affinity": {
                "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": []},
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}},
            },
        })));
    });
    let built = build(&cluster, &version()).unwrap();
    let spec = serde_json::to_value(&built.cluster.spec).unwrap();
    assert_eq!(spec["nodeSelector"], json!({"disk": "ssd"}));
    assert_eq!(
        spec["tolerations"],
        json!([{"key": "db", "operator": "Exists"}])
    );
    assert_eq!(spec["priorityClassName"], "databases");
    assert_eq!(
        spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0]["matchExpressions"][0]["key"],
        "zone"
    );
    assert_eq!(
        built.unapplied.iter().map(|u| u.field).collect::<Vec<_>>(),
        ["scheduling.affinity.podAffinity"]
    );
}

#[test]
fn schedules_and_pitr_are_reported_unapplied() {
    let cluster = with_spec(|s| {
        s.backup = Some(from_json(json!({
            "enabled": true,
            "schedule": "0 2 * * *",
            "storageName": "s3",
            "pitr": {"enabled": true},
        })));
    });
    let built = build(&cluster, &version()).unwrap();
    assert_eq!(
        built.unapplied.iter().map(|u| u.field).collect::<Vec<_>>(),
        ["backup.schedules", "backup.pitr"]
    );
}

// ---- observe ----

fn now() -> Time {
    Time(Timestamp::from_second(1_800_000_000).unwrap())
}

fn input<'a>(applied_at: Option<&'a Time>, now: Option<&'a Time>) -> ObserveInput<'a> {
    ObserveInput {
        desired_instances: 3,
        desired_image: IMAGE,
        applied_generation: Some(2),
        applied_at,
        applied_resource_version: Some("10"),
        paused: false,
        previous_phase: Some(ClusterPhase::Ready),
        now,
    }
}

/// A MariaDB as mariadb-operator leaves it, its status written at
/// `written` (seconds after `now()`, negative for before).
fn engine(status: Value, written: i64) -> MariaDb {
    let mut mariadb: MariaDb = from_json(json!({
        "apiVersion": "k8s.mariadb.com/v1alpha1",
        "kind": "MariaDB",
        "metadata": {"name": "shop", "namespace": "team-a", "resourceVersion": "11"},
        "spec": {"replicas": 3, "replication": {"enabled": true}},
        "status": status,
    }));
    mariadb.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
        manager: Some("mariadb-operator".into()),
        subresource: Some("status".into()),
        time: Some(Time(
            Timestamp::from_second(1_800_000_000 + written).unwrap(),
        )),
        ..Default::default()
    }]);
    mariadb
}

fn ready(status: &str, reason: &str, message: &str) -> Value {
    json!({"type": "Ready", "status": status, "reason": reason, "message": message,
           "lastTransitionTime": "2027-01-15T08:00:00Z"})
}

#[test]
fn a_healthy_mariadb_that_reported_after_our_apply_is_ready_at_its_primary_service() {
    let applied = Time(Timestamp::from_second(1_800_000_000 - 5).unwrap());
    let observed = observe(
        &engine(
            json!({"replicas": 3, "currentPrimary": "shop-0",
                   "conditions": [ready("True", "StatefulSetReady", "Running")]}),
            0,
        ),
        &input(Some(&applied), Some(&now())),
    );
    assert_eq!(observed.phase.phase, ClusterPhase::Ready);
    assert_eq!(observed.phase.message, "ready: 3 instances, primary shop-0");
    assert_eq!(observed.host.as_deref(), Some("shop-primary.team-a.svc"));
    assert_eq!(observed.port, Some(MARIADB_PORT));
    assert!(observed.saw_latest_spec);
}

#[test]
fn a_ready_status_older_than_our_apply_waits_until_the_quiet_period_has_passed() {
    let status =
        json!({"replicas": 3, "conditions": [ready("True", "StatefulSetReady", "Running")]});
    let just_applied = Time(Timestamp::from_second(1_800_000_000 - 5).unwrap());
    let observed = observe(
        &engine(status.clone(), -10),
        &input(Some(&just_applied), Some(&now())),
    );
    assert_eq!(observed.phase.phase, ClusterPhase::Updating);
    assert_eq!(observed.phase.reason, "WaitingForEngine");
    let long_ago = Time(Timestamp::from_second(1_800_000_000 - 61).unwrap());
    let observed = observe(&engine(status, -100), &input(Some(&long_ago), Some(&now())));
    assert_eq!(observed.phase.phase, ClusterPhase::Ready);
}

#[test]
fn mariadb_operators_reasons_map_to_our_phases() {
    let applied = Time(Timestamp::from_second(1_800_000_000 - 5).unwrap());
    for (condition, phase, reason) in [
        (
            ready("False", "Initializing", "Initializing"),
            ClusterPhase::Updating,
            "EngineInitializing",
        ),
        (
            ready("False", "ScalingOut", "Scaling out"),
            ClusterPhase::Updating,
            "Scaling",
        ),
        (
            ready("False", "Updating", "Updating"),
            ClusterPhase::Updating,
            "RollingOut",
        ),
        (
            ready("False", "SwitchPrimary", "Switching primary to 'shop-1'"),
            ClusterPhase::Updating,
            "SwitchingPrimary",
        ),
        (
            ready("False", "StatefulSetNotReady", "Not ready"),
            ClusterPhase::Updating,
            "EngineNotReady",
        ),
        (
            ready("False", "InitError", "bootstrap failed"),
            ClusterPhase::Error,
            "EngineError",
        ),
        (
            ready(
                "False",
                "Failed",
                "Error reconciling StatefulSet: no replica Pods found",
            ),
            ClusterPhase::Updating,
            "EngineNotReady",
        ),
        (
            ready("False", "RestorePhysicalBackup", "Restoring"),
            ClusterPhase::Updating,
            "Restoring",
        ),
        (
            ready("False", "Suspended", "Suspended"),
            ClusterPhase::Unknown,
            "EngineSuspended",
        ),
        (
            ready("True", "StatefulSetReady", "Running"),
            ClusterPhase::Updating,
            "Scaling",
        ),
    ] {
        let observed = observe(
            &engine(json!({"replicas": 2, "conditions": [condition.clone()]}), 0),
            &input(Some(&applied), Some(&now())),
        );
        assert_eq!(
            (observed.phase.phase, observed.phase.reason),
            (phase, reason),
            "{condition}"
        );
    }
    let error = observe(
        &engine(
            json!({"conditions": [ready("False", "InitError", "bootstrap failed")]}),
            0,
        ),
        &input(Some(&applied), Some(&now())),
    );
    assert!(
        error.phase.message.contains("bootstrap failed"),
        "{}",
        error.phase.message
    );
    // No status yet: pending, no endpoint.
    let pending = observe(&engine(Value::Null, 0), &input(None, None));
    assert_eq!(pending.phase.phase, ClusterPhase::Pending);
    assert_eq!(pending.host, None);
}

#[test]
fn maxscale_moves_the_endpoint_and_holds_ready_until_it_is_ready() {
    let applied = Time(Timestamp::from_second(1_800_000_000 - 5).unwrap());
    let healthy = observe(
        &engine(
            json!({"replicas": 3, "conditions": [ready("True", "StatefulSetReady", "Running")]}),
            0,
        ),
        &input(Some(&applied), Some(&now())),
    );
    let maxscale = |status: Value| -> DynamicObject {
        from_json(json!({
            "apiVersion": "k8s.mariadb.com/v1alpha1", "kind": "MaxScale",
            "metadata": {"name": "shop-maxscale", "namespace": "team-a"},
            "spec": {}, "status": status,
        }))
    };
    let waiting = Mariadb.observe_extra(
        healthy.clone(),
        &[maxscale(
            json!({"conditions": [ready("False", "MaxScaleNotReady", "Not ready")]}),
        )],
        &input(None, None),
    );
    assert_eq!(waiting.host.as_deref(), Some("shop-maxscale.team-a.svc"));
    assert_eq!(waiting.phase.reason, "WaitingForProxy");
    let up = Mariadb.observe_extra(
        healthy,
        &[maxscale(
            json!({"conditions": [ready("True", "MaxScaleReady", "Running")]}),
        )],
        &input(None, None),
    );
    assert_eq!(up.phase.phase, ClusterPhase::Ready);
}

// ---- day-2 patches ----

#[test]
fn switchover_restart_and_primary_speak_mariadb_operators_fields() {
    assert_eq!(
        Mariadb.switchover_patch("shop-2").unwrap().patch,
        json!({"spec": {"replication": {"primary": {"podIndex": 2}}}})
    );
    assert_eq!(
        Mariadb.switchover_patch("shop"),
        None,
        "not an instance name"
    );
    // Galera's writer and MaxScale's primary are moved other ways: refused.
    assert_eq!(Mariadb.switchover_refusal(&seed()), None);
    let galera = with_spec(|s| s.engine.topology = Some(Topology::Galera));
    assert!(
        Mariadb
            .switchover_refusal(&galera)
            .unwrap()
            .contains("galera")
    );
    let proxied = with_spec(|s| s.proxy = Some(from_json(json!({"type": "maxscale"}))));
    assert!(
        Mariadb
            .switchover_refusal(&proxied)
            .unwrap()
            .contains("MaxScale")
    );
    let restart = Mariadb.restart_patch("2027-01-15T08:00:00Z").unwrap();
    assert!(!restart.status);
    let patched: DynamicObject = from_json(json!({
        "apiVersion": "k8s.mariadb.com/v1alpha1", "kind": "MariaDB",
        "metadata": {"name": "shop"},
        "spec": {"replicas": 2, "podMetadata": restart.patch["spec"]["podMetadata"].clone()},
        "status": {"currentPrimary": "shop-1"},
    }));
    assert_eq!(
        Mariadb.restart_requested(&patched).as_deref(),
        Some("2027-01-15T08:00:00Z")
    );
    assert_eq!(
        Mariadb.primary(&patched),
        Primary {
            current: Some("shop-1".into()),
            instances: vec!["shop-0".into(), "shop-1".into()],
        }
    );
    assert!(Mariadb.volume_claim_of_member("storage-shop-1", 2));
    assert!(!Mariadb.volume_claim_of_member("storage-shop-2", 2));
}

// ---- backups and restores ----

fn storage(type_: BackupStorageType) -> StorageInput {
    let spec: BackupStorageSpec = from_json(match type_ {
        BackupStorageType::Filesystem => {
            json!({"type": "filesystem", "persistentVolumeClaim": "backups"})
        }
        _ => json!({"type": type_, "bucket": "dumps", "endpointURL": "http://minio.infra:9000",
                    "credentialsSecretName": "s3-creds", "prefix": "prod"}),
    });
    StorageInput {
        name: "store".into(),
        credentials_secret: (type_ != BackupStorageType::Filesystem).then(|| "store-creds".into()),
        spec,
    }
}

fn backup() -> DatabaseBackup {
    from_json(json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseBackup",
        "metadata": {"name": "nightly-1", "namespace": "team-a", "uid": "b-1"},
        "spec": {"clusterName": "shop"},
    }))
}

#[test]
fn a_backup_to_s3_gets_its_own_prefix_and_plain_http_when_the_endpoint_says_so() {
    let built = backup::build_backup(&backup(), &seed(), &storage(BackupStorageType::S3)).unwrap();
    assert_eq!(built.metadata.name.as_deref(), Some("nightly-1"));
    assert_eq!(
        serde_json::to_value(&built.spec).unwrap(),
        json!({
            "mariaDbRef": {"name": "shop"},
            "storage": {"s3": {
                "bucket": "dumps",
                "endpoint": "minio.infra:9000",
                "prefix": "prod/team-a/shop/nightly-1",
                "accessKeyIdSecretKeyRef": {"name": "store-creds", "key": "AWS_ACCESS_KEY_ID"},
                "secretAccessKeySecretKeyRef": {"name": "store-creds", "key": "AWS_SECRET_ACCESS_KEY"},
                "tls": {"enabled": false},
            }},
        })
    );
    let fs =
        backup::build_backup(&backup(), &seed(), &storage(BackupStorageType::Filesystem)).unwrap();
    assert_eq!(
        serde_json::to_value(&fs.spec.storage).unwrap(),
        json!({"volume": {"persistentVolumeClaim": {"claimName": "backups"}}})
    );
    let err =
        backup::build_backup(&backup(), &seed(), &storage(BackupStorageType::Azure)).unwrap_err();
    assert_eq!(err.reason(), "InvalidBackupSpec");
}

#[test]
fn backup_and_restore_jobs_report_through_their_complete_condition() {
    let object = |condition: Value| -> DynamicObject {
        from_json(json!({
            "apiVersion": "k8s.mariadb.com/v1alpha1", "kind": "Backup",
            "metadata": {"name": "nightly-1", "creationTimestamp": "2027-01-15T07:59:00Z"},
            "spec": {"storage": {"volume": {"persistentVolumeClaim": {"claimName": "backups"}}}},
            "status": {"conditions": [condition]},
        }))
    };
    let complete = |status: &str, reason: &str| {
        json!({"type": "Complete", "status": status, "reason": reason, "message": reason,
               "lastTransitionTime": "2027-01-15T08:00:00Z"})
    };
    let done = backup::observe_backup(&object(complete("True", "JobComplete")));
    assert_eq!(done.phase, dbaas_api::backup::BackupPhase::Succeeded);
    assert_eq!(done.destination.as_deref(), Some("pvc://backups"));
    assert!(done.completed_at.is_some());
    // mariadb-operator marks a failed Job Complete=True with reason JobFailed.
    let failed_backup = backup::observe_backup(&object(complete("True", "JobFailed")));
    assert_eq!(failed_backup.phase, dbaas_api::backup::BackupPhase::Failed);
    let not_made = backup::observe_backup(&object(complete("False", "Failed")));
    assert_eq!(not_made.phase, dbaas_api::backup::BackupPhase::Pending);
    assert_eq!(not_made.message.as_deref(), Some("Failed"));
    let running = backup::observe_backup(&object(complete("False", "JobRunning")));
    assert_eq!(running.phase, dbaas_api::backup::BackupPhase::Running);
    assert!(running.completed_at.is_none());
    let failed = restore::observe_restore(&object(complete("True", "JobFailed")));
    assert_eq!(failed.phase, RestorePhase::Failed);
    assert_eq!(failed.message.as_deref(), Some("JobFailed"));
}

#[test]
fn a_restore_reads_the_backups_own_prefix_or_the_volume() {
    let taken = |type_| RestoreInput {
        backup: RestoreBackup::Taken {
            backup_name: "nightly-1".into(),
            source_cluster: "old-shop".into(),
            source_namespace: "team-b".into(),
            destination: None,
        },
        storage: Some(storage(type_)),
        pitr: None,
    };
    let s3 = restore::build_restore("r-1", &seed(), &taken(BackupStorageType::S3)).unwrap();
    assert_eq!(s3.spec.maria_db_ref.name.as_deref(), Some("shop"));
    assert_eq!(
        s3.spec.s3.as_ref().unwrap().prefix.as_deref(),
        Some("prod/team-b/old-shop/nightly-1")
    );
    assert_eq!(
        s3.metadata.labels.as_ref().unwrap()[LABEL_ENGINE],
        "mariadb"
    );
    let fs = restore::build_restore("r-1", &seed(), &taken(BackupStorageType::Filesystem)).unwrap();
    assert_eq!(
        serde_json::to_value(&fs.spec.volume).unwrap(),
        json!({"persistentVolumeClaim": {"claimName": "backups"}})
    );
    let mut pitr = taken(BackupStorageType::S3);
    pitr.pitr = Some(PitrTarget {
        type_: PitrType::Latest,
        date: None,
    });
    assert_eq!(
        restore::build_restore("r-1", &seed(), &pitr)
            .unwrap_err()
            .reason(),
        "UnsupportedFeature"
    );
    let path = RestoreInput {
        backup: RestoreBackup::Path("dumps/2027".into()),
        storage: Some(storage(BackupStorageType::Filesystem)),
        pitr: None,
    };
    assert_eq!(
        restore::build_restore("r-1", &seed(), &path)
            .unwrap_err()
            .reason(),
        "UnsupportedFeature"
    );
}
