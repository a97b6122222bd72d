//! Outbound fetches a user can point somewhere (video imports, recordings' playback pages): the
//! guard against server-side request forgery. Only `http` and `https`; each host is resolved
//! once and every address it resolves to is checked against the private, loopback,
//! link-local (cloud metadata), shared and reserved ranges before the connection is made to
//! exactly those addresses; redirects are followed by hand, at most [`MAX_REDIRECTS`], each
//! hop checked again; connection and read timeouts; what is read is capped.
//!
//! `videos.fetch_allow` lets chosen ranges through (the simulator on loopback, tests).
//! Errors name the host, never the whole URL: playback URLs carry one-time tokens.

use ipnet::IpNet;
use reqwest::cookie::Jar;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use url::Url;

/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// Why a fetch was refused or failed, in words a user can act upon.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FetchError {
    #[error("this is not a valid web address")]
    Url,
    #[error("only http and https addresses can be fetched, not {0}:")]
    Scheme(String),
    #[error(
        "{host} leads to a private or reserved address ({address}); amphi only fetches from public servers"
    )]
    Private { host: String, address: IpAddr },
    #[error("the name {0} cannot be resolved")]
    Dns(String),
    #[error("{0} redirected more than {MAX_REDIRECTS} times")]
    Redirects(String),
    #[error("{host} answered {status}")]
    Status { host: String, status: u16 },
    #[error("the file is larger than the {limit_mb} MB allowed")]
    TooLarge { limit_mb: u64 },
    #[error("{0} did not answer in time")]
    Timeout(String),
    #[error("the transfer from {host} failed: {reason}")]
    Transfer { host: String, reason: String },
    #[error("the transfer from {0} stopped before the end of the file")]
    Truncated(String),
    #[error("cannot write the file: {0}")]
    Disk(String),
}

/// The checks and limits of every outbound fetch.
#[derive(Debug, Clone)]
pub struct Guard {
    allow: Vec<IpNet>,
    connect_timeout: Duration,
    read_timeout: Duration,
}

/// An answer, with the address it finally came from.
pub struct Fetched {
    pub url: Url,
    pub response: reqwest::Response,
}

impl Guard {
    pub fn new(allow: Vec<IpNet>, connect_timeout: Duration, read_timeout: Duration) -> Self {
        Self {
            allow,
            connect_timeout,
            read_timeout,
        }
    }

    /// Whether `address` may be fetched from: public, or in the allow-list (every port of an
    /// allowed address: list single hosts, not networks).
    pub fn permits(&self, address: IpAddr) -> bool {
        self.allow.iter().any(|net| net.contains(&address)) || !is_reserved(address)
    }

    /// Parses a user's URL and checks its scheme.
    pub fn parse(text: &str) -> Result<Url, FetchError> {
        let url = Url::parse(text.trim()).map_err(|_| FetchError::Url)?;
        check_scheme(&url)?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(FetchError::Url);
        }
        Ok(url)
    }

    /// The addresses `url`'s host resolves to, all of them permitted (else the refusal).
    pub async fn resolve(&self, url: &Url) -> Result<Vec<SocketAddr>, FetchError> {
        check_scheme(url)?;
        let host = host_of(url);
        let port = url.port_or_known_default().ok_or(FetchError::Url)?;
        let addresses: Vec<SocketAddr> = match url.host() {
            Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            Some(url::Host::Domain(name)) => {
                let lookup = tokio::time::timeout(
                    self.connect_timeout,
                    tokio::net::lookup_host((name, port)),
                )
                .await
                .map_err(|_| FetchError::Dns(host.clone()))?
                .map_err(|_| FetchError::Dns(host.clone()))?;
                lookup.collect()
            }
            None => return Err(FetchError::Url),
        };
        if addresses.is_empty() {
            return Err(FetchError::Dns(host));
        }
        // One refused address refuses the name: a resolver answering both a public and a
        // private address must not get a second chance at the connection.
        if let Some(bad) = addresses.iter().find(|a| !self.permits(a.ip())) {
            return Err(FetchError::Private {
                host,
                address: bad.ip(),
            });
        }
        Ok(addresses)
    }

    /// `GET url` (or `HEAD`), redirects followed and checked, a 2xx answer or the error.
    /// `jar` keeps cookies across calls (a playback page's session for its video file).
    pub async fn get(
        &self,
        url: &Url,
        jar: Option<&Arc<Jar>>,
        head: bool,
    ) -> Result<Fetched, FetchError> {
        let mut url = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let addresses = self.resolve(&url).await?;
            let host = host_of(&url);
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .connect_timeout(self.connect_timeout)
                .read_timeout(self.read_timeout)
                .user_agent(concat!("amphi/", env!("CARGO_PKG_VERSION")));
            if let Some(url::Host::Domain(name)) = url.host() {
                builder = builder.resolve_to_addrs(name, &addresses);
            }
            if let Some(jar) = jar {
                builder = builder.cookie_provider(Arc::clone(jar));
            }
            let client = builder.build().map_err(|e| FetchError::Transfer {
                host: host.clone(),
                reason: e.without_url().to_string(),
            })?;
            let request = if head {
                client.head(url.clone())
            } else {
                client.get(url.clone())
            };
            let response = request.send().await.map_err(|e| transfer(&host, e))?;
            let status = response.status();
            if status.is_redirection() {
                let next = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .ok_or(FetchError::Status {
                        host: host.clone(),
                        status: status.as_u16(),
                    })?;
                check_scheme(&next)?;
                url = next;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status {
                    host,
                    status: status.as_u16(),
                });
            }
            return Ok(Fetched { url, response });
        }
        Err(FetchError::Redirects(host_of(&url)))
    }

    /// A text resource (a playback page, an API's JSON) of at most `max_bytes`.
    pub async fn text(
        &self,
        url: &Url,
        jar: Option<&Arc<Jar>>,
        max_bytes: u64,
    ) -> Result<(Url, String), FetchError> {
        let Fetched { url, mut response } = self.get(url, jar, false).await?;
        let host = host_of(&url);
        if response.content_length().is_some_and(|l| l > max_bytes) {
            return Err(FetchError::TooLarge {
                limit_mb: max_bytes.div_ceil(1 << 20),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transfer(&host, e))? {
            if (body.len() + chunk.len()) as u64 > max_bytes {
                return Err(FetchError::TooLarge {
                    limit_mb: max_bytes.div_ceil(1 << 20),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((url, String::from_utf8_lossy(&body).into_owned()))
    }

    /// Streams `url` into `path`, at most `max_bytes`, calling `progress(done, total)` as it
    /// goes. The file is removed on any failure. Returns the size and the content type.
    pub async fn download(
        &self,
        url: &Url,
        jar: Option<&Arc<Jar>>,
        path: &Path,
        max_bytes: u64,
        mut progress: impl FnMut(u64, Option<u64>) + Send,
    ) -> Result<(u64, Option<String>), FetchError> {
        let result = async {
            let Fetched { url, mut response } = self.get(url, jar, false).await?;
            let host = host_of(&url);
            let total = response.content_length();
            let limit_mb = max_bytes.div_ceil(1 << 20);
            if total.is_some_and(|t| t > max_bytes) {
                return Err(FetchError::TooLarge { limit_mb });
            }
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut file = tokio::fs::File::create(path)
                .await
                .map_err(|e| FetchError::Disk(e.to_string()))?;
            let mut done = 0u64;
            while let Some(chunk) = response.chunk().await.map_err(|e| transfer(&host, e))? {
                done += chunk.len() as u64;
                if done > max_bytes {
                    return Err(FetchError::TooLarge { limit_mb });
                }
                file.write_all(&chunk)
                    .await
                    .map_err(|e| FetchError::Disk(e.to_string()))?;
                progress(done, total);
            }
            file.flush()
                .await
                .map_err(|e| FetchError::Disk(e.to_string()))?;
            if total.is_some_and(|t| t != done) {
                return Err(FetchError::Truncated(host));
            }
            Ok((done, content_type))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(path).await;
        }
        result
    }
}

fn check_scheme(url: &Url) -> Result<(), FetchError> {
    match url.scheme() {
        "http" | "https" => Ok(()),
        other => Err(FetchError::Scheme(other.to_owned())),
    }
}

fn host_of(url: &Url) -> String {
    url.host_str().unwrap_or_default().to_owned()
}

fn transfer(host: &str, error: reqwest::Error) -> FetchError {
    if error.is_timeout() {
        return FetchError::Timeout(host.to_owned());
    }
    // The URL (and its token) stays out of the message.
    let error = error.without_url();
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        reason = format!("{reason}: {cause}");
        source = cause.source();
    }
    FetchError::Transfer {
        host: host.to_owned(),
        reason,
    }
}

/// Addresses no user-given URL may reach: this machine, private networks, link-local (where
/// cloud metadata services answer), shared address space, documentation, benchmarking,
/// multicast and reserved ranges, in IPv4 and IPv6 (with IPv4 embedded in IPv6 unwrapped).
pub fn is_reserved(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => reserved_v4(v4),
        IpAddr::V6(v6) => reserved_v6(v6),
    }
}

fn reserved_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19))
}

fn reserved_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return reserved_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) and IPv4-compatible (::/96) addresses carry an IPv4 address.
    if (segments[0] == 0x64 && segments[1] == 0xff9b && segments[2..6] == [0; 4])
        || segments[..6] == [0; 6]
    {
        let v4 = Ipv4Addr::new(
            (segments[6] >> 8) as u8,
            segments[6] as u8,
            (segments[7] >> 8) as u8,
            segments[7] as u8,
        );
        return ip.is_unspecified() || ip.is_loopback() || reserved_v4(v4);
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local fc00::/7 (fd00:ec2::254 is a metadata service), link-local fe80::/10,
        // site-local fec0::/10, documentation 2001:db8::/32, discard 100::/64.
        || (segments[0] & 0xfe00) == 0xfc00
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] & 0xffc0) == 0xfec0
        || (segments[0] == 0x2001 && segments[1] == 0x0db8)
        || (segments[0] == 0x0100 && segments[1..4] == [0; 3])
        // Local-use NAT64 64:ff9b:1::/48, 6to4 2002::/16 and Teredo 2001::/32 reach IPv4
        // hosts through a translator; benchmarking 2001:2::/48.
        || (segments[0] == 0x64 && segments[1] == 0xff9b && segments[2] == 1)
        || segments[0] == 0x2002
        || (segments[0] == 0x2001 && segments[1] == 0)
        || (segments[0] == 0x2001 && segments[1] == 2 && segments[2] == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn private_loopback_link_local_and_reserved_addresses_are_refused() {
        for refused in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.100.100.200",
            "192.0.0.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
            "2001:db8::1",
            "64:ff9b:1::a00:1",
            "2002:a00:1::1",
            "2001:0:4136:e378::1",
            "2001:2::1",
        ] {
            assert!(is_reserved(ip(refused)), "{refused} must be refused");
        }
        for public in [
            "8.8.8.8",
            "193.48.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2a01:e0a::1",
            "64:ff9b::808:808",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_reserved(ip(public)), "{public} is public");
        }
    }

    #[test]
    fn the_allow_list_lets_chosen_ranges_through() {
        let guard = Guard::new(
            vec!["127.0.0.0/8".parse().unwrap()],
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        assert!(guard.permits(ip("127.0.0.1")));
        assert!(!guard.permits(ip("::1")));
        assert!(!guard.permits(ip("10.0.0.1")));
        assert!(guard.permits(ip("8.8.8.8")));
    }

    #[test]
    fn only_http_and_https_urls_are_accepted() {
        assert_eq!(
            Guard::parse("file:///etc/passwd").err(),
            Some(FetchError::Scheme("file".to_owned()))
        );
        assert_eq!(
            Guard::parse("gopher://example.org/").err(),
            Some(FetchError::Scheme("gopher".to_owned()))
        );
        assert_eq!(Guard::parse("not a url").err(), Some(FetchError::Url));
        assert!(Guard::parse(" https://video.example.org/a.mp4 ").is_ok());
    }
}
