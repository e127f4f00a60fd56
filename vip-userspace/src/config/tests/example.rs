//! The shipped example, defaults, printing and the helpers the daemon uses.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::{FakeHost, GLOBAL, SCRIPT_GID, SCRIPT_UID, parse, with_global};
use crate::config::command::NOTIFY_KEYS;
use crate::config::model::CarpSecret;
use crate::config::route::{ROUTE_KEYS, RULE_KEYS};
use crate::config::schema::{GLOBAL_KEYS, INTERFACE_KEYS, ROOT_KEYS, VRRP_KEYS};
use crate::config::track::{
    TRACK_FILE_KEYS, TRACK_INTERFACE_KEYS, TRACK_PROCESS_KEYS, TRACK_SCRIPT_KEYS,
};
use crate::config::vip::VIP_KEYS;
use crate::config::{
    AddrScope, Broadcast, Command, Config, ForeignVrrp, Fwmark, InterfaceOptions,
    PreferredLifetime, RouteScope, RouteType, RuleAction, ScriptUser, TrackScript, Vip,
    VirtualRoute, VirtualRule,
};
use crate::vrrp::{Family, Version, instance::Protocol};

const EXAMPLE: &str = include_str!("../../../examples/vipd.toml");

fn example() -> Config {
    match Config::parse(EXAMPLE, "vipd.toml", &FakeHost::lab()) {
        Ok(config) => config,
        Err(e) => panic!("the shipped example is rejected:\n{e}"),
    }
}

fn argv(parts: &[&str]) -> Command {
    Command::new(parts.iter().map(|p| (*p).to_owned()).collect()).expect("a valid command")
}

#[test]
fn shipped_example_loads_with_its_documented_values() {
    let config = example();
    assert_eq!(config.global.router_id, "r1");
    assert_eq!(
        config.global.metrics,
        Some("127.0.0.1:9101".parse().unwrap())
    );
    assert_eq!(
        config.global.script_user,
        Some(ScriptUser {
            name: "vipd_script".into(),
            uid: SCRIPT_UID,
            gid: SCRIPT_GID
        })
    );
    assert_eq!(config.global.startup_delay, Duration::ZERO);
    assert_eq!(
        config.interfaces["uplink0"],
        InterfaceOptions {
            foreign_vrrp: ForeignVrrp::Pass,
            up_delay: Duration::from_secs(5),
            down_delay: Duration::ZERO,
        }
    );
    let names: Vec<&str> = config.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["gw", "gw6", "legacy", "fw", "fw6"]);

    let edge = &config.sync_groups["edge"];
    assert_eq!(edge.members, [0, 1]);
    assert_eq!(edge.notify.any, Some(argv(&["/usr/local/bin/vipd-notify"])));
    assert_eq!(
        edge.notify.master,
        Some(argv(&["/usr/local/bin/vipd-notify", "edge-up"]))
    );

    let gw = &config.instances[0];
    assert_eq!(gw.family, Family::Ipv4);
    assert_eq!(
        gw.vips[1],
        Vip {
            net: "192.0.2.2/24".parse().unwrap(),
            dev: "eth0".into(),
            label: Some("eth0:gw".into()),
            scope: AddrScope::Global,
            broadcast: Some(Broadcast::Subnet),
            noprefixroute: false,
            preferred_lft: PreferredLifetime::Forever,
        }
    );
    assert_eq!(gw.vips_excluded.len(), 1);
    assert_eq!(
        gw.virtual_routes,
        [
            VirtualRoute {
                to: "203.0.113.0/24".parse().unwrap(),
                via: Some("192.0.2.254".parse().unwrap()),
                dev: Some("eth0".into()),
                src: Some("192.0.2.1".parse().unwrap()),
                table: 254,
                metric: Some(10),
                protocol: 4,
                kind: RouteType::Unicast,
                scope: Some(RouteScope::Global),
                onlink: false,
            },
            VirtualRoute {
                to: "0.0.0.0/0".parse().unwrap(),
                via: None,
                dev: None,
                src: None,
                table: 100,
                metric: None,
                protocol: 4,
                kind: RouteType::Blackhole,
                scope: None,
                onlink: false,
            },
        ]
    );
    assert_eq!(
        gw.virtual_rules,
        [VirtualRule {
            family: Family::Ipv4,
            from: Some("192.0.2.0/24".parse().unwrap()),
            to: Some("203.0.113.0/24".parse().unwrap()),
            iif: Some("eth0".into()),
            oif: Some("uplink0".into()),
            fwmark: Some(Fwmark {
                value: 0x10,
                mask: 0xff
            }),
            table: Some(100),
            priority: Some(100),
            action: RuleAction::Table,
        }]
    );
    assert_eq!(gw.unicast_src_ip, Some("192.0.2.11".parse().unwrap()));
    assert_eq!(gw.unicast_peers, [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 12))]);
    assert!(!gw.dont_track_primary);
    assert_eq!(
        gw.track_scripts,
        [TrackScript {
            command: argv(&["/usr/local/bin/check-uplink"]),
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            weight: -30,
            rise: 2,
            fall: 2,
            reverse: false,
            init_fail: false,
        }]
    );
    assert_eq!(
        gw.track_processes
            .iter()
            .map(|t| (
                t.pattern.to_string(),
                t.quorum,
                t.quorum_max,
                t.weight,
                t.fork_delay,
                t.terminate_delay
            ))
            .collect::<Vec<_>>(),
        [
            (
                "haproxy".to_owned(),
                1,
                Some(64),
                -50,
                Duration::ZERO,
                Duration::from_secs(2)
            ),
            (
                r#"["/usr/sbin/bird", "-c", "/etc/bird/bird.conf", ...]"#.to_owned(),
                1,
                None,
                0,
                Duration::from_secs(1),
                Duration::from_secs(1)
            ),
        ]
    );
    assert_eq!(gw.notify.any, Some(argv(&["/usr/local/bin/vipd-notify"])));
    assert_eq!(
        gw.notify.stop,
        Some(argv(&["/usr/local/bin/vipd-notify", "gw-down"]))
    );
    assert_eq!(gw.garp_refresh, Some(Duration::from_secs(60)));

    let gw6 = &config.instances[1];
    assert_eq!((gw6.family, gw6.vrid), (Family::Ipv6, 51));
    assert_eq!(gw6.vips[0].net.to_string(), "fe80::51/128");
    assert_eq!(gw6.vips[0].scope, AddrScope::Link);
    assert_eq!(gw6.vips_excluded[0].preferred_lft, PreferredLifetime::Zero);

    let legacy = &config.instances[2];
    assert_eq!(legacy.version, Version::V2);
    assert_eq!(legacy.auth_pass, Some(*b"secret1\0"));

    // CARP: VHID 51 beside VRRP's VRID 51, advskew 0 is priority 255.
    let fw = &config.instances[3];
    assert_eq!(
        (fw.protocol, fw.vrid, fw.priority),
        (Protocol::Carp, 51, 255)
    );
    assert!(fw.preempt);
    let fw6 = &config.instances[4];
    assert_eq!((fw6.family, fw6.priority), (Family::Ipv6, 200));
    assert_eq!(
        fw6.carp.as_ref().map(|c| c.secret.clone()),
        Some(CarpSecret::File("/etc/vipd/carp.pass".into()))
    );
}

#[test]
fn shipped_example_has_no_warnings() {
    assert_eq!(example().warnings, []);
}

/// Every key path of a document, arrays looked through and the names of
/// `[interfaces.NAME]` / `[sync_groups.NAME]` tables written as `*`.
fn key_paths(table: &DeTable<'_>, prefix: &str, out: &mut BTreeSet<String>) {
    for (key, value) in table.iter() {
        let key: &str = key.get_ref();
        let named = matches!(prefix, "interfaces" | "sync_groups");
        let path = match (prefix, named) {
            ("", _) => key.to_owned(),
            (_, true) => format!("{prefix}.*"),
            _ => format!("{prefix}.{key}"),
        };
        out.insert(path.clone());
        walk(value.get_ref(), &path, out);
    }
}

fn walk(value: &DeValue<'_>, path: &str, out: &mut BTreeSet<String>) {
    match value {
        DeValue::Table(t) => key_paths(t, path, out),
        DeValue::Array(items) => items.iter().for_each(|i| walk(i.get_ref(), path, out)),
        _ => {}
    }
}

#[test]
fn shipped_example_sets_every_key() {
    let doc = DeTable::parse(EXAMPLE).expect("valid TOML");
    let mut found = BTreeSet::new();
    key_paths(doc.get_ref(), "", &mut found);
    let mut expected: Vec<String> = ROOT_KEYS.iter().map(|k| (*k).to_owned()).collect();
    let mut under = |prefix: &str, keys: &[&str]| {
        expected.extend(keys.iter().map(|k| format!("{prefix}.{k}")));
    };
    under("global", GLOBAL_KEYS);
    under("interfaces.*", INTERFACE_KEYS);
    under("sync_groups.*", NOTIFY_KEYS);
    under("vrrp", VRRP_KEYS);
    under("vrrp.vips", VIP_KEYS);
    under("vrrp.virtual_routes", ROUTE_KEYS);
    under("vrrp.virtual_rules", RULE_KEYS);
    under("vrrp.track_interfaces", TRACK_INTERFACE_KEYS);
    under("vrrp.track_scripts", TRACK_SCRIPT_KEYS);
    under("vrrp.track_files", TRACK_FILE_KEYS);
    under("vrrp.track_processes", TRACK_PROCESS_KEYS);
    use crate::config::service::{CHECK_KEYS, REAL_KEYS, SERVICE_KEYS};
    // `active = "ecmp"` is the alternative to `follow` (one or the other).
    under(
        "service",
        &SERVICE_KEYS
            .iter()
            .copied()
            .filter(|k| *k != "active")
            .collect::<Vec<_>>(),
    );
    under("service.real", REAL_KEYS);
    under(
        "service.check",
        &CHECK_KEYS
            .iter()
            .copied()
            .filter(|k| !matches!(*k, "digest" | "script"))
            .collect::<Vec<_>>(),
    );
    let missing: Vec<&String> = expected.iter().filter(|k| !found.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "keys the example never sets: {missing:?}"
    );
    // And every key it sets is one the reader knows (else the example would not load).
    assert!(found.len() >= expected.len());
}

#[test]
fn shipped_example_documents_keepalived_notify_arguments() {
    for word in ["INSTANCE", "GROUP", "MASTER", "BACKUP", "FAULT", "STOP"] {
        assert!(EXAMPLE.contains(word), "{word} is not documented");
    }
}

#[test]
fn shipped_example_round_trips_through_its_printed_form() {
    let config = example();
    let printed = config.to_toml_string();
    let again = Config::parse(&printed, "printed.toml", &FakeHost::lab())
        .unwrap_or_else(|e| panic!("printed form rejected:\n{e}\n---\n{printed}"));
    assert_eq!(again, config);
    assert_eq!(again.to_string(), printed);
}

#[test]
fn omitted_fields_take_their_documented_defaults() {
    let text = with_global(
        "[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 7\nvips = [\"192.0.2.1\"]\n",
    );
    let config = parse(&text).unwrap();
    assert_eq!(config.global.pin_path, PathBuf::from("/sys/fs/bpf/vipd/r1"));
    assert_eq!(
        config.global.control_socket,
        PathBuf::from("/run/vipd/r1.sock")
    );
    assert_eq!(config.global.metrics, None);
    assert_eq!(config.global.script_user, None);
    assert_eq!(config.global.startup_delay, Duration::ZERO);
    assert!(config.interfaces.is_empty() && config.sync_groups.is_empty());
    assert_eq!(
        config.interface_options("eth0"),
        InterfaceOptions::default()
    );
    assert_eq!(
        InterfaceOptions::default(),
        InterfaceOptions {
            foreign_vrrp: ForeignVrrp::Pass,
            up_delay: Duration::ZERO,
            down_delay: Duration::ZERO
        }
    );
    let i = &config.instances[0];
    assert_eq!(i.priority, 100);
    assert_eq!(i.version, Version::V3);
    assert_eq!(i.advert_interval, Duration::from_secs(1));
    assert!(i.preempt);
    assert_eq!(i.preempt_delay, Duration::ZERO);
    assert!(i.accept && !i.vmac);
    assert_eq!(
        i.vips,
        [Vip::plain("192.0.2.1/32".parse().unwrap(), "eth0")]
    );
    assert_eq!(i.vips[0].scope, AddrScope::Global);
    assert!(i.vips_excluded.is_empty());
    assert!(i.virtual_routes.is_empty() && i.virtual_rules.is_empty());
    assert_eq!(i.unicast_src_ip, None);
    assert!(i.unicast_peers.is_empty() && i.allowed_peers.is_empty());
    assert_eq!(i.auth_pass, None);
    assert!(!i.dont_track_primary);
    assert!(
        i.track_interfaces.is_empty() && i.track_scripts.is_empty() && i.track_files.is_empty()
    );
    assert_eq!(i.notify, crate::config::Notify::default());
    assert_eq!(i.sync_group, None);
    assert_eq!(i.garp_repeat, 5);
    assert_eq!(i.garp_interval, Duration::from_millis(10));
    assert_eq!(i.garp_refresh, None);
}

#[test]
fn track_entries_take_their_documented_defaults() {
    let text = with_global(concat!(
        "[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 7\nvips = [\"192.0.2.1\"]\n",
        "track_interfaces = [{ name = \"uplink0\" }]\n",
        "track_scripts = [{ command = [\"/bin/check\", \"--fast\"] }]\n",
        "track_files = [{ path = \"/run/x\" }]\n",
    ));
    let i = &parse(&text).unwrap().instances[0];
    let interface = &i.track_interfaces[0];
    assert_eq!((interface.weight, interface.reverse), (0, false));
    let script = &i.track_scripts[0];
    assert_eq!(script.command, argv(&["/bin/check", "--fast"]));
    assert_eq!(script.command.program(), "/bin/check");
    assert_eq!(script.command.args(), ["--fast"]);
    assert_eq!(script.interval, Duration::from_secs(2));
    assert_eq!(script.timeout, Duration::from_secs(1));
    assert_eq!((script.weight, script.rise, script.fall), (0, 1, 1));
    assert!(!script.reverse && !script.init_fail);
    // keepalived's default weight for a file is 1: its value is added as it is.
    let file = &i.track_files[0];
    assert_eq!((file.weight, file.reverse), (1, false));
}

#[test]
fn paths_follow_the_router_id_unless_given() {
    let text = "[global]\nrouter_id = \"edge-7\"\npin_path = \"/sys/fs/bpf/x\"\n\n[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 7\nvips = [\"192.0.2.1\"]\n";
    let global = parse(text).unwrap().global;
    assert_eq!(global.pin_path, PathBuf::from("/sys/fs/bpf/x"));
    assert_eq!(
        global.control_socket,
        PathBuf::from("/run/vipd/edge-7.sock")
    );
}

#[test]
fn vmac_follows_family_and_vrid() {
    let config = example();
    assert_eq!(config.instances[0].vmac_address(), [0, 0, 0x5e, 0, 1, 51]);
    assert_eq!(config.instances[1].vmac_address(), [0, 0, 0x5e, 0, 2, 51]);
}

#[test]
fn sync_groups_list_member_indexes_in_file_order() {
    let config = example();
    let groups = config.sync_group_members();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups["edge"], [0, 1]);
}

#[test]
fn all_vips_are_the_advertised_then_the_excluded() {
    let gw = &example().instances[0];
    let all: Vec<String> = gw.all_vips().map(|v| v.net.to_string()).collect();
    assert_eq!(all, ["192.0.2.1/24", "192.0.2.2/24", "192.0.2.3/24"]);
    assert_eq!(gw.advertised_vips().len(), 2);
}

#[test]
fn unchanged_instances_compare_equal_across_reloads() {
    let before = example();
    let edited = EXAMPLE.replace("vrid = 52", "vrid = 53");
    let after = Config::parse(&edited, "vipd.toml", &FakeHost::lab()).unwrap();
    assert_eq!(before.instances[..2], after.instances[..2]);
    assert_ne!(before.instances[2], after.instances[2]);
}

#[test]
fn warnings_are_not_part_of_equality() {
    let quiet = with_global(
        "[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 7\nvips = [\"192.0.2.1/24\"]\n\
         allowed_peers = [\"192.0.2.8\"]\n",
    );
    let noisy = quiet.replace("vips = [", "unicast_peers = [\"192.0.2.9\"]\nvips = [");
    let (quiet, noisy) = (parse(&quiet).unwrap(), parse(&noisy).unwrap());
    assert!(quiet.warnings.is_empty() && !noisy.warnings.is_empty());
    let mut same = noisy.clone();
    same.warnings.clear();
    assert_eq!(same, noisy);
}

#[test]
fn load_reads_the_file_and_names_it_in_problems() {
    let host = FakeHost::lab();
    let dir = std::env::temp_dir().join(format!("vipd-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(&good, EXAMPLE).unwrap();
    assert_eq!(Config::load(&good, &host).unwrap(), example());

    let bad = dir.join("bad.toml");
    let instance =
        "[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 1\nvips = [\"192.0.2.1\"]\n";
    std::fs::write(&bad, format!("{GLOBAL}x = 1\n{instance}")).unwrap();
    let err = Config::load(&bad, &host).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}:3:1: global.x: unknown key", bad.display())),
        "{err}"
    );

    let latin1 = dir.join("latin1.toml");
    std::fs::write(&latin1, b"[global]\nrouter_id = \"caf\xe9\"\n").unwrap();
    let err = Config::load(&latin1, &host).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}:2:17: not valid UTF-8 (a TOML file must be UTF-8)",
            latin1.display()
        )
    );

    let missing = dir.join("missing.toml");
    let err = Config::load(&missing, &host).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: cannot read: ", missing.display())),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_local_host_checks_real_files() {
    use crate::config::{FileKind, Host, LocalHost};
    let host = LocalHost;
    let root = host.lstat(std::path::Path::new("/")).unwrap();
    assert_eq!((root.kind, root.uid), (FileKind::Dir, 0));
    assert!(host.lstat(std::path::Path::new("/no/such/file")).is_err());
    assert_eq!(host.user("root").unwrap().map(|u| u.uid), Some(0));
    assert_eq!(host.user("no-such-user-vipd").unwrap(), None);
}
