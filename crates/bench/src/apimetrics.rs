//! Requests counted by kube-apiserver itself (`apiserver_request_total` on
//! its `/metrics`): the writes prove an idle operator writes nothing; all
//! verbs show what converging costs the API server per cluster.

use std::collections::BTreeMap;

use kube::Client;
use kube::api::GetParams;

/// Verbs that change something. `APPLY` is server-side apply (a PATCH with
/// the apply content type); `WATCH`, `LIST`, `GET` are reads.
const WRITE_VERBS: [&str; 6] = [
    "POST",
    "PUT",
    "PATCH",
    "APPLY",
    "DELETE",
    "DELETECOLLECTION",
];

/// `apiserver_request_total` series, keyed by
/// `verb group/resource[/subresource] code`.
pub type WriteCounts = BTreeMap<String, f64>;

/// One scrape of the API server's write counters.
pub async fn scrape_writes(client: &Client) -> anyhow::Result<WriteCounts> {
    scrape(client, |verb| WRITE_VERBS.contains(&verb)).await
}

/// One scrape of the API server's counters of every verb (watches count
/// once, when they start).
pub async fn scrape_all(client: &Client) -> anyhow::Result<WriteCounts> {
    scrape(client, |_| true).await
}

async fn scrape(client: &Client, wanted: impl Fn(&str) -> bool) -> anyhow::Result<WriteCounts> {
    let request = kube::core::Request::new("").get("metrics", &GetParams::default())?;
    let text = client.request_text(request).await?;
    let mut counts = WriteCounts::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let label = |key: &str| -> String {
            labels
                .split("\",")
                .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix("=\"")))
                .map(|v| v.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        let verb = label("verb");
        if !wanted(&verb) {
            continue;
        }
        let (group, resource, subresource) =
            (label("group"), label("resource"), label("subresource"));
        let mut key = format!(
            "{verb} {}/{resource}",
            if group.is_empty() { "core" } else { &group }
        );
        if !subresource.is_empty() {
            key.push('/');
            key.push_str(&subresource);
        }
        key.push_str(&format!(" {}", label("code")));
        *counts.entry(key).or_default() += value;
    }
    anyhow::ensure!(
        text.contains("apiserver_request_total"),
        "the API server's /metrics has no apiserver_request_total"
    );
    Ok(counts)
}

/// Whether a series key is one the operator could cause: anything in the
/// dbaas.io and postgresql.cnpg.io groups, and core Secrets.
pub fn is_operator_resource(key: &str) -> bool {
    let resource = key.split(' ').nth(1).unwrap_or_default();
    resource.starts_with("dbaas.io/")
        || resource.starts_with("postgresql.cnpg.io/")
        || resource == "core/secrets"
        || resource.starts_with("core/secrets/")
}

/// Series that grew between two scrapes, with how much.
pub fn delta(before: &WriteCounts, after: &WriteCounts) -> Vec<(String, f64)> {
    after
        .iter()
        .filter_map(|(key, value)| {
            let grown = value - before.get(key).copied().unwrap_or(0.0);
            (grown > 0.0).then(|| (key.clone(), grown))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_resources_are_told_apart() {
        assert!(is_operator_resource(
            "APPLY dbaas.io/databaseclusters/status 200"
        ));
        assert!(is_operator_resource(
            "PATCH postgresql.cnpg.io/clusters 200"
        ));
        assert!(is_operator_resource("PUT core/secrets 200"));
        assert!(!is_operator_resource("PUT coordination.k8s.io/leases 200"));
        assert!(!is_operator_resource("POST core/events 201"));
    }

    #[test]
    fn deltas_keep_only_grown_series() {
        let before = WriteCounts::from([("a".into(), 1.0), ("b".into(), 2.0)]);
        let after = WriteCounts::from([("a".into(), 1.0), ("b".into(), 5.0), ("c".into(), 1.0)]);
        assert_eq!(
            delta(&before, &after),
            vec![("b".to_owned(), 3.0), ("c".to_owned(), 1.0)]
        );
    }
}
