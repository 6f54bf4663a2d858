//! Where a registered cluster's kubeconfig may point: registering a cluster
//! makes the server connect to a URL of the caller's choosing, so that URL
//! is checked before the first connection (and again when registrations
//! are loaded at start).
//!
//! The rule:
//! - `https://` only, and the TLS certificate verified
//!   (`insecure-skip-tls-verify` refused); `http://` and skipping
//!   verification need `--allow-insecure-cluster-urls`.
//! - The host, a literal address or every address its name resolves to,
//!   must be a public address. Never allowed, whatever the flags: the
//!   unspecified addresses (`0.0.0.0/8`, `::`), link-local (`169.254.0.0/16`,
//!   `fe80::/10`, which hold the cloud metadata endpoints), multicast,
//!   the reserved `240.0.0.0/4` (and broadcast), Teredo (`2001::/32`, whose
//!   IPv4 end is obfuscated), and the known cloud metadata addresses outside
//!   link-local (`fd00:ec2::254`, `100.100.100.200`, Azure's
//!   `168.63.129.16`, `metadata.google.internal`). Private and special-use
//!   addresses (`10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`, shared
//!   `100.64.0.0/10`, IETF protocol assignments `192.0.0.0/24`, benchmarking
//!   `198.18.0.0/15`, `fc00::/7`, `fec0::/10`) and in-cluster Service names
//!   (`*.svc`, `*.cluster.local`)
//!   need `--allow-private-cluster-addresses` (or
//!   `--allow-insecure-cluster-urls`); loopback (`127.0.0.0/8`, `::1`,
//!   `localhost`) needs `--allow-insecure-cluster-urls`. IPv4 addresses
//!   inside IPv6 ones (mapped `::ffff:0:0/96`, translated `::ffff:0:0:0/96`,
//!   NAT64 `64:ff9b::/96` and the local-use `64:ff9b:1::/48`, whose last 32
//!   bits are read as with `/96`, 6to4 `2002::/16`) are judged as the IPv4
//!   address.
//! - A name is resolved once and the cluster is then contacted at the
//!   address that was checked (TLS still verifies the name, and the `Host`
//!   header still carries it), so a DNS answer that changes afterwards
//!   (DNS rebinding) cannot redirect the server. The address is resolved
//!   again when registrations are loaded at start: after a registered
//!   API server's address changes, restart dbaas-server (or register the
//!   cluster again).
//!
//! Refusals are 422 `ClusterUrlRefused`; their messages name the rule, never
//! a resolved address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Uri};

use crate::error::ApiError;

/// What registrations may point at, and how many there may be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationPolicy {
    /// `--allow-insecure-cluster-urls`: loopback addresses and `localhost`,
    /// `http://`, `insecure-skip-tls-verify`, and everything
    /// `allow_private_addresses` allows. For development and tests.
    pub allow_insecure_urls: bool,
    /// `--allow-private-cluster-addresses`: private addresses and in-cluster
    /// Service names, for clusters in the server's own private network.
    pub allow_private_addresses: bool,
    /// `--max-cluster-registrations`: registrations beyond this many are
    /// refused (409 `TooManyRegistrations`).
    pub max_registrations: usize,
}

/// The default of `--max-cluster-registrations`.
pub const DEFAULT_MAX_REGISTRATIONS: usize = 50;

impl Default for RegistrationPolicy {
    fn default() -> Self {
        Self {
            allow_insecure_urls: false,
            allow_private_addresses: false,
            max_registrations: DEFAULT_MAX_REGISTRATIONS,
        }
    }
}

/// How long resolving a registered cluster's host name may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// What kind of place an address (or name) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Public,
    /// A private network (or an in-cluster Service name).
    Private,
    Loopback,
    /// Never a Kubernetes API server to register: the reason.
    Never(&'static str),
}

impl Place {
    fn description(self) -> &'static str {
        match self {
            Self::Public => "a public address",
            Self::Private => "a private address",
            Self::Loopback => "a loopback address",
            Self::Never(why) => why,
        }
    }
}

/// The kind of place `ip` is.
pub fn classify(ip: IpAddr) -> Place {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Place {
    let [a, b, c, _] = ip.octets();
    if a == 0 {
        Place::Never("an unspecified address")
    } else if ip.is_loopback() {
        Place::Loopback
    } else if ip.is_link_local() {
        Place::Never("a link-local address (where cloud metadata endpoints live)")
    } else if ip.is_multicast() {
        Place::Never("a multicast address")
    } else if a >= 240 {
        Place::Never("a reserved or broadcast address")
    } else if ip == Ipv4Addr::new(100, 100, 100, 200) || ip == Ipv4Addr::new(168, 63, 129, 16) {
        // Alibaba's metadata endpoint and Azure's wire server (metadata,
        // extension configuration and health).
        Place::Never("a cloud metadata address")
    } else if ip.is_private()
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b & 0xfe) == 18)
    {
        // Private, shared (carrier-grade NAT), IETF protocol assignments
        // (192.0.0.0/24) and benchmarking (198.18.0.0/15) addresses: none
        // is reachable from the public internet.
        Place::Private
    } else {
        Place::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> Place {
    let segments = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let embedded = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    // NAT64 (64:ff9b::/96, and the local-use 64:ff9b:1::/48 read the same
    // way), IPv4-translated (::ffff:0:0:0/96, SIIT) and 6to4 (2002::/16)
    // addresses reach an IPv4 address.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
        || segments[..3] == [0x64, 0xff9b, 1]
        || segments[..6] == [0, 0, 0, 0, 0xffff, 0]
    {
        return classify_v4(embedded(segments[6], segments[7]));
    }
    if segments[0] == 0x2002 {
        return classify_v4(embedded(segments[1], segments[2]));
    }
    // Teredo (2001::/32) tunnels to an IPv4 address stored obfuscated (and
    // through a relay of someone else's): never an API server to register.
    if segments[..2] == [0x2001, 0] {
        return Place::Never("a Teredo address (an IPv4 address tunnelled through a relay)");
    }
    if ip.is_unspecified() {
        Place::Never("an unspecified address")
    } else if ip.is_loopback() {
        Place::Loopback
    } else if segments[..6] == [0; 6] {
        // The deprecated IPv4-compatible addresses.
        Place::Never("a reserved address")
    } else if segments[0] & 0xffc0 == 0xfe80 {
        Place::Never("a link-local address (where cloud metadata endpoints live)")
    } else if ip.is_multicast() {
        Place::Never("a multicast address")
    } else if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        Place::Never("a cloud metadata address")
    } else if segments[0] & 0xfe00 == 0xfc00 || segments[0] & 0xffc0 == 0xfec0 {
        Place::Private
    } else {
        Place::Public
    }
}

/// The kind of place a host name is by its name alone, before resolving.
fn classify_name(host: &str) -> Option<Place> {
    const METADATA: [&str; 2] = ["metadata.google.internal", "metadata.goog"];
    if METADATA.contains(&host) {
        return Some(Place::Never("a cloud metadata address"));
    }
    if host == "localhost" || host.ends_with(".localhost") {
        return Some(Place::Loopback);
    }
    if host.ends_with(".svc") || host.ends_with(".cluster.local") {
        return Some(Place::Private);
    }
    None
}

impl RegistrationPolicy {
    fn allows(&self, place: Place) -> bool {
        match place {
            Place::Public => true,
            Place::Private => self.allow_private_addresses || self.allow_insecure_urls,
            Place::Loopback => self.allow_insecure_urls,
            Place::Never(_) => false,
        }
    }

    fn flag_for(place: Place) -> &'static str {
        match place {
            Place::Private => {
                " unless dbaas-server runs with --allow-private-cluster-addresses (or --allow-insecure-cluster-urls)"
            }
            Place::Loopback => " unless dbaas-server runs with --allow-insecure-cluster-urls",
            Place::Public | Place::Never(_) => "",
        }
    }

    /// Checks where `config` points and pins a host name to the address
    /// that was checked. `config` is the kubeconfig's current context.
    pub async fn check(&self, config: &mut kube::Config) -> Result<(), ApiError> {
        let url = config.cluster_url.clone();
        let insecure_note = " unless dbaas-server runs with --allow-insecure-cluster-urls";
        match url.scheme_str() {
            Some("https") => {}
            Some("http") if self.allow_insecure_urls => {}
            Some("http") => {
                return Err(refused(format!(
                    "the API server URL must be https://; plain http:// is refused{insecure_note}"
                )));
            }
            _ => {
                return Err(refused(
                    "the API server URL must be an https:// URL".to_owned(),
                ));
            }
        }
        if config.accept_invalid_certs && !self.allow_insecure_urls {
            return Err(refused(format!(
                "insecure-skip-tls-verify is refused{insecure_note}; give certificate-authority-data instead"
            )));
        }
        let host = url
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .filter(|h| !h.is_empty())
            .ok_or_else(|| refused("the API server URL has no host".to_owned()))?
            .to_ascii_lowercase();
        let port = url
            .port_u16()
            .unwrap_or(if url.scheme_str() == Some("http") {
                80
            } else {
                443
            });
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.judge(&host, classify(ip));
        }
        let name = host.trim_end_matches('.');
        if let Some(place) = classify_name(name) {
            self.judge(&host, place)?;
        }
        let addresses: Vec<SocketAddr> = match tokio::time::timeout(
            RESOLVE_TIMEOUT,
            tokio::net::lookup_host((name, port)),
        )
        .await
        {
            Ok(Ok(found)) => found.collect(),
            Ok(Err(_)) | Err(_) => Vec::new(),
        };
        let Some(first) = addresses.first().copied() else {
            return Err(ApiError::Upstream {
                code: 422,
                reason: "ClusterUnreachable".into(),
                message: format!("the API server's host name {host} does not resolve"),
            });
        };
        for address in &addresses {
            self.judge(&host, classify(address.ip()))?;
        }
        pin(config, &url, &host, first)
    }

    fn judge(&self, host: &str, place: Place) -> Result<(), ApiError> {
        if self.allows(place) {
            return Ok(());
        }
        Err(refused(format!(
            "the API server's host {host} is or resolves to {}; registered clusters may not point there{}",
            place.description(),
            Self::flag_for(place)
        )))
    }
}

fn refused(message: String) -> ApiError {
    ApiError::Upstream {
        code: 422,
        reason: "ClusterUrlRefused".into(),
        message,
    }
}

/// Points `config` at `address` instead of `host`, keeping what the name
/// was for: TLS verifies (and SNI names) `host` unless the kubeconfig
/// names a `tls-server-name`, and the `Host` header carries it.
fn pin(
    config: &mut kube::Config,
    url: &Uri,
    host: &str,
    address: SocketAddr,
) -> Result<(), ApiError> {
    let internal =
        |what: &str| ApiError::Internal(format!("pinning the API server address: {what}"));
    let mut parts = url.clone().into_parts();
    parts.authority = Some(
        address
            .to_string()
            .parse()
            .map_err(|_| internal("authority"))?,
    );
    config.cluster_url = Uri::from_parts(parts).map_err(|_| internal("URL"))?;
    if config.tls_server_name.is_none() {
        config.tls_server_name = Some(host.to_owned());
    }
    let authority = url.authority().map(|a| a.as_str()).unwrap_or(host);
    let value = HeaderValue::from_str(authority).map_err(|_| internal("Host header"))?;
    config
        .headers
        .push((HeaderName::from_static("host"), value));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Place {
        classify(text.parse().unwrap())
    }

    #[test]
    fn addresses_are_classified() {
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2001:4860:4860::8888",
            "100.128.0.1",
            // Just outside 192.0.0.0/24 and 198.18.0.0/15.
            "192.0.1.1",
            "198.17.255.255",
            "198.20.0.1",
            "168.63.129.17",
            // The IPv4 inside is what counts.
            "64:ff9b:1::808:808",
            "::ffff:0:808:808",
        ] {
            assert_eq!(ip(public), Place::Public, "{public}");
        }
        for private in [
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "100.64.0.1",
            "fd12::1",
            "fc00::1",
            "::ffff:10.1.2.3",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
            "192.0.0.1",
            "192.0.0.170",
            "198.18.0.1",
            "198.19.255.254",
            "64:ff9b:1::a00:1",
            "64:ff9b:1:abcd::c0a8:101",
            "::ffff:0:a00:1",
            "::ffff:0:c612:1",
        ] {
            assert_eq!(ip(private), Place::Private, "{private}");
        }
        for loopback in [
            "127.0.0.1",
            "127.8.9.1",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:0:7f00:1",
            "64:ff9b:1::7f00:1",
        ] {
            assert_eq!(ip(loopback), Place::Loopback, "{loopback}");
        }
        for never in [
            "0.0.0.0",
            "0.1.2.3",
            "::",
            "169.254.169.254",
            "169.254.0.1",
            "fe80::1",
            "febf::1",
            "224.0.0.1",
            "ff02::1",
            "255.255.255.255",
            "240.0.0.1",
            "fd00:ec2::254",
            "100.100.100.200",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "::a9fe:a9fe",
            // Local-use NAT64 and IPv4-translated forms of the metadata address.
            "64:ff9b:1::a9fe:a9fe",
            "64:ff9b:1:ffff:ffff:ffff:a9fe:a9fe",
            "::ffff:0:a9fe:a9fe",
            "::ffff:0:0:0",
            // Teredo, whatever it encodes.
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            // Azure's wire server, as it is and inside IPv6.
            "168.63.129.16",
            "::ffff:168.63.129.16",
            "64:ff9b::a83f:8110",
            "::ffff:0:a83f:8110",
        ] {
            assert!(matches!(ip(never), Place::Never(_)), "{never}");
        }
    }

    fn config(url: &str) -> kube::Config {
        kube::Config::new(url.parse().unwrap())
    }

    async fn check(policy: &RegistrationPolicy, url: &str) -> Result<kube::Config, ApiError> {
        let mut config = config(url);
        policy.check(&mut config).await.map(|()| config)
    }

    #[tokio::test]
    async fn the_default_policy_refuses_loopback_metadata_private_and_plain_http() {
        let policy = RegistrationPolicy::default();
        for url in [
            "https://127.0.0.1:6443",
            "https://[::1]:6443",
            "https://localhost:6443",
            "https://api.localhost",
            "https://169.254.169.254",
            "https://[fe80::1]",
            "https://metadata.google.internal",
            "https://10.96.0.1",
            "https://kubernetes.default.svc",
            "https://kubernetes.default.svc.cluster.local.",
            "https://0.0.0.0:6443",
            "http://8.8.8.8",
            "ftp://8.8.8.8",
        ] {
            let err = check(&policy, url).await.unwrap_err();
            assert_eq!(err.status().as_u16(), 422, "{url}: {err}");
            assert_eq!(err.reason(), "ClusterUrlRefused", "{url}: {err}");
        }
        let mut skip = config("https://8.8.8.8");
        skip.accept_invalid_certs = true;
        let err = policy.check(&mut skip).await.unwrap_err();
        assert!(
            err.to_string().contains("insecure-skip-tls-verify"),
            "{err}"
        );
        // Messages name the rule and the flag, never a resolved address.
        let err = check(&policy, "https://localhost:6443").await.unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        assert!(!err.to_string().contains("127.0.0.1"), "{err}");
        assert!(
            err.to_string().contains("--allow-insecure-cluster-urls"),
            "{err}"
        );
        assert!(check(&policy, "https://8.8.8.8:6443").await.is_ok());
    }

    #[tokio::test]
    async fn flags_allow_private_and_loopback_but_never_metadata() {
        let private = RegistrationPolicy {
            allow_private_addresses: true,
            ..RegistrationPolicy::default()
        };
        assert!(check(&private, "https://10.96.0.1").await.is_ok());
        assert!(check(&private, "https://[fd12::1]:6443").await.is_ok());
        assert!(check(&private, "https://127.0.0.1").await.is_err());
        assert!(check(&private, "http://10.96.0.1").await.is_err());
        let insecure = RegistrationPolicy {
            allow_insecure_urls: true,
            ..RegistrationPolicy::default()
        };
        for url in [
            "https://127.0.0.1:6443",
            "http://127.0.0.1:8080",
            "https://10.0.0.1",
        ] {
            assert!(check(&insecure, url).await.is_ok(), "{url}");
        }
        for url in [
            "https://169.254.169.254",
            "http://[fd00:ec2::254]",
            "https://metadata.google.internal",
            "https://0.0.0.0",
            "https://224.0.0.1",
        ] {
            assert!(check(&insecure, url).await.is_err(), "{url}");
        }
    }

    #[tokio::test]
    async fn names_are_resolved_and_pinned_to_the_checked_address() {
        let insecure = RegistrationPolicy {
            allow_insecure_urls: true,
            ..RegistrationPolicy::default()
        };
        let pinned = check(&insecure, "https://localhost:6443/prefix")
            .await
            .unwrap();
        let host = pinned.cluster_url.host().unwrap();
        assert!(
            host.parse::<IpAddr>().is_ok() || host.starts_with('['),
            "{}",
            pinned.cluster_url
        );
        assert_eq!(pinned.cluster_url.port_u16(), Some(6443));
        assert_eq!(pinned.cluster_url.path(), "/prefix");
        assert_eq!(pinned.tls_server_name.as_deref(), Some("localhost"));
        assert!(
            pinned
                .headers
                .iter()
                .any(|(name, value)| name == "host" && value == "localhost:6443"),
            "{:?}",
            pinned.headers
        );
        // A literal address is not rewritten.
        let literal = check(&insecure, "https://127.0.0.1:6443").await.unwrap();
        assert_eq!(literal.cluster_url.to_string(), "https://127.0.0.1:6443/");
        assert_eq!(literal.tls_server_name, None);
    }
}
