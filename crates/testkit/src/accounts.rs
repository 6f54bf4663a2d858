//! Callers that are not cluster-admin: ServiceAccounts with tokens from the
//! TokenRequest API, and the operator's ClusterRole as shipped.

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role, RoleBinding};
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::Value;

use crate::Error;

/// How long test tokens live.
const TOKEN_SECONDS: i64 = 3600;

/// Creates the ServiceAccount `namespace`/`name` (if missing) and returns a
/// bearer token for it.
pub async fn service_account_token(
    admin: &Client,
    namespace: &str,
    name: &str,
) -> Result<String, Error> {
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
    let account: ServiceAccount =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
    match accounts.create(&PostParams::default(), &account).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(err) => return Err(err.into()),
    }
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(TOKEN_SECONDS),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let issued = accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await?;
    issued
        .status
        .and_then(|status| status.token)
        .ok_or_else(|| Error::NoToken(format!("{namespace}/{name}")))
}

/// The operator's ClusterRole as shipped in deploy/rbac/operator.yaml.
pub fn shipped_operator_role() -> Result<ClusterRole, Error> {
    let path = crate::repo_root().join("deploy/rbac/operator.yaml");
    let yaml = std::fs::read_to_string(&path).map_err(|err| Error::RepoFile {
        path: path.clone(),
        detail: err.to_string(),
    })?;
    for document in yaml.split("\n---\n") {
        let document: Value = serde_saphyr::from_str(document).map_err(|err| Error::RepoFile {
            path: path.clone(),
            detail: err.to_string(),
        })?;
        if document["kind"] == "ClusterRole" {
            return Ok(serde_json::from_value(document)?);
        }
    }
    Err(Error::RepoFile {
        path,
        detail: "no ClusterRole in it".to_owned(),
    })
}

/// A ServiceAccount `namespace`/`name` holding exactly `rules` (a JSON list
/// of PolicyRules) in its namespace through a Role and RoleBinding of the
/// same name; returns a token for it.
pub async fn namespaced_user(
    admin: &Client,
    namespace: &str,
    name: &str,
    rules: Value,
) -> Result<String, Error> {
    let roles: Api<Role> = Api::namespaced(admin.clone(), namespace);
    let role = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name}, "rules": rules,
    }))?;
    roles.create(&PostParams::default(), &role).await?;
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), namespace);
    let binding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }))?;
    bindings.create(&PostParams::default(), &binding).await?;
    service_account_token(admin, namespace, name).await
}
