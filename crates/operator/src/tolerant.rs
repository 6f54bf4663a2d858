//! Watches that survive stored objects our types cannot read.
//!
//! kube-runtime reads a whole list page at once, so one stored object that no
//! longer fits our types (written before a validation rule existed, or
//! straight into etcd) would fail every list, and with it every reconcile of
//! that kind. These watches read each object on its own: the ones that parse
//! go on as usual; the others are left out and, for the kinds we own, marked
//! with a `Valid=False` condition whose reason is `Malformed`, so the SRE
//! finds them (unless the API server refuses even that write: a CEL rule that
//! reads the malformed field fails to evaluate, and then only the warning in
//! the log is left).

use std::fmt::Debug;

use dbaas_api::common::FIELD_MANAGER;
use dbaas_api::lenient::{
    Lenient, MALFORMED, Malformed, malformed_message, parse_event, warn_malformed,
};
use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, Store, reflector};
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::sync::{mpsc, watch as watch_channel};
use tracing::debug;

/// Marks malformed objects of one kind with a `Valid=False, Malformed`
/// condition. Cheap to clone; the writes happen on a background task.
#[derive(Clone)]
pub struct Reporter {
    sender: mpsc::UnboundedSender<Box<Malformed>>,
}

impl Reporter {
    /// Starts the task that writes the conditions of kind `K`.
    pub fn spawn<K: Resource<DynamicType = ()>>(client: Client) -> Self {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Box<Malformed>>();
        let resource = ApiResource::erase::<K>(&());
        tokio::spawn(async move {
            while let Some(malformed) = receiver.recv().await {
                mark(&client, &resource, &malformed).await;
            }
        });
        Self { sender }
    }

    fn report(&self, malformed: Box<Malformed>) {
        // The receiver lives as long as the runtime; a closed channel only
        // means we are shutting down.
        let _ = self.sender.send(malformed);
    }
}

async fn mark(client: &Client, resource: &ApiResource, malformed: &Malformed) {
    let (Some(name), Some(namespace)) = (&malformed.meta.name, &malformed.meta.namespace) else {
        return;
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, resource);
    let condition = json!({
        "type": "Valid",
        "status": "False",
        "reason": MALFORMED,
        "message": malformed_message(&malformed.error),
        "observedGeneration": malformed.meta.generation,
        "lastTransitionTime": Time(Timestamp::now()),
    });
    let patch = json!({ "status": { "conditions": [condition] } });
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..Default::default()
    };
    if let Err(err) = api.patch_status(name, &params, &Patch::Merge(&patch)).await {
        debug!(kind = %resource.kind, %namespace, %name, "cannot mark a malformed object: {err}");
    }
}

/// Whether a watch has delivered its first full list. Any number of tasks
/// may wait on it: kube-runtime's `Store::wait_until_ready` wakes only the
/// last of several concurrent waiters (its one-shot channel keeps one
/// waker), and its Controller already waits on its own store that way, so
/// reconciles waiting there too could hang forever.
#[derive(Clone, Debug)]
pub struct Synced(watch_channel::Receiver<bool>);

impl Synced {
    fn new() -> (watch_channel::Sender<bool>, Self) {
        let (sender, receiver) = watch_channel::channel(false);
        (sender, Self(receiver))
    }

    /// Waits for the first full list (forever if the watch has stopped).
    pub async fn wait(&self) {
        let mut receiver = self.0.clone();
        if receiver.wait_for(|synced| *synced).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    pub fn is_synced(&self) -> bool {
        *self.0.borrow()
    }
}

/// A watch of `K` that passes on the objects that parse and leaves out (and
/// reports, given a reporter) the ones that do not. managedFields are
/// dropped: no reconcile reads them off a cached object of ours, and at
/// 10,000 clusters they were the larger part of each cached object.
pub fn watch<K>(
    api: Api<Lenient<K>>,
    config: watcher::Config,
    reporter: Option<Reporter>,
) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    watcher(api, config).filter_map(move |event| {
        let parsed = event.map(|event| {
            parse_event(event, |malformed| {
                if let Some(reporter) = &reporter {
                    warn_malformed::<K>(&malformed);
                    reporter.report(malformed);
                }
            })
            .map(|event| event.modify(|object| object.meta_mut().managed_fields = None))
        });
        futures::future::ready(parsed.transpose())
    })
}

/// Marks `synced` once the reflector has applied the first full list (after
/// it, not before: the store swaps its buffer in as it applies `InitDone`).
fn mark_synced<K, S>(
    events: S,
    synced: watch_channel::Sender<bool>,
) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Send,
{
    events.inspect(move |event| {
        if matches!(event, Ok(Event::InitDone)) {
            synced.send_replace(true);
        }
    })
}

/// A namespaced kind of ours that a tolerant watch can serve.
pub trait OurKind:
    Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> OurKind for K where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static
{
}

/// What `Controller::new` builds, fed by a tolerant watch that marks the
/// malformed objects of `K`.
pub fn controller<K>(
    client: &Client,
    namespace: Option<&str>,
    config: watcher::Config,
) -> Controller<K>
where
    K: OurKind,
{
    controller_synced(client, namespace, config).0
}

/// [`controller`], and when its store has the first full list.
pub fn controller_synced<K>(
    client: &Client,
    namespace: Option<&str>,
    config: watcher::Config,
) -> (Controller<K>, Synced)
where
    K: OurKind,
{
    let (reader, writer) = reflector::store::<K>();
    let reporter = Reporter::spawn::<K>(client.clone());
    let (mark, synced) = Synced::new();
    let trigger = mark_synced(
        reflector(
            writer,
            watch(api::<K>(client, namespace), config, Some(reporter)),
        ),
        mark,
    )
    .applied_objects();
    (Controller::for_stream(trigger, reader), synced)
}

/// The objects of `K` that changed, for `Controller::watches_stream` (what
/// `Controller::watches` watches, tolerantly).
pub fn changes<K>(
    client: &Client,
    namespace: Option<&str>,
    config: watcher::Config,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: OurKind,
{
    watch(api::<K>(client, namespace), config, None).touched_objects()
}

/// A watch cache of `K`, when it has the first full list, and the future
/// that feeds it.
pub fn cache<K>(
    client: &Client,
    namespace: Option<&str>,
) -> (
    Store<K>,
    Synced,
    impl std::future::Future<Output = ()> + Send + 'static,
)
where
    K: OurKind,
{
    let (reader, writer) = reflector::store::<K>();
    let (mark, synced) = Synced::new();
    let feed = mark_synced(
        reflector(
            writer,
            watch(
                api::<K>(client, namespace),
                watcher::Config::default(),
                None,
            )
            .default_backoff(),
        ),
        mark,
    )
    .touched_objects()
    .for_each(|_| futures::future::ready(()));
    (reader, synced, feed)
}

/// A namespaced or cluster-wide API of lenient `K`.
pub fn api<K>(client: &Client, namespace: Option<&str>) -> Api<Lenient<K>>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}
