//! The DatabaseClaim controller: choose a server ([`matching`]) -> make the
//! database, owner role and logins on it (`dbaas-sql`, idempotent and
//! ownership-checked) -> decide whether the Secret needs new credentials
//! ([`rotation`], pure) -> set the password, prove it logs in, write the
//! Secret ([`secret`]) -> status. A claim with `deletePolicy: delete` drops
//! what it made through a finalizer; `retain` (the default) keeps it.
//! A claim that names a template and matches no server gets a cluster of
//! its own ([`provision`]).

pub mod matching;
pub mod provision;
pub mod rotation;
pub mod secret;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dbaas_api::claim::{ANNOTATION_ROTATE, ConnectionInfo, DatabaseClaimStatus, DeletePolicy};
use dbaas_api::common::{FIELD_MANAGER, condition};
use dbaas_api::server::CreateDatabaseStrategy;
use dbaas_api::{DatabaseClaim, DatabaseServer};
use dbaas_sql::{
    Admin, ClaimNames, ClaimOwner, Connection, PasswordPolicy, SqlError, check_login,
    generate_password,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use secrecy::SecretString;
use serde_json::json;
use tracing::{debug, info, warn};

use crate::cluster::status::set_condition;
use crate::metrics::{ClaimMetrics, Reason};
use crate::server::endpoint::{ConnectTo, ResolvedServer, resolve};
use rotation::{Decision, Observed, SecretView};

/// Finalizer that drops a `deletePolicy: delete` claim's database and users.
pub const FINALIZER: &str = "dbaas.io/claim-cleanup";
/// Annotation on the claim's Secret: when it last switched credentials. The
/// Secret carries it so the grace period holds even if the status write
/// after a switch was lost.
pub const ANNOTATION_ROTATED_AT: &str = "dbaas.io/rotated-at";
/// Annotation on the claim's Secret: the `dbaas.io/rotate` request value the
/// last switch served. Read fresh with the Secret, it keeps a request from
/// being served twice when the claim in the cache lags behind its status.
pub const ANNOTATION_ROTATION_REQUEST: &str = "dbaas.io/rotation-request";
/// How long one database step may take before the server counts as down.
const SQL_TIMEOUT: Duration = Duration::from_secs(15);
/// How often a healthy claim's credentials are checked even when no
/// rotation is due (someone may have changed or dropped its login).
const RECHECK_HEALTHY: Duration = Duration::from_secs(600);

/// How claims are served.
#[derive(Debug, Clone)]
pub struct ClaimsConfig {
    /// Length and complexity of generated passwords.
    pub password: PasswordPolicy,
    /// Rotation period of claims that set none.
    pub rotation_period: Duration,
    /// Minimum time between two switches of a claim's Secret: the kubelet's
    /// Secret refresh plus the app's reload. The login apps used before a
    /// switch keeps its password at least this long.
    pub rotation_grace: Duration,
    /// Redirects for dialling servers (see [`ConnectTo`]).
    pub connect_to: Vec<ConnectTo>,
}

impl Default for ClaimsConfig {
    fn default() -> Self {
        Self {
            password: PasswordPolicy {
                min_length: 24,
                complexity: true,
            },
            rotation_period: Duration::from_secs(60 * 60),
            rotation_grace: Duration::from_secs(5 * 60),
            connect_to: Vec::new(),
        }
    }
}

/// What claim reconciles share.
pub struct ClaimContext {
    pub client: Client,
    /// DatabaseServers, from a watch.
    pub servers: Store<DatabaseServer>,
    pub config: ClaimsConfig,
    pub metrics: Arc<ClaimMetrics>,
    /// Consecutive failures per claim, for back-off.
    failures: Mutex<HashMap<ObjectRef<DatabaseClaim>, u32>>,
    /// The last full pass of each claim and until when it holds.
    passes: Mutex<HashMap<ObjectRef<DatabaseClaim>, (MemoKey, Instant)>>,
}

impl ClaimContext {
    pub fn new(
        client: Client,
        servers: Store<DatabaseServer>,
        config: ClaimsConfig,
        metrics: Arc<ClaimMetrics>,
    ) -> Self {
        Self {
            client,
            servers,
            config,
            metrics,
            failures: Mutex::new(HashMap::new()),
            passes: Mutex::new(HashMap::new()),
        }
    }

    /// Remembers a full pass that holds for `valid_for` unless `key` changes.
    fn verified(&self, claim: &DatabaseClaim, key: MemoKey, valid_for: Duration) {
        if let Ok(mut passes) = self.passes.lock() {
            passes.insert(
                ObjectRef::from_obj(claim),
                (key, Instant::now() + valid_for),
            );
        }
    }

    /// How long the last full pass still holds, if nothing it depended on
    /// changed.
    fn still_verified(&self, claim: &DatabaseClaim, key: &MemoKey) -> Option<Duration> {
        let passes = self.passes.lock().ok()?;
        let (known, until) = passes.get(&ObjectRef::from_obj(claim))?;
        let left = until.checked_duration_since(Instant::now())?;
        (known == key && !left.is_zero()).then_some(left)
    }

    /// Forgets the last full pass of a claim that is now failing.
    fn forget_passes_of(&self, claim: &DatabaseClaim) {
        if let Ok(mut passes) = self.passes.lock() {
            passes.remove(&ObjectRef::from_obj(claim));
        }
    }

    /// Forgets a deleted claim.
    fn forget(&self, claim: &DatabaseClaim) {
        let key = ObjectRef::from_obj(claim);
        if let Ok(mut passes) = self.passes.lock() {
            passes.remove(&key);
        }
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&key);
        }
    }

    /// The DatabaseServers a claim may use: those of its namespace.
    fn servers_of(&self, claim: &DatabaseClaim) -> Vec<DatabaseServer> {
        let namespace = claim.namespace();
        self.servers
            .state()
            .iter()
            .filter(|s| s.namespace() == namespace)
            .map(|s| s.as_ref().clone())
            .collect()
    }

    /// 2 s, 4 s, 8 s ... up to 5 min for a claim that keeps failing.
    fn backoff(&self, claim: &DatabaseClaim) -> Duration {
        let attempts = self.failures.lock().map_or(0, |mut failures| {
            let n = failures.entry(ObjectRef::from_obj(claim)).or_insert(0);
            *n = n.saturating_add(1);
            *n
        });
        Duration::from_secs(2u64.saturating_pow(attempts.min(9))).min(Duration::from_secs(300))
    }

    fn succeeded(&self, claim: &DatabaseClaim) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&ObjectRef::from_obj(claim));
        }
    }
}

/// A reconcile failed on Kubernetes I/O, or cleanup could not finish; the
/// controller retries it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} of DatabaseClaim {claim}: {source}")]
    Kube {
        what: &'static str,
        claim: String,
        #[source]
        source: kube::Error,
    },
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("cannot drop the database of DatabaseClaim {claim} yet: {message}")]
    CleanupBlocked { claim: String, message: String },
}

impl crate::metrics::ErrorReason for Error {
    fn reason(&self) -> &'static str {
        match self {
            Self::Kube { .. } => "kube",
            Self::Finalizer(_) => "finalizer",
            Self::CleanupBlocked { .. } => "cleanup-blocked",
        }
    }
}

/// Why a claim is waiting, in words for its status and a bounded reason.
#[derive(Debug)]
struct Blocked {
    reason: &'static str,
    message: String,
    /// None: retry with back-off; Some: after this long (or only on change
    /// when it is `Duration::MAX`).
    retry: Option<Duration>,
}

impl Blocked {
    fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            retry: None,
        }
    }

    fn after(mut self, delay: Duration) -> Self {
        self.retry = Some(delay);
        self
    }
}

impl From<SqlError> for Blocked {
    fn from(err: SqlError) -> Self {
        let transient = err.is_transient();
        let blocked = Blocked::new(err.reason(), err.to_string());
        if transient {
            blocked
        } else {
            // A refusal (another claim owns the name, a bad name) changes
            // only when someone acts; look again now and then.
            blocked.after(Duration::from_secs(120))
        }
    }
}

enum Failure {
    Blocked(Blocked),
    Kube(Error),
    /// A cluster and server were made for the claim; it waits for them.
    Provisioning(provision::Provisioned),
}

impl From<Blocked> for Failure {
    fn from(blocked: Blocked) -> Self {
        Self::Blocked(blocked)
    }
}

impl From<SqlError> for Failure {
    fn from(err: SqlError) -> Self {
        Self::Blocked(err.into())
    }
}

/// Runs a database step with [`SQL_TIMEOUT`].
async fn timed<T>(
    what: &str,
    step: impl std::future::Future<Output = Result<T, SqlError>>,
) -> Result<T, Blocked> {
    match tokio::time::timeout(SQL_TIMEOUT, step).await {
        Ok(result) => result.map_err(Blocked::from),
        Err(_) => Err(Blocked::new(
            "ServerUnreachable",
            format!("{what} took longer than {}s", SQL_TIMEOUT.as_secs()),
        )),
    }
}

/// Reconciles one claim.
pub async fn reconcile(claim: Arc<DatabaseClaim>, ctx: Arc<ClaimContext>) -> Result<Action, Error> {
    let namespace = claim.namespace().unwrap_or_default();
    let api: Api<DatabaseClaim> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, FINALIZER, claim, |event| async {
        match event {
            Event::Apply(claim) => apply(claim, ctx.clone()).await,
            Event::Cleanup(claim) => cleanup(claim, ctx.clone()).await,
        }
    })
    .await
    .map_err(|err| Error::Finalizer(Box::new(err)))
}

/// Kubernetes I/O errors and blocked cleanups are retried with back-off.
pub fn error_policy(claim: Arc<DatabaseClaim>, error: &Error, ctx: Arc<ClaimContext>) -> Action {
    debug!("{error}");
    Action::requeue(ctx.backoff(&claim))
}

/// What a successful pass found and did.
struct Done {
    status: DatabaseClaimStatus,
    recheck: Duration,
    /// What the pass verified, to skip the next pass if nothing changes.
    memo: Option<MemoKey>,
}

/// What a full pass depended on: when none of it changed, the next event
/// (our own Secret or status write) needs no trip to the database server.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MemoKey {
    generation: Option<i64>,
    rotate_request: Option<String>,
    secret_version: Option<String>,
    server_version: Option<String>,
}

async fn apply(claim: Arc<DatabaseClaim>, ctx: Arc<ClaimContext>) -> Result<Action, Error> {
    let now = Timestamp::now();
    // The cache may not have our last status write yet (which login is
    // active, which request was served): decide on the stored object.
    let api: Api<DatabaseClaim> =
        Api::namespaced(ctx.client.clone(), &claim.namespace().unwrap_or_default());
    let claim = match api.get_opt(&claim.name_any()).await {
        Ok(Some(fresh)) => Arc::new(fresh),
        Ok(None) => return Ok(Action::await_change()),
        Err(source) => {
            return Err(Error::Kube {
                what: "reading",
                claim: claim.name_any(),
                source,
            });
        }
    };
    match provide(&claim, &ctx, now).await {
        Ok(done) => {
            ctx.succeeded(&claim);
            if let Some(memo) = done.memo {
                ctx.verified(&claim, memo, done.recheck);
            }
            write_status(&ctx, &claim, done.status).await?;
            Ok(Action::requeue(done.recheck))
        }
        Err(Failure::Kube(err)) => Err(err),
        Err(Failure::Provisioning(made)) => {
            let mut status = claim.status.clone().unwrap_or_default();
            status.observed_generation = claim.metadata.generation;
            status.provisioned_cluster = Some(made.cluster.clone());
            status.server = Some(made.server);
            status.error = None;
            set_condition(
                &mut status.conditions,
                condition::READY,
                false,
                "ProvisioningCluster",
                format!(
                    "no server matched; DatabaseCluster {} was made for this claim from its shape",
                    made.cluster
                ),
                claim.metadata.generation,
                &Time(now),
            );
            write_status(&ctx, &claim, status).await?;
            Ok(Action::requeue(Duration::from_secs(5)))
        }
        Err(Failure::Blocked(blocked)) => {
            ctx.forget_passes_of(&claim);
            ctx.metrics
                .errors
                .get_or_create(&Reason {
                    reason: blocked.reason,
                })
                .inc();
            debug!(claim = %claim.name_any(), reason = blocked.reason, "claim waiting: {}", blocked.message);
            let mut status = claim.status.clone().unwrap_or_default();
            status.observed_generation = claim.metadata.generation;
            status.error = Some(blocked.message.clone());
            set_condition(
                &mut status.conditions,
                condition::READY,
                false,
                blocked.reason,
                blocked.message,
                claim.metadata.generation,
                &Time(now),
            );
            write_status(&ctx, &claim, status).await?;
            Ok(match blocked.retry {
                Some(Duration::MAX) => Action::await_change(),
                Some(delay) => Action::requeue(delay),
                None => Action::requeue(ctx.backoff(&claim)),
            })
        }
    }
}

/// Writes the status when it differs from what is stored.
async fn write_status(
    ctx: &ClaimContext,
    claim: &DatabaseClaim,
    status: DatabaseClaimStatus,
) -> Result<(), Error> {
    if claim.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<DatabaseClaim> =
        Api::namespaced(ctx.client.clone(), &claim.namespace().unwrap_or_default());
    let patch = json!({"apiVersion": "dbaas.io/v1", "kind": "DatabaseClaim", "status": status});
    api.patch_status(
        &claim.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
    .map_err(|source| Error::Kube {
        what: "writing the status",
        claim: claim.name_any(),
        source,
    })
}

fn owner_of(claim: &DatabaseClaim) -> ClaimOwner {
    ClaimOwner {
        namespace: claim.namespace().unwrap_or_default(),
        name: claim.name_any(),
        uid: claim.metadata.uid.clone().unwrap_or_default(),
    }
}

fn database_of(claim: &DatabaseClaim) -> &str {
    claim
        .spec
        .db_name_override
        .as_deref()
        .unwrap_or(&claim.spec.database_name)
}

/// The server the claim uses (choosing one, or provisioning one).
async fn server_for(
    claim: &DatabaseClaim,
    ctx: &ClaimContext,
) -> Result<(Arc<DatabaseServer>, Option<String>), Failure> {
    let servers = ctx.servers_of(claim);
    // A claim with a cluster of its own uses that cluster's server.
    if let Some(status) = &claim.status
        && status.provisioned_cluster.is_some()
        && let Some(bound) = &status.server
    {
        return servers
            .into_iter()
            .find(|s| &s.name_any() == bound)
            .map(|s| (Arc::new(s), None))
            .ok_or_else(|| {
                Failure::Blocked(
                    Blocked::new(
                        "ProvisioningServer",
                        format!("waiting for DatabaseServer {bound}, made for this claim"),
                    )
                    .after(Duration::from_secs(5)),
                )
            });
    }
    match matching::choose(claim, &servers) {
        Ok(matched) => Ok((Arc::new(matched.server.clone()), matched.label)),
        Err(no_match) => {
            let may_provision = claim.spec.shape.is_some()
                && matches!(
                    no_match,
                    matching::NoMatch::NoPrefix { .. }
                        | matching::NoMatch::Ambiguous { count: 0, .. }
                );
            if may_provision {
                Err(Failure::Provisioning(
                    provision::ensure(&ctx.client, claim).await?,
                ))
            } else {
                Err(Failure::Blocked(Blocked::new(
                    "ServerNotFound",
                    no_match.to_string(),
                )))
            }
        }
    }
}

/// Makes sure the database, users and Secret exist and are current.
async fn provide(
    claim: &DatabaseClaim,
    ctx: &ClaimContext,
    now: Timestamp,
) -> Result<Done, Failure> {
    let started = Instant::now();
    let (server, matched_label) = server_for(claim, ctx).await?;
    let resolved = resolve(&ctx.client, &server, &ctx.config.connect_to)
        .await
        .map_err(|err| Blocked::new(err.reason(), err.to_string()))?;
    let engine = resolved.admin.engine;
    let database = database_of(claim).to_owned();
    let names = ClaimNames::new(engine, &database, &claim.spec.username)
        .map_err(|err| Blocked::new("InvalidName", err.to_string()).after(Duration::MAX))?;
    let procedures = server.spec.stored_procedures.clone().unwrap_or_default();
    let procedure_mode = procedures.create.is_some();
    let owner = owner_of(claim);

    // Everything that can refuse without touching the server comes first,
    // so a refused claim leaves nothing behind there.
    let secrets: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &claim.namespace().unwrap_or_default());
    let existing = secrets
        .get_opt(&claim.spec.secret_name)
        .await
        .map_err(|source| {
            Failure::Kube(Error::Kube {
                what: "reading the Secret",
                claim: claim.name_any(),
                source,
            })
        })?;
    if let Some(existing) = &existing
        && !secret::owned_by(existing, claim)
    {
        return Err(Blocked::new(
            "SecretConflict",
            format!(
                "Secret {} exists and does not belong to this claim; delete it or choose another secretName",
                claim.spec.secret_name
            ),
        )
        .after(Duration::from_secs(60))
        .into());
    }
    let connection_for = |username: &str, password: SecretString| Connection {
        engine,
        host: claim
            .spec
            .host
            .clone()
            .unwrap_or_else(|| resolved.public_host.clone()),
        port: claim
            .spec
            .port
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(resolved.public_port),
        database: database.clone(),
        username: username.to_owned(),
        password,
        tls: resolved.admin.tls,
        trusted_ca: resolved.admin.trusted_ca.clone(),
    };
    secret::render(
        claim,
        &connection_for(&claim.spec.username, SecretString::from("x")),
        &BTreeMap::new(),
    )
    .map_err(|err| Blocked::new("SecretTemplateInvalid", err.to_string()).after(Duration::MAX))?;

    // Nothing changed since the last full check (our own Secret and status
    // writes come back as events): no need to ask the server again.
    let memo = MemoKey {
        generation: claim.metadata.generation,
        rotate_request: claim.annotations().get(ANNOTATION_ROTATE).cloned(),
        secret_version: existing
            .as_ref()
            .and_then(|s| s.metadata.resource_version.clone()),
        server_version: server.metadata.resource_version.clone(),
    };
    if let Some(recheck) = ctx.still_verified(claim, &memo)
        && let Some(status) = claim.status.clone()
    {
        return Ok(Done {
            status,
            recheck,
            memo: None,
        });
    }

    // In stored-procedure mode the procedures own the users: one login,
    // whatever name the create procedure published.
    let existing_data = existing.as_ref().map(secret::data_of);
    let published_user = existing_data
        .as_ref()
        .and_then(|data| data.get("username").cloned());
    let logins = if procedure_mode {
        let user = published_user
            .clone()
            .unwrap_or_else(|| claim.spec.username.clone());
        [user.clone(), user]
    } else {
        names.logins.clone()
    };

    let mut admin = timed("connecting as admin", Admin::connect(&resolved.admin)).await?;
    admin.set_create_database_strategy(server.spec.create_database_strategy.map(|strategy| {
        match strategy {
            CreateDatabaseStrategy::WalLog => dbaas_sql::CreateDatabaseStrategy::WalLog,
            CreateDatabaseStrategy::FileCopy => dbaas_sql::CreateDatabaseStrategy::FileCopy,
        }
    }));
    if procedure_mode {
        // The procedures receive only names: our records say whose they are.
        timed(
            "recording the claim's names",
            admin.hold_procedure_names(&owner, &database, &claim.spec.username),
        )
        .await?;
    } else {
        timed(
            "creating the database and users",
            admin.ensure_claim(&owner, &names),
        )
        .await?;
    }

    let (view, current_password, secret_rotated_at, secret_request) =
        match (&existing, &existing_data) {
            (Some(existing), Some(data)) => {
                let view = inspect(
                    data,
                    claim,
                    &logins,
                    procedure_mode,
                    &resolved,
                    &connection_for,
                )
                .await;
                let annotations = existing.annotations();
                let rotated_at = annotations
                    .get(ANNOTATION_ROTATED_AT)
                    .and_then(|t| t.parse::<Timestamp>().ok());
                let request = annotations.get(ANNOTATION_ROTATION_REQUEST).cloned();
                (
                    Some(view),
                    data.get("password").cloned(),
                    rotated_at,
                    request,
                )
            }
            _ => (None, None, None, None),
        };
    let status = claim.status.clone().unwrap_or_default();
    let handled_request = secret_request.or_else(|| status.handled_rotate_request.clone());
    let last_rotation = [
        status.last_rotation.as_ref().map(|t| t.0),
        secret_rotated_at,
    ]
    .into_iter()
    .flatten()
    .max();
    let period = claim
        .spec
        .rotation_minutes
        .and_then(|m| u64::try_from(m).ok())
        .map_or(ctx.config.rotation_period, |m| Duration::from_secs(m * 60));
    let rotate_request = claim
        .annotations()
        .get(ANNOTATION_ROTATE)
        .map(String::as_str);
    let decision = rotation::decide(&Observed {
        logins: &logins,
        last_active: status.active_login.as_deref(),
        secret: view,
        last_rotation,
        rotate_request,
        handled_request: handled_request.as_deref(),
        period,
        grace: ctx.config.rotation_grace,
        now,
    });

    let mut next = status.clone();
    next.observed_generation = claim.metadata.generation;
    next.server = Some(server.name_any());
    if matched_label.is_some() || next.matched_label.is_none() {
        next.matched_label = matched_label;
    }
    next.handled_rotate_request = handled_request.clone();
    let mut recheck = RECHECK_HEALTHY;
    let mut ready_reason = "Ready";
    // The Secret says which login apps hold; status only mirrors it.
    let mut active = published_user
        .filter(|u| logins.contains(u))
        .or_else(|| status.active_login.clone());
    let mut secret_version = memo.secret_version.clone();
    match decision {
        Decision::Keep { recheck_in } => {
            recheck = recheck.min(recheck_in.max(Duration::from_secs(1)));
        }
        Decision::WaitForGrace { retry_in } => {
            ready_reason = "RotationWaitingForGrace";
            recheck = retry_in.max(Duration::from_secs(1));
        }
        Decision::Rewrite { login } => {
            let password = SecretString::from(current_password.unwrap_or_default());
            let data = secret::render(claim, &connection_for(&login, password), &BTreeMap::new())
                .map_err(|err| {
                Blocked::new("SecretTemplateInvalid", err.to_string()).after(Duration::MAX)
            })?;
            let rotated_at = last_rotation.unwrap_or(now);
            secret_version = apply_secret(
                &secrets,
                claim,
                data,
                rotated_at,
                handled_request.as_deref(),
            )
            .await?;
            next.connection_info_updated_at = Some(Time(now));
            active = Some(login);
        }
        Decision::Switch { login, reason } => {
            let rotation_started = Instant::now();
            let password = generate_password(&ctx.config.password).map_err(|err| {
                Blocked::new("PasswordPolicyInvalid", err.to_string()).after(Duration::MAX)
            })?;
            let first = status.db_created_at.is_none();
            let output = if let Some(procedure) = procedures.create.as_deref().filter(|_| first) {
                timed(
                    "calling the create procedure",
                    admin.call_create(procedure, &database, &claim.spec.username, &password),
                )
                .await?
            } else if procedure_mode {
                let procedure = procedures.rotate.as_deref().ok_or_else(|| {
                    Blocked::new(
                        "StoredProcedureMissing",
                        "the server's storedProcedures has no rotate procedure, so this claim's credentials cannot be renewed",
                    )
                    .after(Duration::from_secs(300))
                })?;
                timed(
                    "calling the rotate procedure",
                    admin.call_rotate(procedure, &database, &claim.spec.username, &password),
                )
                .await?
            } else {
                timed(
                    "setting the new password",
                    admin.set_password(&owner, &names, &login, &password),
                )
                .await?;
                BTreeMap::new()
            };
            // A procedure may say which user and database the app gets.
            let published_login = output
                .get("username")
                .cloned()
                .unwrap_or_else(|| login.clone());
            let published_database = output
                .get("database")
                .map_or(database.as_str(), String::as_str);
            // Publish only credentials that are proven to log in.
            timed(
                "logging in with the new credentials",
                check_login(&resolved.as_user(
                    &published_login,
                    password.clone(),
                    published_database,
                )),
            )
            .await?;
            let mut connection = connection_for(&published_login, password);
            connection.database = published_database.to_owned();
            let data = secret::render(claim, &connection, &output).map_err(|err| {
                Blocked::new("SecretTemplateInvalid", err.to_string()).after(Duration::MAX)
            })?;
            // The grace period runs from the moment the Secret switches.
            let switched_at = Timestamp::now();
            // Any switch gives new credentials, so it serves a pending request.
            let served = rotate_request.or(handled_request.as_deref());
            secret_version = apply_secret(&secrets, claim, data, switched_at, served).await?;
            info!(claim = %claim.name_any(), namespace = %owner.namespace, login = %published_login, reason = reason.as_str(), "claim credentials published");
            ctx.metrics
                .rotations
                .get_or_create(&Reason {
                    reason: reason.as_str(),
                })
                .inc();
            if first {
                ctx.metrics.users_created.inc();
                ctx.metrics
                    .provision_seconds
                    .observe(started.elapsed().as_secs_f64());
                next.db_created_at = Some(Time(now));
            } else {
                ctx.metrics
                    .rotation_seconds
                    .observe(rotation_started.elapsed().as_secs_f64());
            }
            next.last_rotation = Some(Time(switched_at));
            next.connection_info_updated_at = Some(Time(switched_at));
            next.handled_rotate_request = served.map(str::to_owned);
            active = Some(published_login);
            recheck = recheck.min(period);
        }
    }
    next.db_created_at = next.db_created_at.or(Some(Time(now)));
    next.active_login = active.clone();
    next.connection_info = Some(ConnectionInfo {
        host: claim
            .spec
            .host
            .clone()
            .unwrap_or_else(|| resolved.public_host.clone()),
        port: claim.spec.port.unwrap_or(i32::from(resolved.public_port)),
        database: database.clone(),
        username: active.unwrap_or_default(),
        ssl_mode: resolved.admin.tls.as_libpq().to_owned(),
    });
    next.error = None;
    set_condition(
        &mut next.conditions,
        condition::READY,
        true,
        ready_reason,
        format!(
            "database {database} on DatabaseServer {}; credentials in Secret {}",
            server.name_any(),
            claim.spec.secret_name
        ),
        claim.metadata.generation,
        &Time(now),
    );
    Ok(Done {
        status: next,
        recheck,
        memo: Some(MemoKey {
            secret_version,
            ..memo
        }),
    })
}

/// What the existing Secret holds, and whether its credentials log in.
async fn inspect(
    data: &BTreeMap<String, String>,
    claim: &DatabaseClaim,
    logins: &[String; 2],
    procedure_mode: bool,
    resolved: &ResolvedServer,
    connection_for: &impl Fn(&str, SecretString) -> Connection,
) -> SecretView {
    let username = data.get("username").cloned();
    let password = data.get("password").filter(|p| !p.is_empty()).cloned();
    let ours = username
        .as_deref()
        .is_some_and(|u| procedure_mode || logins.iter().any(|l| l == u));
    let (fields_current, login_works) = match (&username, &password) {
        (Some(user), Some(password)) if ours => {
            let fields_current = procedure_mode
                || secret::render(
                    claim,
                    &connection_for(user, SecretString::from(password.clone())),
                    &BTreeMap::new(),
                )
                // Only the keys we write: another writer's extra key is theirs.
                .is_ok_and(|wanted| wanted.iter().all(|(k, v)| data.get(k) == Some(v)));
            let database = data
                .get("database")
                .map_or(database_of(claim), String::as_str);
            let endpoint = resolved.as_user(user, SecretString::from(password.clone()), database);
            let works = match tokio::time::timeout(SQL_TIMEOUT, check_login(&endpoint)).await {
                Ok(Ok(())) => Some(true),
                Ok(Err(SqlError::AuthFailed { .. })) => Some(false),
                // Down or slow: no verdict; do not rotate onto a guess.
                Ok(Err(_)) | Err(_) => None,
            };
            (fields_current, works)
        }
        _ => (false, None),
    };
    SecretView {
        username,
        has_password: password.is_some(),
        fields_current,
        login_works,
    }
}

/// Writes the claim's Secret with server-side apply.
async fn apply_secret(
    secrets: &Api<Secret>,
    claim: &DatabaseClaim,
    data: BTreeMap<String, String>,
    rotated_at: Timestamp,
    served_request: Option<&str>,
) -> Result<Option<String>, Failure> {
    let mut object = secret::build(claim, data);
    let annotations = object.metadata.annotations.get_or_insert_default();
    annotations.insert(ANNOTATION_ROTATED_AT.to_owned(), rotated_at.to_string());
    if let Some(request) = served_request {
        annotations.insert(ANNOTATION_ROTATION_REQUEST.to_owned(), request.to_owned());
    }
    let mut patch = serde_json::to_value(&object).map_err(|err| {
        Failure::Blocked(Blocked::new(
            "Internal",
            format!("encoding the Secret: {err}"),
        ))
    })?;
    patch["apiVersion"] = json!("v1");
    patch["kind"] = json!("Secret");
    secrets
        .patch(
            &claim.spec.secret_name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map(|written| written.metadata.resource_version)
        .map_err(|source| {
            Failure::Kube(Error::Kube {
                what: "writing the Secret",
                claim: claim.name_any(),
                source,
            })
        })
}

/// Drops what a `deletePolicy: delete` claim made; keeps it for `retain`.
/// Only what the server records as this claim's is dropped, so a claim that
/// was refused (another claim owns the names) deletes nothing.
async fn cleanup(claim: Arc<DatabaseClaim>, ctx: Arc<ClaimContext>) -> Result<Action, Error> {
    let name = claim.name_any();
    ctx.forget(&claim);
    let status = claim.status.clone().unwrap_or_default();
    if claim.spec.delete_policy == DeletePolicy::Retain {
        info!(claim = %name, "claim deleted; database and users kept (deletePolicy retain)");
        return Ok(Action::await_change());
    }
    if status.provisioned_cluster.is_some() {
        info!(claim = %name, "claim deleted; its own cluster goes with it");
        return Ok(Action::await_change());
    }
    let servers = ctx.servers_of(&claim);
    // The server it is bound to, or the one it would have used (a claim
    // refused half-way has no binding yet, but may have made something).
    let server = match &status.server {
        Some(bound) => servers.iter().find(|s| &s.name_any() == bound).cloned(),
        None => matching::choose(&claim, &servers)
            .ok()
            .map(|m| m.server.clone()),
    };
    let Some(server) = server else {
        warn!(claim = %name, server = ?status.server, "claim deleted but its DatabaseServer is gone; nothing can be dropped");
        return Ok(Action::await_change());
    };
    let procedure = server
        .spec
        .stored_procedures
        .as_ref()
        .and_then(|p| p.delete.clone());
    if procedure.is_some() && status.db_created_at.is_none() {
        // Create was never called, so there is nothing for delete to undo.
        return Ok(Action::await_change());
    }
    let dropped = async {
        let resolved = resolve(&ctx.client, &server, &ctx.config.connect_to)
            .await
            .map_err(|err| Blocked::new(err.reason(), err.to_string()))?;
        let names = ClaimNames::new(
            resolved.admin.engine,
            database_of(&claim),
            &claim.spec.username,
        )
        .map_err(|err| Blocked::new("InvalidName", err.to_string()))?;
        let mut admin = timed("connecting as admin", Admin::connect(&resolved.admin)).await?;
        match procedure.as_deref() {
            Some(procedure) => {
                let (owner, database) = (owner_of(&claim), database_of(&claim));
                // Only names this claim holds are handed to delete.
                timed(
                    "checking the claim's names",
                    admin.hold_procedure_names(&owner, database, &claim.spec.username),
                )
                .await?;
                timed(
                    "calling the delete procedure",
                    admin.call_delete(procedure, database, &claim.spec.username),
                )
                .await?;
                timed(
                    "removing the claim's records",
                    admin.release_procedure_names(&owner, database, &claim.spec.username),
                )
                .await
            }
            None => {
                timed(
                    "dropping the database and users",
                    admin.drop_claim(&owner_of(&claim), &names),
                )
                .await
            }
        }
    }
    .await;
    match dropped {
        Ok(()) => {
            info!(claim = %name, database = %database_of(&claim), "claim deleted; database and users dropped");
            Ok(Action::await_change())
        }
        Err(blocked) if blocked.reason == "OwnedByAnotherClaim" => {
            info!(claim = %name, "claim deleted; its names belong to another claim, nothing dropped");
            Ok(Action::await_change())
        }
        Err(blocked) => {
            ctx.metrics
                .errors
                .get_or_create(&Reason {
                    reason: blocked.reason,
                })
                .inc();
            warn!(claim = %name, reason = blocked.reason, "claim deletion waits: {}", blocked.message);
            let mut status = status.clone();
            set_condition(
                &mut status.conditions,
                condition::READY,
                false,
                "DeletionBlocked",
                format!("dropping the database waits: {}", blocked.message),
                claim.metadata.generation,
                &Time(Timestamp::now()),
            );
            // Best effort: the retry below is what matters.
            let _ = write_status(&ctx, &claim, status).await;
            Err(Error::CleanupBlocked {
                claim: name,
                message: blocked.message,
            })
        }
    }
}
