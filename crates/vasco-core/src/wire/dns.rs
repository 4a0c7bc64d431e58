//! Consul's DNS interface on Vasco's registry: which names `vasco agent` answers, with which
//! records and which response code, decided here; the DNS wire format itself is the caller's
//! (the agent encodes these answers with the npm `dns-packet` library).
//!
//! Source: Consul's DNS documentation ("Perform static DNS queries") and its agent's
//! `agent/dns.go` (dispatch, `handleServiceQuery`, `makeRecordFromIP`, `findWeight`,
//! `trimUDPResponse`), read for behaviour, not copied.
//!
//! # Names
//!
//! | name | answer |
//! |---|---|
//! | `<name>.service[.<dc>].<domain>` | the instances' addresses: `A` / `AAAA` for IP addresses, a `CNAME` for a host name; `SRV` with port, priority and weight |
//! | `<tag>.<name>.service[.<dc>].<domain>` | the same, only instances carrying `<tag>` (case-insensitive) |
//! | `_<name>._<tag>[.service][.<dc>].<domain>` (RFC 2782) | the same; `_tcp` means no tag filter |
//! | `<hex ip>.addr[.<dc>].<domain>` | the address: the targets of `SRV` answers |
//! | any name in the domain, type `SOA` | the zone's `SOA` |
//! | any other name in the domain | `NXDOMAIN` |
//! | a name outside the domain | `REFUSED` (no recursion) |
//!
//! # Which instances
//!
//! Only those selection would pick ([`crate::select::Selector::eligible`]): passing
//! instances, or, when none is passing, the warning ones; never critical or maintenance ones.
//! Consul's default lists warning instances beside passing ones; Vasco's DNS follows Vasco's
//! own selection, so a resolver and `pick()` agree. Every live version is listed (DNS has no
//! version syntax; Consul services have none either). No instance left: `NXDOMAIN`, with the
//! zone's `SOA` (Consul's "not found"); instances left but none with a record of the asked
//! type (an `AAAA` question for IPv4 instances): `NOERROR` with no answer and the `SOA`
//! (RFC 2308 NODATA), as Consul answers. Answers are shuffled (Consul's load spreading), from
//! the caller's [`Rng`].
//!
//! `SRV` records carry priority 1 and the instance's weight when it is passing, 1 when it is
//! warning (Consul's `Weights.Passing` / `Weights.Warning`, whose default is 1), the port of
//! its url, and as target `<hex ip>.addr.<dc>.<domain>` with the address in the additional
//! section (a host name is its own target).
//!
//! The TTL of service records is the zone's ([`DEFAULT_TTL_S`], 0 as in Consul, unless
//! configured); `SOA` and address records have TTL 0.

use alloc::{
    format,
    string::{String, ToString},
    vec::Vec,
};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{json, Value};

use crate::{
    error::{Error, Result},
    health::Status,
    instance::{Instance, Millis},
    name::ServiceName,
    rng::Rng,
    select::{Candidate, Selector, SelectorConfig, Strategy},
    wire::consul::{self, address_port, DATACENTER},
};

/// The domain answered by default, so that existing Consul configurations work.
pub const DEFAULT_DOMAIN: &str = "consul";
/// The TTL of service records by default (seconds): 0, Consul's `service_ttl` default, so a
/// caching resolver never serves an instance after it stopped being picked.
pub const DEFAULT_TTL_S: u32 = 0;
/// The largest UDP answer without EDNS (RFC 1035).
pub const MIN_UDP_PAYLOAD: usize = 512;
/// The largest UDP answer whatever a client advertises (Consul's `maxUDPDatagramSize`).
pub const MAX_UDP_PAYLOAD: usize = 65_535 - 68;

/// The SOA timers (Consul's `dns_config.soa` defaults: refresh 3600, retry 600, expire
/// 86400, min TTL 0).
const SOA_REFRESH: u32 = 3600;
const SOA_RETRY: u32 = 600;
const SOA_EXPIRE: u32 = 86_400;
const SOA_MIN_TTL: u32 = 0;

/// The largest answer a UDP client can take: 512 bytes, or the size it advertises with EDNS
/// (at least 512, at most [`MAX_UDP_PAYLOAD`]). A longer answer is cut to whole records that
/// fit and flagged truncated (TC), and the client asks again over TCP.
pub fn udp_payload_limit(advertised: Option<u16>) -> usize {
    advertised
        .map_or(MIN_UDP_PAYLOAD, |size| {
            usize::from(size).max(MIN_UDP_PAYLOAD)
        })
        .min(MAX_UDP_PAYLOAD)
}

/// The type of a question, as far as the answers differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryType {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// Services with ports.
    Srv,
    /// Everything (`ANY`): addresses.
    Any,
    /// The zone's authority.
    Soa,
    /// A zone transfer: not implemented.
    Axfr,
    /// Anything else (`TXT`, `MX`, `NS`, ...): no records here.
    Other,
}

impl QueryType {
    /// From the type's mnemonic (`"A"`, `"AAAA"`, `"SRV"`, ..., any case).
    pub fn parse(name: &str) -> Self {
        match name.to_ascii_uppercase().as_str() {
            "A" => Self::A,
            "AAAA" => Self::Aaaa,
            "SRV" => Self::Srv,
            "ANY" => Self::Any,
            "SOA" => Self::Soa,
            "AXFR" => Self::Axfr,
            _ => Self::Other,
        }
    }
}

/// A response code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    /// Answered (possibly with no records: NODATA).
    NoError,
    /// The name does not exist (NXDOMAIN).
    NameError,
    /// The answer could not be found out (the registry is unreachable and nothing is known).
    ServerFailure,
    /// A name outside the domain: this server does not recurse.
    Refused,
    /// A zone transfer.
    NotImplemented,
}

impl Rcode {
    /// The numeric code (the low four bits of the header's flags).
    pub const fn code(self) -> u16 {
        match self {
            Rcode::NoError => 0,
            Rcode::ServerFailure => 2,
            Rcode::NameError => 3,
            Rcode::NotImplemented => 4,
            Rcode::Refused => 5,
        }
    }

    /// The mnemonic (`NOERROR`, `NXDOMAIN`, `SERVFAIL`, `REFUSED`, `NOTIMP`).
    pub const fn name(self) -> &'static str {
        match self {
            Rcode::NoError => "NOERROR",
            Rcode::NameError => "NXDOMAIN",
            Rcode::ServerFailure => "SERVFAIL",
            Rcode::Refused => "REFUSED",
            Rcode::NotImplemented => "NOTIMP",
        }
    }
}

/// The data of one resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordData {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// An alias (a host name an instance registered).
    Cname(String),
    /// A service location.
    Srv {
        /// Lower is preferred (always 1, as in Consul).
        priority: u16,
        /// Share among equal priorities.
        weight: u16,
        /// The port.
        port: u16,
        /// The host name to resolve.
        target: String,
    },
    /// The zone's authority.
    Soa {
        /// The primary name server (`ns.<domain>`).
        mname: String,
        /// The responsible mailbox (`hostmaster.<domain>`).
        rname: String,
        /// The serial: the answer's time in seconds since the epoch, as Consul writes it.
        serial: u32,
        /// Refresh (s).
        refresh: u32,
        /// Retry (s).
        retry: u32,
        /// Expire (s).
        expire: u32,
        /// The negative-answer TTL (s).
        minimum: u32,
    },
}

/// One resource record (class IN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The owner name, without the trailing dot.
    pub name: String,
    /// Seconds it may be cached.
    pub ttl: u32,
    /// What it says.
    pub data: RecordData,
}

impl Record {
    /// The type's mnemonic.
    pub fn kind(&self) -> &'static str {
        match self.data {
            RecordData::A(_) => "A",
            RecordData::Aaaa(_) => "AAAA",
            RecordData::Cname(_) => "CNAME",
            RecordData::Srv { .. } => "SRV",
            RecordData::Soa { .. } => "SOA",
        }
    }

    /// The record as `dns-packet` encodes it: `{name, type, class, ttl, data}`, where `data`
    /// is an address or name string, `{priority, weight, port, target}` for SRV and
    /// `{mname, rname, serial, refresh, retry, expire, minimum}` for SOA.
    pub fn to_json(&self) -> Value {
        let data = match &self.data {
            RecordData::A(ip) => json!(ip.to_string()),
            RecordData::Aaaa(ip) => json!(ip.to_string()),
            RecordData::Cname(name) => json!(name),
            RecordData::Srv {
                priority,
                weight,
                port,
                target,
            } => json!({"priority": priority, "weight": weight, "port": port, "target": target}),
            RecordData::Soa {
                mname,
                rname,
                serial,
                refresh,
                retry,
                expire,
                minimum,
            } => json!({"mname": mname, "rname": rname, "serial": serial, "refresh": refresh,
                        "retry": retry, "expire": expire, "minimum": minimum}),
        };
        json!({"name": self.name, "type": self.kind(), "class": "IN", "ttl": self.ttl, "data": data})
    }
}

/// A whole answer: the code and the three record sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The response code.
    pub rcode: Rcode,
    /// The answer section.
    pub answers: Vec<Record>,
    /// The authority section (the SOA of a negative answer).
    pub authorities: Vec<Record>,
    /// The additional section (the addresses of SRV targets).
    pub additionals: Vec<Record>,
}

impl Response {
    fn code(rcode: Rcode) -> Self {
        Self {
            rcode,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
        }
    }

    /// Puts the answer records in a random order from `rng` (Fisher-Yates): Consul shuffles
    /// its answers so that clients taking the first record spread over the instances.
    pub fn shuffle<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        shuffle(&mut self.answers, rng);
    }

    /// `{rcode, answers, authorities, additionals}`, records as [`Record::to_json`].
    pub fn to_json(&self) -> Value {
        let list = |records: &[Record]| records.iter().map(Record::to_json).collect::<Vec<_>>();
        json!({
            "rcode": self.rcode.name(),
            "rcodeCode": self.rcode.code(),
            "answers": list(&self.answers),
            "authorities": list(&self.authorities),
            "additionals": list(&self.additionals),
        })
    }
}

/// What a question asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A service's instances, optionally only those with a tag.
    Service {
        /// The service.
        service: ServiceName,
        /// The tag they must carry.
        tag: Option<String>,
    },
    /// An address (`<hex>.addr.<domain>`, the target of an SRV answer).
    Addr(IpAddr),
    /// The zone's SOA (an `SOA` question for any name in the domain).
    Soa,
    /// A zone transfer (not implemented).
    Transfer,
    /// A name in the domain that names nothing (`NXDOMAIN`).
    Unknown,
    /// A name outside the domain (`REFUSED`).
    Outside,
}

/// The DNS zone an agent answers: its domain and the TTL of service records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    domain: String,
    ttl_s: u32,
}

impl Zone {
    /// The zone for `domain` (`consul`, `consul.`, `sd.example.com`; any case) with service
    /// records of `ttl_s` seconds. Errors: `Invalid` naming `domain` when it is empty or has a
    /// label that is not 1 to 63 of letters, digits, `-` and `_`.
    pub fn new(domain: &str, ttl_s: u32) -> Result<Self> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let valid = !domain.is_empty()
            && domain.len() <= 253
            && domain.split('.').all(|label| {
                (1..=63).contains(&label.len())
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid {
            return Err(Error::invalid(
                "domain",
                format!(
                    "{domain:?} is not a DNS domain (labels of 1 to 63 letters, digits, '-' or \
                     '_', separated by dots)"
                ),
            ));
        }
        Ok(Self { domain, ttl_s })
    }

    /// The domain, lower-cased, without the trailing dot.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// What the question `qname` of type `qtype` asks for (names are case-insensitive).
    pub fn lookup(&self, qname: &str, qtype: QueryType) -> Lookup {
        let name = qname.trim_end_matches('.').to_ascii_lowercase();
        let rest = if name == self.domain {
            ""
        } else {
            match name.strip_suffix(self.domain.as_str()) {
                Some(rest) if rest.ends_with('.') => &rest[..rest.len() - 1],
                _ => return Lookup::Outside,
            }
        };
        match qtype {
            QueryType::Soa => return Lookup::Soa,
            QueryType::Axfr => return Lookup::Transfer,
            _ => {}
        }
        let labels: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('.').collect()
        };
        // The rightmost kind label splits the name into parts and suffixes (the datacenter);
        // for SRV questions a leading-underscore label stands for `service` (RFC 2782).
        let mut split = None;
        for (i, label) in labels.iter().enumerate().rev() {
            if matches!(
                *label,
                "service" | "node" | "addr" | "query" | "connect" | "ingress" | "virtual"
            ) {
                split = Some((*label, &labels[..i], &labels[i + 1..]));
                break;
            }
            if qtype == QueryType::Srv && label.starts_with('_') {
                split = Some(("service", &labels[..=i], &labels[i + 1..]));
                break;
            }
        }
        let Some((kind, parts, suffixes)) = split else {
            return Lookup::Unknown;
        };
        let in_datacenter = match suffixes {
            [] => true,
            [dc] => dc.eq_ignore_ascii_case(DATACENTER),
            _ => false,
        };
        if !in_datacenter || parts.is_empty() {
            return Lookup::Unknown;
        }
        match kind {
            "service" => {
                let (service, tag) = match parts {
                    [name, tag] if name.starts_with('_') && tag.starts_with('_') => {
                        let tag = &tag[1..];
                        (&name[1..], (tag != "tcp").then(|| tag.to_string()))
                    }
                    [tags @ .., name] => (*name, (!tags.is_empty()).then(|| tags.join("."))),
                    [] => return Lookup::Unknown,
                };
                match consul::service_name(service) {
                    Ok(service) => Lookup::Service { service, tag },
                    Err(_) => Lookup::Unknown,
                }
            }
            "addr" => match parts {
                [hex] => decode_ip(hex).map_or(Lookup::Unknown, Lookup::Addr),
                _ => Lookup::Unknown,
            },
            // Nodes, prepared queries, Connect, ingress and virtual IPs have no equivalent.
            _ => Lookup::Unknown,
        }
    }

    /// The zone's SOA record, its serial the time `now_ms` in seconds.
    pub fn soa(&self, now_ms: Millis) -> Record {
        Record {
            name: self.domain.clone(),
            ttl: SOA_MIN_TTL,
            data: RecordData::Soa {
                mname: format!("ns.{}", self.domain),
                rname: format!("hostmaster.{}", self.domain),
                serial: (now_ms / 1000) as u32,
                refresh: SOA_REFRESH,
                retry: SOA_RETRY,
                expire: SOA_EXPIRE,
                minimum: SOA_MIN_TTL,
            },
        }
    }

    /// The answer to `qname` of type `qtype`, which [`Zone::lookup`] read as `lookup`:
    /// [`Zone::records`], its answers shuffled with `rng` ([`Response::shuffle`]).
    pub fn answer<R: Rng + ?Sized>(
        &self,
        qname: &str,
        qtype: QueryType,
        lookup: &Lookup,
        instances: Option<&[Instance]>,
        now_ms: Millis,
        rng: &mut R,
    ) -> Response {
        let mut response = self.records(qname, qtype, lookup, instances, now_ms);
        response.shuffle(rng);
        response
    }

    /// The answer before shuffling, a function of its inputs only (so it may be kept until
    /// the service's instances change, and shuffled for each question). `instances` are the
    /// service's live instances (any status) for a service lookup, or `None` when they are not
    /// known (the registry is unreachable and nothing was kept): then `SERVFAIL`. `now_ms`
    /// dates the SOA, which only negative answers and SOA questions carry.
    pub fn records(
        &self,
        qname: &str,
        qtype: QueryType,
        lookup: &Lookup,
        instances: Option<&[Instance]>,
        now_ms: Millis,
    ) -> Response {
        let name = qname.trim_end_matches('.');
        let negative = |rcode| Response {
            authorities: alloc::vec![self.soa(now_ms)],
            ..Response::code(rcode)
        };
        let mut response = match lookup {
            Lookup::Outside => return Response::code(Rcode::Refused),
            Lookup::Transfer => return Response::code(Rcode::NotImplemented),
            Lookup::Unknown => return negative(Rcode::NameError),
            Lookup::Soa => Response {
                answers: alloc::vec![self.soa(now_ms)],
                ..Response::code(Rcode::NoError)
            },
            Lookup::Addr(ip) => {
                let mut response = Response::code(Rcode::NoError);
                if let Some(record) = address_record(name, *ip, qtype, 0) {
                    response.answers.push(record);
                }
                response
            }
            Lookup::Service { tag, .. } => {
                let Some(instances) = instances else {
                    return Response::code(Rcode::ServerFailure);
                };
                let chosen = picked(instances, tag.as_deref());
                if chosen.is_empty() {
                    return negative(Rcode::NameError);
                }
                self.service_records(name, qtype, &chosen)
            }
        };
        if response.answers.is_empty() {
            // NODATA: the name exists, with nothing of this type.
            response.authorities.push(self.soa(now_ms));
        }
        response
    }

    /// The records of a service answer over `chosen`, in their order (the first of instances
    /// with the same address, or address and port for SRV, stands for them; the first host
    /// name is the CNAME).
    fn service_records(&self, name: &str, qtype: QueryType, chosen: &[&Instance]) -> Response {
        let mut response = Response::code(Rcode::NoError);
        let mut seen: Vec<(String, u16)> = Vec::new();
        let mut cname: Option<Record> = None;
        for instance in chosen {
            let (host, port) = address_port(&instance.url);
            let host = host.trim_end_matches('.').to_string();
            if seen
                .iter()
                .any(|(h, p)| *h == host && (qtype != QueryType::Srv || *p == port))
            {
                continue;
            }
            seen.push((host.clone(), port));
            let ip = host.parse::<IpAddr>().ok();
            if qtype == QueryType::Srv {
                let weight = match instance.health.status {
                    Status::Passing => u16::try_from(instance.weight.max(1)).unwrap_or(u16::MAX),
                    _ => 1,
                };
                let target = match ip {
                    Some(ip) => format!(
                        "{}.addr.{}.{}",
                        encode_ip(ip),
                        DATACENTER.to_ascii_lowercase(),
                        self.domain
                    ),
                    None => host.clone(),
                };
                response.answers.push(Record {
                    name: name.into(),
                    ttl: self.ttl_s,
                    data: RecordData::Srv {
                        priority: 1,
                        weight,
                        port,
                        target: target.clone(),
                    },
                });
                if let Some(ip) = ip {
                    let glue = address_record(&target, ip, QueryType::Any, self.ttl_s);
                    response.additionals.extend(glue);
                }
                continue;
            }
            match ip {
                Some(ip) => response
                    .answers
                    .extend(address_record(name, ip, qtype, self.ttl_s)),
                // A host name: a CNAME, used only when no instance has an address of this type.
                None if matches!(qtype, QueryType::A | QueryType::Aaaa | QueryType::Any) => {
                    cname.get_or_insert_with(|| Record {
                        name: name.into(),
                        ttl: self.ttl_s,
                        data: RecordData::Cname(host),
                    });
                }
                None => {}
            }
        }
        if response.answers.is_empty() {
            response.answers.extend(cname);
        }
        response
    }
}

/// The instances a service answer lists: those carrying `tag` (case-insensitive), narrowed to
/// what selection would pick, in their order.
fn picked<'a>(instances: &'a [Instance], tag: Option<&str>) -> Vec<&'a Instance> {
    let tagged: Vec<&Instance> = instances
        .iter()
        .filter(|i| tag.is_none_or(|t| i.tags.iter().any(|x| x.eq_ignore_ascii_case(t))))
        .collect();
    let candidates = tagged.iter().map(|i| Candidate::from_instance(i)).collect();
    let selector = Selector::new(SelectorConfig::new(Strategy::Random), candidates);
    selector.eligible().into_iter().map(|i| tagged[i]).collect()
}

/// Puts `items` in a random order from `rng` (Fisher-Yates): how answers are shuffled
/// ([`Response::shuffle`]), also for callers that keep answers already encoded.
pub fn shuffle<T, R: Rng + ?Sized>(items: &mut [T], rng: &mut R) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i + 1);
        items.swap(i, j);
    }
}

/// An A or AAAA record for `ip` named `name` when `qtype` asks for that family (`ANY` asks
/// for both).
fn address_record(name: &str, ip: IpAddr, qtype: QueryType, ttl: u32) -> Option<Record> {
    let data = match (ip, qtype) {
        (IpAddr::V4(v4), QueryType::A | QueryType::Any) => RecordData::A(v4),
        (IpAddr::V6(v6), QueryType::Aaaa | QueryType::Any) => RecordData::Aaaa(v6),
        _ => return None,
    };
    Some(Record {
        name: name.into(),
        ttl,
        data,
    })
}

/// An address as the hex label of `<hex>.addr.<domain>`: 8 digits for IPv4, 32 for IPv6.
pub fn encode_ip(ip: IpAddr) -> String {
    let bytes: Vec<u8> = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The address of a hex label (8 or 32 hex digits).
pub fn decode_ip(hex: &str) -> Option<IpAddr> {
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok();
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::new(
            byte(0)?,
            byte(1)?,
            byte(2)?,
            byte(3)?,
        ))),
        32 => {
            let mut octets = [0u8; 16];
            for (i, octet) in octets.iter_mut().enumerate() {
                *octet = byte(i)?;
            }
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::{rng::SplitMix64, HealthUpdate, InstanceKey, InstanceSpec};
    use alloc::vec;

    fn instance(id: &str, url: &str, status: Status, tags: &[&str], weight: u32) -> Instance {
        let key = InstanceKey {
            service: ServiceName::parse("api").unwrap(),
            version: crate::Version::parse("1.0.0").unwrap(),
            id: crate::InstanceId::parse(id).unwrap(),
        };
        let spec = InstanceSpec::from_json_value(&json!({
            "url": url, "ttl": 10, "tags": tags, "weight": weight,
        }))
        .unwrap();
        let mut instance = Instance::lease(key, spec, 0, None);
        if status != Status::Passing {
            instance.health.apply(&HealthUpdate::set(status, None), 0);
        }
        instance
    }

    fn zone() -> Zone {
        Zone::new("Consul.", 0).unwrap()
    }

    fn ask(zone: &Zone, qname: &str, qtype: &str, instances: &[Instance]) -> Response {
        let qtype = QueryType::parse(qtype);
        let lookup = zone.lookup(qname, qtype);
        zone.answer(
            qname,
            qtype,
            &lookup,
            Some(instances),
            1_700_000_000_000,
            &mut SplitMix64::from_seed(7),
        )
    }

    fn service(name: &str, tag: Option<&str>) -> Lookup {
        Lookup::Service {
            service: ServiceName::parse(name).unwrap(),
            tag: tag.map(str::to_string),
        }
    }

    #[test]
    fn names_are_read_as_consul_reads_them() {
        let z = zone();
        let a = QueryType::A;
        let srv = QueryType::Srv;
        assert_eq!(z.lookup("api.service.consul", a), service("api", None));
        assert_eq!(z.lookup("API.Service.CONSUL.", a), service("api", None));
        assert_eq!(z.lookup("api.service.dc1.consul", a), service("api", None));
        assert_eq!(z.lookup("api.service.dc2.consul", a), Lookup::Unknown);
        assert_eq!(
            z.lookup("v1.api.service.consul", a),
            service("api", Some("v1"))
        );
        assert_eq!(
            z.lookup("a.b.api.service.consul", a),
            service("api", Some("a.b"))
        );
        assert_eq!(
            z.lookup("_api._tcp.service.consul", srv),
            service("api", None)
        );
        assert_eq!(
            z.lookup("_api._v1.service.consul", srv),
            service("api", Some("v1"))
        );
        assert_eq!(
            z.lookup("_api._tcp.consul", srv),
            service("api", None),
            "service label optional for SRV"
        );
        assert_eq!(z.lookup("_api._tcp.consul", a), Lookup::Unknown);
        assert_eq!(
            z.lookup("7f000001.addr.dc1.consul", a),
            Lookup::Addr(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(z.lookup("zz000001.addr.consul", a), Lookup::Unknown);
        assert_eq!(z.lookup("web-1.node.consul", a), Lookup::Unknown);
        assert_eq!(z.lookup("consul", a), Lookup::Unknown);
        assert_eq!(z.lookup("consul", QueryType::Soa), Lookup::Soa);
        assert_eq!(
            z.lookup("api.service.consul", QueryType::Axfr),
            Lookup::Transfer
        );
        assert_eq!(z.lookup("example.com", a), Lookup::Outside);
        assert_eq!(z.lookup("notconsul", a), Lookup::Outside);
        assert_eq!(z.lookup("bad name!.service.consul", a), Lookup::Unknown);
        assert_eq!(z.lookup(".service.consul", a), Lookup::Unknown);
        let custom = Zone::new("sd.example.com", 5).unwrap();
        assert_eq!(
            custom.lookup("api.service.sd.example.com", a),
            service("api", None)
        );
        assert_eq!(custom.lookup("api.service.consul", a), Lookup::Outside);
        for bad in ["", ".", "a..b", "a b", "x.-y!"] {
            assert!(Zone::new(bad, 0).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_records_list_what_selection_would_pick() {
        let z = zone();
        let instances = vec![
            instance("a", "10.0.0.1:80", Status::Passing, &[], 1),
            instance("b", "10.0.0.2:80", Status::Warning, &[], 1),
            instance("c", "10.0.0.3:80", Status::Critical, &[], 1),
            instance("d", "10.0.0.4:81", Status::Passing, &["v1"], 1),
            instance("e", "10.0.0.4:82", Status::Passing, &[], 1),
            instance("f", "[::1]:80", Status::Passing, &[], 1),
        ];
        let r = ask(&z, "api.service.consul", "A", &instances);
        assert_eq!(r.rcode, Rcode::NoError);
        let mut ips: Vec<String> = r
            .answers
            .iter()
            .map(|a| a.to_json()["data"].as_str().unwrap().into())
            .collect();
        ips.sort();
        assert_eq!(
            ips,
            ["10.0.0.1", "10.0.0.4"],
            "passing only, one record per address"
        );
        assert!(r
            .answers
            .iter()
            .all(|a| a.name == "api.service.consul" && a.ttl == 0));
        let r = ask(&z, "api.service.consul", "AAAA", &instances);
        assert_eq!(r.answers[0].data, RecordData::Aaaa(Ipv6Addr::LOCALHOST));
        // Tags are case-insensitive; a tag nobody carries is a name that does not exist.
        let r = ask(&z, "V1.api.service.consul", "A", &instances);
        assert_eq!(r.answers.len(), 1);
        let r = ask(&z, "v9.api.service.consul", "A", &instances);
        assert_eq!((r.rcode, r.answers.len()), (Rcode::NameError, 0));
        assert_eq!(r.authorities[0].kind(), "SOA");
    }

    #[test]
    fn warning_instances_answer_only_when_no_passing_one_is_left() {
        let z = zone();
        let instances = vec![
            instance("b", "10.0.0.2:80", Status::Warning, &[], 5),
            instance("c", "10.0.0.3:80", Status::Critical, &[], 1),
            instance("m", "10.0.0.5:80", Status::Maintenance, &[], 1),
        ];
        let r = ask(&z, "_api._tcp.service.consul", "SRV", &instances);
        assert_eq!(r.answers.len(), 1);
        let RecordData::Srv {
            weight,
            priority,
            port,
            ..
        } = &r.answers[0].data
        else {
            panic!("{r:?}")
        };
        assert_eq!(
            (*priority, *weight, *port),
            (1, 1, 80),
            "warning weight is 1"
        );
        let none = vec![instances[1].clone(), instances[2].clone()];
        let r = ask(&z, "api.service.consul", "A", &none);
        assert_eq!(
            (r.rcode, r.answers.len()),
            (Rcode::NameError, 0),
            "critical only: NXDOMAIN"
        );
        let r = ask(&z, "api.service.consul", "A", &[]);
        assert_eq!(r.rcode, Rcode::NameError, "unknown service: NXDOMAIN");
    }

    #[test]
    fn srv_answers_carry_port_weight_and_an_addressed_target() {
        let z = zone();
        let instances = vec![
            instance("a", "10.0.0.1:8080", Status::Passing, &[], 7),
            instance("b", "http://db.internal:5432/", Status::Passing, &[], 1000),
            instance("c", "10.0.0.1:8080", Status::Passing, &[], 1),
        ];
        let r = ask(&z, "_api._tcp.service.consul", "SRV", &instances);
        assert_eq!(r.answers.len(), 2, "same address and port once: {r:?}");
        let by_port = |p: u16| {
            r.answers
                .iter()
                .find_map(|a| match &a.data {
                    RecordData::Srv {
                        port,
                        weight,
                        target,
                        ..
                    } if *port == p => Some((*weight, target.clone())),
                    _ => None,
                })
                .unwrap()
        };
        let (weight, target) = by_port(8080);
        assert!(weight == 7 || weight == 1);
        assert_eq!(target, "0a000001.addr.dc1.consul");
        assert_eq!(
            by_port(5432),
            (1000, "db.internal".into()),
            "a host name is its own target"
        );
        assert_eq!(r.additionals.len(), 1);
        assert_eq!(r.additionals[0].name, "0a000001.addr.dc1.consul");
        assert_eq!(
            r.additionals[0].data,
            RecordData::A(Ipv4Addr::new(10, 0, 0, 1))
        );
        // The target resolves.
        let r = ask(&z, "0a000001.addr.dc1.consul", "A", &[]);
        assert_eq!(r.answers[0].data, RecordData::A(Ipv4Addr::new(10, 0, 0, 1)));
        let r = ask(&z, "0a000001.addr.dc1.consul", "AAAA", &[]);
        assert_eq!(
            (r.rcode, r.answers.len(), r.authorities.len()),
            (Rcode::NoError, 0, 1)
        );
    }

    #[test]
    fn nodata_nxdomain_servfail_refused() {
        let z = zone();
        let v4 = vec![instance("a", "10.0.0.1:80", Status::Passing, &[], 1)];
        let r = ask(&z, "api.service.consul", "AAAA", &v4);
        assert_eq!((r.rcode, r.answers.len()), (Rcode::NoError, 0), "NODATA");
        assert_eq!(r.authorities[0].to_json()["data"]["mname"], "ns.consul");
        assert_eq!(r.authorities[0].to_json()["data"]["serial"], 1_700_000_000);
        let r = ask(&z, "api.service.consul", "TXT", &v4);
        assert_eq!((r.rcode, r.answers.len()), (Rcode::NoError, 0));
        let r = ask(&z, "nothing.consul", "A", &v4);
        assert_eq!(r.rcode, Rcode::NameError);
        let r = ask(&z, "example.com", "A", &v4);
        assert_eq!((r.rcode, r.authorities.len()), (Rcode::Refused, 0));
        let r = ask(&z, "consul", "SOA", &v4);
        assert_eq!((r.rcode, r.answers[0].kind()), (Rcode::NoError, "SOA"));
        let lookup = z.lookup("api.service.consul", QueryType::A);
        let r = z.answer(
            "api.service.consul",
            QueryType::A,
            &lookup,
            None,
            0,
            &mut SplitMix64::from_seed(1),
        );
        assert_eq!(r.rcode, Rcode::ServerFailure, "nothing known");
        let r = ask(&z, "api.service.consul", "AXFR", &v4);
        assert_eq!(r.rcode, Rcode::NotImplemented);
    }

    #[test]
    fn host_names_are_cnames_when_no_address_answers() {
        let z = zone();
        let hosts = vec![instance(
            "a",
            "https://api.example.com",
            Status::Passing,
            &[],
            1,
        )];
        let r = ask(&z, "api.service.consul", "A", &hosts);
        assert_eq!(
            r.answers[0].data,
            RecordData::Cname("api.example.com".into())
        );
        let mixed = vec![
            hosts[0].clone(),
            instance("b", "10.0.0.9:1", Status::Passing, &[], 1),
        ];
        let r = ask(&z, "api.service.consul", "A", &mixed);
        assert_eq!(r.answers.len(), 1);
        assert_eq!(r.answers[0].kind(), "A");
    }

    #[test]
    fn answers_are_shuffled_by_the_given_rng() {
        let z = zone();
        let instances: Vec<Instance> = (0..8)
            .map(|i| {
                instance(
                    &format!("i{i}"),
                    &format!("10.0.0.{i}:80"),
                    Status::Passing,
                    &[],
                    1,
                )
            })
            .collect();
        let lookup = z.lookup("api.service.consul", QueryType::A);
        let order = |seed| {
            z.answer(
                "api.service.consul",
                QueryType::A,
                &lookup,
                Some(&instances),
                0,
                &mut SplitMix64::from_seed(seed),
            )
            .answers
            .iter()
            .map(|a| a.to_json()["data"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
        };
        assert_eq!(order(1), order(1));
        assert_ne!(order(1), order(2));
        let mut sorted = order(3);
        sorted.sort();
        assert_eq!(sorted.len(), 8);
    }

    #[test]
    fn udp_limits() {
        assert_eq!(udp_payload_limit(None), 512);
        assert_eq!(udp_payload_limit(Some(100)), 512);
        assert_eq!(udp_payload_limit(Some(4096)), 4096);
        assert_eq!(udp_payload_limit(Some(65_535)), MAX_UDP_PAYLOAD);
    }

    #[test]
    fn addresses_round_trip_through_hex_labels() {
        for ip in ["10.1.2.3", "::1", "2001:db8::ff00:42:8329"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(decode_ip(&encode_ip(ip)), Some(ip));
        }
        assert_eq!(encode_ip("127.0.0.1".parse().unwrap()), "7f000001");
        assert_eq!(decode_ip("7f00001"), None);
    }
}
