//! The REST list benchmark, shared by the `list-bench` binary and the
//! `bench` crate: seeds DatabaseClusters into a control plane and times, in
//! one run, a 100-item page and a full list through dbaas-server (watch
//! cache) and straight from kube-apiserver.
//!
//! Both sides are timed the same way: one HTTP request, the whole response
//! body received, not decoded. Our side includes authentication and
//! authorization (TokenReview / SubjectAccessReview, cached for 10 s, so a
//! few of our samples pay a review).

use std::time::{Duration, Instant};

use anyhow::Context;
use dbaas_api::DatabaseCluster;
use dbaas_testkit::ControlPlane;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde_json::json;

use crate::ServerConfig;

const NAMESPACE: &str = "bench";

/// What to seed and how often to sample.
#[derive(Clone, Debug)]
pub struct ListBenchOptions {
    /// DatabaseClusters to seed into one namespace.
    pub clusters: usize,
    /// Samples of the 100-item page, per side.
    pub page_samples: usize,
    /// Samples of the full list, per side.
    pub full_samples: usize,
    /// Concurrent creates while seeding.
    pub concurrency: usize,
    /// Clients asking for 100-item pages at once, per side, in the
    /// concurrent scenario.
    pub clients: usize,
    /// How long each side of the concurrent scenario runs.
    pub window: Duration,
}

impl Default for ListBenchOptions {
    fn default() -> Self {
        Self {
            clusters: 10_000,
            page_samples: 300,
            full_samples: 20,
            concurrency: 32,
            clients: 64,
            window: Duration::from_secs(30),
        }
    }
}

/// Latency of one kind of request on one side.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    /// Size of one response body.
    pub bytes: usize,
}

/// One kind of request, through dbaas-server and straight from kube-apiserver.
#[derive(Clone, Copy, Debug)]
pub struct Comparison {
    pub ours: Stats,
    pub kube: Stats,
}

impl Comparison {
    /// How many times faster our p50 is.
    pub fn p50_ratio(&self) -> f64 {
        self.kube.p50.as_secs_f64() / self.ours.p50.as_secs_f64().max(1e-9)
    }
}

/// Many clients at once for a window: pages served and their latency.
#[derive(Clone, Copy, Debug)]
pub struct Throughput {
    pub pages_per_second: f64,
    pub latency: Stats,
}

/// The concurrent scenario on both sides.
#[derive(Clone, Copy, Debug)]
pub struct Concurrent {
    pub ours: Throughput,
    pub kube: Throughput,
}

impl Concurrent {
    /// How many times kube-apiserver's pages per second we serve.
    pub fn throughput_ratio(&self) -> f64 {
        self.ours.pages_per_second / self.kube.pages_per_second.max(1e-9)
    }
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct ListBenchReport {
    pub options: ListBenchOptions,
    pub seeded: Duration,
    pub cache_synced: Duration,
    pub page: Comparison,
    pub full: Comparison,
    /// 100-item pages, `options.clients` at once for `options.window`.
    pub concurrent: Concurrent,
}

impl ListBenchReport {
    /// The side-by-side table the `list-bench` binary prints.
    pub fn print(&self) {
        println!();
        println!(
            "list {} DatabaseClusters in one namespace (samples: {} pages, {} full lists per side)",
            self.options.clusters, self.options.page_samples, self.options.full_samples
        );
        println!(
            "{:<14} | {:>12} {:>12} {:>10} | {:>12} {:>12} {:>10} | {:>9}",
            "", "dbaas p50", "dbaas p99", "bytes", "kube p50", "kube p99", "bytes", "p50 ratio"
        );
        for (what, row) in [("100-item page", &self.page), ("full list", &self.full)] {
            println!(
                "{:<14} | {:>12} {:>12} {:>10} | {:>12} {:>12} {:>10} | {:>8.1}x",
                what,
                format_ms(row.ours.p50),
                format_ms(row.ours.p99),
                row.ours.bytes,
                format_ms(row.kube.p50),
                format_ms(row.kube.p99),
                row.kube.bytes,
                row.p50_ratio()
            );
        }
        let c = &self.concurrent;
        println!(
            "{} clients, {}s: dbaas {:.0} pages/s (p99 {}, p99.9 {}) | kube {:.0} pages/s (p99 {}, p99.9 {}) | {:.1}x",
            self.options.clients,
            self.options.window.as_secs(),
            c.ours.pages_per_second,
            format_ms(c.ours.latency.p99),
            format_ms(c.ours.latency.p999),
            c.kube.pages_per_second,
            format_ms(c.kube.latency.p99),
            format_ms(c.kube.latency.p999),
            c.throughput_ratio()
        );
    }
}

/// Milliseconds with two decimals.
pub fn format_ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Seeds `options.clusters` DatabaseClusters into the namespace `bench` of
/// `control_plane` (which must have our CRDs and no such namespace yet),
/// starts dbaas-server on a loopback port and times both sides.
pub async fn run(
    control_plane: &ControlPlane,
    options: &ListBenchOptions,
) -> anyhow::Result<ListBenchReport> {
    let admin = control_plane.client().await?;
    Api::<Namespace>::all(admin.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?,
        )
        .await?;

    let seeding = Instant::now();
    seed(&admin, options.clusters, options.concurrency).await?;
    let seeded = seeding.elapsed();
    eprintln!(
        "seeded {} DatabaseClusters in {:.1}s",
        options.clusters,
        seeded.as_secs_f64()
    );

    let token = reader_token(&admin).await?;
    let kubeconfig = Kubeconfig::read_from(control_plane.kubeconfig())?;
    let kube_config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let syncing = Instant::now();
    // Plain HTTP on loopback; pages as large as the whole list, so the
    // `full` measurement is one response as kube-apiserver's is.
    let config = ServerConfig {
        limits: crate::Limits {
            max_page_size: options.clusters.max(1),
            ..crate::Limits::default()
        },
        ..ServerConfig::plain_http()
    };
    let server = crate::start(kube_config, listener, &config)?;
    server.wait_synced(Duration::from_secs(120)).await?;
    let cache_synced = syncing.elapsed();
    eprintln!(
        "dbaas-server caches synced in {:.2}s ({} clusters)",
        cache_synced.as_secs_f64(),
        server.state.stores.clusters.len()
    );
    anyhow::ensure!(
        server.state.stores.clusters.len() == options.clusters,
        "the cache holds {} clusters, expected {}",
        server.state.stores.clusters.len(),
        options.clusters
    );

    let http = reqwest::Client::new();
    let ours = |query: &'static str| {
        let http = http.clone();
        let url = format!(
            "{}/v1/namespaces/{NAMESPACE}/databaseclusters{query}",
            server.url()
        );
        let token = token.clone();
        move || {
            let http = http.clone();
            let url = url.clone();
            let token = token.clone();
            async move {
                let response = http.get(&url).bearer_auth(&token).send().await?;
                anyhow::ensure!(response.status().is_success(), "{}", response.status());
                Ok(response.bytes().await?.len())
            }
        }
    };

    let page = Comparison {
        ours: measure(options.page_samples, ours("?limit=100")).await?,
        kube: measure(options.page_samples, kube_list(&admin, Some(100))).await?,
    };
    let full = Comparison {
        ours: measure(options.full_samples, ours("")).await?,
        kube: measure(options.full_samples, kube_list(&admin, None)).await?,
    };
    let concurrent = Concurrent {
        ours: throughput(options.clients, options.window, ours("?limit=100")).await?,
        kube: throughput(
            options.clients,
            options.window,
            kube_list(&admin, Some(100)),
        )
        .await?,
    };
    Ok(ListBenchReport {
        options: options.clone(),
        seeded,
        cache_synced,
        page,
        full,
        concurrent,
    })
}

/// `clients` tasks calling in a loop for `window`: calls completed per
/// second and their latency.
async fn throughput<F, Fut>(clients: usize, window: Duration, call: F) -> anyhow::Result<Throughput>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<usize>> + Send,
{
    let mut bytes = 0;
    for _ in 0..3 {
        bytes = call().await?;
    }
    let started = Instant::now();
    let deadline = started + window;
    let tasks: Vec<_> = (0..clients.max(1))
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut times = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    call().await?;
                    times.push(sent.elapsed());
                }
                anyhow::Ok(times)
            })
        })
        .collect();
    let mut times = Vec::new();
    for task in tasks {
        times.extend(task.await??);
    }
    let elapsed = started.elapsed();
    Ok(Throughput {
        pages_per_second: times.len() as f64 / elapsed.as_secs_f64(),
        latency: stats(times, bytes),
    })
}

/// Percentiles of `times`.
fn stats(mut times: Vec<Duration>, bytes: usize) -> Stats {
    times.sort();
    if times.is_empty() {
        times.push(Duration::ZERO);
    }
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        p999: at(0.999),
        bytes,
    }
}

/// Times `samples` sequential calls (after a few warm-up calls).
async fn measure<F, Fut>(samples: usize, call: F) -> anyhow::Result<Stats>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<usize>>,
{
    let mut bytes = 0;
    for _ in 0..3 {
        bytes = call().await?;
    }
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples.max(1) {
        let started = Instant::now();
        call().await?;
        times.push(started.elapsed());
    }
    Ok(stats(times, bytes))
}

/// One list request straight to kube-apiserver, body received as text.
fn kube_list(
    admin: &Client,
    limit: Option<u32>,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<usize>> + Send>>
+ Clone
+ Send
+ 'static {
    let admin = admin.clone();
    move || {
        let admin = admin.clone();
        Box::pin(async move {
            let mut params = ListParams::default();
            if let Some(limit) = limit {
                params = params.limit(limit);
            }
            let request = kube::core::Request::new(format!(
                "/apis/dbaas.io/v1/namespaces/{NAMESPACE}/databaseclusters"
            ))
            .list(&params)?;
            let text = admin.request_text(request).await?;
            Ok(text.len())
        })
    }
}

async fn seed(admin: &Client, count: usize, concurrency: usize) -> anyhow::Result<()> {
    let api: Api<DatabaseCluster> = Api::namespaced(admin.clone(), NAMESPACE);
    futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            async move {
                let cluster: DatabaseCluster = serde_json::from_value(json!({
                    "apiVersion": "dbaas.io/v1",
                    "kind": "DatabaseCluster",
                    "metadata": {
                        "name": format!("db-{i:05}"),
                        "labels": {"team": format!("team-{}", i % 10)},
                    },
                    "spec": {
                        "engine": {"type": "postgresql", "version": "16.4"},
                        "clusterSize": 3,
                        "storage": {"size": "10Gi"},
                        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
                    },
                }))?;
                api.create(&PostParams::default(), &cluster).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_for_each(|()| async { Ok(()) })
        .await
}

/// A token of a ServiceAccount that may list and get DatabaseClusters in
/// the bench namespace (and nothing else).
async fn reader_token(admin: &Client) -> anyhow::Result<String> {
    let name = "bench-reader";
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), NAMESPACE);
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}}))?,
    )
    .await?;
    Api::<Role>::namespaced(admin.clone(), NAMESPACE)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": name},
                "rules": [{"apiGroups": ["dbaas.io"], "resources": ["databaseclusters"], "verbs": ["get", "list"]}],
            }))?,
        )
        .await?;
    Api::<RoleBinding>::namespaced(admin.clone(), NAMESPACE)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
            }))?,
        )
        .await?;
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    sas.create_token_request(name, &PostParams::default(), &request)
        .await?
        .status
        .and_then(|s| s.token)
        .context("the TokenRequest returned no token")
}
