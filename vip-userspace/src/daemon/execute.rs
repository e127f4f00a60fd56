//! Carrying out what the core decided: each [`Output`] becomes a map write, a send, an
//! installer wish, a log line or a queued hook. Nothing here decides anything.

use std::collections::VecDeque;

use tracing::{debug, info, warn};
use vip_common::GroupState;

use super::{Daemon, addresses::Wish, clock};
use crate::{
    control::{
        events::What,
        notify::{self, Scope},
    },
    dataplane::entries,
    vrrp::{
        Time,
        admission::Rejection,
        group::{Input, Output},
        node::GroupId,
    },
};

impl Daemon {
    pub(super) fn execute(&mut self, now: Time, outs: Vec<(GroupId, Output)>) {
        let mut queue: VecDeque<(GroupId, Output)> = outs.into();
        while let Some((id, o)) = queue.pop_front() {
            if let Some(more) = self.execute_one(now, id, o) {
                queue.extend(more);
            }
        }
        self.execute_bfd(now);
    }

    /// Carries out one output; returns what the core made of a data-plane release it
    /// learned of on the way.
    fn execute_one(&mut self, now: Time, id: GroupId, o: Output) -> Option<Vec<(GroupId, Output)>> {
        let entry = self.node.get(id)?;
        let gio = self.io.get_mut(&id)?;
        match o {
            Output::Own {
                until,
                yield_above,
                resigning,
            } => {
                let mut state =
                    GroupState::owned_until(clock::nanos(until)).yielding_above(yield_above);
                if resigning {
                    state = state.resigning();
                }
                if let Err(e) = self.maps.set_group(gio.slot, state) {
                    warn!(group = %entry.key, slot = gio.slot, error = %crate::error_chain(&e), "could not write the group slot");
                }
                // One truth about ownership: if the program released the slot since we
                // last looked, the write above may have taken it back. The core hears of
                // the release and leaves master through the state machine.
                let released = entries::read_release(&self.maps, gio.slot)?;
                if released.count == gio.releases_seen {
                    return None;
                }
                gio.releases_seen = released.count;
                info!(group = %entry.key, from = %released.src, priority = released.priority, "the XDP program released the slot");
                Some(self.node.handle(
                    now,
                    id,
                    Input::Released {
                        vrid: released.vrid,
                        src: released.src,
                        priority: released.priority,
                        interval: released.interval,
                    },
                ))
            }
            Output::Release => {
                if let Err(e) = self.maps.set_group(gio.slot, GroupState::released()) {
                    warn!(group = %entry.key, slot = gio.slot, error = %crate::error_chain(&e), "could not release the group slot");
                }
                // Whatever the program released before now is settled: the next
                // mastership compares its renewals against this count, not an old one.
                if let Some(r) = entries::read_release(&self.maps, gio.slot) {
                    gio.releases_seen = r.count;
                }
                None
            }
            Output::Advert { member, priority } => {
                let m = entry.group.members().get(member)?;
                let mio = gio.members.get_mut(member)?;
                let iface = self.ifaces.get_mut(&mio.ifindex)?;
                mio.send_advert(&m.cfg, m.src, priority, false, iface);
                None
            }
            Output::Probe { member, priority } => {
                let m = entry.group.members().get(member)?;
                info!(instance = %m.cfg.name, master = ?entry.group.machine(member).and_then(|x| x.master_address()), "BFD says the master is gone: probing before taking over");
                let mio = gio.members.get_mut(member)?;
                let iface = self.ifaces.get_mut(&mio.ifindex)?;
                mio.send_advert(&m.cfg, m.src, priority, true, iface);
                None
            }
            Output::CarpAdvert {
                member,
                advert,
                own_mac,
            } => {
                let m = entry.group.members().get(member)?;
                gio.members
                    .get_mut(member)?
                    .send_carp(&m.cfg, m.src, &advert, own_mac);
                None
            }
            Output::CarpRefused {
                member,
                src,
                reason,
            } => {
                let m = entry.group.members().get(member)?;
                let c = m.carp_counters;
                // A wrong passphrase on one side is a configuration mistake worth saying
                // loudly, but a forger must not flood the log: the first, then at powers
                // of two.
                let n = c.ttl + c.auth + c.replay + c.vhid;
                if n.is_power_of_two() {
                    warn!(instance = %m.cfg.name, %src, %reason, refused = n, "CARP advertisement refused");
                } else {
                    debug!(instance = %m.cfg.name, %src, %reason, "CARP advertisement refused");
                }
                None
            }
            Output::Announce { member, vip } => {
                let m = entry.group.members().get(member)?;
                gio.members
                    .get(member)?
                    .announce(&m.cfg, vip, &self.announcer);
                None
            }
            Output::Install {
                member,
                present,
                addresses,
            } => {
                let wish = Wish { present, addresses };
                gio.members.get(member)?.installer.set(wish);
                None
            }
            Output::Transition {
                member,
                from,
                to,
                priority,
                reason,
            } => {
                let m = entry.group.members().get(member)?;
                info!(
                    instance = %m.cfg.name,
                    state = %to,
                    priority,
                    reason = %reason,
                    %from,
                    "transition"
                );
                let notify = &gio.configs.get(member)?.notify;
                let hooks = notify::hooks(notify, Scope::Instance, &m.cfg.name, to, priority);
                self.notifier.queue(&m.cfg.name, hooks);
                self.events.publish(What::Transition {
                    instance: m.cfg.name.clone(),
                    from: from.to_string(),
                    to: to.to_string(),
                    priority,
                    reason: reason.to_string(),
                });
                None
            }
            Output::Rejected {
                member,
                src,
                reason,
            } => {
                let m = entry.group.members().get(member)?;
                if reason == Rejection::VersionMismatch {
                    // A configuration mismatch, loud but bounded: the first, then at
                    // powers of two.
                    let n = m.counters.rejected(reason);
                    if n.is_power_of_two() {
                        warn!(instance = %m.cfg.name, %src, count = n, configured = m.cfg.identity.version.number(), "advertisement of the other VRRP version for this VRID (check both ends' `version`)");
                    }
                } else {
                    debug!(instance = %m.cfg.name, %src, %reason, "advertisement refused");
                }
                None
            }
            Output::SyncTransition { to } => {
                let name = entry.group.members().first()?.cfg.sync_group.clone()?;
                info!(sync_group = %name, state = %to, "sync group transition");
                self.events.publish(What::SyncTransition {
                    sync_group: name.clone(),
                    to: to.to_string(),
                });
                if let Some(g) = self.config.sync_groups.get(&name) {
                    let hooks = notify::hooks(&g.notify, Scope::Group, &name, to, 0);
                    self.notifier.queue(&format!("sync:{name}"), hooks);
                }
                None
            }
            Output::HandoverDone { successor } => {
                self.events.publish(What::Handover {
                    group: entry.key.clone(),
                    successor: successor.map(|s| s.to_string()),
                });
                match successor {
                    Some(s) => {
                        info!(group = %entry.key, new_master = %s, "new master heard; handed over")
                    }
                    None => {
                        warn!(group = %entry.key, "no new master advertised during the handover; released")
                    }
                }
                None
            }
        }
    }
}
