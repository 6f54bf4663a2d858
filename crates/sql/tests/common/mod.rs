//! Shared helpers for the integration tests against the real servers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use dbaas_sql::{ClaimNames, ClaimOwner, Endpoint, Engine, TlsMode};
use dbaas_testkit::db::DbServer;
use secrecy::SecretString;

/// A short random lower-case suffix, so tests sharing a server never collide.
pub fn unique(prefix: &str) -> String {
    let mut bytes = [0u8; 5];
    getrandom::fill(&mut bytes).unwrap();
    let suffix: String = bytes
        .iter()
        .map(|b| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[usize::from(*b) % 36]))
        .collect();
    format!("{prefix}_{suffix}")
}

pub fn admin_endpoint(server: &DbServer, engine: Engine) -> Endpoint {
    Endpoint {
        engine,
        host: server.host().to_owned(),
        port: server.port(),
        user: server.admin_user().to_owned(),
        password: SecretString::from(server.admin_password()),
        database: None,
        tls: TlsMode::Disable,
        trusted_ca: None,
    }
}

/// The endpoint a claim's login uses.
pub fn login_endpoint(admin: &Endpoint, user: &str, password: &str, database: &str) -> Endpoint {
    Endpoint {
        user: user.to_owned(),
        password: SecretString::from(password),
        database: Some(database.to_owned()),
        ..admin.clone()
    }
}

pub fn owner(namespace: &str, name: &str) -> ClaimOwner {
    ClaimOwner {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        uid: unique("uid"),
    }
}

/// A claim with fresh names: (owner, names).
pub fn claim(engine: Engine, prefix: &str) -> (ClaimOwner, ClaimNames) {
    let base = unique(prefix);
    let names = ClaimNames::new(engine, &format!("{base}_db"), &base).unwrap();
    (owner(&unique("ns"), &base), names)
}

/// A password with everything that breaks naive quoting.
pub fn hostile_password(tag: &str) -> String {
    format!("it's \"q\" \\ `b` $1 ;-- % @ : / ? # {tag} é")
}
