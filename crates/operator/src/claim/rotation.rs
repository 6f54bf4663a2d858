//! When a claim's Secret gets new credentials, and which login gets them.
//!
//! Each claim has two login users (`<username>_a`, `<username>_b`) that act
//! as one owner role. The Secret holds one of them. A rotation gives the
//! *other* login a new password, proves it logs in, and only then switches
//! the Secret to it; the login the app is using keeps working. It is changed
//! at the next rotation at the earliest, and never sooner than the grace
//! period after the switch (the kubelet's Secret refresh plus the app's
//! reload), so there is no window in which the app's credentials fail.
//! Pure: the caller gathers what is observed.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// What the claim's Secret holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretView {
    /// The `username` key, if present.
    pub username: Option<String>,
    /// Whether a non-empty `password` key is present.
    pub has_password: bool,
    /// Whether the keys other than the password (host, port, database,
    /// sslmode, DSN, templates) are what they should be.
    pub fields_current: bool,
    /// Whether its credentials logged in just now (None: not tried).
    pub login_works: Option<bool>,
}

/// Everything the decision looks at.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    pub logins: &'a [String; 2],
    /// The login the Secret held last (from status), for when it is gone.
    pub last_active: Option<&'a str>,
    pub secret: Option<SecretView>,
    /// When the Secret last switched login.
    pub last_rotation: Option<Timestamp>,
    /// The `dbaas.io/rotate` annotation, and the value already acted on.
    pub rotate_request: Option<&'a str>,
    pub handled_request: Option<&'a str>,
    pub period: Duration,
    pub grace: Duration,
    pub now: Timestamp,
}

/// Why the Secret switches login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchReason {
    /// No Secret yet (a new claim) or it was deleted.
    SecretMissing,
    /// The Secret's credentials are not ours or do not log in.
    SecretInvalid,
    /// The rotation period elapsed.
    Period,
    /// Someone set a new `dbaas.io/rotate` value.
    Requested,
}

impl SwitchReason {
    /// A bounded label for metrics and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecretMissing => "SecretMissing",
            Self::SecretInvalid => "SecretInvalid",
            Self::Period => "Period",
            Self::Requested => "Requested",
        }
    }

    /// Whether this is a planned rotation (which waits for the grace period)
    /// rather than a repair (which cannot wait: the app has nothing working).
    pub fn is_planned(self) -> bool {
        matches!(self, Self::Period | Self::Requested)
    }
}

/// What to do with the Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing; look again after this long (the next rotation).
    Keep { recheck_in: Duration },
    /// Same login and password; other keys changed (e.g. the host).
    Rewrite { login: String },
    /// New password on `login`, then the Secret switches to it.
    Switch { login: String, reason: SwitchReason },
    /// A rotation is due but the other login may still be in use by apps
    /// that have not reloaded since the last switch.
    WaitForGrace { retry_in: Duration },
}

fn elapsed(since: Timestamp, now: Timestamp) -> Duration {
    now.duration_since(since)
        .try_into()
        .unwrap_or(Duration::ZERO)
}

/// The login that is not `current` (the first one when `current` is not ours).
fn other<'a>(logins: &'a [String; 2], current: Option<&str>) -> &'a String {
    if current == Some(logins[0].as_str()) {
        &logins[1]
    } else {
        &logins[0]
    }
}

/// Decides what happens to the Secret.
pub fn decide(observed: &Observed<'_>) -> Decision {
    let logins = observed.logins;
    let since_switch = observed
        .last_rotation
        .map(|at| elapsed(at, observed.now))
        .unwrap_or(Duration::MAX);
    // Apps that have not reloaded since the last switch may still use the
    // login the Secret held before it: it keeps its password until the
    // grace period is over, whatever else is wrong.
    let after_grace = |decision: Decision| {
        if since_switch < observed.grace {
            Decision::WaitForGrace {
                retry_in: observed.grace - since_switch,
            }
        } else {
            decision
        }
    };
    let Some(secret) = &observed.secret else {
        // Running pods keep their mounted copy; the Secret comes back on
        // the login they are not using.
        return after_grace(Decision::Switch {
            login: other(logins, observed.last_active).clone(),
            reason: SwitchReason::SecretMissing,
        });
    };
    let current = secret
        .username
        .as_deref()
        .filter(|u| logins.iter().any(|l| l == u));
    let Some(current) = current.filter(|_| secret.has_password) else {
        return after_grace(Decision::Switch {
            login: other(logins, observed.last_active).clone(),
            reason: SwitchReason::SecretInvalid,
        });
    };
    if secret.login_works == Some(false) {
        // The Secret's login is broken for everyone already: repair that
        // one, and leave the other (which apps may still hold) alone.
        return Decision::Switch {
            login: current.to_owned(),
            reason: SwitchReason::SecretInvalid,
        };
    }
    let requested = observed
        .rotate_request
        .is_some_and(|r| Some(r) != observed.handled_request);
    let reason = if requested {
        Some(SwitchReason::Requested)
    } else if since_switch >= observed.period {
        Some(SwitchReason::Period)
    } else {
        None
    };
    if let Some(reason) = reason {
        return after_grace(Decision::Switch {
            login: other(logins, Some(current)).clone(),
            reason,
        });
    }
    if !secret.fields_current {
        return Decision::Rewrite {
            login: current.to_owned(),
        };
    }
    Decision::Keep {
        recheck_in: observed.period.saturating_sub(since_switch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn logins() -> [String; 2] {
        ["app_a".into(), "app_b".into()]
    }

    fn at(minutes: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + minutes * 60).unwrap()
    }

    fn working(user: &str) -> Option<SecretView> {
        Some(SecretView {
            username: Some(user.into()),
            has_password: true,
            fields_current: true,
            login_works: Some(true),
        })
    }

    fn observed<'a>(logins: &'a [String; 2], secret: Option<SecretView>, now: i64) -> Observed<'a> {
        Observed {
            logins,
            last_active: None,
            secret,
            last_rotation: Some(at(0)),
            rotate_request: None,
            handled_request: None,
            period: 60 * MIN,
            grace: 5 * MIN,
            now: at(now),
        }
    }

    fn switch(login: &str, reason: SwitchReason) -> Decision {
        Decision::Switch {
            login: login.into(),
            reason,
        }
    }

    #[test]
    fn a_new_claim_publishes_the_first_login() {
        let l = logins();
        let mut o = observed(&l, None, 0);
        o.last_rotation = None;
        assert_eq!(decide(&o), switch("app_a", SwitchReason::SecretMissing));
    }

    #[test]
    fn a_working_secret_is_kept_until_the_period_ends() {
        let l = logins();
        assert_eq!(
            decide(&observed(&l, working("app_a"), 20)),
            Decision::Keep {
                recheck_in: 40 * MIN
            }
        );
    }

    #[test]
    fn the_period_switches_to_the_other_login() {
        let l = logins();
        assert_eq!(
            decide(&observed(&l, working("app_a"), 60)),
            switch("app_b", SwitchReason::Period)
        );
        assert_eq!(
            decide(&observed(&l, working("app_b"), 61)),
            switch("app_a", SwitchReason::Period)
        );
    }

    #[test]
    fn a_request_rotates_once_and_respects_the_grace_period() {
        let l = logins();
        let mut o = observed(&l, working("app_a"), 2);
        o.rotate_request = Some("now-1");
        assert_eq!(decide(&o), Decision::WaitForGrace { retry_in: 3 * MIN });
        o.now = at(5);
        assert_eq!(decide(&o), switch("app_b", SwitchReason::Requested));
        o.handled_request = Some("now-1");
        assert!(matches!(decide(&o), Decision::Keep { .. }));
    }

    #[test]
    fn repairs_keep_the_login_apps_may_still_hold() {
        let l = logins();
        let mut broken = working("app_a");
        if let Some(s) = broken.as_mut() {
            s.login_works = Some(false);
        }
        // A broken login is repaired in place: the other may still be in use.
        assert_eq!(
            decide(&observed(&l, broken, 1)),
            switch("app_a", SwitchReason::SecretInvalid)
        );
        // A deleted Secret comes back on the login apps are not using, once
        // the previous switch's grace period is over.
        let mut deleted = observed(&l, None, 10);
        deleted.last_active = Some("app_a");
        assert_eq!(
            decide(&deleted),
            switch("app_b", SwitchReason::SecretMissing)
        );
        deleted.now = at(2);
        assert_eq!(
            decide(&deleted),
            Decision::WaitForGrace { retry_in: 3 * MIN }
        );
        let mut fresh = observed(&l, None, 0);
        fresh.last_rotation = None;
        assert_eq!(decide(&fresh), switch("app_a", SwitchReason::SecretMissing));
        let foreign = Some(SecretView {
            username: Some("someone".into()),
            has_password: true,
            fields_current: true,
            login_works: None,
        });
        assert_eq!(
            decide(&observed(&l, foreign, 10)),
            switch("app_a", SwitchReason::SecretInvalid)
        );
        let no_password = Some(SecretView {
            username: Some("app_a".into()),
            has_password: false,
            fields_current: true,
            login_works: None,
        });
        let mut no_password = observed(&l, no_password, 10);
        no_password.last_active = Some("app_a");
        assert_eq!(
            decide(&no_password),
            switch("app_b", SwitchReason::SecretInvalid)
        );
    }

    #[test]
    fn changed_connection_fields_rewrite_without_a_new_password() {
        let l = logins();
        let mut stale = working("app_b");
        if let Some(s) = stale.as_mut() {
            s.fields_current = false;
        }
        assert_eq!(
            decide(&observed(&l, stale, 10)),
            Decision::Rewrite {
                login: "app_b".into()
            }
        );
    }

    #[test]
    fn grace_is_never_longer_than_needed() {
        let l = logins();
        let mut o = observed(&l, working("app_a"), 0);
        o.period = 60 * MIN;
        o.grace = Duration::ZERO;
        o.rotate_request = Some("x");
        assert_eq!(decide(&o), switch("app_b", SwitchReason::Requested));
    }
}
