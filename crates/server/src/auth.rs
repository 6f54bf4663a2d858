//! Authentication and authorization the Kubernetes way: the bearer token is
//! checked with a TokenReview, each request with a SubjectAccessReview for
//! the matching resource, verb and namespace (both answers cached briefly),
//! and writes go to the API server impersonating the caller, so the
//! cluster's own RBAC and audit log decide and record them.
//!
//! On a registered (remote) cluster the caller is not trusted to be the
//! same principal as on the management cluster: there they are
//! [`RemoteIdentity::map`]ped, like kube-apiserver's OIDC username and groups
//! prefixes: the user name and every group get a prefix (default `dbaas:`),
//! `system:` groups of the management cluster (`system:masters`,
//! `system:authenticated`, `system:serviceaccounts`, ...) are dropped, and
//! the uid and extras are not sent. So remote RBAC must name
//! `dbaas:system:serviceaccount:team-a:ci` (or `dbaas:<group>`) explicitly.
//! The remote API server itself adds `system:authenticated` to every user
//! it lets us impersonate, so the SubjectAccessReviews asked there carry it
//! too: reads and writes are judged alike.
//!
//! kube (5.0, `kube-client/src/client/config_ext.rs`) does send
//! `Impersonate-Uid` and `Impersonate-Extra-<key>` headers when
//! `impersonate_uid` / `impersonate_user_extra` are set; on the local
//! cluster both are passed on as the TokenReview named them (and the
//! SubjectAccessReview carries the same uid and extras), on remote
//! clusters neither is sent nor asked about.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Who a caller is on registered clusters.
    pub remote_identity: RemoteIdentity,
    /// Audiences the bearer tokens must be for (`--token-audiences`).
    /// Empty: the API server's own audiences (tokens kubectl would use);
    /// else each TokenReview asks for these and its answer must name one
    /// of them.
    pub token_audiences: Vec<String>,
    /// Tokens not in the cache are reviewed at most this many times a
    /// second on average (`--token-review-qps`)...
    pub token_reviews_per_second: f64,
    /// ...and at most this many at once after a quiet spell
    /// (`--token-review-burst`). Beyond it: 429 with `Retry-After`.
    pub token_review_burst: u32,
    /// How long a token the last TokenReview found valid is reviewed
    /// again without waiting for the pace above: a flood of made-up
    /// tokens cannot lock out callers whose cached answer expired. They
    /// still get a real TokenReview each time their cached answer expires
    /// (so revocation is noticed within `cache_ttl`); only digests are
    /// kept, at most `cache_capacity` of them.
    pub recently_valid_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(10),
            cache_capacity: 10_000,
            client_capacity: 256,
            remote_identity: RemoteIdentity::default(),
            token_audiences: Vec::new(),
            token_reviews_per_second: DEFAULT_TOKEN_REVIEWS_PER_SECOND,
            token_review_burst: DEFAULT_TOKEN_REVIEW_BURST,
            recently_valid_ttl: DEFAULT_RECENTLY_VALID_TTL,
        }
    }
}

pub const DEFAULT_TOKEN_REVIEWS_PER_SECOND: f64 = 20.0;
pub const DEFAULT_TOKEN_REVIEW_BURST: u32 = 100;
/// The default of [`AuthConfig::recently_valid_ttl`].
pub const DEFAULT_RECENTLY_VALID_TTL: Duration = Duration::from_secs(600);

/// A token bucket: `burst` tokens, refilled at `rate` a second.
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: if rate.is_finite() && rate > 0.0 {
                rate
            } else {
                0.0
            },
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes a token, or says in how many whole seconds one will be there.
    pub fn take(&self) -> Result<(), u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = &mut *state;
        let now = Instant::now();
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        if self.rate <= 0.0 {
            return Err(60);
        }
        let wait = ((1.0 - *tokens) / self.rate).ceil();
        // At least a second, at most an hour (and no float surprises).
        Err(if wait.is_finite() {
            (wait as u64).clamp(1, 3600)
        } else {
            3600
        })
    }
}

/// The default prefix of user and group names on registered clusters.
pub const DEFAULT_REMOTE_PREFIX: &str = "dbaas:";

/// How a caller of the management cluster is named on a registered
/// cluster (`--remote-username-prefix`, `--remote-groups-prefix`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteIdentity {
    pub username_prefix: String,
    pub groups_prefix: String,
}

impl Default for RemoteIdentity {
    fn default() -> Self {
        Self {
            username_prefix: DEFAULT_REMOTE_PREFIX.to_owned(),
            groups_prefix: DEFAULT_REMOTE_PREFIX.to_owned(),
        }
    }
}

/// The group every authenticated user is in; a remote API server adds it
/// to every user it lets us impersonate.
const ALL_AUTHENTICATED: &str = "system:authenticated";

impl RemoteIdentity {
    /// Refuses prefixes that would let a local name pass as a remote one:
    /// empty (no prefix at all) or in the reserved `system:` namespace.
    pub fn check(&self) -> Result<(), String> {
        for (flag, prefix) in [
            ("--remote-username-prefix", &self.username_prefix),
            ("--remote-groups-prefix", &self.groups_prefix),
        ] {
            if prefix.is_empty() {
                return Err(format!(
                    "{flag} must not be empty: remote clusters would take local names as their own"
                ));
            }
            if prefix.starts_with("system:") {
                return Err(format!(
                    "{flag} {prefix:?} must not start with \"system:\" (reserved by Kubernetes)"
                ));
            }
            if axum::http::HeaderValue::from_str(prefix).is_err() {
                return Err(format!("{flag} {prefix:?} is not valid in an HTTP header"));
            }
        }
        Ok(())
    }

    /// `caller` as a registered cluster sees it: prefixed user name,
    /// prefixed groups without the management cluster's `system:` groups,
    /// no uid, no extras.
    pub fn map(&self, caller: &Caller) -> Caller {
        Caller {
            username: format!("{}{}", self.username_prefix, caller.username),
            uid: None,
            groups: caller
                .groups
                .iter()
                .filter(|g| !g.starts_with("system:"))
                .map(|g| format!("{}{g}", self.groups_prefix))
                .collect(),
            extra: BTreeMap::new(),
        }
    }
}

/// Which identity an [`Auth`] asks about and impersonates.
#[derive(Clone, Debug)]
enum Identity {
    /// The management cluster: the caller as its TokenReview named them.
    Local,
    /// A registered cluster: the caller mapped by the prefixes.
    Remote(RemoteIdentity),
}

type TokenDigest = [u8; 32];

pub struct Auth {
    /// The server's own identity: TokenReview and SubjectAccessReview.
    client: Client,
    /// The server's own connection settings, the base of impersonating clients.
    config: kube::Config,
    identity: Identity,
    tokens: TtlCache<TokenDigest, Option<Arc<Caller>>>,
    /// Digests of tokens whose last TokenReview found them valid: their
    /// next review skips `new_tokens`.
    recently_valid: TtlCache<TokenDigest, ()>,
    reviews: TtlCache<(Arc<Caller>, Permission), bool>,
    clients: Mutex<HashMap<Arc<Caller>, (Instant, Client)>>,
    client_capacity: usize,
    audiences: Vec<String>,
    /// Paces the TokenReviews of tokens not in `tokens`.
    new_tokens: TokenBucket,
    /// TokenReviews sent so far.
    token_reviews: AtomicU64,
}

impl Auth {
    /// Authorization on the management cluster, for callers as they are.
    pub fn new(client: Client, config: kube::Config, settings: &AuthConfig) -> Self {
        Self::with_identity(client, config, settings, Identity::Local)
    }

    /// Authorization on a registered cluster, through its registered
    /// credentials, for callers mapped by `settings.remote_identity`.
    pub fn remote(client: Client, config: kube::Config, settings: &AuthConfig) -> Self {
        let identity = Identity::Remote(settings.remote_identity.clone());
        Self::with_identity(client, config, settings, identity)
    }

    fn with_identity(
        client: Client,
        config: kube::Config,
        settings: &AuthConfig,
        identity: Identity,
    ) -> Self {
        Self {
            client,
            config,
            identity,
            tokens: TtlCache::new(settings.cache_ttl, settings.cache_capacity),
            recently_valid: TtlCache::new(settings.recently_valid_ttl, settings.cache_capacity),
            reviews: TtlCache::new(settings.cache_ttl, settings.cache_capacity),
            clients: Mutex::new(HashMap::new()),
            client_capacity: settings.client_capacity.max(1),
            audiences: settings.token_audiences.clone(),
            new_tokens: TokenBucket::new(
                settings.token_reviews_per_second,
                settings.token_review_burst,
            ),
            token_reviews: AtomicU64::new(0),
        }
    }

    /// How many TokenReviews this server has sent.
    pub fn token_reviews(&self) -> u64 {
        self.token_reviews.load(Ordering::Relaxed)
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
                // A token not seen lately costs a TokenReview: paced, so a
                // flood of made-up tokens cannot become a flood of reviews.
                // A token found valid lately is reviewed again unpaced, so
                // that flood cannot lock its callers out either.
                if self.recently_valid.get(&digest).is_none() {
                    self.new_tokens.take().map_err(|retry_after_seconds| {
                        ApiError::TooManyTokenReviews {
                            retry_after_seconds,
                        }
                    })?;
                }
                let reviewed = self.review_token(token).await?;
                if reviewed.is_some() {
                    self.recently_valid.insert(digest, ());
                } else {
                    self.recently_valid.remove(&digest);
                }
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
                audiences: (!self.audiences.is_empty()).then(|| self.audiences.clone()),
            },
            ..TokenReview::default()
        };
        self.token_reviews.fetch_add(1, Ordering::Relaxed);
        let api: Api<TokenReview> = Api::all(self.client.clone());
        // The caller is not authenticated yet: the failure's details (who
        // the server is, what it may not do) are for the log, not for them.
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|err| {
                tracing::warn!(%err, "TokenReview failed");
                ApiError::Kube("the bearer token could not be reviewed; try again later".into())
            })?;
        let Some(status) = answer.status else {
            return Ok(None);
        };
        if status.authenticated != Some(true) {
            return Ok(None);
        }
        // An authenticator that ignores audiences answers without them:
        // asked for audiences, only an answer naming one of them counts.
        if !self.audiences.is_empty() {
            let granted = status.audiences.as_deref().unwrap_or_default();
            if !granted.iter().any(|a| self.audiences.contains(a)) {
                return Ok(None);
            }
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

    /// The caller as the cluster of this `Auth` knows them.
    pub fn identity_of(&self, caller: &Caller) -> Caller {
        match &self.identity {
            Identity::Local => caller.clone(),
            Identity::Remote(remote) => remote.map(caller),
        }
    }

    /// Ok when the caller holds `permission`, else 403 naming it (and the
    /// name the caller has on this cluster).
    pub async fn authorize(
        &self,
        caller: &Arc<Caller>,
        permission: Permission,
    ) -> Result<(), ApiError> {
        if self.allows(caller, &permission).await? {
            Ok(())
        } else {
            let named = self.identity_of(caller);
            Err(ApiError::Forbidden(permission.denied_message(&named)))
        }
    }

    /// Whether the caller holds `permission`.
    pub async fn allows(
        &self,
        caller: &Arc<Caller>,
        permission: &Permission,
    ) -> Result<bool, ApiError> {
        let key = (caller.clone(), permission.clone());
        match self.reviews.get(&key) {
            Some(allowed) => Ok(allowed),
            None => {
                let allowed = self.review_access(caller, permission).await?;
                self.reviews.insert(key, allowed);
                Ok(allowed)
            }
        }
    }

    /// Whether the caller holds `permission`: from the cache when it is
    /// there, else asked, without keeping the answer. For questions asked in
    /// bulk (the console's access summary), which would otherwise push
    /// everyone's answers out of the cache.
    pub async fn allows_uncached(
        &self,
        caller: &Arc<Caller>,
        permission: &Permission,
    ) -> Result<bool, ApiError> {
        match self.reviews.get(&(caller.clone(), permission.clone())) {
            Some(allowed) => Ok(allowed),
            None => self.review_access(caller, permission).await,
        }
    }

    async fn review_access(
        &self,
        caller: &Caller,
        permission: &Permission,
    ) -> Result<bool, ApiError> {
        let mut subject = self.identity_of(caller);
        if matches!(self.identity, Identity::Remote(_)) {
            // What the remote API server adds to every impersonated user.
            subject.groups.push(ALL_AUTHENTICATED.to_owned());
        }
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(subject.username),
                uid: subject.uid,
                groups: Some(subject.groups),
                extra: Some(subject.extra.into_iter().collect()),
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
            .map_err(|err| match self.identity {
                Identity::Local => ApiError::Kube(format!("SubjectAccessReview: {err}")),
                // A registered cluster's answer is not passed on.
                Identity::Remote(_) => {
                    tracing::warn!(%err, "SubjectAccessReview on a registered cluster failed");
                    ApiError::Kube(
                        "the registered cluster's SubjectAccessReview failed; try again later"
                            .into(),
                    )
                }
            })?;
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
        let subject = self.identity_of(caller);
        let mut config = self.config.clone();
        config.auth_info.impersonate = Some(subject.username);
        config.auth_info.impersonate_uid = subject.uid;
        config.auth_info.impersonate_groups = Some(subject.groups);
        config.auth_info.impersonate_user_extra = Some(subject.extra.into_iter().collect());
        // kube's error may carry the server's proxy URL (and its credentials).
        let client = Client::try_from(config).map_err(|err| {
            tracing::warn!(
                cause = crate::clusters::client_build_failure(&err),
                "cannot build an impersonating client"
            );
            ApiError::Internal("building an impersonating client failed".into())
        })?;
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
    fn remote_names_are_prefixed_and_system_groups_stay_home() {
        let caller = Caller {
            username: "system:serviceaccount:team-a:ci".into(),
            uid: Some("0b7e".into()),
            groups: vec![
                "system:masters".into(),
                "system:serviceaccounts".into(),
                "system:serviceaccounts:team-a".into(),
                "system:authenticated".into(),
                "dbas".into(),
            ],
            extra: BTreeMap::from([(
                "authentication.kubernetes.io/pod-name".to_owned(),
                vec!["ci-0".to_owned()],
            )]),
        };
        let remote = RemoteIdentity::default().map(&caller);
        assert_eq!(
            remote,
            Caller {
                username: "dbaas:system:serviceaccount:team-a:ci".into(),
                uid: None,
                groups: vec!["dbaas:dbas".into()],
                extra: BTreeMap::new(),
            }
        );
        let custom = RemoteIdentity {
            username_prefix: "mgmt-east#".into(),
            groups_prefix: "mgmt-east:".into(),
        };
        let mapped = custom.map(&caller);
        assert_eq!(mapped.username, "mgmt-east#system:serviceaccount:team-a:ci");
        assert_eq!(mapped.groups, ["mgmt-east:dbas"]);
    }

    #[test]
    fn remote_prefixes_must_separate_the_names() {
        assert!(RemoteIdentity::default().check().is_ok());
        for (user, group) in [("", "dbaas:"), ("dbaas:", ""), ("system:x:", "dbaas:")] {
            let identity = RemoteIdentity {
                username_prefix: user.into(),
                groups_prefix: group.into(),
            };
            assert!(identity.check().is_err(), "{identity:?}");
        }
    }

    #[test]
    fn token_bucket_allows_a_burst_then_paces() {
        let bucket = TokenBucket::new(1.0, 3);
        for _ in 0..3 {
            assert_eq!(bucket.take(), Ok(()));
        }
        assert_eq!(bucket.take(), Err(1));
        let slow = TokenBucket::new(0.1, 1);
        assert_eq!(slow.take(), Ok(()));
        assert_eq!(slow.take(), Err(10));
        let never = TokenBucket::new(0.0, 1);
        assert_eq!(never.take(), Ok(()));
        assert_eq!(never.take(), Err(60));
    }

    #[test]
    fn field_manager_is_bounded() {
        assert_eq!(caller("alice").field_manager(), "dbaas-server/alice");
        assert!(caller(&"é".repeat(100)).field_manager().len() <= 128);
    }
}
