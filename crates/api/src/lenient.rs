//! Reading stored objects one by one, so one that no longer fits our types
//! (written before a validation rule existed, or straight into etcd) is set
//! aside with its identity and the reason, instead of failing the whole list
//! it came in. kube-runtime deserializes a list page at once; a watch of
//! [`Lenient`] objects plus [`parse_event`] keeps every other object flowing.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::runtime::watcher::Event;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

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

/// The message of the `Malformed` condition.
pub fn malformed_message(error: &str) -> String {
    format!("the stored object does not fit the current API; fix or delete it: {error}")
}

/// Logs that a malformed object of kind `K` is left out of a cache.
pub fn warn_malformed<K: Resource<DynamicType = ()>>(malformed: &Malformed) {
    tracing::warn!(
        kind = %K::kind(&()),
        namespace = %malformed.meta.namespace.as_deref().unwrap_or_default(),
        name = %malformed.meta.name.as_deref().unwrap_or_default(),
        "left out an object that does not fit our types: {}", malformed.error
    );
}

/// The event with its object parsed, or None when the object does not fit
/// `K`; `on_malformed` hears of each malformed object that was applied (not
/// deleted) and does not carry its condition yet.
pub fn parse_event<K: Resource<DynamicType = ()>>(
    event: Event<Lenient<K>>,
    mut on_malformed: impl FnMut(Box<Malformed>),
) -> Option<Event<K>> {
    let mut keep = |object: Lenient<K>, deleted: bool| match object.0 {
        Ok(object) => Some(object),
        Err(malformed) => {
            if !deleted && !malformed.reported {
                on_malformed(malformed);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DatabaseCluster;
    use serde_json::json;

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
    fn only_new_malformed_objects_are_heard_of() {
        let bad = || -> Lenient<DatabaseCluster> {
            serde_json::from_value(cluster(json!("three"))).expect("lenient")
        };
        let good: Lenient<DatabaseCluster> =
            serde_json::from_value(cluster(json!(1))).expect("lenient");
        let mut heard = Vec::new();
        assert!(matches!(
            parse_event(Event::Apply(good), |m| heard.push(m)),
            Some(Event::Apply(_))
        ));
        assert!(parse_event(Event::InitApply(bad()), |m| heard.push(m)).is_none());
        assert!(parse_event(Event::Delete(bad()), |m| heard.push(m)).is_none());
        assert_eq!(heard.len(), 1, "a deleted object is not reported");
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
