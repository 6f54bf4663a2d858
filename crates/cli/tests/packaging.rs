//! The Helm chart and the OLM bundle against the real tools and the real
//! control plane: `helm lint` and `helm template` (helm is built into
//! hack/controlplane, as kubectl is), the rendered chart applied with
//! unknown fields refused and equal to what `dbaasctl install` applies, and
//! the bundle's ClusterServiceVersion stored by the real OLM CRD with
//! nothing pruned; every alm-example is accepted by our CRDs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use dbaas_api::manifests::{self, BUNDLE_DIR, CHART_DIR, InstallOptions};
use dbaas_cli::install::{Applier, reference};
use dbaas_testkit::{TestNamespace, shared};
use kube::api::{DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

/// This checkout (the chart, the bundle and the binary are taken from the
/// tree these tests were built from).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The control-plane binary, which embeds helm: built by
/// hack/controlplane/build.sh (a no-op when it is up to date).
fn controlplane_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(bin) = std::env::var_os("DBAAS_CONTROLPLANE_BIN") {
                return PathBuf::from(bin);
            }
            let built = Command::new("bash")
                .arg(repo().join("hack/controlplane/build.sh"))
                .status()
                .unwrap();
            assert!(built.success(), "hack/controlplane/build.sh failed");
            repo().join("target/controlplane/controlplane")
        })
        .clone()
}

fn chart() -> PathBuf {
    repo().join("deploy").join(CHART_DIR)
}

/// Runs `controlplane helm ARGS`; its stdout.
fn helm(args: &[&str]) -> String {
    let output = Command::new(controlplane_binary())
        .arg("helm")
        .args(args)
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("dbaas-helm-cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("dbaas-helm-config"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("dbaas-helm-data"),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "helm {args:?} failed:\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
async fn helm_lint_passes() {
    let chart = chart();
    let out = helm(&["lint", "--strict", chart.to_str().unwrap()]);
    assert!(out.contains("0 chart(s) failed"), "{out}");
    // The knobs other than the defaults lint too.
    helm(&[
        "lint",
        "--strict",
        chart.to_str().unwrap(),
        "--set",
        "apiServer.enabled=false,watchNamespaces={team,shop},operator.leaderElection=false",
    ]);
}

#[tokio::test]
async fn values_schema_refuses_misspelt_and_mistyped_values() {
    let chart = chart();
    for (set, complaint) in [
        ("operator.replica=3", "additional properties 'replica'"),
        ("operator.replicas=abc", "want integer"),
        (
            "watchnamespace=team",
            "additional properties 'watchnamespace'",
        ),
        ("watchNamespaces={Team_A}", "does not match pattern"),
        ("watchNamespaces={team,team}", "items at"),
    ] {
        let output = Command::new(controlplane_binary())
            .args([
                "helm",
                "template",
                "dbaas",
                chart.to_str().unwrap(),
                "--set",
                set,
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{set} was accepted");
        assert!(stderr.contains(complaint), "{set}: {stderr}");
    }
}

/// `helm template` of the chart into `namespace` with `set`, without the
/// CRDs (`--include-crds` is checked apart).
fn template(namespace: &str, set: &str) -> Vec<Value> {
    let chart = chart();
    let mut args = vec![
        "template",
        "dbaas",
        chart.to_str().unwrap(),
        "--namespace",
        namespace,
    ];
    if !set.is_empty() {
        args.extend(["--set", set]);
    }
    sorted(manifests::parse_documents(&helm(&args)).unwrap())
}

/// Helm orders objects by kind; compare in one order.
fn sorted(mut objects: Vec<Value>) -> Vec<Value> {
    objects.sort_by_key(reference);
    objects
}

#[tokio::test]
async fn helm_template_equals_dbaasctl_install_and_applies() {
    let client = shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, "helm").await.unwrap();

    // Defaults: exactly what `dbaasctl install -n NS` applies (its Namespace aside).
    let rendered = template(&ns.name, "");
    let install: Vec<Value> = sorted(
        manifests::install_objects(&InstallOptions {
            namespace: ns.name.clone(),
            ..InstallOptions::default()
        })
        .into_iter()
        .filter(|o| o["kind"] != "Namespace")
        .collect(),
    );
    pretty_assertions::assert_eq!(rendered, install);

    // Every knob reaches the objects.
    let custom = template(
        &ns.name,
        "image.repository=registry.local/dbaas,image.tag=dev,watchNamespaces={team,shop},\
         operator.replicas=3,operator.leaderElection=false,apiServer.enabled=false,\
         operator.resources.limits.memory=1Gi",
    );
    let expected: Vec<Value> = manifests::install_objects(&InstallOptions {
        namespace: ns.name.clone(),
        image: "registry.local/dbaas:dev".into(),
        watch_namespaces: vec!["team".into(), "shop".into()],
        // `helm template` knows no OLM API: no CatalogSource Roles.
        olm_catalog_roles: false,
        operator_replicas: 3,
        leader_election: false,
        api_server: false,
    })
    .into_iter()
    .filter(|o| o["kind"] != "Namespace")
    .map(|mut o| {
        if o["kind"] == "Deployment" {
            o["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] =
                json!("1Gi");
        }
        o
    })
    .collect();
    pretty_assertions::assert_eq!(custom, sorted(expected));

    // The API server's TLS Secret, and cert-manager making it when asked.
    let with_cert_manager = template(
        &ns.name,
        "apiServer.tls.secretName=my-tls,apiServer.tls.certManager.enabled=true,\
         apiServer.tls.certManager.issuerRef.name=ca,apiServer.tls.certManager.issuerRef.kind=ClusterIssuer",
    );
    let certificate = with_cert_manager
        .iter()
        .find(|o| o["kind"] == "Certificate")
        .expect("a Certificate");
    assert_eq!(certificate["spec"]["secretName"], "my-tls");
    assert_eq!(
        certificate["spec"]["issuerRef"],
        json!({"name": "ca", "kind": "ClusterIssuer", "group": "cert-manager.io"})
    );
    assert!(
        certificate["spec"]["dnsNames"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("dbaas-server.{}.svc", ns.name)))
    );
    let server = with_cert_manager
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "dbaas-server")
        .expect("the server's Deployment");
    assert_eq!(
        server["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"],
        "my-tls"
    );
    assert!(!rendered.iter().any(|o| o["kind"] == "Certificate"));

    // Applied to the real API server, unknown fields refused.
    let mut applier = Applier::new(client.clone());
    for object in &rendered {
        applier
            .apply(object)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", reference(object)));
        assert!(applier.get(object).await.unwrap().is_some());
    }
    for object in rendered.iter().rev() {
        applier.delete(object).await.unwrap();
    }

    // `helm install` itself against the control plane (the control plane
    // installed the CRDs already), then `helm uninstall`.
    let kubeconfig = shared().kubeconfig().to_str().unwrap().to_owned();
    let chart = chart();
    let chart = chart.to_str().unwrap();
    let out = helm(&[
        "install",
        "dbaas",
        chart,
        "--skip-crds",
        "-n",
        &ns.name,
        "--kubeconfig",
        &kubeconfig,
    ]);
    assert!(out.contains("STATUS: deployed"), "{out}");
    for object in &rendered {
        let live = applier.get(object).await.unwrap();
        let release = live
            .as_ref()
            .and_then(|o| o.metadata.annotations.as_ref())
            .and_then(|a| a.get("meta.helm.sh/release-name").cloned());
        assert_eq!(release.as_deref(), Some("dbaas"), "{}", reference(object));
    }
    helm(&[
        "uninstall",
        "dbaas",
        "-n",
        &ns.name,
        "--kubeconfig",
        &kubeconfig,
    ]);
    for object in &rendered {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while applier.get(object).await.unwrap().is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "{} stayed",
                reference(object)
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    // --include-crds renders exactly our CRDs.
    let with_crds =
        manifests::parse_documents(&helm(&["template", "dbaas", chart, "--include-crds"])).unwrap();
    let crds: Vec<&Value> = with_crds
        .iter()
        .filter(|o| o["kind"] == "CustomResourceDefinition")
        .collect();
    let ours: Vec<Value> = dbaas_api::crds::all()
        .iter()
        .map(|c| serde_json::to_value(c).unwrap())
        .collect();
    assert_eq!(crds.len(), ours.len());
    for crd in ours {
        assert!(
            crds.contains(&&crd),
            "{} missing from the chart",
            reference(&crd)
        );
    }
}

/// Collects the fields of `sent` that `stored` lacks or holds otherwise.
fn missing_fields(sent: &Value, stored: &Value, path: &str, out: &mut Vec<String>) {
    match (sent, stored) {
        (Value::Object(sent), Value::Object(stored)) => {
            for (key, value) in sent {
                match stored.get(key) {
                    Some(found) => missing_fields(value, found, &format!("{path}.{key}"), out),
                    None => out.push(format!("{path}.{key}")),
                }
            }
        }
        (Value::Array(sent), Value::Array(stored)) if sent.len() == stored.len() => {
            for (index, (a, b)) in sent.iter().zip(stored).enumerate() {
                missing_fields(a, b, &format!("{path}[{index}]"), out);
            }
        }
        _ if sent == stored => {}
        _ => out.push(format!("{path}: sent {sent}, stored {stored}")),
    }
}

fn bundle_file(name: &str) -> Value {
    let path = repo().join("deploy").join(BUNDLE_DIR).join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    manifests::parse_documents(&text).unwrap().remove(0)
}

/// Server-side apply of `object` into `namespace` with unknown fields
/// refused (Strict), so that a field the schema would prune is an error.
async fn try_create_strict(
    client: &Client,
    namespace: &str,
    object: &Value,
    dry_run: bool,
) -> Result<Value, kube::Error> {
    let api_version = object["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = object["kind"].as_str().unwrap();
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, _) = kube::discovery::pinned_kind(client, &gvk).await?;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let object: DynamicObject = serde_json::from_value(object.clone()).unwrap();
    let params = PatchParams {
        dry_run,
        ..PatchParams::apply("packaging-test").validation_strict()
    };
    let created = api
        .patch(
            &object.metadata.name.clone().unwrap(),
            &params,
            &Patch::Apply(&object),
        )
        .await?;
    Ok(serde_json::to_value(created).unwrap())
}

async fn create_strict(client: &Client, namespace: &str, object: &Value, dry_run: bool) -> Value {
    try_create_strict(client, namespace, object, dry_run)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", reference(object)))
}

#[tokio::test]
async fn the_bundle_is_accepted_by_the_olm_crds_with_nothing_pruned() {
    let client = shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, "olm").await.unwrap();
    let csv = bundle_file("manifests/dbaas-operator.clusterserviceversion.yaml");
    let stored = create_strict(&client, &ns.name, &csv, false).await;
    let mut pruned = Vec::new();
    missing_fields(&csv["spec"], &stored["spec"], "spec", &mut pruned);
    missing_fields(
        &csv["metadata"]["annotations"],
        &stored["metadata"]["annotations"],
        "metadata.annotations",
        &mut pruned,
    );
    assert!(pruned.is_empty(), "the CSV lost fields: {pruned:#?}");
    // The check bites: a field the OLM schema does not know is refused.
    let mut unknown = csv.clone();
    unknown["spec"]["install"]["spec"]["deployments"][0]["replicaCount"] = json!(2);
    let refused = try_create_strict(&client, &ns.name, &unknown, true).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("replicaCount")),
        "{refused:?}"
    );

    // Its install strategy is the same Deployment spec and RBAC as the rest.
    let deployments = &stored["spec"]["install"]["spec"]["deployments"];
    let operator = manifests::find(
        &manifests::install_objects(&InstallOptions::default()),
        "Deployment",
        "dbaas-operator",
    )
    .unwrap()
    .clone();
    let mut strategy_spec = deployments[0]["spec"].clone();
    let mut install_spec = operator["spec"].clone();
    // Only the watch namespace differs: OLM's OperatorGroup gives it.
    for spec in [&mut strategy_spec, &mut install_spec] {
        let env = spec["template"]["spec"]["containers"][0]["env"]
            .as_array_mut()
            .unwrap();
        env.retain(|e| e["name"] != "DBAAS_WATCH_NAMESPACE");
    }
    assert_eq!(strategy_spec, install_spec);
    // The operator's rules are namespaced: OLM grants them in each target
    // namespace, or cluster-wide for AllNamespaces.
    let install = &stored["spec"]["install"]["spec"];
    assert_eq!(
        install["permissions"][0]["rules"],
        manifests::operator_rules()
    );
    let cluster_permissions = &install["clusterPermissions"];
    assert_eq!(
        cluster_permissions[0]["rules"][0]["resources"],
        json!(["catalogsources"])
    );
    assert_eq!(cluster_permissions[1]["rules"], manifests::server_rules());

    // The bundle's Services apply as they are.
    for file in [
        "manifests/dbaas-operator-metrics_v1_service.yaml",
        "manifests/dbaas-server_v1_service.yaml",
    ] {
        create_strict(&client, &ns.name, &bundle_file(file), false).await;
    }

    // Every alm-example passes our CRDs' schemas and rules (server-side dry run).
    let examples: Vec<Value> = serde_json::from_str(
        stored["metadata"]["annotations"]["alm-examples"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(examples.len() >= 3, "{examples:?}");
    for example in &examples {
        create_strict(&client, &ns.name, example, true).await;
    }
    // Every owned CRD is one of ours, and all of ours are owned.
    let owned: Vec<&str> = stored["spec"]["customresourcedefinitions"]["owned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    let ours: Vec<String> = dbaas_api::crds::all()
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(owned, ours);
}
