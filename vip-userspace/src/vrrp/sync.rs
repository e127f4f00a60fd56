//! Sync groups: virtual routers that must be master on the same node together (say the
//! inside and outside gateways of a firewall), coordinated without I/O.
//!
//! A [`SyncGroup`] owns its member [`Machine`]s, so no member can be driven around it.
//! The daemon feeds events and polls through the group exactly as for a lone machine and
//! gets back each member's actions tagged with the member index. The group turns one
//! member's own transitions into [`Event`]s for the others:
//!
//! - a member becomes master → every backup member gets [`Event::SyncMaster`];
//! - a member leaves master for backup (a better peer appeared) → every master member gets
//!   [`Event::SyncBackup`] (it resigns with priority 0 so its peer takes over after
//!   Skew_Time);
//! - a member faults → every other member gets [`Event::SyncFault`] and stands down too;
//!   once no member has a fault of its own, all get [`Event::SyncFaultCleared`];
//! - a member that joins (startup, fault cleared) while another member is master follows
//!   it into master.
//!
//! Transitions caused by those sync events are not propagated again, so one input causes
//! one round of follow-ups.
//!
//! Promotion by timeout is gated: a member whose Master_Down_Timer expires only *wants*
//! master ([`Machine::wants_master`]); the group promotes all backups once every started
//! member wants it. Without the gate a member whose peer is silent would take master
//! while a sibling still hears a better master, and the group would flap between nodes.
//! The price, as in keepalived: if one member keeps hearing a better master, the others
//! stay backup even if their own peers are gone.

use std::collections::VecDeque;

use super::machine::{Action, Event, Machine, State};
use super::timing::Time;

/// One member's action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAction {
    pub member: usize,
    pub action: Action,
}

/// A sync group over member machines, indexed in the order given to [`SyncGroup::new`].
#[derive(Debug, Clone)]
pub struct SyncGroup {
    members: Vec<Machine>,
}

impl SyncGroup {
    /// A group of one is a lone machine: nothing to wait for, so no gate, and its
    /// transitions keep their own reasons.
    pub fn new(mut members: Vec<Machine>) -> SyncGroup {
        let gated = members.len() > 1;
        for member in &mut members {
            member.set_gated(gated);
        }
        SyncGroup { members }
    }

    pub fn members(&self) -> &[Machine] {
        &self.members
    }

    pub fn member(&self, index: usize) -> Option<&Machine> {
        self.members.get(index)
    }

    /// A member, for what concerns it alone (a reload's new configuration, yielding):
    /// nothing done through it reaches the other members.
    pub fn member_mut(&mut self, index: usize) -> Option<&mut Machine> {
        self.members.get_mut(index)
    }

    /// The machines, giving up the group (a reload reshaping it).
    pub fn into_members(self) -> Vec<Machine> {
        self.members
    }

    /// See [`Machine::set_hold`].
    pub fn set_hold(&mut self, member: usize, hold: bool) {
        if let Some(m) = self.members.get_mut(member) {
            m.set_hold(hold);
        }
    }

    /// The earliest deadline of any member.
    pub fn poll_at(&self) -> Option<Time> {
        self.members.iter().filter_map(Machine::poll_at).min()
    }

    /// Feeds `event` to member `member` (an unknown index does nothing).
    pub fn handle(&mut self, now: Time, member: usize, event: Event) -> Vec<MemberAction> {
        let mut out = Vec::new();
        if member < self.members.len() {
            let mut queue = VecDeque::new();
            self.step(now, member, Input::Event(event), &mut queue, &mut out);
            self.settle(now, queue, &mut out);
        }
        out
    }

    /// Feeds `event` to every member before the group settles, so members leaving one by
    /// one (a shutdown) never make the rest look like a group that all wants master.
    pub fn handle_all(&mut self, now: Time, event: Event) -> Vec<MemberAction> {
        let mut out = Vec::new();
        let mut queue = VecDeque::new();
        for member in 0..self.members.len() {
            self.step(
                now,
                member,
                Input::Event(event.clone()),
                &mut queue,
                &mut out,
            );
        }
        self.settle(now, queue, &mut out);
        out
    }

    /// Fires every member's due timers.
    pub fn poll(&mut self, now: Time) -> Vec<MemberAction> {
        let mut out = Vec::new();
        let mut queue = VecDeque::new();
        for member in 0..self.members.len() {
            self.step(now, member, Input::Poll, &mut queue, &mut out);
        }
        self.settle(now, queue, &mut out);
        out
    }

    /// Runs one member's own input and queues the follow-ups for the others.
    fn step(
        &mut self,
        now: Time,
        i: usize,
        input: Input,
        queue: &mut VecDeque<(usize, Event)>,
        out: &mut Vec<MemberAction>,
    ) {
        let Some(machine) = self.members.get_mut(i) else {
            return;
        };
        let before = machine.state();
        let own_fault = matches!(input, Input::Event(Event::Fault));
        let own_fault_cleared = matches!(input, Input::Event(Event::FaultCleared));
        let actions = match input {
            Input::Event(event) => machine.handle(now, event),
            Input::Poll => machine.poll(now),
        };
        let after = machine.state();
        out.extend(
            actions
                .into_iter()
                .map(|action| MemberAction { member: i, action }),
        );

        let others: Vec<usize> = (0..self.members.len()).filter(|&j| j != i).collect();
        match (before, after) {
            (b, State::Master) if b != State::Master => {
                queue.extend(others.iter().map(|&j| (j, Event::SyncMaster { member: i })));
            }
            (State::Master, State::Backup) => {
                queue.extend(others.iter().map(|&j| (j, Event::SyncBackup { member: i })));
            }
            (State::Initialize | State::Fault, State::Backup) => {
                if let Some(master) = self.members.iter().position(|m| m.state() == State::Master) {
                    queue.push_back((i, Event::SyncMaster { member: master }));
                }
            }
            _ => {}
        }
        // Faults propagate on the event, not the transition: a member already held down
        // by a sibling's fault must still hold the others down with its own.
        if own_fault {
            queue.extend(others.iter().map(|&j| (j, Event::SyncFault { member: i })));
        }
        if own_fault_cleared && !self.members.iter().any(Machine::has_own_fault) {
            for (j, m) in self.members.iter().enumerate() {
                if m.has_sync_fault() {
                    queue.push_back((j, Event::SyncFaultCleared));
                }
            }
        }
    }

    /// Delivers the queued sync events, then promotes the group if every started member
    /// wants master.
    fn settle(
        &mut self,
        now: Time,
        mut queue: VecDeque<(usize, Event)>,
        out: &mut Vec<MemberAction>,
    ) {
        loop {
            while let Some((j, event)) = queue.pop_front() {
                // A member rejoining after SyncFaultCleared may follow a master member.
                let joins = matches!(event, Event::SyncFaultCleared);
                let Some(machine) = self.members.get_mut(j) else {
                    continue;
                };
                let actions = machine.handle(now, event);
                out.extend(
                    actions
                        .into_iter()
                        .map(|action| MemberAction { member: j, action }),
                );
                if joins
                    && machine.state() == State::Backup
                    && let Some(master) =
                        self.members.iter().position(|m| m.state() == State::Master)
                {
                    queue.push_back((j, Event::SyncMaster { member: master }));
                }
            }
            let started: Vec<&Machine> = self
                .members
                .iter()
                .filter(|m| m.state() != State::Initialize)
                .collect();
            let all_want = !started.is_empty()
                && started
                    .iter()
                    .all(|m| m.state() == State::Backup && m.wants_master());
            if !all_want {
                return;
            }
            let trigger = self
                .members
                .iter()
                .position(Machine::wants_master)
                .unwrap_or(0);
            for (j, m) in self.members.iter().enumerate() {
                if m.state() == State::Backup {
                    queue.push_back((j, Event::SyncMaster { member: trigger }));
                }
            }
        }
    }
}

enum Input {
    Event(Event),
    Poll,
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::vrrp::machine::{Config, Reason};
    use crate::vrrp::packet::Version;
    use crate::vrrp::timing::Interval;

    fn member(vrid: u8, priority: u8) -> Machine {
        let addr: IpAddr = format!("192.0.2.{vrid}").parse().expect("literal");
        Machine::new(Config::new(vrid, Version::V3, priority, addr)).expect("valid")
    }

    fn group() -> SyncGroup {
        SyncGroup::new(vec![member(1, 100), member(2, 100), member(3, 100)])
    }

    fn states(g: &SyncGroup) -> Vec<State> {
        g.members().iter().map(Machine::state).collect()
    }

    fn started(g: &mut SyncGroup) {
        for i in 0..3 {
            g.handle(Time::ZERO, i, Event::Startup);
        }
        assert_eq!(states(g), vec![State::Backup; 3]);
    }

    fn advert(priority: u8) -> Event {
        Event::AdvertReceived {
            src: "198.51.100.1".parse().expect("literal"),
            priority,
            max_adver_int: Interval::DEFAULT,
        }
    }

    fn all_master(g: &mut SyncGroup) -> Time {
        started(g);
        let at = g.poll_at().expect("armed");
        g.poll(at);
        assert_eq!(states(g), vec![State::Master; 3]);
        at
    }

    #[test]
    fn a_group_of_one_behaves_as_its_machine_with_its_own_reasons() {
        let mut g = SyncGroup::new(vec![member(1, 100)]);
        g.handle(Time::ZERO, 0, Event::Startup);
        let at = g.poll_at().expect("armed");
        let out = g.poll(at);
        assert_eq!(
            out[0].action,
            Action::BecomeMaster {
                reason: Reason::MasterDownTimerExpired
            }
        );
    }

    #[test]
    fn the_group_takes_master_together_once_every_member_times_out() {
        let mut g = group();
        started(&mut g);
        let at = g.poll_at().expect("armed");
        let out = g.poll(at);
        assert_eq!(states(&g), vec![State::Master; 3]);
        let promoted = out
            .iter()
            .filter(|a| matches!(a.action, Action::BecomeMaster { .. }))
            .count();
        assert_eq!(promoted, 3);
    }

    #[test]
    fn a_member_hearing_a_better_master_holds_the_group_in_backup() {
        let mut g = group();
        started(&mut g);
        let at = g.poll_at().expect("armed");
        // Member 1 keeps hearing its peer master; 0 and 2 time out and only want master.
        g.handle(at, 1, advert(200));
        g.poll(at);
        assert_eq!(states(&g), vec![State::Backup; 3]);
        assert!(g.member(0).is_some_and(Machine::wants_master));
        assert!(g.member(1).is_some_and(|m| !m.wants_master()));
        // Once member 1's peer falls silent the whole group goes.
        let later = g.poll_at().expect("member 1 still timing");
        g.poll(later);
        assert_eq!(states(&g), vec![State::Master; 3]);
    }

    #[test]
    fn a_member_becoming_master_pulls_the_others_along() {
        let mut g = SyncGroup::new(vec![member(1, 255), member(2, 100)]);
        g.handle(Time::ZERO, 1, Event::Startup);
        let out = g.handle(Time::ZERO, 0, Event::Startup);
        assert_eq!(states(&g), vec![State::Master, State::Master]);
        assert!(out.contains(&MemberAction {
            member: 1,
            action: Action::BecomeMaster {
                reason: Reason::SyncMaster { member: 0 }
            }
        }));
    }

    #[test]
    fn a_member_starting_late_follows_a_master_group() {
        let mut g = SyncGroup::new(vec![member(1, 255), member(2, 100)]);
        g.handle(Time::ZERO, 0, Event::Startup);
        let out = g.handle(Time::from_millis(5), 1, Event::Startup);
        assert_eq!(states(&g), vec![State::Master, State::Master]);
        assert!(out.iter().any(|a| a.member == 1
            && a.action
                == Action::BecomeMaster {
                    reason: Reason::SyncMaster { member: 0 }
                }));
    }

    #[test]
    fn a_member_leaving_master_takes_the_others_to_backup_with_a_resignation() {
        let mut g = group();
        let at = all_master(&mut g);
        let out = g.handle(at, 2, advert(200));
        assert_eq!(states(&g), vec![State::Backup; 3]);
        for j in [0, 1] {
            assert!(out.contains(&MemberAction {
                member: j,
                action: Action::BecomeBackup {
                    reason: Reason::SyncBackup { member: 2 }
                }
            }));
            assert!(out.contains(&MemberAction {
                member: j,
                action: Action::SendAdvert { priority: 0 }
            }));
        }
    }

    #[test]
    fn a_fault_in_one_member_brings_the_group_down_until_it_clears() {
        let mut g = group();
        let at = all_master(&mut g);
        let out = g.handle(at, 1, Event::Fault);
        assert_eq!(states(&g), vec![State::Fault; 3]);
        let resigned = out
            .iter()
            .filter(|a| a.action == Action::SendAdvert { priority: 0 })
            .count();
        assert_eq!(resigned, 3, "every master member resigns");
        assert!(out.contains(&MemberAction {
            member: 0,
            action: Action::BecomeFault {
                reason: Reason::SyncFault { member: 1 }
            }
        }));
        // A second fault, then the first clearing: still down.
        g.handle(at, 0, Event::Fault);
        g.handle(at, 1, Event::FaultCleared);
        assert_eq!(states(&g), vec![State::Fault; 3]);
        g.handle(at, 0, Event::FaultCleared);
        assert_eq!(states(&g), vec![State::Backup; 3]);
    }

    #[test]
    fn unknown_member_index_does_nothing() {
        let mut g = group();
        assert_eq!(g.handle(Time::ZERO, 7, Event::Startup), vec![]);
        assert_eq!(states(&g), vec![State::Initialize; 3]);
    }
}
