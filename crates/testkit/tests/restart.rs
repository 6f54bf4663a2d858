//! A control plane restarted on its data directory keeps its objects and its
//! PKI, and a forwarder in front of it keeps one address across the restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dbaas_testkit::ControlPlane;
use dbaas_testkit::forward::Forwarder;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_on_the_same_data_dir_keeps_objects_behind_a_stable_address() {
    let dir = std::env::temp_dir().join(format!(
        "dbaas-testkit-restart-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    let start = |cleanup: bool| {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || ControlPlane::start_in(&dir, &[], cleanup))
    };
    let first = start(false).await.unwrap().unwrap();
    assert_eq!(first.data_dir(), dir.as_path());
    let forwarder = Forwarder::start(Some(first.api_addr().unwrap()))
        .await
        .unwrap();
    let client = first.client_via(&forwarder.https_url()).await.unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let map: ConfigMap =
        serde_json::from_value(serde_json::json!({ "metadata": { "name": "kept" } })).unwrap();
    maps.create(&PostParams::default(), &map).await.unwrap();

    forwarder.switch_to(None);
    tokio::task::spawn_blocking(move || first.stop())
        .await
        .unwrap()
        .unwrap();
    assert!(dir.join("pki").is_dir(), "kept without cleanup");
    assert!(
        maps.get_opt("kept").await.is_err(),
        "nothing answers while it is down"
    );

    let second = start(true).await.unwrap().unwrap();
    forwarder.switch_to(Some(second.api_addr().unwrap()));
    // The same client (same CA, same client certificate, same URL) works again.
    assert!(maps.get_opt("kept").await.unwrap().is_some());
    tokio::task::spawn_blocking(move || second.stop())
        .await
        .unwrap()
        .unwrap();
    assert!(!dir.exists(), "removed with cleanup");
}
