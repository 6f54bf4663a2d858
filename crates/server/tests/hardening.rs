//! Hardening of the server: HTTPS with a certificate reloaded from its
//! files, no start without a transport, token audiences, and a paced path
//! for bearer tokens the server has not seen (random tokens cost at most
//! the bucket's number of TokenReviews; the rest get 429) that does not
//! hold up tokens found valid lately; past the connection cap, clients wait
//! to be accepted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::sync::Arc;
use std::time::Duration;

use dbaas_server::limits::Limits;
use dbaas_server::{AuthConfig, RunningServer, ServerConfig, TlsFiles, Transport};
use dbaas_testkit::TestNamespace;
use dbaas_testkit::accounts::namespaced_user;
use dbaas_testkit::tls::TestCa;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::PostParams;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn admin_config() -> kube::Config {
    dbaas_testkit::shared().config().await.unwrap()
}

async fn start(config: ServerConfig) -> RunningServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = dbaas_server::start(admin_config().await, listener, &config).unwrap();
    server
        .wait_synced(Duration::from_secs(30))
        .await
        .expect("caches sync");
    server
}

/// One TLS connection trusting `ca`: the certificate the server presented,
/// and the status line of `GET /healthz`.
async fn fetch_over_tls(addr: std::net::SocketAddr, ca: &std::path::Path) -> (Vec<u8>, String) {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .expect("TLS handshake verifies against the CA");
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    (
        presented,
        answer.lines().next().unwrap_or_default().to_owned(),
    )
}

/// The HTTP status of listing `namespace`'s DatabaseClusters on `server`
/// with a token.
fn list_status(
    server: &RunningServer,
    namespace: &str,
) -> impl Fn(String) -> std::pin::Pin<Box<dyn std::future::Future<Output = u16> + Send>> + use<> {
    let url = format!(
        "{}/v1/namespaces/{namespace}/databaseclusters",
        server.url()
    );
    let http = reqwest::Client::new();
    move |token: String| {
        let request = http.get(&url).bearer_auth(token);
        Box::pin(async move { request.send().await.unwrap().status().as_u16() })
    }
}

fn der_of(pem: &std::path::Path) -> Vec<u8> {
    CertificateDer::from_pem_file(pem).unwrap().to_vec()
}

#[tokio::test]
async fn https_certificate_is_reloaded_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::create(dir.path()).unwrap();
    let first = ca.server_cert("first").unwrap();
    let second = ca.server_cert("second").unwrap();
    // The server reads fixed paths, as from a mounted Secret.
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::copy(&first.cert, &cert).unwrap();
    std::fs::copy(&first.key, &key).unwrap();
    let server = start(ServerConfig {
        transport: Transport::Tls(TlsFiles {
            reload_interval: Duration::from_millis(100),
            ..TlsFiles::new(&cert, &key)
        }),
        ..ServerConfig::default()
    })
    .await;
    assert!(server.url().starts_with("https://"), "{}", server.url());

    let (presented, status) = fetch_over_tls(server.addr, &ca.cert).await;
    assert_eq!(presented, der_of(&first.cert));
    assert_eq!(status, "HTTP/1.1 200 OK");

    // Plain HTTP on the HTTPS port gets no answer.
    let plain = reqwest::get(format!("http://{}/healthz", server.addr)).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // Swap the files (key first: a moment of mismatch keeps the old pair).
    std::fs::copy(&second.key, &key).unwrap();
    std::fs::copy(&second.cert, &cert).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (presented, status) = fetch_over_tls(server.addr, &ca.cert).await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        if presented == der_of(&second.cert) {
            break;
        }
        assert_eq!(presented, der_of(&first.cert));
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A broken pair is not taken: the last good one stays.
    std::fs::write(&cert, "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (presented, _) = fetch_over_tls(server.addr, &ca.cert).await;
    assert_eq!(presented, der_of(&second.cert));
}

#[tokio::test]
async fn no_transport_no_start() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
    let err = dbaas_server::start(config, listener, &ServerConfig::default())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("--insecure-plain-http"), "{err}");

    // The binary says so and exits non-zero.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dbaas-server"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("DBAAS_TLS_CERT_FILE")
        .env_remove("DBAAS_TLS_KEY_FILE")
        .env("RUST_BACKTRACE", "0")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--tls-cert-file") && stderr.contains("--insecure-plain-http"),
        "{stderr}"
    );
}

#[tokio::test]
async fn random_tokens_cost_at_most_the_bucket_and_get_429() {
    let admin = dbaas_testkit::shared().client().await.unwrap();
    let ns = TestNamespace::create(&admin, "srv-burst").await.unwrap();
    let token = namespaced_user(
        &admin,
        &ns.name,
        "reader",
        json!([{"apiGroups": ["dbaas.io"], "resources": ["databaseclusters"], "verbs": ["list"]}]),
    )
    .await
    .unwrap();
    const BURST: u32 = 5;
    let server = start(ServerConfig {
        auth: AuthConfig {
            cache_ttl: Duration::from_secs(300),
            // Practically no refill during the test.
            token_reviews_per_second: 0.001,
            token_review_burst: BURST,
            ..AuthConfig::default()
        },
        ..ServerConfig::plain_http()
    })
    .await;
    let url = format!(
        "{}/v1/namespaces/{}/databaseclusters",
        server.url(),
        ns.name
    );
    let http = reqwest::Client::new();
    // The valid token is reviewed once and cached.
    let ok = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(server.state.auth.token_reviews(), 1);

    let random: Vec<_> = (0..60)
        .map(|i| {
            let request = http
                .get(&url)
                .bearer_auth(format!("random-token-{i}-{}", std::process::id()));
            tokio::spawn(request.send())
        })
        .collect();
    // During the burst the cached token still works.
    let during = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(during.status(), 200);
    let (mut unauthenticated, mut paced) = (0, 0);
    for request in random {
        let answer = request.await.unwrap().unwrap();
        match answer.status().as_u16() {
            401 => unauthenticated += 1,
            429 => {
                let retry: u64 = answer.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(retry >= 1);
                let body: serde_json::Value = answer.json().await.unwrap();
                assert_eq!(body["reason"], "TooManyRequests");
                paced += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let reviews = server.state.auth.token_reviews();
    assert!(
        reviews <= u64::from(BURST),
        "{reviews} TokenReviews for a bucket of {BURST}"
    );
    assert_eq!(unauthenticated, reviews - 1);
    assert_eq!(paced, 60 - unauthenticated);
    let after = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(after.status(), 200);
    ns.delete().await.unwrap();
}

/// A flood of made-up tokens exhausts the bucket, yet a caller whose token
/// was valid lately (its cached answer expired since) is reviewed again
/// and served; new tokens still wait.
#[tokio::test]
async fn recently_valid_tokens_are_not_locked_out_by_random_tokens() {
    let admin = dbaas_testkit::shared().client().await.unwrap();
    let ns = TestNamespace::create(&admin, "srv-lockout").await.unwrap();
    let token = namespaced_user(
        &admin,
        &ns.name,
        "reader",
        json!([{"apiGroups": ["dbaas.io"], "resources": ["databaseclusters"], "verbs": ["list"]}]),
    )
    .await
    .unwrap();
    const BURST: u32 = 3;
    const CACHE_TTL: Duration = Duration::from_millis(500);
    let server = start(ServerConfig {
        auth: AuthConfig {
            cache_ttl: CACHE_TTL,
            token_reviews_per_second: 0.001,
            token_review_burst: BURST,
            ..AuthConfig::default()
        },
        ..ServerConfig::plain_http()
    })
    .await;
    let status = list_status(&server, &ns.name);
    assert_eq!(status(token.clone()).await, 200);
    assert_eq!(server.state.auth.token_reviews(), 1);
    // Random tokens take the rest of the bucket, then get 429.
    let pid = std::process::id();
    let mut answers = Vec::new();
    for i in 0..10 {
        answers.push(status(format!("random-lockout-{i}-{pid}")).await);
    }
    let expected: Vec<u16> = (0..10)
        .map(|i| if i + 1 < BURST { 401 } else { 429 })
        .collect();
    assert_eq!(answers, expected);
    let reviews = server.state.auth.token_reviews();
    assert_eq!(reviews, u64::from(BURST));

    // The valid token's cached answer expires: it is reviewed again (a
    // real TokenReview, so a revocation would be noticed) and served.
    tokio::time::sleep(CACHE_TTL * 3).await;
    assert_eq!(status(token.clone()).await, 200);
    assert_eq!(server.state.auth.token_reviews(), reviews + 1);
    // New random tokens still wait, and cost no TokenReview.
    assert_eq!(status(format!("random-lockout-late-{pid}")).await, 429);
    assert_eq!(server.state.auth.token_reviews(), reviews + 1);
    // And again after the next expiry.
    tokio::time::sleep(CACHE_TTL * 3).await;
    assert_eq!(status(token).await, 200);
    assert_eq!(server.state.auth.token_reviews(), reviews + 2);
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn tokens_must_be_for_the_configured_audience() {
    let admin = dbaas_testkit::shared().client().await.unwrap();
    let ns = TestNamespace::create(&admin, "srv-aud").await.unwrap();
    // A token for the API server's default audience.
    let default_token = namespaced_user(
        &admin,
        &ns.name,
        "reader",
        json!([{"apiGroups": ["dbaas.io"], "resources": ["databaseclusters"], "verbs": ["list"]}]),
    )
    .await
    .unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns.name);
    let issued = accounts
        .create_token_request(
            "reader",
            &PostParams::default(),
            &TokenRequest {
                spec: Some(TokenRequestSpec {
                    audiences: Some(vec!["dbaas-server".to_owned()]),
                    expiration_seconds: Some(3600),
                    ..TokenRequestSpec::default()
                }),
                ..TokenRequest::default()
            },
        )
        .await
        .unwrap();
    let audience_token = issued.status.unwrap().token.unwrap();

    let server = start(ServerConfig {
        auth: AuthConfig {
            token_audiences: vec!["dbaas-server".to_owned()],
            ..AuthConfig::default()
        },
        ..ServerConfig::plain_http()
    })
    .await;
    let status = list_status(&server, &ns.name);
    assert_eq!(status(audience_token).await, 200);
    assert_eq!(status(default_token.clone()).await, 401);

    // Without --token-audiences the API server's own audience is accepted.
    let plain = start(ServerConfig::plain_http()).await;
    assert_eq!(list_status(&plain, &ns.name)(default_token).await, 200);
    ns.delete().await.unwrap();
}

/// Past `--max-connections`, a connection waits to be accepted: clients
/// that open connections and say nothing cannot take the server's tasks and
/// file descriptors without bound.
#[tokio::test]
async fn connections_past_the_cap_wait_to_be_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::create(dir.path()).unwrap();
    let pair = ca.server_cert("capped").unwrap();
    let server = start(ServerConfig {
        transport: Transport::Tls(TlsFiles::new(&pair.cert, &pair.key)),
        limits: Limits {
            max_connections: 2,
            ..Limits::default()
        },
        ..ServerConfig::default()
    })
    .await;
    // Two clients connect and never start their handshake.
    let silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let _also_silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let addr = server.addr;
    let ca_cert = ca.cert.clone();
    let waiting = tokio::spawn(async move { fetch_over_tls(addr, &ca_cert).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !waiting.is_finished(),
        "a third connection was served while two held every slot"
    );
    // One leaves: the waiting client is served.
    drop(silent);
    let (_, status) = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("served once a slot was free")
        .unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
}
