//! The bad-input catalogue: distinct bad inputs through each front door —
//! `kubectl apply` against our CRDs (OpenAPI schema and CEL rules), the REST
//! API (`dbaas-server`) and `dbaasctl`. Each must be refused with a message
//! that says what is wrong (a schema or CEL rejection, a 4xx with a
//! message, a usage or API error), and nothing already stored may change:
//! every object of the namespace keeps its resourceVersion, and no refused
//! object appears.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use dbaas_server::ServerConfig;
use dbaas_testkit::accounts::namespaced_user;
use dbaas_testkit::{TestNamespace, shared};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

/// What each surface refused, and what it let through.
#[derive(Default)]
struct Catalogue {
    refused: BTreeMap<&'static str, usize>,
    let_through: Vec<String>,
}

impl Catalogue {
    /// Records one bad input: `refused` with `message`, which must name
    /// `expect` (the field, the rule or the reason).
    fn check(
        &mut self,
        surface: &'static str,
        what: &str,
        refused: bool,
        message: &str,
        expect: &str,
    ) {
        if !refused {
            self.let_through
                .push(format!("{surface}: {what}: accepted"));
        } else if !message.contains(expect) {
            self.let_through.push(format!(
                "{surface}: {what}: refused, but the message does not say {expect:?}: {message}"
            ));
        } else {
            *self.refused.entry(surface).or_default() += 1;
        }
    }

    fn total(&self) -> usize {
        self.refused.values().sum()
    }
}

const KINDS: &str = "databaseclusters,opsrequests,databaseclaims,databaseservers,databaseengines,\
    backupstorages,monitoringconfigs,databasebackups,databaseclustertemplates,backupscheduletemplates";

/// kubectl of the shared control plane; (succeeded, stdout + stderr).
fn kubectl(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new(dbaas_testkit::controlplane_binary().unwrap())
        .arg("kubectl")
        .arg("--kubeconfig")
        .arg(shared().kubeconfig())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Every object of the namespace, by kind and name, with its resourceVersion.
fn snapshot(namespace: &str) -> BTreeMap<String, String> {
    let (ok, text) = kubectl(&["get", KINDS, "-n", namespace, "-o", "json"], None);
    assert!(ok, "{text}");
    let list: Value = serde_json::from_str(&text).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                format!("{}/{}", item["kind"], item["metadata"]["name"]),
                item["metadata"]["resourceVersion"].to_string(),
            )
        })
        .collect()
}

fn object(kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "dbaas.io/v1", "kind": kind, "metadata": {"name": name}, "spec": spec})
}

fn cluster_spec() -> Value {
    json!({"engine": {"type": "postgresql"}, "clusterSize": 1, "storage": {"size": "1Gi"}})
}

/// `base` with `path` (dotted) set to `value`, or removed when null.
fn with(base: &Value, path: &str, value: Value) -> Value {
    let mut out = base.clone();
    let mut at = &mut out;
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        at = at
            .as_object_mut()
            .unwrap()
            .entry((*part).to_owned())
            .or_insert_with(|| json!({}));
    }
    let last = parts[parts.len() - 1];
    if value.is_null() {
        at.as_object_mut().unwrap().remove(last);
    } else {
        at[last] = value;
    }
    out
}

/// The objects every update case starts from.
fn seeds() -> Vec<Value> {
    vec![
        object(
            "DatabaseCluster",
            "keep",
            with(&cluster_spec(), "storage.size", json!("2Gi")),
        ),
        object(
            "OpsRequest",
            "keep-op",
            json!({"clusterRef": {"name": "keep"}, "type": "HorizontalScaling", "horizontalScaling": {"replicas": 3}}),
        ),
        object(
            "DatabaseClaim",
            "keep-claim",
            json!({"type": "postgres", "databaseName": "keep", "username": "keep", "secretName": "keep-db"}),
        ),
        object(
            "DatabaseEngine",
            "postgresql",
            json!({"type": "postgresql", "allowedVersions": ["17.12"], "defaultVersion": "17.12"}),
        ),
        object(
            "BackupStorage",
            "keep-storage",
            json!({"type": "filesystem", "persistentVolumeClaim": "backups"}),
        ),
        object(
            "DatabaseBackup",
            "keep-backup",
            json!({"clusterName": "keep", "storageName": "keep-storage"}),
        ),
    ]
}

/// Bad objects for `kubectl apply`: (what, object, what the message names).
fn crd_cases() -> Vec<(String, Value, &'static str)> {
    let spec = cluster_spec();
    let cluster = |name: &str, spec: Value| object("DatabaseCluster", name, spec);
    let mut cases: Vec<(String, Value, &'static str)> = vec![
        (
            "cluster: unknown engine".into(),
            cluster("c1", with(&spec, "engine.type", json!("oracle"))),
            "spec.engine.type",
        ),
        (
            "cluster: no engine".into(),
            cluster("c2", with(&spec, "engine", Value::Null)),
            "spec.engine",
        ),
        (
            "cluster: size 0".into(),
            cluster("c3", with(&spec, "clusterSize", json!(0))),
            "spec.clusterSize",
        ),
        (
            "cluster: size 100".into(),
            cluster("c4", with(&spec, "clusterSize", json!(100))),
            "spec.clusterSize",
        ),
        (
            "cluster: size as a word".into(),
            cluster("c5", with(&spec, "clusterSize", json!("three"))),
            "spec.clusterSize",
        ),
        (
            "cluster: negative storage".into(),
            cluster("c6", with(&spec, "storage.size", json!("-1Gi"))),
            "storage.size must be a positive quantity",
        ),
        (
            "cluster: zero storage".into(),
            cluster("c7", with(&spec, "storage.size", json!("0"))),
            "storage.size must be a positive quantity",
        ),
        (
            "cluster: storage not a quantity".into(),
            cluster("c8", with(&spec, "storage.size", json!("lots"))),
            "storage.size",
        ),
        (
            "cluster: no storage".into(),
            cluster("c9", with(&spec, "storage", Value::Null)),
            "spec.storage",
        ),
        (
            "cluster: name of 51 characters".into(),
            cluster(&"c".repeat(51), spec.clone()),
            "at most 50 characters",
        ),
        (
            "cluster: version not starting with a digit".into(),
            cluster("c10", with(&spec, "engine.version", json!("latest"))),
            "spec.engine.version",
        ),
        (
            "cluster: empty version".into(),
            cluster("c11", with(&spec, "engine.version", json!(""))),
            "spec.engine.version",
        ),
        (
            "cluster: version of 65 characters".into(),
            cluster(
                "c12",
                with(
                    &spec,
                    "engine.version",
                    json!(format!("1{}", "0".repeat(64))),
                ),
            ),
            "spec.engine.version",
        ),
        (
            "cluster: config name with a semicolon".into(),
            cluster(
                "c13",
                with(
                    &spec,
                    "config",
                    json!([{"name": "work_mem;", "value": "1MB"}]),
                ),
            ),
            "name",
        ),
        (
            "cluster: config value with a newline".into(),
            cluster(
                "c14",
                with(
                    &spec,
                    "config",
                    json!([{"name": "work_mem", "value": "1MB\nshared_preload_libraries=x"}]),
                ),
            ),
            "value",
        ),
        (
            "cluster: haproxy in front of postgresql".into(),
            cluster("c15", with(&spec, "proxy", json!({"type": "haproxy"}))),
            "proxy.type must fit the engine",
        ),
        (
            "cluster: unknown proxy type".into(),
            cluster("c16", with(&spec, "proxy", json!({"type": "nginx"}))),
            "spec.proxy.type",
        ),
        (
            "cluster: source range not a CIDR".into(),
            cluster(
                "c17",
                with(
                    &spec,
                    "expose",
                    json!({"type": "external", "ipSourceRanges": ["everyone"]}),
                ),
            ),
            "must be a CIDR",
        ),
        (
            "cluster: dataSource with backupName and backupSource".into(),
            cluster(
                "c18",
                with(
                    &spec,
                    "dataSource",
                    json!({"backupName": "b", "backupSource": {"path": "p", "storageName": "s"}}),
                ),
            ),
            "exactly one of backupName or backupSource",
        ),
        (
            "cluster: dataSource with neither".into(),
            cluster("c19", with(&spec, "dataSource", json!({}))),
            "exactly one of backupName or backupSource",
        ),
        (
            "cluster: pitr date without a date".into(),
            cluster(
                "c20",
                with(
                    &spec,
                    "dataSource",
                    json!({"backupName": "b", "pitr": {"type": "date"}}),
                ),
            ),
            "pitr.type date needs pitr.date",
        ),
        (
            "cluster: unknown pitr type".into(),
            cluster(
                "c21",
                with(
                    &spec,
                    "dataSource",
                    json!({"backupName": "b", "pitr": {"type": "yesterday"}}),
                ),
            ),
            "pitr.type",
        ),
        (
            "cluster: schedule name with capitals".into(),
            cluster(
                "c22",
                with(
                    &spec,
                    "backup",
                    json!({"schedules": [{"name": "Nightly", "schedule": "0 1 * * *", "storageName": "s"}]}),
                ),
            ),
            "name",
        ),
        (
            "cluster: retentionCopies 0".into(),
            cluster(
                "c23",
                with(
                    &spec,
                    "backup",
                    json!({"schedules": [{"name": "nightly", "schedule": "0 1 * * *", "retentionCopies": 0, "storageName": "s"}]}),
                ),
            ),
            "retentionCopies",
        ),
        (
            "cluster: schedule of 129 characters".into(),
            cluster(
                "c24",
                with(
                    &spec,
                    "backup",
                    json!({"schedules": [{"name": "nightly", "schedule": "0".repeat(129), "storageName": "s"}]}),
                ),
            ),
            "schedule",
        ),
        (
            "cluster: 17 schedules".into(),
            cluster(
                "c25",
                with(
                    &spec,
                    "backup",
                    json!({"schedules": (0..17).map(|i| json!({"name": format!("s{i}"), "schedule": "0 1 * * *", "storageName": "s"})).collect::<Vec<_>>()}),
                ),
            ),
            "spec.backup.schedules",
        ),
        (
            "cluster: schedule storage name of 254 characters".into(),
            cluster(
                "c27",
                with(
                    &spec,
                    "backup",
                    json!({"schedules": [{"name": "nightly", "schedule": "0 1 * * *", "storageName": "s".repeat(254)}]}),
                ),
            ),
            "storageName",
        ),
        (
            "cluster: credentials Secret name of 254 characters".into(),
            cluster(
                "c26",
                with(&spec, "credentialsSecretName", json!("s".repeat(254))),
            ),
            "credentialsSecretName",
        ),
        (
            "cluster: engine type changed".into(),
            cluster(
                "keep",
                with(
                    &with(&spec, "storage.size", json!("2Gi")),
                    "engine.type",
                    json!("mysql"),
                ),
            ),
            "engine.type is immutable",
        ),
        (
            "cluster: storage shrunk".into(),
            cluster("keep", spec.clone()),
            "storage.size cannot shrink",
        ),
        (
            "cluster: storage class added".into(),
            cluster(
                "keep",
                with(
                    &with(&spec, "storage.size", json!("2Gi")),
                    "storage.class",
                    json!("fast"),
                ),
            ),
            "storage.class is immutable",
        ),
        (
            "cluster: dataSource added after creation".into(),
            cluster(
                "keep",
                with(
                    &with(&spec, "storage.size", json!("2Gi")),
                    "dataSource",
                    json!({"backupName": "b"}),
                ),
            ),
            "dataSource is only read when the cluster is created",
        ),
    ];
    let op = |name: &str, spec: Value| object("OpsRequest", name, spec);
    for (kind, field) in [
        ("HorizontalScaling", "horizontalScaling"),
        ("VerticalScaling", "verticalScaling"),
        ("VolumeExpansion", "volumeExpansion"),
        ("Reconfiguring", "reconfiguring"),
        ("Upgrade", "upgrade"),
        ("Restore", "restore"),
        ("Expose", "expose"),
        ("RebuildInstance", "rebuildInstance"),
        ("Custom", "custom"),
    ] {
        cases.push((
            format!("ops: {kind} without {field}"),
            op(
                &format!("o-{}", kind.to_lowercase()),
                json!({"clusterRef": {"name": "keep"}, "type": kind}),
            ),
            "needs",
        ));
    }
    cases.extend([
        ("ops: unknown type".into(), op("o1", json!({"clusterRef": {"name": "keep"}, "type": "Teleport"})), "spec.type"),
        ("ops: no clusterRef".into(), op("o2", json!({"type": "Restart"})), "spec.clusterRef"),
        ("ops: type changed".into(), op("keep-op", json!({"clusterRef": {"name": "keep"}, "type": "Restart", "horizontalScaling": {"replicas": 3}})), "type and clusterRef are immutable"),
        ("ops: clusterRef changed".into(), op("keep-op", json!({"clusterRef": {"name": "other"}, "type": "HorizontalScaling", "horizontalScaling": {"replicas": 3}})), "type and clusterRef are immutable"),
        ("ops: parameters changed".into(), op("keep-op", json!({"clusterRef": {"name": "keep"}, "type": "HorizontalScaling", "horizontalScaling": {"replicas": 5}})), "parameters are immutable"),
        ("ops: expose range not a CIDR".into(), op("o3", json!({"clusterRef": {"name": "keep"}, "type": "Expose", "expose": {"type": "external", "ipSourceRanges": ["10.0.0.0/33"]}})), "must be a CIDR"),
        ("ops: restore pitr date without a date".into(), op("o4", json!({"clusterRef": {"name": "keep"}, "type": "Restore", "restore": {"backupName": "b", "pitr": {"type": "date"}}})), "pitr.type date needs pitr.date"),
    ]);
    let claim = |name: &str, spec: Value| object("DatabaseClaim", name, spec);
    let claim_spec = json!({"type": "postgres", "databaseName": "app", "username": "app", "secretName": "app-db"});
    cases.extend([
        ("claim: unknown type".into(), claim("l1", with(&claim_spec, "type", json!("oracle"))), "spec.type"),
        ("claim: database name with a dash".into(), claim("l2", with(&claim_spec, "databaseName", json!("my-app"))), "databaseName"),
        ("claim: user name with a quote".into(), claim("l3", with(&claim_spec, "username", json!("app'; DROP ROLE x; --"))), "username"),
        ("claim: serverRef and instanceLabel".into(), claim("l4", with(&with(&claim_spec, "serverRef", json!({"name": "pg"})), "instanceLabel", json!("pg.app"))), "at most one of serverRef or instanceLabel"),
        ("claim: mysql user name of 30 characters".into(), claim("l5", with(&with(&claim_spec, "type", json!("mysql")), "username", json!("u".repeat(30)))), "mysql user names are at most 32 characters"),
        ("claim: no secretName".into(), claim("l6", with(&claim_spec, "secretName", Value::Null)), "secretName"),
        ("claim: rotation of 5 minutes".into(), claim("l7", with(&claim_spec, "rotationMinutes", json!(5))), "rotationMinutes"),
        ("claim: unknown delete policy".into(), claim("l8", with(&claim_spec, "deletePolicy", json!("shred"))), "deletePolicy"),
        ("claim: database name changed".into(), claim("keep-claim", json!({"type": "postgres", "databaseName": "other", "username": "keep", "secretName": "keep-db"})), "immutable"),
        ("claim: user name changed".into(), claim("keep-claim", json!({"type": "postgres", "databaseName": "keep", "username": "other", "secretName": "keep-db"})), "immutable"),
        ("claim: dbNameOverride moves the database".into(), claim("keep-claim", json!({"type": "postgres", "databaseName": "keep", "username": "keep", "secretName": "keep-db", "dbNameOverride": "elsewhere"})), "dbNameOverride cannot change the database"),
    ]);
    let server = |name: &str, spec: Value| object("DatabaseServer", name, spec);
    cases.extend([
        ("server: external without adminCredentials".into(), server("s1", json!({"engine": "postgres", "host": "db.example"})), "needs adminCredentials"),
        ("server: createDatabaseStrategy on mysql".into(), server("s2", json!({"engine": "mysql", "clusterRef": {"name": "keep"}, "createDatabaseStrategy": "FILE_COPY"})), "createDatabaseStrategy is a PostgreSQL setting"),
        ("server: unknown engine".into(), server("s3", json!({"engine": "oracle", "clusterRef": {"name": "keep"}})), "spec.engine"),
        ("server: unknown sslMode".into(), server("s4", json!({"engine": "postgres", "clusterRef": {"name": "keep"}, "sslMode": "maybe"})), "spec.sslMode"),
        ("server: port 70000".into(), server("s5", json!({"engine": "postgres", "clusterRef": {"name": "keep"}, "port": 70000})), "spec.port"),
        ("server: a CA with an sslMode that verifies nothing".into(), server("s6", json!({"engine": "postgres", "clusterRef": {"name": "keep"}, "sslMode": "require", "caCertificate": {"name": "ca", "key": "ca.crt"}})), "a caCertificate is there to verify the server"),
        ("server: a CA without its key".into(), server("s7", json!({"engine": "postgres", "clusterRef": {"name": "keep"}, "caCertificate": {"name": "ca"}})), "caCertificate.key"),
    ]);
    let engine = |name: &str, spec: Value| object("DatabaseEngine", name, spec);
    cases.extend([
        (
            "engine: default not among the allowed".into(),
            engine(
                "e1",
                json!({"type": "mysql", "allowedVersions": ["8.0.36"], "defaultVersion": "8.4.0"}),
            ),
            "defaultVersion must be one of allowedVersions",
        ),
        (
            "engine: unknown type".into(),
            engine("e2", json!({"type": "oracle"})),
            "spec.type",
        ),
        (
            "engine: type changed".into(),
            engine(
                "postgresql",
                json!({"type": "mysql", "allowedVersions": ["17.12"], "defaultVersion": "17.12"}),
            ),
            "type is immutable",
        ),
    ]);
    let storage = |name: &str, spec: Value| object("BackupStorage", name, spec);
    cases.extend([
        ("storage: s3 without bucket".into(), storage("b1", json!({"type": "s3", "credentialsSecretName": "c"})), "bucket is required"),
        ("storage: s3 without credentials".into(), storage("b2", json!({"type": "s3", "bucket": "b"})), "credentialsSecretName is required"),
        ("storage: filesystem without a claim".into(), storage("b3", json!({"type": "filesystem"})), "persistentVolumeClaim is required"),
        ("storage: endpoint not a URL".into(), storage("b4", json!({"type": "s3", "bucket": "b", "credentialsSecretName": "c", "endpointURL": "not a url"})), "endpointURL must be a URL"),
        ("storage: unknown type".into(), storage("b5", json!({"type": "tape"})), "spec.type"),
    ]);
    let monitoring = |name: &str, spec: Value| object("MonitoringConfig", name, spec);
    cases.extend([
        (
            "monitoring: pmm without its section".into(),
            monitoring("m1", json!({"type": "pmm", "credentialsSecretName": "c"})),
            "type pmm needs the pmm section",
        ),
        (
            "monitoring: pmm without credentials".into(),
            monitoring(
                "m2",
                json!({"type": "pmm", "pmm": {"url": "https://pmm.example"}}),
            ),
            "credentialsSecretName is required",
        ),
        (
            "monitoring: pmm url not a URL".into(),
            monitoring(
                "m3",
                json!({"type": "pmm", "credentialsSecretName": "c", "pmm": {"url": "pmm example"}}),
            ),
            "pmm.url must be a URL",
        ),
        (
            "monitoring: unknown type".into(),
            monitoring("m4", json!({"type": "nagios"})),
            "spec.type",
        ),
    ]);
    cases.push((
        "backup: spec changed".into(),
        object(
            "DatabaseBackup",
            "keep-backup",
            json!({"clusterName": "keep", "storageName": "other"}),
        ),
        "spec is immutable",
    ));
    cases
}

/// Bad calls of `dbaasctl` (Kubernetes mode): (what, arguments, what the
/// message names). Exit code 1 or 2, never 0.
fn cli_cases() -> Vec<(&'static str, Vec<String>, &'static str)> {
    let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    vec![
        (
            "install: a watch namespace that is no namespace name",
            args(&[
                "install",
                "--dry-run",
                "--watch-namespace",
                "team,Not_A_Namespace",
            ]),
            "\"Not_A_Namespace\" is not a namespace name",
        ),
        (
            "preflight: a watch namespace that is no namespace name",
            args(&["preflight", "--watch-namespace", "team..a"]),
            "is not a namespace name",
        ),
        (
            "cluster create: unknown engine",
            args(&["cluster", "create", "x1", "--engine", "oracle"]),
            "oracle",
        ),
        (
            "cluster create: no engine",
            args(&["cluster", "create", "x2"]),
            "--engine",
        ),
        (
            "cluster create: name with capitals",
            args(&["cluster", "create", "Bad_Name", "--engine", "postgresql"]),
            "Bad_Name",
        ),
        (
            "cluster create: name of 51 characters",
            args(&[
                "cluster",
                "create",
                &"x".repeat(51),
                "--engine",
                "postgresql",
            ]),
            "50",
        ),
        (
            "cluster create: size 0",
            args(&[
                "cluster",
                "create",
                "x3",
                "--engine",
                "postgresql",
                "--size",
                "0",
            ]),
            "size",
        ),
        (
            "cluster create: size as a word",
            args(&[
                "cluster",
                "create",
                "x4",
                "--engine",
                "postgresql",
                "--size",
                "three",
            ]),
            "three",
        ),
        (
            "cluster create: storage not a quantity",
            args(&[
                "cluster",
                "create",
                "x5",
                "--engine",
                "postgresql",
                "--storage",
                "lots",
            ]),
            "lots",
        ),
        (
            "cluster create: version not a version",
            args(&[
                "cluster",
                "create",
                "x6",
                "--engine",
                "postgresql",
                "--version",
                "latest",
            ]),
            "version",
        ),
        (
            "cluster create: timeout not a duration",
            args(&[
                "cluster",
                "create",
                "x7",
                "--engine",
                "postgresql",
                "--wait",
                "--timeout",
                "forever",
            ]),
            "forever",
        ),
        (
            "cluster create: unknown flag",
            args(&[
                "cluster",
                "create",
                "x8",
                "--engine",
                "postgresql",
                "--replicas",
                "3",
            ]),
            "--replicas",
        ),
        (
            "cluster create: name taken",
            args(&["cluster", "create", "keep", "--engine", "postgresql"]),
            "keep",
        ),
        (
            "cluster get: not found",
            args(&["cluster", "get", "missing"]),
            "missing",
        ),
        (
            "cluster delete: not found",
            args(&["cluster", "delete", "missing"]),
            "missing",
        ),
        (
            "ops create: unknown type",
            args(&[
                "ops",
                "create",
                "y1",
                "--cluster",
                "keep",
                "--type",
                "Teleport",
            ]),
            "Teleport",
        ),
        (
            "ops create: scaling without replicas",
            args(&[
                "ops",
                "create",
                "y2",
                "--cluster",
                "keep",
                "--type",
                "HorizontalScaling",
            ]),
            "--replicas",
        ),
        (
            "ops create: replicas 0",
            args(&[
                "ops",
                "create",
                "y3",
                "--cluster",
                "keep",
                "--type",
                "HorizontalScaling",
                "--replicas",
                "0",
            ]),
            "replicas",
        ),
        (
            "ops create: cpu not a quantity",
            args(&[
                "ops",
                "create",
                "y4",
                "--cluster",
                "keep",
                "--type",
                "VerticalScaling",
                "--cpu",
                "lots",
            ]),
            "lots",
        ),
        (
            "ops create: pitr date not a date",
            args(&[
                "ops",
                "create",
                "y5",
                "--cluster",
                "keep",
                "--type",
                "Restore",
                "--backup-name",
                "b",
                "--pitr-date",
                "yesterday",
            ]),
            "yesterday",
        ),
        (
            "ops create: restore without a backup",
            args(&[
                "ops",
                "create",
                "y6",
                "--cluster",
                "keep",
                "--type",
                "Restore",
            ]),
            "--backup-name",
        ),
        (
            "ops create: no cluster",
            args(&["ops", "create", "y7", "--type", "Restart"]),
            "--cluster",
        ),
        (
            "ops create: name taken",
            args(&[
                "ops",
                "create",
                "keep-op",
                "--cluster",
                "keep",
                "--type",
                "Restart",
            ]),
            "keep-op",
        ),
        (
            "claim get: not found",
            args(&["claim", "get", "missing"]),
            "missing",
        ),
        ("unknown command", args(&["clusters", "list"]), "clusters"),
    ]
}

/// One bad REST call: (what, method, path, body, expected status, what the
/// message names).
type RestCase = (
    String,
    &'static str,
    String,
    Option<String>,
    u16,
    &'static str,
);

/// Bad REST calls, made with a token that may write everything of ours in
/// the namespace.
fn rest_cases(ns: &str) -> Vec<RestCase> {
    let clusters = format!("/v1/namespaces/{ns}/databaseclusters");
    let body = |value: Value| Some(value.to_string());
    let spec = cluster_spec();
    vec![
        (
            "cluster: not JSON".into(),
            "POST",
            clusters.clone(),
            Some("{not json".into()),
            400,
            "",
        ),
        (
            "cluster: unknown engine".into(),
            "POST",
            clusters.clone(),
            body(object(
                "DatabaseCluster",
                "r1",
                with(&spec, "engine.type", json!("oracle")),
            )),
            400,
            "oracle",
        ),
        (
            "cluster: size 0".into(),
            "POST",
            clusters.clone(),
            body(object(
                "DatabaseCluster",
                "r2",
                with(&spec, "clusterSize", json!(0)),
            )),
            422,
            "clusterSize",
        ),
        (
            "cluster: negative storage".into(),
            "POST",
            clusters.clone(),
            body(object(
                "DatabaseCluster",
                "r3",
                with(&spec, "storage.size", json!("-1Gi")),
            )),
            422,
            "storage.size",
        ),
        (
            "cluster: name with capitals".into(),
            "POST",
            clusters.clone(),
            body(object("DatabaseCluster", "Bad_Name", spec.clone())),
            400,
            "Bad_Name",
        ),
        (
            "cluster: name taken".into(),
            "POST",
            clusters.clone(),
            body(object("DatabaseCluster", "keep", spec.clone())),
            409,
            "keep",
        ),
        (
            "cluster: get with a bad name".into(),
            "GET",
            format!("{clusters}/Bad_Name"),
            None,
            400,
            "Bad_Name",
        ),
        (
            "cluster: get a missing one".into(),
            "GET",
            format!("{clusters}/missing"),
            None,
            404,
            "missing",
        ),
        (
            "cluster: delete with a bad name".into(),
            "DELETE",
            format!("{clusters}/a..b"),
            None,
            400,
            "a..b",
        ),
        (
            "cluster: patch not JSON".into(),
            "PATCH",
            format!("{clusters}/keep"),
            Some("[1,".into()),
            400,
            "",
        ),
        (
            "cluster: patch changes the engine".into(),
            "PATCH",
            format!("{clusters}/keep"),
            body(json!({"spec": {"engine": {"type": "mysql"}}})),
            422,
            "engine.type is immutable",
        ),
        (
            "cluster: patch shrinks storage".into(),
            "PATCH",
            format!("{clusters}/keep"),
            body(json!({"spec": {"storage": {"size": "1Gi"}}})),
            422,
            "storage.size cannot shrink",
        ),
        (
            "cluster: patch size as a word".into(),
            "PATCH",
            format!("{clusters}/keep"),
            body(json!({"spec": {"clusterSize": "three"}})),
            400,
            "clusterSize",
        ),
        (
            "cluster: list with a bad limit".into(),
            "GET",
            format!("{clusters}?limit=many"),
            None,
            400,
            "limit",
        ),
        (
            "cluster: list with a bad selector".into(),
            "GET",
            format!("{clusters}?labelSelector=a%20in%20(((("),
            None,
            400,
            "labelSelector",
        ),
        (
            "cluster: list in a bad namespace".into(),
            "GET",
            "/v1/namespaces/Bad_NS/databaseclusters".into(),
            None,
            400,
            "Bad_NS",
        ),
        (
            "cluster: credentials of a missing one".into(),
            "GET",
            format!("{clusters}/missing/credentials"),
            None,
            404,
            "missing",
        ),
        (
            "ops: scaling without replicas".into(),
            "POST",
            format!("/v1/namespaces/{ns}/opsrequests"),
            body(object(
                "OpsRequest",
                "r4",
                json!({"clusterRef": {"name": "keep"}, "type": "HorizontalScaling"}),
            )),
            422,
            "needs horizontalScaling",
        ),
        (
            "ops: not JSON".into(),
            "POST",
            format!("/v1/namespaces/{ns}/opsrequests"),
            Some("]".into()),
            400,
            "",
        ),
        (
            "claim: user name with a quote".into(),
            "POST",
            format!("/v1/namespaces/{ns}/databaseclaims"),
            body(object(
                "DatabaseClaim",
                "r5",
                json!({"type": "postgres", "databaseName": "app", "username": "a'b", "secretName": "s"}),
            )),
            422,
            "username",
        ),
        (
            "storage: s3 without bucket".into(),
            "POST",
            format!("/v1/namespaces/{ns}/backupstorages"),
            body(object(
                "BackupStorage",
                "r6",
                json!({"type": "s3", "credentialsSecretName": "c"}),
            )),
            422,
            "bucket is required",
        ),
        (
            "monitoring: pmm without its section".into(),
            "POST",
            format!("/v1/namespaces/{ns}/monitoringconfigs"),
            body(object(
                "MonitoringConfig",
                "r7",
                json!({"type": "pmm", "credentialsSecretName": "c"}),
            )),
            422,
            "type pmm needs the pmm section",
        ),
        (
            "engine operator: not JSON".into(),
            "PUT",
            format!("/v1/namespaces/{ns}/databaseengines/postgresql/operator"),
            Some("nope".into()),
            400,
            "",
        ),
        (
            "kubernetes cluster: kubeconfig not YAML".into(),
            "POST",
            "/v1/kubernetesclusters".into(),
            body(json!({"name": "remote", "kubeconfig": "::: not a kubeconfig"})),
            400,
            "kubeconfig",
        ),
        (
            "kubernetes cluster: get with a bad name".into(),
            "GET",
            "/v1/kubernetesclusters/Bad_Name".into(),
            None,
            400,
            "Bad_Name",
        ),
        (
            "kubernetes cluster: get a missing one".into(),
            "GET",
            "/v1/kubernetesclusters/missing/namespaces/default/databaseclusters".into(),
            None,
            404,
            "missing",
        ),
    ]
}

#[tokio::test]
async fn every_bad_input_is_refused_clearly_and_changes_nothing() {
    let admin = shared().client().await.unwrap();
    let ns = TestNamespace::create(&admin, "bad-inputs").await.unwrap();
    let seeded: String = seeds().iter().map(|s| format!("---\n{s}\n")).collect();
    let (ok, text) = kubectl(&["apply", "-n", &ns.name, "-f", "-"], Some(&seeded));
    assert!(ok, "the seeds are valid: {text}");
    let before = snapshot(&ns.name);
    assert_eq!(before.len(), seeds().len(), "{before:?}");
    let mut catalogue = Catalogue::default();

    for (what, bad, expect) in crd_cases() {
        let (ok, text) = kubectl(
            &["apply", "-n", &ns.name, "-f", "-"],
            Some(&bad.to_string()),
        );
        catalogue.check("kubectl apply", &what, !ok, &text, expect);
    }

    for (what, args, expect) in cli_cases() {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dbaasctl"))
            .env_remove("DBAAS_SERVER")
            .env_remove("DBAAS_TOKEN")
            .arg("--kubeconfig")
            .arg(shared().kubeconfig())
            .args(["-n", &ns.name])
            .args(&args)
            .output()
            .await
            .unwrap();
        let refused = matches!(out.status.code(), Some(1..=3));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        catalogue.check("dbaasctl", what, refused, &text, expect);
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = dbaas_server::start(
        kube::Config::from_custom_kubeconfig(
            Kubeconfig::read_from(shared().kubeconfig()).unwrap(),
            &KubeConfigOptions::default(),
        )
        .await
        .unwrap(),
        listener,
        &ServerConfig {
            namespace: ns.name.clone(),
            ..ServerConfig::plain_http()
        },
    )
    .unwrap();
    server.wait_synced(Duration::from_secs(30)).await.unwrap();
    let token = namespaced_user(
        &admin,
        &ns.name,
        "writer",
        json!([{"apiGroups": ["dbaas.io"], "resources": ["*"], "verbs": ["*"]}]),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let list = format!("/v1/namespaces/{}/databaseclusters", ns.name);
    let mut rest: Vec<(RestCase, Option<&str>)> = rest_cases(&ns.name)
        .into_iter()
        .map(|case| (case, Some(token.as_str())))
        .collect();
    for (what, bearer) in [
        ("list without a token", None),
        ("list with a token nobody issued", Some("not-a-token")),
    ] {
        rest.push(((what.into(), "GET", list.clone(), None, 401, ""), bearer));
    }
    for ((what, method, path, body, status, expect), bearer) in rest {
        let mut request = http.request(method.parse().unwrap(), format!("{}{path}", server.url()));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.unwrap();
        let got = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_default();
        catalogue.check(
            "REST",
            &format!("{what} ({method} {path}: {got}, expected {status})"),
            got == status && !message.is_empty(),
            &message,
            expect,
        );
    }

    eprintln!(
        "bad-input catalogue: {} refused clearly ({:?}); let through or unclear: {}",
        catalogue.total(),
        catalogue.refused,
        catalogue.let_through.len()
    );
    assert!(
        catalogue.let_through.is_empty(),
        "{}",
        catalogue.let_through.join("\n")
    );
    assert!(
        catalogue.total() >= 100,
        "only {} bad inputs",
        catalogue.total()
    );
    ns.delete().await.unwrap();
}
