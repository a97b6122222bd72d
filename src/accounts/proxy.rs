//! Identity from a trusted reverse proxy (mod_auth_cas, Shibboleth SP): the proxy authenticates
//! the user and passes username, mail, name, affiliation and groups in request headers. Those
//! headers are only believed from the configured proxy addresses.

use crate::config::ProxyAuthConfig;
use crate::db::ProxyIdentity;
use std::net::IpAddr;

/// What to make of a request's identity headers.
#[derive(Debug, Clone, PartialEq)]
pub enum ProxyDecision {
    /// The proxy mode is off, or the request carries no identity header.
    NoIdentity,
    /// The request comes from a trusted proxy and names a user.
    Identity(ProxyIdentity),
    /// Identity headers from an address that is not a trusted proxy: refuse the request.
    Untrusted { header: String },
}

/// Reads the identity headers through `header` (case-insensitive lookup by name).
pub fn identity_from_headers(
    config: &ProxyAuthConfig,
    peer: IpAddr,
    header: impl Fn(&str) -> Option<String>,
) -> ProxyDecision {
    if !config.enabled {
        return ProxyDecision::NoIdentity;
    }
    let get = |name: &str| {
        if name.is_empty() {
            None
        } else {
            header(name).map(|v| v.trim().to_owned())
        }
    };
    let Some(username) = get(&config.user_header).filter(|u| !u.is_empty()) else {
        return ProxyDecision::NoIdentity;
    };
    if !is_trusted_proxy(config, peer) {
        return ProxyDecision::Untrusted {
            header: config.user_header.clone(),
        };
    }
    let groups = get(&config.groups_header).map(|value| {
        let separator = if config.groups_separator.is_empty() {
            ";"
        } else {
            config.groups_separator.as_str()
        };
        let mut groups: Vec<String> = value
            .split(separator)
            .map(|g| g.trim().to_owned())
            .filter(|g| !g.is_empty())
            .collect();
        groups.sort();
        groups.dedup();
        groups
    });
    ProxyDecision::Identity(ProxyIdentity {
        username,
        email: get(&config.email_header).unwrap_or_default(),
        display_name: get(&config.display_name_header).unwrap_or_default(),
        affiliation: get(&config.affiliation_header).unwrap_or_default(),
        groups,
    })
}

/// Whether `peer` is one of the configured proxies (IPv4-mapped IPv6 counts as IPv4).
pub fn is_trusted_proxy(config: &ProxyAuthConfig, peer: IpAddr) -> bool {
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
        v4 => v4,
    };
    config.trusted_proxies.iter().any(|net| net.contains(&peer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn headers(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
            .collect();
        move |name| map.get(&name.to_ascii_lowercase()).cloned()
    }

    fn enabled() -> ProxyAuthConfig {
        ProxyAuthConfig {
            enabled: true,
            ..ProxyAuthConfig::default()
        }
    }

    #[test]
    fn off_by_default_ignores_headers() {
        let decision = identity_from_headers(
            &ProxyAuthConfig::default(),
            "127.0.0.1".parse().unwrap(),
            headers(&[("X-Remote-User", "ann")]),
        );
        assert_eq!(decision, ProxyDecision::NoIdentity);
    }

    #[test]
    fn trusted_proxy_passes_identity() {
        let decision = identity_from_headers(
            &enabled(),
            "::ffff:127.0.0.1".parse().unwrap(),
            headers(&[
                ("x-remote-user", "ann"),
                ("X-Remote-Email", "ann@univ.fr"),
                ("X-Remote-Groups", "staff; faculty;;staff"),
            ]),
        );
        let ProxyDecision::Identity(identity) = decision else {
            panic!("expected an identity, got {decision:?}");
        };
        assert_eq!(identity.username, "ann");
        assert_eq!(identity.email, "ann@univ.fr");
        assert_eq!(
            identity.groups,
            Some(vec!["faculty".into(), "staff".into()])
        );
    }

    #[test]
    fn other_addresses_are_refused() {
        let decision = identity_from_headers(
            &enabled(),
            "192.0.2.7".parse().unwrap(),
            headers(&[("X-Remote-User", "admin")]),
        );
        assert!(matches!(decision, ProxyDecision::Untrusted { .. }));
    }
}
