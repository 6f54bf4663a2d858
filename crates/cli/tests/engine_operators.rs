//! `dbaasctl engines install` / `approve-upgrade` end to end: the built
//! binary against the real control plane. No operator runs; the test writes
//! the DatabaseEngine status the operator would (an upgrade OLM offers).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::process::Output;

use dbaas_api::engine::{DatabaseEngine, OlmInstallMode};
use dbaas_testkit::{TestNamespace, shared};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

async fn dbaasctl(namespace: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_dbaasctl"))
        .arg("--kubeconfig")
        .arg(shared().kubeconfig())
        .args(["-n", namespace])
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn install_list_and_approve_an_engine_operator() {
    let client = shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, "cli-olm").await.unwrap();
    let engines: Api<DatabaseEngine> = ns.api();

    // Approving before anything is installed through OLM: not found (3).
    let out = dbaasctl(
        &ns.name,
        &["engines", "approve-upgrade", "postgresql", "1.28.0"],
    )
    .await;
    assert_exit(&out, 3);

    let install = [
        "engines",
        "install",
        "postgresql",
        "--catalog",
        "operatorhubio",
        "--package",
        "cloudnative-pg",
        "--channel",
        "stable-v1",
    ];
    let out = dbaasctl(&ns.name, &install).await;
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("databaseengine/postgresql"),
        "{}",
        stdout(&out)
    );
    let engine = engines.get("postgresql").await.unwrap();
    let olm = engine.spec.operator.unwrap().olm;
    assert_eq!(
        (
            olm.catalog_source.as_str(),
            olm.catalog_source_namespace.as_str(),
            olm.package.as_str(),
            olm.channel.as_str(),
            olm.install_mode
        ),
        (
            "operatorhubio",
            "olm",
            "cloudnative-pg",
            "stable-v1",
            OlmInstallMode::OwnNamespace
        )
    );

    // The API server's validation reaches the user: a bad catalog name.
    let mut bad = install;
    bad[4] = "Not_A_Name";
    let out = dbaasctl(&ns.name, &bad).await;
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("catalogSource"), "{}", stderr(&out));

    // The operator reports an upgrade: `engines` shows it.
    engines
        .patch_status(
            "postgresql",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "status": "Installed", "operatorVersion": "1.27.1", "installSource": "Olm",
                "upgradeAvailable": {"version": "1.28.0", "csv": "cloudnative-pg.v1.28.0",
                                     "installPlan": "install-abc"}}})),
        )
        .await
        .unwrap();
    let out = dbaasctl(&ns.name, &["engines"]).await;
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("1.27.1(upgrade:1.28.0)"),
        "{}",
        stdout(&out)
    );
    let out = dbaasctl(
        &ns.name,
        &["engines", "approve-upgrade", "postgresql", "1.28.0"],
    )
    .await;
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("approved"), "{}", stdout(&out));
    let approved = engines
        .get("postgresql")
        .await
        .unwrap()
        .spec
        .operator
        .unwrap();
    assert_eq!(approved.approved_version.as_deref(), Some("1.28.0"));

    // An engine installed some other way: nothing to approve (1).
    let manual: DatabaseEngine = serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseEngine",
        "metadata": {"name": "mysql"}, "spec": {"type": "mysql"},
    }))
    .unwrap();
    engines
        .create(&PostParams::default(), &manual)
        .await
        .unwrap();
    let out = dbaasctl(&ns.name, &["engines", "approve-upgrade", "mysql", "1.0.0"]).await;
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("through OLM"), "{}", stderr(&out));
    ns.delete().await.unwrap();
}
