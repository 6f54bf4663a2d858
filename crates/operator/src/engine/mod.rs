//! The DatabaseEngine controller: reports whether each engine operator is
//! installed (its CRD served, its Deployment found) and at which version, the
//! versions the engine offers, and which of them the SRE allows. With
//! `spec.operator.olm` it installs the operator through OLM (OperatorGroup,
//! Subscription with manual approval), approves the first InstallPlan and
//! the upgrades the SRE approved, and reads the version from the CSV. Only
//! what the SRE's allowlist ([`allowlist::OlmAllowlist`], the operator's
//! configuration) holds is subscribed to or approved; anything else is
//! refused with `Ready=False`, reason `OperatorInstallNotAllowed`.

pub mod allowlist;
pub mod olm;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use dbaas_api::DatabaseEngine;
use dbaas_api::common::{FIELD_MANAGER, LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_api::engine::EngineOperatorInstall;
use dbaas_engine_crds::olm_installplan::InstallPlan;
use dbaas_engine_crds::olm_operatorgroup::OperatorGroup;
use dbaas_engine_crds::olm_subscription::Subscription;
use dbaas_engines::provider_for;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::core::DynamicObject;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use crate::context::Context;

/// A DatabaseEngine reconcile failed on I/O.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("detecting the engine operator for {engine}: {source}")]
    Detect {
        engine: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing the status of {engine}: {source}")]
    Status {
        engine: String,
        #[source]
        source: kube::Error,
    },
    #[error("installing the engine operator of {engine} through OLM ({step}): {source}")]
    Olm {
        engine: String,
        step: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("object has no namespace")]
    NoNamespace,
}

impl crate::metrics::ErrorReason for Error {
    fn reason(&self) -> &'static str {
        match self {
            Self::Detect { .. } => "detect",
            Self::Status { .. } => "status",
            Self::Olm { .. } => "apply",
            Self::NoNamespace => "input",
        }
    }
}

/// Reconciles one DatabaseEngine.
pub async fn reconcile(engine: Arc<DatabaseEngine>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = engine.namespace().ok_or(Error::NoNamespace)?;
    let name = engine.name_any();
    let id = format!("{namespace}/{name}");
    let Some(provider) = provider_for(engine.spec.type_) else {
        // Nothing to detect for an engine without a provider; the cluster
        // controller reports EngineNotSupported on clusters of this type.
        return Ok(Action::await_change());
    };
    let judgement = match &engine.spec.operator {
        Some(install) => Some(install_through_olm(&ctx, &engine, install, &namespace, &id).await?),
        None => None,
    };
    // The plain-manifest path: what is there, whoever installed it.
    let detection = match judgement {
        Some(_) => status::Detection::default(),
        None => status::Detection {
            crd_installed: ctx.engine_crd_installed(provider).await.map_err(|source| {
                Error::Detect {
                    engine: id.clone(),
                    source,
                }
            })?,
            operator_image: ctx.operator_image(engine.spec.type_).await,
        },
    };
    let now = Time(Timestamp::now());
    let new_status = status::compose(&engine, provider, &detection, judgement.as_ref(), &now);
    if engine.status.as_ref() != Some(&new_status) {
        let body = json!({
            "apiVersion": DatabaseEngine::api_version(&()),
            "kind": DatabaseEngine::kind(&()),
            "status": new_status,
        });
        ctx.api::<DatabaseEngine>(&namespace)
            .patch_status(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|source| Error::Status { engine: id, source })?;
    }
    // Engine operators come and go without touching our objects.
    Ok(Action::requeue(ctx.detection_interval))
}

/// Whether a 404 means the resource's API is not served (no OLM).
fn not_served(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404)
}

/// The OLM path: check the SRE's allowlist, the catalog and the
/// OperatorGroup, apply the Subscription, approve what may be approved,
/// read what OLM reports.
async fn install_through_olm(
    ctx: &Context,
    engine: &DatabaseEngine,
    install: &EngineOperatorInstall,
    namespace: &str,
    id: &str,
) -> Result<olm::Judgement, Error> {
    let failed = |step: &'static str| {
        move |source: kube::Error| Error::Olm {
            engine: id.to_owned(),
            step,
            source,
        }
    };
    // The SRE's allowlist first: what it refuses is never created, whatever
    // else is there.
    if let Some(refusal) = ctx.olm_allowlist.refuse(&install.olm) {
        warn!(engine = id, "refused: {}", refusal.message());
        return Ok(olm::blocked(allowlist::NOT_ALLOWED, refusal.message()));
    }
    let groups: Api<OperatorGroup> = ctx.api(namespace);
    let existing_groups = match groups.list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(err) if not_served(&err) => {
            return Ok(olm::blocked(
                "OLMNotInstalled",
                "spec.operator.olm asks for OLM, but operators.coreos.com is not served in this cluster: install OLM, or install the operator from its manifests and remove spec.operator".into(),
            ));
        }
        Err(err) => return Err(failed("list OperatorGroups")(err)),
    };
    let source = &install.olm;
    let catalogs: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        &source.catalog_source_namespace,
        &olm::catalog_source_resource(),
    );
    if catalogs
        .get_opt(&source.catalog_source)
        .await
        .map_err(failed("get the CatalogSource"))?
        .is_none()
    {
        return Ok(olm::blocked(
            "CatalogSourceMissing",
            format!(
                "CatalogSource {}/{} does not exist: fix spec.operator.olm.catalogSource / catalogSourceNamespace",
                source.catalog_source_namespace, source.catalog_source
            ),
        ));
    }
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    match olm::choose_operator_group(&existing_groups) {
        olm::OperatorGroupChoice::Conflict(names) => {
            return Ok(olm::blocked(
                "OperatorGroupConflict",
                format!(
                    "namespace {namespace} has {} OperatorGroups ({}); OLM installs nothing until exactly one is left",
                    names.len(),
                    names.join(", ")
                ),
            ));
        }
        olm::OperatorGroupChoice::Create => {
            let group = olm::operator_group(engine, install);
            groups
                .patch(olm::OPERATOR_GROUP_NAME, &apply, &Patch::Apply(&group))
                .await
                .map_err(failed("apply the OperatorGroup"))?;
            info!(
                engine = id,
                "created OperatorGroup {}",
                olm::OPERATOR_GROUP_NAME
            );
        }
        olm::OperatorGroupChoice::Reuse(name) => {
            // Reused as it is: the install mode that counts is the group's.
            let refusal = existing_groups
                .iter()
                .find(|g| g.name_any() == name)
                .and_then(|g| ctx.olm_allowlist.refuse_group(g, namespace));
            if let Some(message) = refusal {
                warn!(engine = id, "refused: {message}");
                return Ok(olm::blocked(allowlist::NOT_ALLOWED, message));
            }
        }
    }
    let subscriptions: Api<Subscription> = ctx.api(namespace);
    let desired = olm::subscription(engine, install);
    let subscription = subscriptions
        .patch(
            olm::subscription_name(install),
            &apply,
            &Patch::Apply(&desired),
        )
        .await
        .map_err(failed("apply the Subscription"))?;
    // Plans are read one by one: a malformed foreign plan is skipped, not
    // allowed to stop ours.
    let plans: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        namespace,
        &kube::core::ApiResource::erase::<InstallPlan>(&()),
    );
    let install_plans: Vec<InstallPlan> = plans
        .list(&ListParams::default())
        .await
        .map_err(failed("list InstallPlans"))?
        .items
        .into_iter()
        .filter_map(|p| p.try_parse::<InstallPlan>().ok())
        .collect();
    let csv_name = subscription
        .status
        .as_ref()
        .and_then(|s| s.installed_csv.clone());
    let csv = match csv_name {
        Some(name) => {
            let csvs: Api<DynamicObject> =
                Api::namespaced_with(ctx.client.clone(), namespace, &olm::csv_resource());
            csvs.get_opt(&name)
                .await
                .map_err(failed("get the ClusterServiceVersion"))?
                .map(|o| olm::CsvView::from_object(&o))
        }
        None => None,
    };
    let observed = olm::Observed {
        subscription: Some(subscription),
        install_plans,
        csv,
    };
    let mut judgement = olm::judge(install, &observed, &ctx.olm_allowlist);
    // Advisory: Subscriptions we do not control install outside the
    // allowlist. A failed read only leaves the condition out.
    let all_subscriptions: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        namespace,
        &kube::core::ApiResource::erase::<Subscription>(&()),
    );
    match all_subscriptions.list(&ListParams::default()).await {
        Ok(list) => {
            let seen: Vec<olm::SeenSubscription> = list
                .items
                .into_iter()
                .map(|object| {
                    let name = object.name_any();
                    object
                        .try_parse::<Subscription>()
                        .map_or(olm::SeenSubscription::Unreadable(name), |s| {
                            olm::SeenSubscription::Read(Box::new(s))
                        })
                })
                .collect();
            let foreign = olm::foreign_subscriptions(&seen, &ctx.olm_allowlist);
            if !foreign.is_empty() {
                warn!(
                    engine = id,
                    "Subscriptions outside the operator's control: {}",
                    foreign.join(", ")
                );
            }
            judgement.subscriptions_condition = Some(olm::subscriptions_condition(&foreign));
        }
        Err(err) => warn!(engine = id, "listing Subscriptions: {err}"),
    }
    let plans: Api<InstallPlan> = ctx.api(namespace);
    for name in &judgement.approve {
        let approval = json!({
            "apiVersion": InstallPlan::api_version(&()),
            "kind": InstallPlan::kind(&()),
            "spec": { "approved": true },
        });
        plans
            .patch(name, &apply, &Patch::Apply(&approval))
            .await
            .map_err(failed("approve the InstallPlan"))?;
        info!(engine = id, "approved InstallPlan {name}");
        // Best effort, off the reconcile: the status says the same.
        let event = Event {
            type_: EventType::Normal,
            reason: "InstallPlanApproved".into(),
            note: Some(format!("approved OLM InstallPlan {name}")),
            action: "Approve".into(),
            secondary: None,
        };
        crate::events::publish_best_effort(&ctx.recorder, engine.object_ref(&()), vec![event]);
    }
    Ok(judgement)
}

/// Wakes the DatabaseEngines of a namespace whenever OLM writes one of its
/// Subscriptions or InstallPlans there (a watch per kind that backs off on
/// its own when OLM is not installed).
pub fn watch_olm(
    controller: kube::runtime::Controller<DatabaseEngine>,
    client: &kube::Client,
    namespace: Option<&str>,
) -> kube::runtime::Controller<DatabaseEngine> {
    use futures::StreamExt;
    use kube::core::PartialObjectMeta;
    use kube::runtime::WatchStreamExt;
    use kube::runtime::reflector::ObjectRef;
    use kube::runtime::watcher;

    fn engines_of(
        store: kube::runtime::reflector::Store<DatabaseEngine>,
    ) -> impl Fn(Option<String>) -> Vec<ObjectRef<DatabaseEngine>> {
        move |namespace| {
            store
                .state()
                .iter()
                .filter(|e| e.spec.operator.is_some() && e.namespace() == namespace)
                .map(|e| ObjectRef::from_obj(e.as_ref()))
                .collect()
        }
    }
    fn quiet<T: Send + 'static>(
        stream: impl futures::Stream<Item = Result<T, watcher::Error>> + Send + 'static,
    ) -> impl futures::Stream<Item = Result<T, watcher::Error>> + Send + 'static {
        stream.filter_map(|event| {
            futures::future::ready(match event {
                Ok(object) => Some(Ok(object)),
                Err(err) => {
                    tracing::debug!("OLM watch: {err}");
                    None
                }
            })
        })
    }
    type Meta<K> = Api<PartialObjectMeta<K>>;
    let api = |client: &kube::Client| -> (Meta<Subscription>, Meta<InstallPlan>) {
        match namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (Api::all(client.clone()), Api::all(client.clone())),
        }
    };
    let (subscriptions, plans) = api(client);
    let store = controller.store();
    let for_subscriptions = engines_of(store.clone());
    let for_plans = engines_of(store);
    controller
        .watches_stream(
            quiet(
                watcher(subscriptions, watcher::Config::default())
                    .default_backoff()
                    .touched_objects(),
            ),
            move |object| for_subscriptions(object.namespace()),
        )
        .watches_stream(
            quiet(
                watcher(plans, watcher::Config::default())
                    .default_backoff()
                    .touched_objects(),
            ),
            move |object| for_plans(object.namespace()),
        )
}

/// Retry after a pause.
pub fn error_policy(engine: Arc<DatabaseEngine>, error: &Error, _ctx: Arc<Context>) -> Action {
    warn!(engine = %engine.name_any(), "reconcile failed: {error}");
    Action::requeue(Duration::from_secs(10))
}

/// Makes sure `namespace` has a DatabaseEngine for `engine`, named after the
/// engine type, without any policy (every offered version allowed). An
/// existing one, whoever made it, is left alone.
pub async fn ensure_exists(
    ctx: &Context,
    namespace: &str,
    engine: dbaas_api::EngineType,
) -> Result<(), kube::Error> {
    let exists = ctx
        .engines
        .state()
        .iter()
        .any(|e| e.namespace().as_deref() == Some(namespace) && e.spec.type_ == engine);
    if exists {
        return Ok(());
    }
    let object: DatabaseEngine = serde_json::from_value(json!({
        "apiVersion": DatabaseEngine::api_version(&()),
        "kind": DatabaseEngine::kind(&()),
        "metadata": {
            "name": engine.as_str(),
            "labels": { LABEL_MANAGED_BY: MANAGED_BY_VALUE },
        },
        "spec": { "type": engine.as_str() },
    }))
    .map_err(kube::Error::SerdeError)?;
    match ctx
        .api::<DatabaseEngine>(namespace)
        .create(&PostParams::default(), &object)
        .await
    {
        Ok(_) => {
            info!(
                namespace,
                engine = engine.as_str(),
                "created DatabaseEngine"
            );
            Ok(())
        }
        // A concurrent reconcile, or the name taken by another engine's object.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(err) => Err(err),
    }
}
