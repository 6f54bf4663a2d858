//! Authentication and authorization the Kubernetes way: the bearer token is
//! checked with a TokenReview, each request with a SubjectAccessReview for
//! the matching resource, verb and namespace (both answers cached briefly),
//! and writes go to the API server impersonating the caller, so the
//! cluster's own RBAC and audit log decide and record them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client};

use crate::error::ApiError;
use crate::ttl_cache::TtlCache;

/// Who is calling, as the TokenReview said.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Caller {
    pub username: String,
    pub uid: Option<String>,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl Caller {
    /// The field manager of this caller's writes: the API server records
    /// the field manager in managedFields (the user only in its audit log),
    /// so writes through this server name the caller there.
    pub fn field_manager(&self) -> String {
        let mut manager = format!("dbaas-server/{}", self.username);
        if manager.len() > 128 {
            let mut end = 128;
            while !manager.is_char_boundary(end) {
                end -= 1;
            }
            manager.truncate(end);
        }
        manager
    }
}

/// One permission: a verb on a resource, in a namespace or cluster-wide.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Permission {
    pub verb: &'static str,
    /// API group; "" for the core group.
    pub group: String,
    pub resource: String,
    pub subresource: Option<String>,
    /// `None`: every namespace (cluster scope).
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl Permission {
    /// "user X cannot list databaseclusters.dbaas.io in namespace Y"
    pub fn denied_message(&self, caller: &Caller) -> String {
        let mut resource = self.resource.clone();
        if let Some(sub) = &self.subresource {
            resource = format!("{resource}/{sub}");
        }
        if !self.group.is_empty() {
            resource = format!("{resource}.{}", self.group);
        }
        let name = self
            .name
            .as_ref()
            .map(|n| format!(" {n:?}"))
            .unwrap_or_default();
        let scope = match &self.namespace {
            Some(ns) => format!("in namespace {ns}"),
            None => "across all namespaces".to_owned(),
        };
        format!(
            "user {} cannot {} {resource}{name} {scope}",
            caller.username, self.verb
        )
    }
}

/// Settings of [`Auth`].
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// How long TokenReview and SubjectAccessReview answers are reused.
    pub cache_ttl: Duration,
    /// How many answers each cache keeps at most.
    pub cache_capacity: usize,
    /// How many impersonating clients are kept (one per distinct caller).
    pub client_capacity: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(10),
            cache_capacity: 10_000,
            client_capacity: 256,
        }
    }
}

type TokenDigest = [u8; 32];

pub struct Auth {
    /// The server's own identity: TokenReview and SubjectAccessReview.
    client: Client,
    /// The server's own connection settings, the base of impersonating clients.
    config: kube::Config,
    tokens: TtlCache<TokenDigest, Option<Arc<Caller>>>,
    reviews: TtlCache<(Arc<Caller>, Permission), bool>,
    clients: Mutex<HashMap<Arc<Caller>, (Instant, Client)>>,
    client_capacity: usize,
}

impl Auth {
    pub fn new(client: Client, config: kube::Config, settings: &AuthConfig) -> Self {
        Self {
            client,
            config,
            tokens: TtlCache::new(settings.cache_ttl, settings.cache_capacity),
            reviews: TtlCache::new(settings.cache_ttl, settings.cache_capacity),
            clients: Mutex::new(HashMap::new()),
            client_capacity: settings.client_capacity.max(1),
        }
    }

    /// The caller behind `Authorization: Bearer <token>`, or 401.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Caller>, ApiError> {
        let header = headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::Unauthenticated("missing Authorization: Bearer <token>".into())
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthenticated(
                    "the Authorization header must be `Bearer <token>`".into(),
                )
            })?;
        // Keyed by a digest: the cache never holds a usable token.
        let digest_bytes = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut digest = [0u8; 32];
        digest.copy_from_slice(digest_bytes.as_ref());
        let caller = match self.tokens.get(&digest) {
            Some(cached) => cached,
            None => {
                let reviewed = self.review_token(token).await?;
                self.tokens.insert(digest, reviewed.clone());
                reviewed
            }
        };
        caller.ok_or_else(|| ApiError::Unauthenticated("the bearer token is not valid".into()))
    }

    async fn review_token(&self, token: &str) -> Result<Option<Arc<Caller>>, ApiError> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_owned(),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| ApiError::Kube(format!("TokenReview: {e}")))?;
        let Some(status) = answer.status else {
            return Ok(None);
        };
        if status.authenticated != Some(true) {
            return Ok(None);
        }
        let Some(user) = status.user else {
            return Ok(None);
        };
        let Some(username) = user.username.filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        Ok(Some(Arc::new(Caller {
            username,
            uid: user.uid.filter(|u| !u.is_empty()),
            groups: user.groups.unwrap_or_default(),
            extra: user.extra.unwrap_or_default().into_iter().collect(),
        })))
    }

    /// Ok when the caller holds `permission`, else 403 naming it.
    pub async fn authorize(
        &self,
        caller: &Arc<Caller>,
        permission: Permission,
    ) -> Result<(), ApiError> {
        let key = (caller.clone(), permission);
        let allowed = match self.reviews.get(&key) {
            Some(allowed) => allowed,
            None => {
                let allowed = self.review_access(caller, &key.1).await?;
                self.reviews.insert(key.clone(), allowed);
                allowed
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(ApiError::Forbidden(key.1.denied_message(caller)))
        }
    }

    async fn review_access(
        &self,
        caller: &Caller,
        permission: &Permission,
    ) -> Result<bool, ApiError> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(caller.username.clone()),
                uid: caller.uid.clone(),
                groups: Some(caller.groups.clone()),
                extra: Some(caller.extra.clone().into_iter().collect()),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(permission.verb.to_owned()),
                    group: Some(permission.group.clone()),
                    resource: Some(permission.resource.clone()),
                    subresource: permission.subresource.clone(),
                    namespace: permission.namespace.clone(),
                    name: permission.name.clone(),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| ApiError::Kube(format!("SubjectAccessReview: {e}")))?;
        Ok(answer
            .status
            .is_some_and(|s| s.allowed && s.denied != Some(true)))
    }

    /// A client that acts as the caller (impersonation), one per caller.
    pub fn client_for(&self, caller: &Arc<Caller>) -> Result<Client, ApiError> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((used, client)) = clients.get_mut(caller) {
            *used = Instant::now();
            return Ok(client.clone());
        }
        let mut config = self.config.clone();
        config.auth_info.impersonate = Some(caller.username.clone());
        config.auth_info.impersonate_uid = caller.uid.clone();
        config.auth_info.impersonate_groups = Some(caller.groups.clone());
        config.auth_info.impersonate_user_extra = Some(caller.extra.clone().into_iter().collect());
        let client = Client::try_from(config)
            .map_err(|e| ApiError::Internal(format!("building an impersonating client: {e}")))?;
        if clients.len() >= self.client_capacity {
            let least_recent = clients
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(caller, _)| caller.clone());
            if let Some(least_recent) = least_recent {
                clients.remove(&least_recent);
            }
        }
        clients.insert(caller.clone(), (Instant::now(), client.clone()));
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(name: &str) -> Caller {
        Caller {
            username: name.to_owned(),
            uid: None,
            groups: vec![],
            extra: BTreeMap::new(),
        }
    }

    #[test]
    fn denial_names_the_missing_permission() {
        let permission = Permission {
            verb: "list",
            group: "dbaas.io".into(),
            resource: "databaseclusters".into(),
            subresource: None,
            namespace: Some("team-a".into()),
            name: None,
        };
        assert_eq!(
            permission.denied_message(&caller("alice")),
            "user alice cannot list databaseclusters.dbaas.io in namespace team-a"
        );
        let secret = Permission {
            verb: "get",
            group: String::new(),
            resource: "secrets".into(),
            subresource: None,
            namespace: Some("team-a".into()),
            name: Some("pg-superuser".into()),
        };
        assert_eq!(
            secret.denied_message(&caller("bob")),
            "user bob cannot get secrets \"pg-superuser\" in namespace team-a"
        );
    }

    #[test]
    fn field_manager_is_bounded() {
        assert_eq!(caller("alice").field_manager(), "dbaas-server/alice");
        assert!(caller(&"é".repeat(100)).field_manager().len() <= 128);
    }
}
