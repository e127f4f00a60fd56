//! A group of instances that fail over together (a sync group, or one instance alone)
//! and the one GROUP_STATE slot all their VIPs point at.

use std::{net::IpAddr, time::Duration};

use tracing::{info, warn};
use vip_common::GroupState;

use super::{
    Ctx, clock,
    member::{Member, trim_zeros},
};
use crate::{
    control::notify,
    vrrp::{
        Action, Advert, Event, MemberAction, Reason, State, SyncGroup, Time, packet::Auth,
        timing::master_down_interval,
    },
};

/// When this router takes over from a master that is still alive (it resigned, or we
/// preempt it), it advertises first and starts answering this much later, so the old
/// master has seen the advert and stopped answering: the client sees at most a short gap,
/// never two routers answering at once.
pub const TAKEOVER_GUARD: Duration = Duration::from_micros(1500);

/// A planned handover in progress (SIGTERM as master).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    None,
    /// Resigned; answering until a new master advertises or `until`.
    Waiting {
        until: Time,
    },
    Done,
}

pub struct Group {
    /// Sync group name, or the instance name for a group of one.
    pub key: String,
    pub slot: u32,
    pub sync: SyncGroup,
    pub members: Vec<Member>,
    /// Our view of GROUP_STATE[slot].owned.
    pub owned: bool,
    /// A takeover waiting out [`TAKEOVER_GUARD`].
    pub own_at: Option<Time>,
    pub handover: Handover,
}

impl Group {
    /// The lease written with each advert: our own Master_Down_Interval, the longest of the
    /// members'. A backup's is at least as long (its priority is lower, its skew larger),
    /// so a dead master's lease lapses no later than a backup takes over.
    pub fn lease_len(&self) -> Duration {
        self.members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let prio = self
                    .sync
                    .member(i)
                    .map(|x| x.effective_priority())
                    .unwrap_or(m.cfg.priority);
                master_down_interval(m.cfg.version, prio, m.interval())
            })
            .max()
            .unwrap_or(Duration::from_secs(3))
    }

    /// The highest effective priority among the members: an advert above it, for any of
    /// the group's VRIDs, makes the XDP program release the slot on its own.
    fn yield_priority(&self) -> u8 {
        self.sync
            .members()
            .iter()
            .map(|m| m.effective_priority())
            .max()
            .unwrap_or(u8::MAX)
    }

    fn own(&mut self, ctx: &mut Ctx, now: Time) {
        // The program reads a clock up to a tick behind: end the lease that much earlier
        // so it never outlives our Master_Down_Interval.
        let lease = self.lease_len().saturating_sub(ctx.coarse_lag);
        let deadline = clock::nanos(now + lease);
        let mut state = GroupState::owned_until(deadline).yielding_above(self.yield_priority());
        if matches!(self.handover, Handover::Waiting { .. }) {
            // The successor's first advert releases the slot in XDP, before the daemon
            // has even read it.
            state = state.resigning();
        }
        match ctx.dp.maps_mut().set_group(self.slot, state) {
            Ok(()) => {
                self.owned = true;
                self.own_at = None;
            }
            Err(error) => warn!(group = %self.key, %error, "could not take the group slot"),
        }
    }

    /// Pushes the lease forward (one map write).
    fn refresh_lease(&mut self, ctx: &mut Ctx, now: Time) {
        if self.owned {
            self.own(ctx, now);
        }
    }

    pub fn release(&mut self, ctx: &mut Ctx) {
        self.own_at = None;
        match ctx
            .dp
            .maps_mut()
            .set_group(self.slot, GroupState::released())
        {
            Ok(()) => self.owned = false,
            Err(error) => warn!(group = %self.key, %error, "could not release the group slot"),
        }
    }

    fn any_master(&self) -> bool {
        self.sync
            .members()
            .iter()
            .any(|m| m.state() == State::Master)
    }

    /// Carries out what the machines decided.
    pub fn execute(&mut self, ctx: &mut Ctx, now: Time, actions: Vec<MemberAction>) {
        for MemberAction { member, action } in actions {
            self.execute_one(ctx, now, member, action);
        }
    }

    fn execute_one(&mut self, ctx: &mut Ctx, now: Time, i: usize, action: Action) {
        match action {
            Action::BecomeMaster { reason } => {
                self.transitioned(i, State::Master, &reason);
                let alive_elsewhere = matches!(
                    reason,
                    Reason::MasterResigned { .. } | Reason::PreemptedLowerPriority { .. }
                );
                if self.owned || self.own_at.is_some() {
                    // A sync-group peer already took (or is taking) the slot.
                } else if alive_elsewhere {
                    self.own_at = Some(now + TAKEOVER_GUARD);
                } else {
                    self.own(ctx, now);
                }
                // Addresses follow the slot: the netlink work runs on this thread and can
                // stall it for milliseconds (rtnl_lock), which must not push back the
                // moment a guarded takeover starts answering. `poll` adds them then.
                if self.own_at.is_none()
                    && let Some(m) = self.members.get(i)
                {
                    m.want_addresses(true);
                }
            }
            Action::BecomeBackup { reason }
            | Action::BecomeFault { reason }
            | Action::BecomeInitialize { reason } => {
                let to = self
                    .sync
                    .member(i)
                    .map(|m| m.state())
                    .unwrap_or(State::Initialize);
                self.transitioned(i, to, &reason);
                if let Some(m) = self.members.get_mut(i) {
                    m.cancel_garp();
                }
                // During a planned handover the slot and addresses stay until a new master
                // is heard (make before break); see `finish_handover`.
                if self.handover == Handover::None {
                    if !self.any_master() {
                        self.release(ctx);
                    }
                    if let Some(m) = self.members.get(i) {
                        m.want_addresses(false);
                    }
                }
            }
            Action::SendAdvert { priority } => {
                // A backup advertising with a real priority is a master that just yielded
                // to another (machine docs, item 6). Its advert only matters to clients'
                // caches; in VMAC mode it would pull the VMAC to this port on learning
                // bridges, so it is left out.
                let yielded =
                    priority > 0 && self.sync.member(i).map(|x| x.state()) == Some(State::Backup);
                if let Some(m) = self.members.get_mut(i)
                    && !(yielded && m.cfg.vmac)
                {
                    m.send_advert(ctx, priority);
                }
                if priority > 0 {
                    self.refresh_lease(ctx, now);
                }
            }
            Action::SendGratuitous => {
                let at = self.own_at.unwrap_or(now);
                if let Some(m) = self.members.get_mut(i) {
                    m.schedule_garp(at);
                }
            }
        }
    }

    fn transitioned(&mut self, i: usize, to: State, reason: &Reason) {
        let Some(m) = self.members.get_mut(i) else {
            return;
        };
        m.transitions += 1;
        let priority = self
            .sync
            .member(i)
            .map(|x| x.effective_priority())
            .unwrap_or(0);
        info!(
            instance = %m.cfg.name,
            state = %to,
            priority,
            reason = %reason,
            "transition"
        );
        if let Some(cmd) = &m.cfg.notify.any {
            notify::spawn(cmd.program(), &m.cfg.name, &to.to_string(), priority);
        }
    }

    /// The earliest moment this group needs the loop's attention.
    pub fn next_deadline(&self) -> Option<Time> {
        let handover = match self.handover {
            Handover::Waiting { until } => Some(until),
            _ => None,
        };
        [
            self.sync.poll_at(),
            self.own_at,
            handover,
            self.members.iter().filter_map(Member::garp_due).min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn poll(&mut self, ctx: &mut Ctx, now: Time) {
        if self.own_at.is_some_and(|t| t <= now) {
            self.own(ctx, now);
            // Now answering: the addresses deferred by `BecomeMaster`.
            for (i, m) in self.members.iter().enumerate() {
                if self
                    .sync
                    .member(i)
                    .is_some_and(|x| x.state() == State::Master)
                {
                    m.want_addresses(true);
                }
            }
        }
        if let Handover::Waiting { until } = self.handover
            && until <= now
        {
            warn!(group = %self.key, "no new master advertised during the handover; releasing");
            self.finish_handover(ctx);
        }
        let actions = self.sync.poll(now);
        self.execute(ctx, now, actions);
        // Announcements only while answering.
        if self.owned {
            for m in &mut self.members {
                m.poll_garp(ctx, now);
            }
        }
    }

    /// A received, decoded advertisement for member `i`. Returns whether it was valid.
    pub fn on_advert(
        &mut self,
        ctx: &mut Ctx,
        now: Time,
        i: usize,
        src: IpAddr,
        ttl: u8,
        advert: &Advert,
    ) -> bool {
        let Some(m) = self.members.get_mut(i) else {
            return false;
        };
        // RFC 5798 §7.1 checks the XDP program may not have made (generic mode, a program
        // replaced by hand): TTL, version, authentication (v2), the allowlist.
        let auth_ok = match (&m.cfg.auth_pass, advert.auth) {
            (None, None) => true,
            (None, Some(a)) => a == Auth::NONE,
            (Some(p), Some(a)) => a.password() == Some(trim_zeros(p)),
            (Some(_), None) => false,
        };
        if ttl != 255
            || advert.version != m.cfg.version
            || !auth_ok
            || (!m.cfg.allowed_peers.is_empty() && !m.cfg.allowed_peers.contains(&src))
        {
            m.invalid += 1;
            return false;
        }
        m.received += 1;
        if let Handover::Waiting { .. } = self.handover {
            if src != m.src && advert.priority > 0 {
                info!(group = %self.key, new_master = %src, "new master heard; handing over");
                self.finish_handover(ctx);
            }
            return true;
        }
        let actions = self.sync.handle(now, i, Event::advert(src, advert));
        self.execute(ctx, now, actions);
        true
    }

    /// Feeds `event` to member `i`.
    pub fn handle(&mut self, ctx: &mut Ctx, now: Time, i: usize, event: Event) {
        let actions = self.sync.handle(now, i, event);
        self.execute(ctx, now, actions);
    }

    /// SIGTERM: resign every member; a group that was answering keeps answering until the
    /// new master's first advert (bounded by the lease) so clients lose nothing.
    pub fn begin_handover(&mut self, ctx: &mut Ctx, now: Time) {
        let was_answering = self.owned || self.own_at.is_some();
        let wait = self.lease_len();
        if was_answering {
            self.handover = Handover::Waiting { until: now + wait };
            // Cover the whole wait: no more adverts will push the lease forward.
            self.own(ctx, now);
        } else {
            self.handover = Handover::Done;
        }
        for i in 0..self.members.len() {
            let actions = self.sync.handle(now, i, Event::Shutdown);
            self.execute(ctx, now, actions);
        }
    }

    pub fn handover_pending(&self) -> bool {
        matches!(self.handover, Handover::Waiting { .. })
    }

    fn finish_handover(&mut self, ctx: &mut Ctx) {
        self.handover = Handover::Done;
        self.release(ctx);
        for m in &mut self.members {
            m.cancel_garp();
            m.want_addresses(false);
        }
    }
}
