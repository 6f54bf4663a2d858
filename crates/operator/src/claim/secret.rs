//! The claim's Secret: what it holds and how it is built. Pure.

use std::collections::BTreeMap;

use dbaas_api::DatabaseClaim;
use dbaas_api::claim::LABEL_CLAIM;
use dbaas_api::common::{LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_sql::{Connection, TemplateError, render_template, secret_data};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Resource;
use kube::api::ObjectMeta;

/// The Secret's keys: the default set (username, password, host, port,
/// database, sslmode, uri and the DSN under the claim's `dsnName`), the
/// claim's templates, and what a stored procedure returned (which wins).
pub fn render(
    claim: &DatabaseClaim,
    connection: &Connection,
    procedure_output: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, TemplateError> {
    let mut data = secret_data(connection, &claim.spec.dsn_name);
    for (key, template) in &claim.spec.secret_templates {
        data.insert(key.clone(), render_template(template, connection)?);
    }
    data.extend(procedure_output.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(data)
}

/// The Secret object, owned by the claim (deleted with it) and labelled ours.
pub fn build(claim: &DatabaseClaim, data: BTreeMap<String, String>) -> Secret {
    let name = claim.metadata.name.clone().unwrap_or_default();
    Secret {
        metadata: ObjectMeta {
            name: Some(claim.spec.secret_name.clone()),
            namespace: claim.metadata.namespace.clone(),
            labels: Some(BTreeMap::from([
                (LABEL_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
                (LABEL_CLAIM.to_owned(), name),
            ])),
            owner_references: claim.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Default::default()
    }
}

/// The Secret's data as text (keys that are not UTF-8 are left out: none
/// of ours are).
pub fn data_of(secret: &Secret) -> BTreeMap<String, String> {
    secret
        .data
        .iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), String::from_utf8(v.0.clone()).ok()?)))
        .collect()
}

/// Whether `secret` belongs to `claim` (its controller owner reference).
pub fn owned_by(secret: &Secret, claim: &DatabaseClaim) -> bool {
    let uid = claim.metadata.uid.as_deref();
    uid.is_some()
        && secret
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| Some(o.uid.as_str()) == uid && o.controller == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbaas_sql::{Engine, TlsMode};
    use secrecy::SecretString;
    use serde_json::json;

    fn claim() -> DatabaseClaim {
        let mut claim: DatabaseClaim = serde_json::from_value(json!({
            "apiVersion": "dbaas.io/v1", "kind": "DatabaseClaim",
            "metadata": {"name": "orders", "namespace": "shop", "uid": "u-1"},
            "spec": {"secretName": "orders-db", "type": "postgres", "username": "orders",
                     "databaseName": "orders", "dsnName": "DATABASE_DSN",
                     "secretTemplates": {"jdbc": "jdbc:postgresql://{{host}}:{{port}}/{{database}}?user={{username}}&password={{password_urlencoded}}"}}
        }))
        .unwrap();
        claim.metadata.uid = Some("u-1".into());
        claim
    }

    fn connection() -> Connection {
        Connection {
            engine: Engine::Postgres,
            host: "pg.example".into(),
            port: 5432,
            database: "orders".into(),
            username: "orders_a".into(),
            password: SecretString::from("p@ss w'rd"),
            tls: TlsMode::Require,
            trusted_ca: None,
        }
    }

    #[test]
    fn the_secret_has_the_default_keys_the_dsn_and_templates() {
        let data = render(&claim(), &connection(), &BTreeMap::new()).unwrap();
        for key in [
            "username",
            "password",
            "host",
            "port",
            "database",
            "sslmode",
            "uri",
            "DATABASE_DSN",
            "jdbc",
        ] {
            assert!(data.contains_key(key), "missing {key}: {:?}", data.keys());
        }
        assert_eq!(data["username"], "orders_a");
        assert_eq!(data["password"], "p@ss w'rd");
        assert!(
            data["jdbc"].contains("password=p%40ss%20w%27rd"),
            "{}",
            data["jdbc"]
        );
    }

    #[test]
    fn procedure_output_wins() {
        let output = BTreeMap::from([("username".to_owned(), "svc_orders".to_owned())]);
        let data = render(&claim(), &connection(), &output).unwrap();
        assert_eq!(data["username"], "svc_orders");
    }

    #[test]
    fn the_secret_is_owned_by_the_claim() {
        let claim = claim();
        let secret = build(&claim, BTreeMap::from([("a".to_owned(), "b".to_owned())]));
        assert!(owned_by(&secret, &claim));
        assert_eq!(secret.metadata.name.as_deref(), Some("orders-db"));
        assert_eq!(data_of(&secret)["a"], "b");
        let mut other = claim.clone();
        other.metadata.uid = Some("u-2".into());
        assert!(!owned_by(&secret, &other));
    }
}
