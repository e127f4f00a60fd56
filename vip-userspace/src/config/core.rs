//! What the protocol core gets from a validated instance: `crate::vrrp` owns its input
//! types (`vrrp::instance`), and this is the one place that fills them in. Imports run
//! this way only (config → vrrp).

use crate::vrrp::{
    Interval,
    admission::Admission,
    announce,
    change::Field,
    instance::{self, Address, Identity},
    plan::Member,
    tracking::{TrackedFile, TrackedInterface, TrackedProcess, TrackedScript, Tracking},
};

use super::model::{Instance, Notify, Vip};

/// Advertisement_Interval of a validated interval: validation already holds it to
/// whole centiseconds within what the version carries.
fn interval(d: std::time::Duration) -> Interval {
    let centis = (d.as_millis() / 10).clamp(1, u128::from(u16::MAX)) as u16;
    Interval::from_centis(centis).unwrap_or(Interval::DEFAULT)
}

fn address(v: &Vip) -> Address {
    Address {
        addr: v.net.addr(),
        dev: v.dev.clone(),
    }
}

impl Instance {
    /// The instance as the core runs it.
    pub fn core(&self) -> instance::Instance {
        instance::Instance {
            name: self.name.clone(),
            identity: match self.protocol {
                instance::Protocol::Vrrp => {
                    Identity::new(&self.interface, self.vrid, self.family, self.version)
                }
                instance::Protocol::Carp => Identity::carp(&self.interface, self.vrid, self.family),
            },
            priority: self.priority,
            advert_interval: interval(self.advert_interval),
            preempt: self.preempt,
            preempt_delay: self.preempt_delay,
            accept: self.accept,
            vmac: self.vmac,
            vips: self.vips.iter().map(address).collect(),
            vips_excluded: self.vips_excluded.iter().map(address).collect(),
            proxy_arp: self.proxy_arp.clone(),
            shared_vips: self.shared_vips.clone(),
            unicast_src_ip: self.unicast_src_ip,
            unicast_peers: self.unicast_peers.clone(),
            admission: Admission {
                auth_pass: self.auth_pass,
                allowed_peers: self.allowed_peers.clone(),
            },
            tracking: Tracking {
                dont_track_primary: self.dont_track_primary,
                interfaces: self
                    .track_interfaces
                    .iter()
                    .map(|t| TrackedInterface {
                        name: t.name.clone(),
                        weight: t.weight,
                        reverse: t.reverse,
                    })
                    .collect(),
                scripts: self
                    .track_scripts
                    .iter()
                    .map(|t| TrackedScript {
                        key: t.watch_key(),
                        weight: t.weight,
                        reverse: t.reverse,
                        init_fail: t.init_fail,
                    })
                    .collect(),
                files: self
                    .track_files
                    .iter()
                    .map(|t| TrackedFile {
                        key: t.path.display().to_string(),
                        weight: t.weight,
                        reverse: t.reverse,
                    })
                    .collect(),
                processes: self
                    .track_processes
                    .iter()
                    .map(|t| TrackedProcess {
                        weight: t.weight,
                        reverse: t.reverse,
                        quorum: t.quorum,
                        quorum_max: t.quorum_max.unwrap_or(TrackedProcess::UNLIMITED),
                        fork_delay: t.fork_delay,
                        terminate_delay: t.terminate_delay,
                    })
                    .collect(),
            },
            announce: announce::Settings {
                repeat: self.garp_repeat,
                interval: self.garp_interval,
                refresh: self.garp_refresh,
            },
            bfd: self.bfd.clone(),
            sync_group: self.sync_group.clone(),
            carp: self.carp.as_ref().map(|c| c.settings.clone()),
        }
    }
}

impl Instance {
    /// The fields that differ between `self` and `new` which only the shell carries out
    /// (the core sees the rest: `vrrp::change::core_fields`): a VIP's kernel options,
    /// host routes, routes, rules and hooks. A reload applies them in place.
    pub fn shell_fields(&self, new: &Instance) -> Vec<Field> {
        // Destructured so a field added to the instance is either compared here or
        // named as the core's.
        let Instance {
            name: _,
            interface: _,
            vrid: _,
            priority: _,
            version: _,
            advert_interval: _,
            preempt: _,
            preempt_delay: _,
            accept: _,
            vmac: _,
            family: _,
            vips,
            vips_excluded,
            proxy_arp: _,
            shared_vips: _,
            announce_host_routes,
            virtual_routes,
            virtual_rules,
            unicast_src_ip: _,
            unicast_peers: _,
            allowed_peers: _,
            auth_pass: _,
            dont_track_primary: _,
            track_interfaces: _,
            track_scripts: _,
            track_files: _,
            track_processes,
            notify,
            bfd: _,
            sync_group: _,
            garp_repeat: _,
            garp_interval: _,
            garp_refresh: _,
            protocol: _,
            carp: _,
        } = self;
        let hook = |f: fn(&Notify) -> &Option<super::model::Command>| f(notify) != f(&new.notify);
        [
            ("vips", *vips != new.vips),
            ("vips_excluded", *vips_excluded != new.vips_excluded),
            (
                "announce_host_routes",
                *announce_host_routes != new.announce_host_routes,
            ),
            ("virtual_routes", *virtual_routes != new.virtual_routes),
            ("virtual_rules", *virtual_rules != new.virtual_rules),
            // What a process is matched by (its name, arguments) is the shell's; the
            // core sees the weights and quorums.
            ("track_processes", *track_processes != new.track_processes),
            ("notify", hook(|n| &n.any)),
            ("notify_master", hook(|n| &n.master)),
            ("notify_backup", hook(|n| &n.backup)),
            ("notify_fault", hook(|n| &n.fault)),
            ("notify_stop", hook(|n| &n.stop)),
        ]
        .into_iter()
        .filter(|(_, differs)| *differs)
        .map(|(f, _)| f)
        .collect()
    }
}

/// The daemon plans reloads with whole instances: the core's view decides, with what only
/// the shell sees (a route, a hook, a VIP's label) as changes of their own.
impl Member for Instance {
    fn name(&self) -> &str {
        &self.name
    }

    fn interface(&self) -> &str {
        &self.interface
    }

    fn sync_group(&self) -> Option<&str> {
        self.sync_group.as_deref()
    }

    fn core(&self) -> instance::Instance {
        Instance::core(self)
    }

    fn shell_fields(&self, new: &Self) -> Vec<Field> {
        Instance::shell_fields(self, new)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{Config, FakeHost};
    use crate::vrrp::{Family, Version};

    #[test]
    fn every_field_the_core_uses_is_carried_over() {
        let text = "[global]\nrouter_id = \"r1\"\n\n[[vrrp]]\nname = \"gw\"\n\
             interface = \"eth0\"\nvrid = 51\npriority = 150\nversion = 2\n\
             advert_interval = \"2s\"\npreempt = false\npreempt_delay = \"3s\"\n\
             accept = false\nvmac = true\nauth_pass = \"secret\"\n\
             vips = [\"192.0.2.1/24\", { address = \"198.51.100.1/24\", dev = \"eth1\" }]\n\
             vips_excluded = [\"192.0.2.2/24\"]\nproxy_arp = [\"203.0.113.5\"]\n\
             unicast_src_ip = \"192.0.2.11\"\nunicast_peers = [\"192.0.2.12\"]\n\
             allowed_peers = [\"192.0.2.12\"]\ndont_track_primary = true\n\
             track_interfaces = [{ name = \"up0\", weight = -20, reverse = true }]\n\
             track_scripts = [{ command = \"/bin/check\", weight = 5, init_fail = true }]\n\
             track_files = [{ path = \"/run/f\", weight = 3 }]\n\
             track_processes = [{ name = \"haproxy\", weight = -7, quorum = 2, \
             quorum_max = 4, fork_delay = \"1s\", terminate_delay = \"2s\" }]\n\
             sync_group = \"edge\"\ngarp_repeat = 2\ngarp_interval = \"20ms\"\n\
             garp_refresh = \"60s\"\n";
        let host = FakeHost::lab().interface("up0");
        let config = Config::parse(text, "t.toml", &host).expect("valid");
        let c = config.instances[0].core();
        assert_eq!(c.name, "gw");
        assert_eq!(c.identity.interface, "eth0");
        assert_eq!(
            (c.identity.vrid, c.identity.family, c.identity.version),
            (51, Family::Ipv4, Version::V2)
        );
        assert_eq!(c.priority, 150);
        assert_eq!(c.advert_interval.centis(), 200);
        assert!(!c.preempt && !c.accept && c.vmac);
        assert_eq!(c.preempt_delay, Duration::from_secs(3));
        let vips: Vec<(String, &str)> = c
            .all_vips()
            .map(|v| (v.addr.to_string(), v.dev.as_str()))
            .collect();
        assert_eq!(
            vips,
            [
                ("192.0.2.1".to_owned(), "eth0"),
                ("198.51.100.1".to_owned(), "eth1"),
                ("192.0.2.2".to_owned(), "eth0"),
            ]
        );
        assert_eq!(
            c.proxy_arp,
            ["203.0.113.5".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(c.unicast_src_ip, Some("192.0.2.11".parse().unwrap()));
        assert_eq!(c.unicast_peers.len(), 1);
        assert_eq!(c.admission.allowed_peers, c.unicast_peers);
        assert_eq!(&c.admission.auth_pass.unwrap()[..6], b"secret");
        assert!(c.tracking.dont_track_primary);
        assert_eq!(c.tracking.interfaces[0].name, "up0");
        assert_eq!(c.tracking.interfaces[0].weight, -20);
        assert!(c.tracking.interfaces[0].reverse);
        assert!(c.tracking.scripts[0].init_fail);
        assert_eq!(c.tracking.files[0].weight, 3);
        assert_eq!(
            c.tracking.processes[0],
            crate::vrrp::tracking::TrackedProcess {
                weight: -7,
                reverse: false,
                quorum: 2,
                quorum_max: 4,
                fork_delay: Duration::from_secs(1),
                terminate_delay: Duration::from_secs(2),
            }
        );
        assert_eq!(c.sync_group.as_deref(), Some("edge"));
        assert_eq!(c.announce.repeat, 2);
        assert_eq!(c.announce.interval, Duration::from_millis(20));
        assert_eq!(c.announce.refresh, Some(Duration::from_secs(60)));
        assert!(c.bfd.is_none());
    }
}
