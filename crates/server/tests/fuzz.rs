//! The REST API fuzzed with schemathesis against the committed OpenAPI
//! document (deploy/openapi.json), on the real control plane.
//!
//! - A caller with cluster-admin, so generated requests reach the logic
//!   behind authorization. Every kind has seeded objects (`fuzz`, and
//!   `fuzz-doomed` for the deletes), a DatabaseEngine `postgresql`, the
//!   credentials Secret, and two registered clusters (`remote`, and `spare`
//!   for rename and unregister; both the same control plane). Generated path
//!   parameters are these names half of the time (schemathesis
//!   dictionaries), so reads, writes and deletes run on objects that exist.
//! - A bearer token that is not valid: every operation that needs one must
//!   answer 401, as the document says.
//!
//! Both runs check that no response is a 5xx and that every status code,
//! content type and body conforms to the document.
//!
//! schemathesis comes from `$DBAAS_SCHEMATHESIS` (hack/test.sh sets it from
//! hack/ensure-fuzz-tools.sh), else this test runs hack/ensure-fuzz-tools.sh
//! itself. `DBAAS_FUZZ_MAX_EXAMPLES` and `DBAAS_FUZZ_SEED` change the
//! number of cases per operation and the seed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use dbaas_api::DatabaseEngine;
use dbaas_server::{RegistrationPolicy, RunningServer, ServerConfig, Transport};
use dbaas_testkit::TestNamespace;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(20);
/// Cases per operation and phase with a valid token.
const MAX_EXAMPLES: u32 = 10;
/// Cases per operation and phase with tokens that are not valid.
const BAD_TOKEN_EXAMPLES: u32 = 10;
const SEED: u64 = 16;

/// Names the generated path parameters take half of the time.
const SEEDED: &str = "fuzz";
const DOOMED: &str = "fuzz-doomed";
const REMOTE: &str = "remote";
const SPARE: &str = "spare";

/// Every kind with its plural and a valid spec (`{cluster}` stands for the
/// seeded DatabaseCluster's name).
fn seeds() -> Vec<(&'static str, Value)> {
    vec![
        (
            "databaseclusters",
            json!({"engine": {"type": "postgresql"}, "storage": {"size": "1Gi"},
                   "credentialsSecretName": "fuzz-credentials"}),
        ),
        (
            "databaseclustertemplates",
            json!({"engineType": "postgresql"}),
        ),
        (
            "backupscheduletemplates",
            json!({"schedules": [{"name": "daily", "schedule": "0 2 * * *", "storageName": SEEDED}]}),
        ),
        (
            "backupstorages",
            json!({"type": "s3", "bucket": "fuzz", "region": "eu-west-1",
                   "credentialsSecretName": "fuzz-s3"}),
        ),
        ("monitoringconfigs", json!({"type": "prometheus"})),
        (
            "databaseclaims",
            json!({"databaseName": "fuzz", "secretName": "fuzz-claim", "type": "postgres",
                   "username": "fuzz"}),
        ),
        (
            "opsrequests",
            json!({"clusterRef": {"name": SEEDED}, "type": "Restart"}),
        ),
        (
            "databasebackups",
            json!({"clusterName": SEEDED, "storageName": SEEDED}),
        ),
    ]
}

struct Fuzzed {
    server: RunningServer,
    ns: TestNamespace,
    token: String,
}

async fn start() -> Fuzzed {
    let cp = dbaas_testkit::shared();
    let admin = cp.client().await.expect("admin client");
    let ns = TestNamespace::create(&admin, "fuzz").await.unwrap();
    let kube_config = cp.config().await.expect("kube config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ServerConfig {
        // Registrations live in the test's namespace; they point at this
        // same control plane on loopback.
        namespace: ns.name.clone(),
        registration: RegistrationPolicy {
            allow_insecure_urls: true,
            max_registrations: 8,
            ..RegistrationPolicy::default()
        },
        transport: Transport::PlainHttp,
        // A fuzzed `watch=true` ends within a second instead of holding a
        // request for the default five minutes.
        limits: dbaas_server::Limits {
            watch_lifetime: Duration::from_secs(1),
            ..dbaas_server::Limits::default()
        },
        ..ServerConfig::default()
    };
    let server = dbaas_server::start(kube_config, listener, &config).expect("server starts");
    server.wait_synced(TIMEOUT).await.expect("caches sync");
    let token = cluster_admin(&admin, &ns.name).await;
    let fuzzed = Fuzzed { server, ns, token };
    seed(&fuzzed, &admin, cp.kubeconfig()).await;
    fuzzed
}

/// A ServiceAccount of `ns` bound to cluster-admin; returns its token.
async fn cluster_admin(admin: &Client, ns: &str) -> String {
    let bindings: Api<ClusterRoleBinding> = Api::all(admin.clone());
    let binding = serde_json::from_value(json!({
        "metadata": {"name": format!("{ns}-fuzzer")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "fuzzer", "namespace": ns}],
    }))
    .unwrap();
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    dbaas_testkit::accounts::service_account_token(admin, ns, "fuzzer")
        .await
        .unwrap()
}

/// Creates the seeded objects through the API (so the happy paths are
/// known to work before the fuzzer starts).
async fn seed(f: &Fuzzed, admin: &Client, kubeconfig: &Path) {
    let http = reqwest::Client::new();
    let ns = &f.ns.name;
    let post = |path: String, body: Value| {
        let request = http
            .post(format!("{}{path}", f.server.url()))
            .bearer_auth(&f.token)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            assert_eq!(status.as_u16(), 201, "seeding POST {path}: {text}");
        }
    };
    for (plural, spec) in seeds() {
        for name in [SEEDED, DOOMED] {
            post(
                format!("/v1/namespaces/{ns}/{plural}"),
                json!({"metadata": {"name": name, "labels": {"app": "fuzz"}}, "spec": spec}),
            )
            .await;
        }
    }
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), ns);
    let secret = serde_json::from_value(json!({
        "metadata": {"name": "fuzz-credentials"},
        "stringData": {"username": "app", "password": "fuzz-password"},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let engines: Api<DatabaseEngine> = Api::namespaced(admin.clone(), ns);
    let engine = serde_json::from_value(json!({
        "metadata": {"name": "postgresql"},
        "spec": {"type": "postgresql", "operator": {"olm": {
            "catalogSource": "operatorhubio-catalog", "catalogSourceNamespace": "olm",
            "channel": "stable", "package": "cloudnative-pg"}}},
    }))
    .unwrap();
    engines
        .create(&PostParams::default(), &engine)
        .await
        .unwrap();
    let kubeconfig =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(kubeconfig).unwrap());
    for name in [REMOTE, SPARE] {
        post(
            "/v1/kubernetesclusters".into(),
            json!({"name": name, "kubeconfig": kubeconfig}),
        )
        .await;
    }
}

/// The `st` command: `$DBAAS_SCHEMATHESIS`, else what
/// hack/ensure-fuzz-tools.sh installs.
fn schemathesis() -> PathBuf {
    if let Some(st) = std::env::var_os("DBAAS_SCHEMATHESIS") {
        return PathBuf::from(st);
    }
    let script = dbaas_testkit::repo_root().join("hack/ensure-fuzz-tools.sh");
    let out = Command::new("bash").arg(&script).output().unwrap_or_else(|e| {
        panic!(
            "running {}: {e}; install schemathesis with `export DBAAS_SCHEMATHESIS=$(bash hack/ensure-fuzz-tools.sh)`",
            script.display()
        )
    });
    assert!(
        out.status.success(),
        "{} failed (it installs schemathesis from PyPI into ~/.cache/dbaas-operator; needs python3 with venv):\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What a schemathesis run reported.
struct Outcome {
    success: bool,
    output: String,
    operations: u64,
    cases: u64,
    elapsed: Duration,
}

/// Runs `st run deploy/openapi.json` against `url` with `args`.
async fn run_schemathesis(
    name: &str,
    url: &str,
    dir: &Path,
    config: &str,
    args: &[String],
) -> Outcome {
    let st = schemathesis();
    let config_path = dir.join(format!("{name}.toml"));
    std::fs::write(&config_path, config).unwrap();
    let mut command = Command::new(&st);
    command
        .arg("--config-file")
        .arg(&config_path)
        .arg("run")
        .arg(dbaas_testkit::repo_root().join("deploy/openapi.json"))
        .arg("--url")
        .arg(url)
        .args(args)
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(dir);
    let display = format!("{command:?}");
    println!("fuzz {name}: {display}");
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("running {}: {e}", st.display()));
    let elapsed = started.elapsed();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (operations, cases) = summary(&output);
    // The warnings and the summary, also when the run passes.
    if let Some(start) = output
        .find("=== WARNINGS ===")
        .or_else(|| output.find("=== SUMMARY ==="))
    {
        let start = output[..start].rfind('\n').map_or(0, |i| i + 1);
        println!("{}", &output[start..]);
    }
    println!(
        "fuzz {name}: {operations} operations, {cases} cases, {:.0?}, exit {}",
        elapsed, out.status
    );
    Outcome {
        success: out.status.success(),
        output,
        operations,
        cases,
        elapsed,
    }
}

/// (operations tested, test cases generated) from the summary of `st run`.
fn summary(output: &str) -> (u64, u64) {
    let mut operations = 0;
    let mut cases = 0;
    let mut lines = output.lines().map(str::trim);
    while let Some(line) = lines.next() {
        // "API Operations:" block: "Selected: 75/75", "Tested: 75".
        if let Some(rest) = line.strip_prefix("Tested:") {
            operations = first_number(rest);
        }
        // "Test cases:" then "18328 generated, 18328 passed".
        if line == "Test cases:" {
            cases = lines.next().map(first_number).unwrap_or(0);
        }
    }
    (operations, cases)
}

fn first_number(text: &str) -> u64 {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dbaas-fuzz-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection";

/// The schemathesis configuration of the valid-token run: path parameters
/// take the seeded names half of the time.
fn seeded_config(ns: &str) -> String {
    format!(
        r#"
[dictionaries.namespaces]
values = ["{ns}"]
[dictionaries.names]
values = ["{SEEDED}", "postgresql"]
[dictionaries.doomed]
values = ["{DOOMED}"]
[dictionaries.clusters]
values = ["local", "{REMOTE}"]
[dictionaries.spare]
values = ["{SPARE}"]

[parameters]
"path.namespace" = {{ dictionary = "namespaces", probability = 0.5 }}
"path.name" = {{ dictionary = "names", probability = 0.5 }}
"path.cluster" = {{ dictionary = "clusters", probability = 0.5 }}

[[operations]]
include-operation-id = ["renameKubernetesCluster", "unregisterKubernetesCluster"]
parameters = {{ "path.namespace" = {{ dictionary = "namespaces", probability = 0.5 }}, "path.cluster" = {{ dictionary = "spare", probability = 0.5 }} }}

[[operations]]
include-method = "DELETE"
parameters = {{ "path.namespace" = {{ dictionary = "namespaces", probability = 0.5 }}, "path.name" = {{ dictionary = "doomed", probability = 0.5 }}, "path.cluster" = {{ dictionary = "clusters", probability = 0.5 }} }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors_and_no_nonconformance() {
    let f = start().await;
    let url = f.server.url();
    let max_examples: u32 = env_or("DBAAS_FUZZ_MAX_EXAMPLES", MAX_EXAMPLES);
    let seed: u64 = env_or("DBAAS_FUZZ_SEED", SEED);
    let common = |examples: u32| -> Vec<String> {
        vec![
            "--checks".into(),
            CHECKS.into(),
            "--max-examples".into(),
            examples.to_string(),
            "--seed".into(),
            seed.to_string(),
            // One worker: with more, Python 3.11's ast module (parsing
            // for hypothesis' reprs) races and fails the run.
            "--workers".into(),
            "1".into(),
            "--phases".into(),
            "examples,coverage,fuzzing".into(),
            "--suppress-health-check".into(),
            "all".into(),
            "--request-timeout".into(),
            "30".into(),
        ]
    };

    let dir = scratch_dir("valid");
    let mut args = common(max_examples);
    args.extend([
        "--header".into(),
        format!("Authorization: Bearer {}", f.token),
    ]);
    let valid =
        run_schemathesis("valid-token", &url, &dir, &seeded_config(&f.ns.name), &args).await;

    let dir = scratch_dir("bad");
    let har = dir.join("bad-token.har");
    let mut args = common(env_or("DBAAS_FUZZ_BAD_TOKEN_EXAMPLES", BAD_TOKEN_EXAMPLES));
    // Generated cases only: the coverage phase's thousands of variants
    // would all meet the same authentication first.
    let phases = args.iter().position(|a| a == "--phases").unwrap() + 1;
    args[phases] = "examples,fuzzing".into();
    args.extend([
        "--header".into(),
        "Authorization: Bearer not-a-valid-token".into(),
        "--report".into(),
        "har".into(),
        "--report-har-path".into(),
        har.display().to_string(),
    ]);
    let bad = run_schemathesis("bad-token", &url, &dir, "", &args).await;

    println!(
        "fuzz: valid token: {} operations, {} cases in {:.0?}; bad token: {} operations, {} cases in {:.0?}",
        valid.operations, valid.cases, valid.elapsed, bad.operations, bad.cases, bad.elapsed
    );
    assert!(
        valid.success,
        "schemathesis with a valid token failed:\n{}",
        valid.output
    );
    assert!(
        bad.success,
        "schemathesis with a bad token failed:\n{}",
        bad.output
    );
    let document = dbaas_server::openapi::document();
    assert_eq!(
        valid.operations,
        operation_count(document),
        "every operation is fuzzed:\n{}",
        valid.output
    );
    assert_eq!(bad.operations, operation_count(document), "{}", bad.output);
    assert!(valid.cases > 0 && bad.cases > 0);
    let not_401 = not_unauthenticated(&har, document);
    assert!(
        not_401.is_empty(),
        "with a token that is not valid, these answered other than 401:\n{}",
        not_401.join("\n")
    );
    // Kept when the test fails, to replay from.
    for dir in [scratch_dir("valid"), scratch_dir("bad")] {
        std::fs::remove_dir_all(dir).ok();
    }
}

fn operation_count(document: &Value) -> u64 {
    document["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len() as u64)
        .sum()
}

/// The requests of the HAR file `har` to operations that need a token
/// whose answer was not 401.
fn not_unauthenticated(har: &Path, document: &Value) -> Vec<String> {
    let har: Value = serde_json::from_slice(
        &std::fs::read(har).unwrap_or_else(|e| panic!("{}: {e}", har.display())),
    )
    .unwrap();
    let open: Vec<&str> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, item)| item["get"]["security"] == json!([{}]))
        .map(|(path, _)| path.as_str())
        .collect();
    let entries = har["log"]["entries"].as_array().unwrap();
    assert!(!entries.is_empty(), "the HAR file has no requests");
    entries
        .iter()
        .filter(|entry| {
            let url = entry["request"]["url"].as_str().unwrap_or_default();
            let path = url
                .split_once("://")
                .map_or(url, |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
            let path = path.split('?').next().unwrap_or_default();
            !open.contains(&path) && entry["response"]["status"] != 401
        })
        .map(|entry| {
            format!(
                "{} {} -> {}",
                entry["request"]["method"], entry["request"]["url"], entry["response"]["status"]
            )
        })
        .collect()
}
