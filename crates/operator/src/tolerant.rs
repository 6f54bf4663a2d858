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

use std::borrow::Cow;
use std::fmt::Debug;

use dbaas_api::common::FIELD_MANAGER;
use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, Store, reflector};
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Client, Resource};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// The reason of the condition on an object our types cannot read.
pub const MALFORMED: &str = "Malformed";

/// An object as stored: parsed when it fits `K`, otherwise why it does not.
#[derive(Clone, Debug)]
pub struct Lenient<K>(Result<K, Box<Malformed>>);

/// A stored object that does not fit our types.
#[derive(Clone, Debug)]
pub struct Malformed {
    pub meta: ObjectMeta,
    /// Where and why it does not parse: the field path and serde's message
    /// (which may quote a short stored value; our kinds hold no secrets).
    pub error: String,
    /// Whether the object already carries our `Malformed` condition with
    /// this error, so it is not written again.
    pub reported: bool,
}

impl<K> Lenient<K> {
    /// The object, or why it could not be read.
    pub fn into_inner(self) -> Result<K, Box<Malformed>> {
        self.0
    }
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Lenient<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        match serde_path_to_error::deserialize::<_, K>(&value) {
            Ok(object) => Ok(Self(Ok(object))),
            Err(error) => {
                let meta = value
                    .get("metadata")
                    .map(ObjectMeta::deserialize)
                    .transpose()
                    .map_err(D::Error::custom)?
                    .unwrap_or_default();
                let error = describe(&error);
                let reported = has_malformed_condition(&value, &error);
                Ok(Self(Err(Box::new(Malformed {
                    meta,
                    error,
                    reported,
                }))))
            }
        }
    }
}

impl<K: Resource<DynamicType = ()>> Resource for Lenient<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        match &self.0 {
            Ok(object) => object.meta(),
            Err(malformed) => &malformed.meta,
        }
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match &mut self.0 {
            Ok(object) => object.meta_mut(),
            Err(malformed) => &mut malformed.meta,
        }
    }
}

/// The field path and what is wrong there, cut to a condition-sized text.
fn describe(error: &serde_path_to_error::Error<serde_json::Error>) -> String {
    const MAX: usize = 300;
    let mut text = format!("{}: {}", error.path(), error.inner());
    if text.len() > MAX {
        let mut cut = MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

fn has_malformed_condition(object: &Value, error: &str) -> bool {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("reason").and_then(Value::as_str) == Some(MALFORMED)
                && c.get("message").and_then(Value::as_str) == Some(&malformed_message(error))
        })
}

fn malformed_message(error: &str) -> String {
    format!("the stored object does not fit the current API; fix or delete it: {error}")
}

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

/// A watch of `K` that passes on the objects that parse and leaves out (and
/// reports, given a reporter) the ones that do not.
pub fn watch<K>(
    api: Api<Lenient<K>>,
    config: watcher::Config,
    reporter: Option<Reporter>,
) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    watcher(api, config).filter_map(move |event| {
        futures::future::ready(
            event
                .map(|event| parsed(event, reporter.as_ref()))
                .transpose(),
        )
    })
}

/// The event with its object parsed, or None for a malformed object.
fn parsed<K: Resource<DynamicType = ()>>(
    event: Event<Lenient<K>>,
    reporter: Option<&Reporter>,
) -> Option<Event<K>> {
    let keep = |object: Lenient<K>, deleted: bool| match object.0 {
        Ok(object) => Some(object),
        Err(malformed) => {
            let name = malformed.meta.name.as_deref().unwrap_or_default();
            let namespace = malformed.meta.namespace.as_deref().unwrap_or_default();
            if let (false, false, Some(reporter)) = (deleted, malformed.reported, reporter) {
                warn!(
                    kind = %K::kind(&()), %namespace, %name,
                    "left out an object that does not fit our types: {}", malformed.error
                );
                reporter.report(malformed);
            }
            None
        }
    };
    match event {
        Event::Apply(object) => keep(object, false).map(Event::Apply),
        Event::InitApply(object) => keep(object, false).map(Event::InitApply),
        Event::Delete(object) => keep(object, true).map(Event::Delete),
        Event::Init => Some(Event::Init),
        Event::InitDone => Some(Event::InitDone),
    }
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
    let (reader, writer) = reflector::store::<K>();
    let reporter = Reporter::spawn::<K>(client.clone());
    let trigger = reflector(
        writer,
        watch(api::<K>(client, namespace), config, Some(reporter)),
    )
    .applied_objects();
    Controller::for_stream(trigger, reader)
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

/// A watch cache of `K` and the future that feeds it.
pub fn cache<K>(
    client: &Client,
    namespace: Option<&str>,
) -> (
    Store<K>,
    impl std::future::Future<Output = ()> + Send + 'static,
)
where
    K: OurKind,
{
    let (reader, writer) = reflector::store::<K>();
    let feed = reflector(
        writer,
        watch(
            api::<K>(client, namespace),
            watcher::Config::default(),
            None,
        )
        .default_backoff(),
    )
    .touched_objects()
    .for_each(|_| futures::future::ready(()));
    (reader, feed)
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

#[cfg(test)]
mod tests {
    use super::*;
    use dbaas_api::DatabaseCluster;

    fn cluster(size: Value) -> Value {
        json!({
            "apiVersion": "dbaas.io/v1", "kind": "DatabaseCluster",
            "metadata": {"name": "app", "namespace": "team", "generation": 3},
            "spec": {"engine": {"type": "postgresql"}, "clusterSize": size,
                     "storage": {"size": "1Gi"}},
        })
    }

    #[test]
    fn an_object_that_fits_parses() {
        let lenient: Lenient<DatabaseCluster> =
            serde_json::from_value(cluster(json!(1))).expect("lenient never fails on an object");
        let parsed = lenient.into_inner().expect("fits");
        assert_eq!(parsed.spec.cluster_size, 1);
    }

    #[test]
    fn an_object_that_does_not_fit_keeps_its_identity_and_the_reason() {
        let lenient: Lenient<DatabaseCluster> = serde_json::from_value(cluster(json!("three")))
            .expect("lenient never fails on an object");
        assert_eq!(lenient.meta().name.as_deref(), Some("app"));
        let malformed = lenient.into_inner().expect_err("does not fit");
        assert_eq!(malformed.meta.namespace.as_deref(), Some("team"));
        assert!(
            malformed.error.contains("invalid type"),
            "{}",
            malformed.error
        );
        assert!(!malformed.reported);
    }

    #[test]
    fn a_reported_object_is_not_reported_again() {
        let mut object = cluster(json!("three"));
        let first: Lenient<DatabaseCluster> =
            serde_json::from_value(object.clone()).expect("lenient");
        let error = first.into_inner().expect_err("does not fit").error;
        object["status"] = json!({"conditions": [{
            "type": "Valid", "status": "False", "reason": MALFORMED,
            "message": malformed_message(&error),
        }]});
        let again: Lenient<DatabaseCluster> = serde_json::from_value(object).expect("lenient");
        assert!(again.into_inner().expect_err("does not fit").reported);
    }

    #[test]
    fn a_list_with_one_bad_item_keeps_the_good_ones() {
        let list = json!({
            "apiVersion": "dbaas.io/v1", "kind": "DatabaseClusterList", "metadata": {},
            "items": [cluster(json!(1)), cluster(json!("three")), cluster(json!(3))],
        });
        let list: kube::core::ObjectList<Lenient<DatabaseCluster>> =
            serde_json::from_value(list).expect("the list parses");
        let good = list
            .items
            .into_iter()
            .filter_map(|o| o.into_inner().ok())
            .count();
        assert_eq!(good, 2);
    }
}
