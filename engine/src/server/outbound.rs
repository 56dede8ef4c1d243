//! Requests to URLs users give (webhooks): http(s) only, no redirects, and no loopback,
//! private, link-local or cloud-metadata address unless an admin allows private targets. The
//! name is resolved once, every address checked, and the request pinned to those addresses, so
//! a name cannot point elsewhere between the check and the call (DNS rebinding).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use url::Url;

use super::error::{Error, Result};

/// A URL's syntax: absolute http(s), a host, no credentials, at most 2,000 characters.
pub fn parse(field: &str, raw: &str) -> Result<Url> {
    let raw = raw.trim();
    if raw.len() > 2000 {
        return Err(Error::invalid(field, "at most 2,000 characters"));
    }
    let url =
        Url::parse(raw).map_err(|e| Error::invalid(field, format!("not an absolute URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::invalid(field, "must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid(field, "needs a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(
            field,
            "must not carry credentials; send them as a header",
        ));
    }
    Ok(url)
}

/// Whether an address is on the public internet (not loopback, private, link-local, shared,
/// metadata, multicast, documentation or unspecified).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, cloud metadata included
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local (incl. AWS metadata fd00:ec2::254)
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || ip.to_ipv4().is_some_and(|v4| !public_v4(v4))) // IPv4-compatible ::a.b.c.d
}

/// Refuses a URL whose host is an address (or `localhost`) that is not public, before any
/// lookup: what can be told from the URL alone (saving a webhook).
pub fn check_literal(field: &str, url: &Url, allow_private: bool) -> Result<()> {
    if allow_private {
        return Ok(());
    }
    let private = match url.host() {
        Some(url::Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => true,
    };
    if private {
        return Err(Error::invalid(
            field,
            "points at a private, loopback or link-local address; an admin can allow private \
             targets in settings",
        ));
    }
    Ok(())
}

/// Resolves a URL's host and checks every address; the answer is what to pin the request to.
pub async fn resolve(
    url: &Url,
    allow_private: bool,
) -> std::result::Result<Vec<SocketAddr>, String> {
    let host = url.host_str().ok_or("the URL has no host")?;
    let port = url.port_or_known_default().unwrap_or(80);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(format!("{host} has no address"));
    }
    if !allow_private && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(format!(
            "{host} resolves to {}, a private, loopback or link-local address (an admin can allow private targets)",
            bad.ip()
        ));
    }
    Ok(addrs)
}

/// A client for one request to `url`: pinned to `addrs`, no redirects, no proxies.
pub fn client(
    url: &Url,
    addrs: &[SocketAddr],
    timeout: Duration,
) -> std::result::Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("PromptLooper-Webhooks/", env!("CARGO_PKG_VERSION")));
    if let Some(url::Host::Domain(d)) = url.host() {
        builder = builder.resolve_to_addrs(d, addrs);
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_are_checked_for_scheme_host_and_credentials() {
        assert!(parse("url", "https://hooks.example.com/x").is_ok());
        for bad in [
            "ftp://example.com",
            "file:///etc/passwd",
            "example.com/x",
            "https://user:pw@example.com",
        ] {
            assert_eq!(parse("url", bad).unwrap_err().field(), Some("url"), "{bad}");
        }
        let local = parse("url", "http://localhost:9000/hook").unwrap();
        assert!(check_literal("url", &local, false).is_err());
        assert!(check_literal("url", &local, true).is_ok());
        let meta = parse("url", "http://169.254.169.254/latest").unwrap();
        assert!(check_literal("url", &meta, false).is_err());
        let v6 = parse("url", "http://[::1]:8080/").unwrap();
        assert!(check_literal("url", &v6, false).is_err());
    }

    #[tokio::test]
    async fn resolution_refuses_private_answers_unless_allowed() {
        let url = parse("url", "http://127.0.0.1:9/x").unwrap();
        assert!(
            resolve(&url, false)
                .await
                .unwrap_err()
                .contains("127.0.0.1")
        );
        assert_eq!(resolve(&url, true).await.unwrap()[0].port(), 9);
        let name = parse("url", "http://localhost:9/x").unwrap();
        assert!(resolve(&name, false).await.is_err());
    }
}
