//! Lease-based leader election (`coordination.k8s.io/v1`), the protocol of
//! client-go's `leaderelection`: one replica holds the Lease and renews it;
//! the others watch it and take it over once it has gone unrenewed for its
//! duration. A leader that cannot renew in time stops reconciling, so two
//! replicas never reconcile at once.
//!
//! Expiry is judged by this replica's own clock from when it last saw the
//! record change (as client-go does), never by comparing another
//! replica's `renewTime` with our clock, so clock skew cannot cause two
//! leaders.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;
use tracing::{info, warn};

/// How the replicas elect their leader.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease, shared by every replica.
    pub name: String,
    /// This replica's name in the Lease (unique: pod name, or host and pid).
    pub identity: String,
    /// How long a Lease stays ours without renewal (client-go: 15 s).
    pub lease_duration: Duration,
    /// A leader that has not renewed for this long stops (client-go: 10 s).
    pub renew_deadline: Duration,
    /// How often to renew, or to try to acquire (client-go: 2 s).
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// client-go's defaults for `identity` on Lease `namespace/name`.
    pub fn new(namespace: String, name: String, identity: String) -> Self {
        Self {
            namespace,
            name,
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Why the election cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("the lease timings must satisfy retry period < renew deadline < lease duration")]
    Timings,
}

/// What this replica last saw of the Lease, and when it saw it change.
struct Observed {
    record: Option<(Option<String>, Option<MicroTime>)>,
    since: Instant,
}

/// Holds the Lease until dropped or lost.
pub struct Leadership {
    lost: watch::Receiver<bool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Leadership {
    /// Resolves when the Lease was lost (not renewed within the deadline,
    /// or taken by another replica); owns what it needs, to hand to a task.
    pub fn lost(&self) -> impl std::future::Future<Output = ()> + Send + Sync + 'static {
        let mut lost = self.lost.clone();
        async move {
            let _ = lost.wait_for(|lost| *lost).await;
        }
    }

    /// Whether the Lease was lost.
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Stops renewing and hands the Lease back, so a standby takes over at
    /// once instead of after the lease duration.
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.renewer).await;
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// Waits until this replica holds the Lease, then keeps renewing it in the
/// background. `on_change` hears true when leading, false when not.
pub async fn acquire(
    client: Client,
    config: LeaseConfig,
    on_change: impl Fn(bool) + Send + Sync + 'static,
) -> Result<Leadership, LeaderError> {
    if !(config.retry_period < config.renew_deadline
        && config.renew_deadline < config.lease_duration)
    {
        return Err(LeaderError::Timings);
    }
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut observed = Observed {
        record: None,
        since: Instant::now(),
    };
    let mut announced_waiting = false;
    loop {
        match try_acquire_or_renew(&api, &config, &mut observed).await {
            Ok(true) => break,
            Ok(false) => {
                if !announced_waiting {
                    info!(lease = %config.name, identity = %config.identity, "standing by: another replica leads");
                    announced_waiting = true;
                }
            }
            Err(err) => warn!(lease = %config.name, "cannot read or take the lease: {err}"),
        }
        tokio::time::sleep(config.retry_period).await;
    }
    info!(lease = %config.name, identity = %config.identity, "became the leader");
    on_change(true);
    let (lost_tx, lost) = watch::channel(false);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let renewer = tokio::spawn(renew(api, config, observed, stopped, move |lost| {
        on_change(false);
        let _ = lost_tx.send(lost);
    }));
    Ok(Leadership {
        lost,
        stop: Some(stop),
        renewer,
    })
}

/// Renews every retry period until stopped (then releases) or until the
/// renew deadline passes without a successful renewal (then reports lost).
async fn renew(
    api: Api<Lease>,
    config: LeaseConfig,
    mut observed: Observed,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
    done: impl FnOnce(bool),
) {
    let mut renewed = Instant::now();
    let lost = loop {
        tokio::select! {
            _ = &mut stopped => {
                release(&api, &config).await;
                break false;
            }
            () = tokio::time::sleep(config.retry_period) => {}
        }
        match try_acquire_or_renew(&api, &config, &mut observed).await {
            Ok(true) => renewed = Instant::now(),
            Ok(false) => {
                warn!(lease = %config.name, "another replica took the lease: stepping down");
                break true;
            }
            Err(err) => warn!(lease = %config.name, "cannot renew the lease: {err}"),
        }
        if renewed.elapsed() >= config.renew_deadline {
            warn!(
                lease = %config.name,
                "the lease was not renewed within {:?}: stepping down", config.renew_deadline
            );
            break true;
        }
    };
    done(lost);
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

/// One round of the protocol: create the Lease, renew ours, or take over an
/// expired or released one. Ok(false) while another replica holds it.
async fn try_acquire_or_renew(
    api: &Api<Lease>,
    config: &LeaseConfig,
    observed: &mut Observed,
) -> Result<bool, kube::Error> {
    let duration_seconds = i32::try_from(config.lease_duration.as_secs()).unwrap_or(i32::MAX);
    let Some(lease) = api.get_opt(&config.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(duration_seconds),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            // Another replica created it first.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(err) => Err(err),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let record = Some((holder.clone(), spec.renew_time.clone()));
    if observed.record != record {
        observed.record = record;
        observed.since = Instant::now();
    }
    let ours = holder.as_deref() == Some(config.identity.as_str());
    let their_duration = spec
        .lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map_or(config.lease_duration, Duration::from_secs);
    let expired = holder.is_none() || observed.since.elapsed() >= their_duration;
    if !ours && !expired {
        return Ok(false);
    }
    let mut next = lease;
    let transitions = spec.lease_transitions.unwrap_or(0);
    next.spec = Some(LeaseSpec {
        holder_identity: Some(config.identity.clone()),
        lease_duration_seconds: Some(duration_seconds),
        acquire_time: if ours { spec.acquire_time } else { Some(now()) },
        renew_time: Some(now()),
        lease_transitions: Some(if ours { transitions } else { transitions + 1 }),
        ..spec
    });
    // The resourceVersion we read makes this a compare-and-swap: of two
    // replicas taking over at once, one gets a conflict.
    match api
        .replace(&config.name, &PostParams::default(), &next)
        .await
    {
        Ok(written) => {
            let spec = written.spec.unwrap_or_default();
            observed.record = Some((spec.holder_identity, spec.renew_time));
            observed.since = Instant::now();
            Ok(true)
        }
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(err) => Err(err),
    }
}

/// Hands the Lease back: no holder, so a standby takes it at once.
async fn release(api: &Api<Lease>, config: &LeaseConfig) {
    let Ok(Some(mut lease)) = api.get_opt(&config.name).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(now());
    match api
        .replace(&config.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => info!(lease = %config.name, "released the lease"),
        Err(err) => warn!(lease = %config.name, "cannot release the lease: {err}"),
    }
}
