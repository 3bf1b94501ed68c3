//! The SSRF guard: customers choose webhook URLs, so without it a URL could make hookrelay
//! call its own host, the internal network or the cloud metadata service.
//!
//! The check runs on the resolved address, inside the HTTP client's DNS resolver
//! ([`GuardedResolver`]), so the connection goes to exactly the address that was checked: a
//! host name that resolves to a public address at validation time and to 127.0.0.1 at send
//! time (DNS rebinding) is still refused. URLs whose host is an IP literal never reach a
//! resolver, so the dispatcher checks those with [`SsrfGuard::check_url`].
//!
//! The HTTP client must also be built without proxies (`ClientBuilder::no_proxy`): through a
//! proxy, the resolver would check the proxy's address and the proxy would reach the target.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// The kind of address a destination was refused for, named so an operator reading the
/// refusal knows which range matched and whether to allowlist it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// A cloud provider's instance metadata service (credentials live there).
    CloudMetadata,
    Loopback,
    /// RFC 1918: 10/8, 172.16/12, 192.168/16.
    Private,
    LinkLocal,
    /// IPv6 fc00::/7, the IPv6 counterpart of private ranges.
    UniqueLocal,
    Multicast,
    /// 0.0.0.0/8 and `::`; Linux connects 0.0.0.0 to the local host.
    Unspecified,
    Broadcast,
    /// 100.64/10, carrier-grade NAT: internal to the provider's network.
    SharedCgnat,
    /// Ranges reserved for examples in documentation; never a real receiver.
    Documentation,
    /// IETF-reserved, benchmarking, deprecated site-local and other special-purpose ranges.
    Reserved,
}

impl AddressClass {
    /// A short stable name, for messages and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::CloudMetadata => "cloud-metadata",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local",
            AddressClass::UniqueLocal => "unique-local",
            AddressClass::Multicast => "multicast",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Broadcast => "broadcast",
            AddressClass::SharedCgnat => "shared (CGNAT)",
            AddressClass::Documentation => "documentation",
            AddressClass::Reserved => "reserved",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why no request was sent to a destination.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The address is in a refused class and not on the allowlist.
    #[error("{ip} is a {class} address; webhooks to it are refused unless allowlisted")]
    Address { ip: IpAddr, class: AddressClass },
    /// Every address the host resolved to was refused; `first` is the first of them.
    #[error("every address of {host} is refused: {first}")]
    AllAddresses { host: String, first: Box<Refusal> },
    #[error("the URL has no host")]
    NoHost,
    /// Resolution itself failed. Not a policy refusal: the delivery may succeed later.
    #[error("could not resolve {host}")]
    Lookup {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("{host} resolved to no address")]
    NoAddress { host: String },
}

impl Refusal {
    /// True when the guard's policy refused the destination, as opposed to the name not
    /// resolving. The dispatcher reports the first as `Refused`, the second as a connect error.
    pub fn is_policy(&self) -> bool {
        matches!(
            self,
            Refusal::Address { .. } | Refusal::AllAddresses { .. } | Refusal::NoHost
        )
    }

    /// Finds a refusal in an error's source chain, e.g. inside the `reqwest::Error` of a
    /// request whose resolution [`GuardedResolver`] refused.
    pub fn find<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refusal> {
        let mut current = Some(err);
        while let Some(e) = current {
            if let Some(refusal) = e.downcast_ref::<Refusal>() {
                return Some(refusal);
            }
            current = e.source();
        }
        None
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

const fn v6(segments: [u16; 8], prefix: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix)
}

/// IPv4 ranges in the order they are checked: the metadata addresses first, so a refusal of
/// 169.254.169.254 says "cloud metadata" rather than the broader "link-local".
/// Built at compile time, so a bad prefix is a build error, not a runtime panic.
const V4_REFUSED: &[(Ipv4Net, AddressClass)] = &[
    (v4(169, 254, 169, 254, 32), AddressClass::CloudMetadata), // AWS, GCP, Azure, OCI…
    (v4(169, 254, 170, 2, 32), AddressClass::CloudMetadata),   // AWS ECS task metadata
    (v4(100, 100, 100, 200, 32), AddressClass::CloudMetadata), // Alibaba Cloud
    (v4(168, 63, 129, 16, 32), AddressClass::CloudMetadata),   // Azure WireServer
    (v4(255, 255, 255, 255, 32), AddressClass::Broadcast),
    (v4(0, 0, 0, 0, 8), AddressClass::Unspecified),
    (v4(127, 0, 0, 0, 8), AddressClass::Loopback),
    (v4(10, 0, 0, 0, 8), AddressClass::Private),
    (v4(172, 16, 0, 0, 12), AddressClass::Private),
    (v4(192, 168, 0, 0, 16), AddressClass::Private),
    (v4(169, 254, 0, 0, 16), AddressClass::LinkLocal),
    (v4(100, 64, 0, 0, 10), AddressClass::SharedCgnat),
    (v4(224, 0, 0, 0, 4), AddressClass::Multicast),
    (v4(192, 0, 2, 0, 24), AddressClass::Documentation),
    (v4(198, 51, 100, 0, 24), AddressClass::Documentation),
    (v4(203, 0, 113, 0, 24), AddressClass::Documentation),
    (v4(192, 0, 0, 0, 24), AddressClass::Reserved), // IETF protocol assignments
    (v4(198, 18, 0, 0, 15), AddressClass::Reserved), // benchmarking
    (v4(240, 0, 0, 0, 4), AddressClass::Reserved),  // former class E
];

/// IPv6 ranges in checking order. IPv4-mapped, -compatible and NAT64 addresses never get
/// here: they are checked as the IPv4 address they carry.
const V6_REFUSED: &[(Ipv6Net, AddressClass)] = &[
    (
        v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128),
        AddressClass::CloudMetadata,
    ), // AWS
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), AddressClass::Unspecified),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), AddressClass::Loopback),
    (
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        AddressClass::LinkLocal,
    ),
    (
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        AddressClass::UniqueLocal,
    ),
    (
        v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
        AddressClass::Multicast,
    ),
    (
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        AddressClass::Documentation,
    ),
    (
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        AddressClass::Documentation,
    ),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        AddressClass::Reserved,
    ), // deprecated site-local
    (
        v6([0x0100, 0, 0, 0, 0, 0, 0, 0], 64),
        AddressClass::Reserved,
    ), // discard-only
];

/// The IPv4 address an IPv6 address carries, where connecting to the IPv6 one can reach the
/// IPv4 one:
/// - IPv4-mapped (`::ffff:a.b.c.d`): dual-stack sockets connect to the IPv4 address;
/// - deprecated IPv4-compatible (`::a.b.c.d`, except `::` and `::1`);
/// - NAT64, the well-known prefix `64:ff9b::/96` and the local-use `64:ff9b:1::/48`
///   (RFC 8215; the address sits in the last 32 bits, as with a /96 inside it): a NAT64
///   gateway forwards to it, internal addresses included;
/// - 6to4 (`2002:AABB:CCDD::/48` carries `AA.BB.CC.DD`): a relay forwards to it;
/// - Teredo (`2001:0::/32`): the client's address is the last 32 bits inverted.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return Some(mapped);
    }
    let o = ip.octets();
    let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match ip.segments() {
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0, _, _] => Some(tail),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 1, ..] => Some(tail),
        [0x2002, ..] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        [0x2001, 0, ..] => Some(Ipv4Addr::new(!o[12], !o[13], !o[14], !o[15])),
        _ => None,
    }
}

/// The class an address is refused for, or `None` for an ordinary public address.
pub fn classify(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => V4_REFUSED
            .iter()
            .find(|(net, _)| net.contains(&v4))
            .map(|(_, class)| *class),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => classify(IpAddr::V4(v4)),
            None => V6_REFUSED
                .iter()
                .find(|(net, _)| net.contains(&v6))
                .map(|(_, class)| *class),
        },
    }
}

/// Decides whether outbound requests may go to an address.
#[derive(Debug, Clone, Default)]
pub struct SsrfGuard {
    /// Networks admitted whatever their class: loopback for tests, an internal range for a
    /// deployment whose receivers live there. Empty by default.
    allow: Vec<IpNet>,
}

impl SsrfGuard {
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self { allow }
    }

    pub fn allowlist(&self) -> &[IpNet] {
        &self.allow
    }

    /// Admits an address unless it is in a refused class and not allowlisted. An IPv6 address
    /// carrying an IPv4 one is judged as that IPv4 address, and is admitted when either form is
    /// allowlisted.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        let embedded = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let allowed = |addr: &IpAddr| self.allow.iter().any(|net| net.contains(addr));
        if allowed(&ip) || embedded.as_ref().is_some_and(allowed) {
            return Ok(());
        }
        match classify(ip) {
            None => Ok(()),
            Some(class) => Err(Refusal::Address { ip, class }),
        }
    }

    /// Checks a URL whose host is an IP literal; reqwest connects to those without calling
    /// the resolver. Host names pass here and are checked by [`GuardedResolver`] on each
    /// connection. The URL parser has already normalized forms like `http://0x7f000001/`
    /// to `127.0.0.1`.
    pub fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        match url.host() {
            Some(Host::Ipv4(ip)) => self.check(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check(IpAddr::V6(ip)),
            Some(Host::Domain(_)) => Ok(()),
            None => Err(Refusal::NoHost),
        }
    }

    /// Resolves `host` and keeps only the addresses this guard admits, in resolver order.
    /// Fails when the name does not resolve, or when every address is refused.
    pub async fn resolve(&self, host: &str) -> Result<Vec<SocketAddr>, Refusal> {
        // Port 0: reqwest substitutes the URL's port (or the scheme's default) afterwards.
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|source| Refusal::Lookup {
                host: host.to_owned(),
                source,
            })?
            .collect();
        self.filter(host, resolved)
    }

    fn filter(&self, host: &str, resolved: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Refusal> {
        let mut first_refusal = None;
        let mut admitted = Vec::with_capacity(resolved.len());
        for addr in resolved {
            match self.check(addr.ip()) {
                Ok(()) => admitted.push(addr),
                Err(refusal) => {
                    first_refusal.get_or_insert(refusal);
                }
            }
        }
        match (admitted.is_empty(), first_refusal) {
            (false, _) => Ok(admitted),
            (true, Some(first)) => Err(Refusal::AllAddresses {
                host: host.to_owned(),
                first: Box::new(first),
            }),
            (true, None) => Err(Refusal::NoAddress {
                host: host.to_owned(),
            }),
        }
    }
}

/// A reqwest DNS resolver that only ever returns addresses the guard admits.
///
/// Install it with `reqwest::ClientBuilder::dns_resolver(GuardedResolver::new(guard))`.
/// A refused request fails with a `reqwest::Error` whose source chain holds the [`Refusal`];
/// [`Refusal::find`] gets it back out.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    guard: Arc<SsrfGuard>,
}

impl GuardedResolver {
    pub fn new(guard: SsrfGuard) -> Self {
        Self {
            guard: Arc::new(guard),
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = Arc::clone(&self.guard);
        Box::pin(async move {
            let result: Result<Addrs, Box<dyn std::error::Error + Send + Sync>> =
                match guard.resolve(name.as_str()).await {
                    Ok(addrs) => Ok(Box::new(addrs.into_iter())),
                    Err(refusal) => Err(Box::new(refusal)),
                };
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn refused_class(guard: &SsrfGuard, addr: &str) -> Option<AddressClass> {
        match guard.check(ip(addr)) {
            Ok(()) => None,
            Err(Refusal::Address { class, .. }) => Some(class),
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
    }

    #[test]
    fn every_refused_class_is_named() {
        use AddressClass::*;
        let cases = [
            ("169.254.169.254", CloudMetadata),
            ("169.254.170.2", CloudMetadata),
            ("100.100.100.200", CloudMetadata),
            ("fd00:ec2::254", CloudMetadata),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("::1", Loopback),
            ("10.0.0.1", Private),
            ("10.255.255.255", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("169.254.1.1", LinkLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fc00::1", UniqueLocal),
            ("fd12:3456::1", UniqueLocal),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("ff02::1", Multicast),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("::", Unspecified),
            ("255.255.255.255", Broadcast),
            ("100.64.0.1", SharedCgnat),
            ("100.127.255.255", SharedCgnat),
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("2001:db8::1", Documentation),
            ("192.0.0.8", Reserved),
            ("198.18.0.1", Reserved),
            ("240.0.0.1", Reserved),
            ("fec0::1", Reserved),
            ("100::1", Reserved),
        ];
        let guard = SsrfGuard::default();
        for (addr, class) in cases {
            assert_eq!(refused_class(&guard, addr), Some(class), "{addr}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        let guard = SsrfGuard::default();
        for addr in [
            "93.184.215.14",
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
        ] {
            assert_eq!(refused_class(&guard, addr), None, "{addr}");
        }
    }

    #[test]
    fn ipv6_forms_of_ipv4_addresses_are_judged_as_ipv4() {
        use AddressClass::*;
        let guard = SsrfGuard::default();
        for (addr, class) in [
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:169.254.169.254", Some(CloudMetadata)),
            ("::ffff:10.1.2.3", Some(Private)),
            ("::127.0.0.1", Some(Loopback)),
            ("::10.0.0.1", Some(Private)),
            ("64:ff9b::192.168.0.1", Some(Private)),
            // NAT64 local-use prefix (RFC 8215).
            ("64:ff9b:1::10.0.0.5", Some(Private)),
            ("64:ff9b:1::a9fe:a9fe", Some(CloudMetadata)),
            // 6to4: 2002:7f00:0001:: carries 127.0.0.1.
            ("2002:7f00:1::1", Some(Loopback)),
            ("2002:a9fe:a9fe::", Some(CloudMetadata)),
            ("2002:0808:0808::1", None),
            // Teredo: the client address is the last 32 bits inverted (~127.0.0.1).
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", Some(Loopback)),
            ("2001:0:4136:e378:8000:63bf:f5ff:fffe", Some(Private)), // ~10.0.0.1
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::8.8.8.8", None),
            ("::ffff:168.63.129.16", Some(CloudMetadata)), // Azure WireServer
        ] {
            assert_eq!(refused_class(&guard, addr), class, "{addr}");
        }
    }

    #[test]
    fn the_allowlist_admits_any_class() {
        let guard = SsrfGuard::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "169.254.169.254/32".parse().unwrap(),
            "10.1.0.0/16".parse().unwrap(),
        ]);
        for addr in [
            "127.0.0.1",
            "127.8.9.10",
            "::ffff:127.0.0.1",
            "169.254.169.254",
            "10.1.2.3",
        ] {
            assert!(guard.check(ip(addr)).is_ok(), "{addr}");
        }
        // Only what is listed: neighbours and ::1 stay refused.
        assert_eq!(
            refused_class(&guard, "10.2.0.1"),
            Some(AddressClass::Private)
        );
        assert_eq!(refused_class(&guard, "::1"), Some(AddressClass::Loopback));
        assert_eq!(
            refused_class(&guard, "169.254.170.2"),
            Some(AddressClass::CloudMetadata)
        );
    }

    #[test]
    fn refusal_messages_name_the_address_and_class() {
        let err = SsrfGuard::default()
            .check(ip("169.254.169.254"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "169.254.169.254 is a cloud-metadata address; webhooks to it are refused unless allowlisted"
        );
        assert!(err.is_policy());
    }

    #[test]
    fn urls_with_ip_literals_are_checked() {
        let guard = SsrfGuard::default();
        let check = |u: &str| guard.check_url(&Url::parse(u).unwrap());
        assert!(matches!(
            check("http://127.0.0.1:8080/hook"),
            Err(Refusal::Address { .. })
        ));
        assert!(matches!(
            check("https://[::1]/hook"),
            Err(Refusal::Address { .. })
        ));
        assert!(matches!(
            check("http://[::ffff:10.0.0.1]/"),
            Err(Refusal::Address { .. })
        ));
        // Obfuscated IPv4 forms are normalized by the URL parser and still caught.
        assert!(matches!(
            check("http://0x7f000001/"),
            Err(Refusal::Address { .. })
        ));
        assert!(matches!(
            check("http://2130706433/"),
            Err(Refusal::Address { .. })
        ));
        assert!(matches!(
            check("http://0177.0.0.1/"),
            Err(Refusal::Address { .. })
        ));
        assert!(check("https://8.8.8.8/hook").is_ok());
        // Names are left to the resolver.
        assert!(check("https://receiver.example.com/hook").is_ok());
        assert!(matches!(check("mailto:a@b.c"), Err(Refusal::NoHost)));
    }

    #[test]
    fn filtering_keeps_admitted_addresses_in_order() {
        let guard = SsrfGuard::default();
        let addrs: Vec<SocketAddr> = ["10.0.0.1:0", "8.8.8.8:0", "127.0.0.1:0", "1.1.1.1:0"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let kept = guard.filter("mixed.example", addrs).unwrap();
        assert_eq!(
            kept,
            vec!["8.8.8.8:0".parse().unwrap(), "1.1.1.1:0".parse().unwrap()]
        );
        assert!(matches!(
            guard.filter("none.example", Vec::new()),
            Err(Refusal::NoAddress { .. })
        ));
    }

    #[tokio::test]
    async fn resolver_refuses_localhost_without_the_allowlist() {
        let resolver = GuardedResolver::new(SsrfGuard::default());
        let err = match resolver.resolve(Name::from_str("localhost").unwrap()).await {
            Ok(addrs) => panic!("localhost admitted: {:?}", addrs.collect::<Vec<_>>()),
            Err(err) => err,
        };
        let refusal = err.downcast_ref::<Refusal>().expect("a Refusal");
        assert!(refusal.is_policy(), "{refusal}");
        match refusal {
            Refusal::AllAddresses { host, first } => {
                assert_eq!(host, "localhost");
                assert!(matches!(
                    **first,
                    Refusal::Address {
                        class: AddressClass::Loopback,
                        ..
                    }
                ));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn resolver_admits_only_allowlisted_addresses_of_localhost() {
        // Only IPv4 loopback is allowlisted: if localhost also resolves to ::1, that is dropped.
        let resolver = GuardedResolver::new(SsrfGuard::new(vec!["127.0.0.0/8".parse().unwrap()]));
        let addrs: Vec<SocketAddr> =
            match resolver.resolve(Name::from_str("localhost").unwrap()).await {
                Ok(addrs) => addrs.collect(),
                Err(err) => panic!("localhost refused: {err}"),
            };
        assert!(!addrs.is_empty());
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_ipv4() && a.ip().is_loopback()),
            "{addrs:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_request_carries_the_refusal_through_reqwest() {
        let client = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(GuardedResolver::new(SsrfGuard::default()))
            .build()
            .unwrap();
        // Nothing listens on port 9; the request must fail at resolution, before connecting.
        let err = client.get("http://localhost:9/").send().await.unwrap_err();
        let refusal = Refusal::find(&err).expect("refusal in the error chain");
        assert!(refusal.is_policy(), "{refusal}");
        assert!(refusal.to_string().contains("loopback"), "{refusal}");
    }

    #[tokio::test]
    async fn unresolvable_names_are_not_policy_refusals() {
        let guard = SsrfGuard::default();
        // .invalid never resolves (RFC 6761).
        let err = guard.resolve("no-such-host.invalid").await.unwrap_err();
        assert!(matches!(err, Refusal::Lookup { .. }), "{err:?}");
        assert!(!err.is_policy());
    }
}
