//! What notify programs are told: the words for states and diagnostics, and one run of a
//! hook. Where keepalived set the convention its words are kept (`MASTER`, `BACKUP`,
//! `FAULT`, `STOP`), so its users' scripts carry over; BFD's are RFC 5880's state names,
//! upper case, and its diagnostics in lower-case words (`vip-userspace/examples/vipd.toml`,
//! `bfd.notify`).
//!
//! Which instance hears of what is decided elsewhere in the core (BFD: `super::liveness`,
//! [`bfd_hook`]); VRRP's hooks are built in `control/notify.rs` from the programs the
//! configuration names, with [`state_word`] from here.

use std::net::IpAddr;

use super::{
    bfd::packet::{BfdState, Diag},
    machine::State,
};

/// One run of a notify program: its arguments and the environment it gets (beside a
/// cleared one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub argv: Vec<String>,
    pub env: Vec<(&'static str, String)>,
}

/// A state some notify program is told about: a virtual router's or a BFD session's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notified {
    Vrrp(State),
    Bfd(BfdState),
}

impl From<State> for Notified {
    fn from(s: State) -> Notified {
        Notified::Vrrp(s)
    }
}

impl From<BfdState> for Notified {
    fn from(s: BfdState) -> Notified {
        Notified::Bfd(s)
    }
}

/// The word a notify program gets for a state: keepalived's for a virtual router (its
/// Initialize is `STOP`), RFC 5880's name for a BFD session's.
pub fn state_word(s: impl Into<Notified>) -> &'static str {
    match s.into() {
        Notified::Vrrp(State::Master) => "MASTER",
        Notified::Vrrp(State::Backup) => "BACKUP",
        Notified::Vrrp(State::Fault) => "FAULT",
        Notified::Vrrp(State::Initialize) => "STOP",
        Notified::Bfd(BfdState::AdminDown) => "ADMINDOWN",
        Notified::Bfd(BfdState::Down) => "DOWN",
        Notified::Bfd(BfdState::Init) => "INIT",
        Notified::Bfd(BfdState::Up) => "UP",
    }
}

/// The word for a BFD diagnostic (RFC 5880 §4.1), in hooks, status and metrics.
pub fn diag_word(d: Diag) -> &'static str {
    match d {
        Diag::None => "none",
        Diag::ControlDetectionTimeExpired => "control-detection-time-expired",
        Diag::EchoFunctionFailed => "echo-function-failed",
        Diag::NeighborSignaledDown => "neighbor-signaled-down",
        Diag::ForwardingPlaneReset => "forwarding-plane-reset",
        Diag::PathDown => "path-down",
        Diag::ConcatenatedPathDown => "concatenated-path-down",
        Diag::AdministrativelyDown => "administratively-down",
        Diag::ReverseConcatenatedPathDown => "reverse-concatenated-path-down",
    }
}

/// What `bfd.notify` (`program`, its configured arguments first) runs when the session
/// from `instance` to `peer` goes to `to` with `diag`: the instance, the neighbour, the
/// state and the diagnostic appended, the same four in the environment.
pub fn bfd_hook(
    program: &[String],
    instance: &str,
    peer: IpAddr,
    to: BfdState,
    diag: Diag,
) -> Hook {
    let (peer, state, diag) = (peer.to_string(), state_word(to), diag_word(diag));
    let mut argv = program.to_vec();
    argv.extend([
        instance.to_owned(),
        peer.clone(),
        state.to_owned(),
        diag.to_owned(),
    ]);
    Hook {
        argv,
        env: vec![
            ("VIPD_SCOPE", "BFD".to_owned()),
            ("VIPD_NAME", instance.to_owned()),
            ("VIPD_BFD_PEER", peer),
            ("VIPD_BFD_STATE", state.to_owned()),
            ("VIPD_BFD_DIAG", diag.to_owned()),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_get_keepalived_words_and_bfd_sessions_rfc_names() {
        let vrrp = [
            State::Master,
            State::Backup,
            State::Fault,
            State::Initialize,
        ];
        let words: Vec<&str> = vrrp.into_iter().map(state_word).collect();
        assert_eq!(words, ["MASTER", "BACKUP", "FAULT", "STOP"]);
        let bfd = [
            BfdState::AdminDown,
            BfdState::Down,
            BfdState::Init,
            BfdState::Up,
        ];
        let words: Vec<&str> = bfd.into_iter().map(state_word).collect();
        assert_eq!(words, ["ADMINDOWN", "DOWN", "INIT", "UP"]);
    }

    #[test]
    fn every_diagnostic_has_a_distinct_word() {
        let words: std::collections::HashSet<&str> = Diag::ALL.into_iter().map(diag_word).collect();
        assert_eq!(words.len(), Diag::ALL.len());
    }

    #[test]
    fn a_bfd_hook_appends_instance_peer_state_and_diag_and_sets_them_in_the_environment() {
        let program = ["/etc/vipd/bfd.sh".to_owned(), "--log".to_owned()];
        let h = bfd_hook(
            &program,
            "gw",
            "192.0.2.5".parse().unwrap(),
            BfdState::Down,
            Diag::EchoFunctionFailed,
        );
        assert_eq!(
            h.argv,
            [
                "/etc/vipd/bfd.sh",
                "--log",
                "gw",
                "192.0.2.5",
                "DOWN",
                "echo-function-failed"
            ]
        );
        assert_eq!(
            h.env,
            [
                ("VIPD_SCOPE", "BFD".to_owned()),
                ("VIPD_NAME", "gw".to_owned()),
                ("VIPD_BFD_PEER", "192.0.2.5".to_owned()),
                ("VIPD_BFD_STATE", "DOWN".to_owned()),
                ("VIPD_BFD_DIAG", "echo-function-failed".to_owned()),
            ]
        );
    }
}
