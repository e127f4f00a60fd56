//! Checks of single string values: names, paths, addresses, the v2 password.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use ipnet::IpNet;

pub(crate) const AUTH_PASS_LEN: usize = 8;
const MAX_NAME_LEN: usize = 32;
// IFNAMSIZ is 16 including the terminating NUL.
const MAX_IFNAME_LEN: usize = 15;
// sun_path is 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH_LEN: usize = 107;

/// Names of the daemon, instances and sync groups end up in paths, process arguments and
/// metric labels, so they are kept to characters that need no quoting anywhere.
pub(crate) fn parse_name(text: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if text.is_empty() || text.len() > MAX_NAME_LEN || !text.chars().all(allowed) {
        return Err(format!(
            "{text:?} is not a valid name: use 1 to {MAX_NAME_LEN} characters from A-Z a-z 0-9 _ . -"
        ));
    }
    if text == "." || text == ".." {
        return Err(format!(
            "{text:?} is not a valid name: it would name a directory in paths"
        ));
    }
    Ok(text.to_owned())
}

/// The kernel's rules for device names, then the caller's check that the device exists.
pub(crate) fn parse_interface(text: &str, exists: &dyn Fn(&str) -> bool) -> Result<String, String> {
    let name = parse_ifname(text)?;
    if exists(&name) {
        Ok(name)
    } else {
        Err(missing_interface(&name))
    }
}

pub(crate) fn missing_interface(name: &str) -> String {
    format!("interface {name:?} does not exist (in this network namespace)")
}

/// The kernel's rules for device names (`dev_valid_name`).
pub(crate) fn parse_ifname(text: &str) -> Result<String, String> {
    let bad_char = |c: char| c == '/' || c == ':' || c.is_whitespace() || c == '\0';
    if text.is_empty()
        || text.len() > MAX_IFNAME_LEN
        || text.chars().any(bad_char)
        || text == "."
        || text == ".."
    {
        return Err(format!(
            "{text:?} is not a valid interface name (1 to {MAX_IFNAME_LEN} bytes, no '/', ':' or spaces)"
        ));
    }
    Ok(text.to_owned())
}

pub(crate) fn parse_abs_path(text: &str) -> Result<PathBuf, String> {
    if !text.starts_with('/') {
        return Err(format!("{text:?} is not an absolute path"));
    }
    if text.contains('\0') {
        return Err("a path cannot contain NUL bytes".to_owned());
    }
    Ok(PathBuf::from(text))
}

pub(crate) fn parse_socket_path(text: &str) -> Result<PathBuf, String> {
    let path = parse_abs_path(text)?;
    if text.len() > MAX_SOCKET_PATH_LEN {
        return Err(format!(
            "{} bytes is too long for a Unix socket path (at most {MAX_SOCKET_PATH_LEN})",
            text.len()
        ));
    }
    Ok(path)
}

pub(crate) fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text.parse().map_err(|_| {
        format!("{text:?} is not an address and port, e.g. \"127.0.0.1:9101\" or \"[::1]:9101\"")
    })?;
    if addr.port() == 0 {
        return Err("port 0 would listen on a random port; choose one".to_owned());
    }
    Ok(addr)
}

/// `addr/len`, or a bare address meaning a host prefix (/32, /128).
pub(crate) fn parse_vip(text: &str) -> Result<IpNet, String> {
    let net = if text.contains('/') {
        text.parse::<IpNet>().map_err(|_| {
            format!("{text:?} is not an address with a prefix length, e.g. \"192.0.2.1/24\"")
        })?
    } else {
        text.parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| format!("{text:?} is not an IP address"))?
    };
    if net.prefix_len() == 0 {
        return Err(format!("{text:?}: a /0 prefix would claim every address"));
    }
    unusable(&net.addr()).map_or(Ok(net), |why| Err(format!("{text:?} {why}")))
}

pub(crate) fn parse_peer(text: &str) -> Result<IpAddr, String> {
    let addr: IpAddr = text.parse().map_err(|_| {
        if text.contains('/') {
            format!("{text:?}: a peer is one address, without a prefix length")
        } else {
            format!("{text:?} is not an IP address")
        }
    })?;
    unusable(&addr).map_or(Ok(addr), |why| Err(format!("{text:?} {why}")))
}

/// One address answered by proxy (`proxy_arp`): `ADDR`, `ADDR/32` or `ADDR/128`. The data
/// plane answers for single addresses; a prefix would need a longest-prefix match in XDP.
pub(crate) fn parse_proxy_addr(text: &str) -> Result<IpAddr, String> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{text:?} is not an IP address"))?;
    let host = if addr.is_ipv4() { "32" } else { "128" };
    if let Some(len) = len
        && len != host
    {
        return Err(format!(
            "{text:?}: proxy answers are for single addresses; write \"{addr}\" or \"{addr}/{host}\" \
             (list each address of a larger block)"
        ));
    }
    unusable(&addr).map_or(Ok(addr), |why| Err(format!("{text:?} {why}")))
}

/// Why an address can be neither a VIP nor a router's address, if it cannot.
fn unusable(addr: &IpAddr) -> Option<&'static str> {
    if addr.is_unspecified() {
        Some("is the unspecified address")
    } else if addr.is_multicast() {
        Some("is a multicast address")
    } else if addr.is_loopback() {
        Some("is a loopback address")
    } else if matches!(addr, IpAddr::V4(a) if a.is_broadcast()) {
        Some("is the broadcast address")
    } else if matches!(addr, IpAddr::V6(a) if a.to_ipv4_mapped().is_some()) {
        Some("is an IPv4-mapped IPv6 address; write the IPv4 address")
    } else {
        None
    }
}

/// The v2 simple-text password, zero-padded to the wire field. NUL is refused because
/// padding could not tell it from the end of the password.
pub(crate) fn parse_auth_pass(text: &str) -> Result<[u8; AUTH_PASS_LEN], String> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() > AUTH_PASS_LEN {
        return Err(format!(
            "{} bytes: the VRRPv2 password is 1 to {AUTH_PASS_LEN} bytes",
            bytes.len()
        ));
    }
    if bytes.contains(&0) {
        return Err("the password cannot contain NUL bytes".to_owned());
    }
    let mut field = [0u8; AUTH_PASS_LEN];
    field
        .iter_mut()
        .zip(bytes)
        .for_each(|(slot, byte)| *slot = *byte);
    Ok(field)
}

/// One address used as a next hop, a source or a broadcast address: not a prefix.
pub(crate) fn parse_unicast_addr(text: &str) -> Result<IpAddr, String> {
    let addr: IpAddr = text.parse().map_err(|_| {
        if text.contains('/') {
            format!("{text:?}: write one address, without a prefix length")
        } else {
            format!("{text:?} is not an IP address")
        }
    })?;
    unusable(&addr).map_or(Ok(addr), |why| Err(format!("{text:?} {why}")))
}

/// A destination or selector prefix: `addr/len` with the host bits zero, or a bare
/// address meaning a host prefix.
pub(crate) fn parse_prefix(text: &str) -> Result<IpNet, String> {
    let net = if text.contains('/') {
        text.parse::<IpNet>()
            .map_err(|_| format!("{text:?} is not a prefix, e.g. \"198.51.100.0/24\""))?
    } else {
        text.parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| format!("{text:?} is not an IP address or prefix"))?
    };
    if net.trunc() != net {
        return Err(format!(
            "{text:?} has host bits set; write the prefix {}",
            net.trunc()
        ));
    }
    Ok(net)
}

// Linux accepts more, but these are the names useradd makes (and the length it allows).
const MAX_USER_LEN: usize = 32;

/// A user name as the user database spells it.
pub(crate) fn parse_user_name(text: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '$');
    if text.is_empty()
        || text.len() > MAX_USER_LEN
        || text.starts_with('-')
        || !text.chars().all(allowed)
    {
        return Err(format!(
            "{text:?} is not a user name (1 to {MAX_USER_LEN} characters from A-Z a-z 0-9 _ . - $)"
        ));
    }
    Ok(text.to_owned())
}
