//! Addresses, links and the sockets VRRP, gratuitous ARP, unsolicited NA and BFD travel
//! on.

pub mod batch;
pub mod bfd_socket;
pub mod frames;
pub mod link;
pub mod packet;
pub mod pktinfo;
pub mod routes;
pub mod vrrp_filter;
pub mod vrrp_socket;

pub use link::{LinkEvent, LinkState, Netlink};
pub use packet::PacketSender;
pub use vrrp_socket::{Received, VrrpSocket};

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}")]
    Netlink {
        what: String,
        #[source]
        source: Box<rtnetlink::Error>,
    },
    #[error("interface {0} not found")]
    NoSuchInterface(String),
    #[error("interface {0} has no {1} address to send VRRP from")]
    NoSourceAddress(String, &'static str),
}

pub type Result<T, E = NetError> = std::result::Result<T, E>;

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetError {
    let what = what.into();
    move |source| NetError::Io { what, source }
}

pub(crate) fn nl_err(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetError {
    let what = what.into();
    move |source| NetError::Netlink {
        what,
        source: Box::new(source),
    }
}
