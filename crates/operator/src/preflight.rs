//! Checks at start that the operator may do everything it will try, with one
//! SelfSubjectAccessReview per verb of `dbaas_api::rbac::OPERATOR_PERMISSIONS`,
//! and says what is missing and how to grant it, instead of failing later
//! with a 403 deep inside a reconcile.

use dbaas_api::rbac::{Check, Missing, OPERATOR_PERMISSIONS, access_checks_in, missing};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use kube::api::PostParams;
use kube::{Api, Client};

/// Reviews asked at once.
const IN_FLIGHT: usize = 8;

/// The operator's permissions that this client lacks, in each of
/// `namespaces` (the watch namespaces) or, when there are none,
/// cluster-wide.
pub async fn missing_permissions(
    client: &Client,
    namespaces: &[String],
) -> Result<Vec<Missing>, kube::Error> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let checks = access_checks_in(OPERATOR_PERMISSIONS, namespaces);
    let answers: Vec<(&Check, bool)> = futures::stream::iter(&checks)
        .map(|check| {
            let api = api.clone();
            async move {
                let review = api
                    .create(&PostParams::default(), &check.self_review())
                    .await?;
                Ok::<_, kube::Error>((check, review.status.is_some_and(|s| s.allowed)))
            }
        })
        .buffered(IN_FLIGHT)
        .try_collect()
        .await?;
    let denied: Vec<&Check> = answers
        .into_iter()
        .filter(|(_, allowed)| !allowed)
        .map(|(check, _)| check)
        .collect();
    Ok(missing(&denied))
}

/// Why the operator will not start.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("cannot ask the API server what this operator may do: {0}")]
    Review(#[source] kube::Error),
    #[error("missing permissions the operator cannot run without: {0}")]
    Missing(String),
}

/// Logs every missing permission with the command that grants it to
/// `service_account` (`namespace:name`); fails when a required one is among
/// them.
pub async fn check_at_start(
    client: &Client,
    namespaces: &[String],
    service_account: &str,
) -> Result<(), PreflightError> {
    let missing = missing_permissions(client, namespaces)
        .await
        .map_err(PreflightError::Review)?;
    for gap in &missing {
        let message = format!(
            "missing permission: {} ({}); grant it with: {}",
            gap.what(),
            gap.permission.why,
            gap.grant_command(service_account)
        );
        if gap.permission.required {
            tracing::error!("{message}");
        } else {
            tracing::warn!("{message}");
        }
    }
    let required: Vec<String> = missing
        .iter()
        .filter(|gap| gap.permission.required)
        .map(Missing::what)
        .collect();
    if required.is_empty() {
        tracing::info!(
            optional_missing = missing.len(),
            "preflight: every required permission is granted"
        );
        Ok(())
    } else {
        Err(PreflightError::Missing(required.join("; ")))
    }
}
