//! `dbaasctl install` / `uninstall` end to end: the built binary against
//! the real control plane (its own, since this test deletes the CRDs).
//! No pod runs (the control plane has no nodes): what is checked is that
//! every object is there as generated, the CRDs are Established, a second
//! install changes nothing and uninstall removes what install made.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::process::Output;
use std::time::{Duration, Instant};

use dbaas_api::manifests::{self, InstallOptions};
use dbaas_cli::install::{Applier, FIELD_MANAGER, reference};
use dbaas_testkit::{TestNamespace, shared};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, ResourceExt};
use serde_json::Value;

const NAMESPACE: &str = "dbaas-install-e2e";
const IMAGE: &str = "registry.local/dbaas-operator:e2e";

async fn dbaasctl(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_dbaasctl"))
        .arg("--kubeconfig")
        .arg(shared().kubeconfig())
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

#[track_caller]
fn assert_ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Waits until none of `objects` exists (a Namespace takes the namespace
/// controller a moment).
async fn wait_all_gone(applier: &mut Applier, objects: &[Value]) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut left = Vec::new();
        for object in objects {
            if applier.get(object).await.unwrap().is_some() {
                left.push(reference(object));
            }
        }
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "still there: {left:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}

#[tokio::test]
async fn install_twice_then_uninstall() {
    let client = shared().client().await.unwrap();
    let mut applier = Applier::new(client.clone());
    let options = InstallOptions {
        namespace: NAMESPACE.into(),
        image: IMAGE.into(),
        ..InstallOptions::default()
    };
    let expected = manifests::install_objects(&options);

    let installed = assert_ok(&dbaasctl(&["-n", NAMESPACE, "install", "--image", IMAGE]).await);
    assert!(installed.contains("CRDs established"), "{installed}");
    for object in &expected {
        let live = applier
            .get(object)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{} was not created:\n{installed}", reference(object)));
        let managers: Vec<String> = live
            .managed_fields()
            .iter()
            .filter_map(|f| f.manager.clone())
            .collect();
        assert!(
            managers.iter().any(|m| m == FIELD_MANAGER),
            "{}: managers {managers:?}",
            reference(object)
        );
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in dbaas_api::crds::all() {
        let live = crds.get(&crd.name_any()).await.unwrap();
        assert!(established(&live), "{} is not Established", crd.name_any());
    }
    let deployment = manifests::find(&expected, "Deployment", "dbaas-operator").unwrap();
    let live = applier.get(deployment).await.unwrap().unwrap();
    assert_eq!(live.data["spec"]["replicas"], 2);
    assert_eq!(
        live.data["spec"]["template"]["spec"]["containers"][0]["image"],
        IMAGE
    );

    // A second install is a no-op: nothing's resourceVersion moves.
    let mut versions = Vec::new();
    for object in &expected {
        versions.push(
            applier
                .get(object)
                .await
                .unwrap()
                .unwrap()
                .resource_version(),
        );
    }
    assert_ok(&dbaasctl(&["-n", NAMESPACE, "install", "--image", IMAGE]).await);
    for (object, before) in expected.iter().zip(&versions) {
        let after = applier
            .get(object)
            .await
            .unwrap()
            .unwrap()
            .resource_version();
        assert_eq!(
            &after,
            before,
            "{} changed on re-install",
            reference(object)
        );
    }

    // Uninstall removes everything but the CRDs.
    let removed = assert_ok(&dbaasctl(&["-n", NAMESPACE, "uninstall"]).await);
    assert!(removed.contains("CRDs kept"), "{removed}");
    wait_all_gone(&mut applier, &expected).await;
    for crd in dbaas_api::crds::all() {
        assert!(crds.get_opt(&crd.name_any()).await.unwrap().is_some());
    }

    // Namespaced: Roles in the watched namespaces and none cluster-wide (the
    // ClusterRole of the install before goes); a shorter list prunes; and
    // uninstall finds the Roles wherever they are.
    assert_ok(&dbaasctl(&["-n", NAMESPACE, "install", "--image", IMAGE]).await);
    let first = TestNamespace::create(&client, "watched-a").await.unwrap();
    let second = TestNamespace::create(&client, "watched-b").await.unwrap();
    let both = format!("{},{},absent-{}", first.name, second.name, first.name);
    let output = assert_ok(
        &dbaasctl(&[
            "-n",
            NAMESPACE,
            "install",
            "--image",
            IMAGE,
            "--watch-namespace",
            &both,
        ])
        .await,
    );
    assert!(
        output.contains("clusterrole.rbac.authorization.k8s.io/dbaas-operator deleted"),
        "{output}"
    );
    assert!(
        output.contains(&format!("namespace absent-{} does not exist", first.name)),
        "{output}"
    );
    let cluster_role = manifests::find(&expected, "ClusterRole", "dbaas-operator").unwrap();
    assert!(applier.get(cluster_role).await.unwrap().is_none());
    let watched_rbac = |namespace: &str| -> Vec<Value> {
        ["Role", "RoleBinding"]
            .iter()
            .map(|kind| {
                serde_json::json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
                    "metadata": {"name": "dbaas-operator", "namespace": namespace},
                })
            })
            .collect()
    };
    for namespace in [&first.name, &second.name] {
        for object in watched_rbac(namespace) {
            assert!(applier.get(&object).await.unwrap().is_some(), "{object}");
        }
    }
    let output = assert_ok(
        &dbaasctl(&[
            "-n",
            NAMESPACE,
            "install",
            "--image",
            IMAGE,
            "--watch-namespace",
            &first.name,
        ])
        .await,
    );
    assert!(output.contains("no longer watched"), "{output}");
    wait_all_gone(&mut applier, &watched_rbac(&second.name)).await;
    assert_ok(&dbaasctl(&["-n", NAMESPACE, "uninstall"]).await);
    wait_all_gone(&mut applier, &watched_rbac(&first.name)).await;

    // Into a namespace someone else made: it is kept on uninstall.
    let theirs = TestNamespace::create(&client, "theirs").await.unwrap();
    let output = assert_ok(
        &dbaasctl(&[
            "-n",
            &theirs.name,
            "install",
            "--no-api-server",
            "--replicas",
            "1",
        ])
        .await,
    );
    assert!(output.contains("exists, kept as is"), "{output}");
    let other = InstallOptions {
        namespace: theirs.name.clone(),
        ..InstallOptions::default()
    };
    let objects = manifests::install_objects(&other);
    let server = manifests::find(&objects, "Deployment", "dbaas-server").unwrap();
    assert!(applier.get(server).await.unwrap().is_none());
    let operator = manifests::find(&objects, "Deployment", "dbaas-operator").unwrap();
    let live = applier.get(operator).await.unwrap().unwrap();
    assert_eq!(live.data["spec"]["replicas"], 1);
    let output = assert_ok(&dbaasctl(&["-n", &theirs.name, "uninstall", "--delete-crds"]).await);
    assert!(
        output.contains("not created by dbaasctl install, kept"),
        "{output}"
    );
    let namespace = manifests::find(&objects, "Namespace", &theirs.name).unwrap();
    let rest: Vec<Value> = objects
        .iter()
        .filter(|o| o["kind"] != "Namespace")
        .cloned()
        .collect();
    wait_all_gone(&mut applier, &rest).await;
    assert!(applier.get(namespace).await.unwrap().is_some());
    // --delete-crds took the CRDs.
    let crd_objects: Vec<Value> = dbaas_api::crds::all()
        .iter()
        .map(|crd| serde_json::to_value(crd).unwrap())
        .collect();
    wait_all_gone(&mut applier, &crd_objects).await;
}

#[tokio::test]
async fn dry_run_prints_without_a_cluster() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dbaasctl"))
        .args(["--kubeconfig", "/nonexistent", "install", "--dry-run"])
        .output()
        .await
        .unwrap();
    let yaml = assert_ok(&output);
    let objects = manifests::parse_documents(&yaml).unwrap();
    let expected = dbaas_cli::install::all_manifests(&InstallOptions::default()).unwrap();
    assert_eq!(objects, expected);
}
