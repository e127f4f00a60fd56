//! The shipped example, defaults, printing and the helpers the daemon uses.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use super::{GLOBAL, lab_interfaces, parse, with_global};
use crate::config::{Config, Family, TrackScript, Version};

const EXAMPLE: &str = include_str!("../../../examples/vipd.toml");

fn example() -> Config {
    match Config::parse(EXAMPLE, "vipd.toml", &lab_interfaces) {
        Ok(config) => config,
        Err(e) => panic!("the shipped example is rejected:\n{e}"),
    }
}

#[test]
fn shipped_example_loads_with_its_documented_values() {
    let config = example();
    assert_eq!(config.global.router_id, "r1");
    assert_eq!(
        config.global.metrics,
        Some("127.0.0.1:9101".parse().unwrap())
    );
    let names: Vec<&str> = config.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["gw", "gw6", "legacy"]);

    let gw = &config.instances[0];
    assert_eq!(gw.family, Family::Ipv4);
    assert_eq!(gw.vips.len(), 2);
    assert_eq!(gw.unicast_peers, [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 12))]);
    assert_eq!(
        gw.track_scripts,
        [TrackScript {
            command: vec!["/usr/local/bin/check-uplink".into()],
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            weight: -30,
            rise: 2,
            fall: 2,
        }]
    );
    assert_eq!(gw.garp_refresh, Some(Duration::from_secs(60)));

    let gw6 = &config.instances[1];
    assert_eq!((gw6.family, gw6.vrid), (Family::Ipv6, 51));
    assert_eq!(gw6.vips[0].to_string(), "fe80::51/128");

    let legacy = &config.instances[2];
    assert_eq!(legacy.version, Version::V2);
    assert_eq!(legacy.auth_pass, Some(*b"secret1\0"));
}

#[test]
fn shipped_example_round_trips_through_its_printed_form() {
    let config = example();
    let printed = config.to_toml_string();
    let again = Config::parse(&printed, "printed.toml", &lab_interfaces)
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
    let i = &config.instances[0];
    assert_eq!(i.priority, 100);
    assert_eq!(i.version, Version::V3);
    assert_eq!(i.advert_interval, Duration::from_secs(1));
    assert!(i.preempt);
    assert_eq!(i.preempt_delay, Duration::ZERO);
    assert!(i.accept && !i.vmac);
    assert_eq!(i.vips[0].to_string(), "192.0.2.1/32");
    assert!(i.unicast_peers.is_empty() && i.allowed_peers.is_empty());
    assert_eq!(i.auth_pass, None);
    assert!(
        i.track_interfaces.is_empty() && i.track_scripts.is_empty() && i.track_files.is_empty()
    );
    assert_eq!((i.notify.clone(), i.sync_group.clone()), (None, None));
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
    assert_eq!(i.track_interfaces[0].weight, 0);
    let script = &i.track_scripts[0];
    assert_eq!(script.command, ["/bin/check", "--fast"]);
    assert_eq!(script.interval, Duration::from_secs(2));
    assert_eq!(script.timeout, Duration::from_secs(1));
    assert_eq!((script.weight, script.rise, script.fall), (0, 1, 1));
    assert_eq!(i.track_files[0].weight, 0);
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
    let groups = example().sync_groups();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups["edge"], [0, 1]);
}

#[test]
fn unchanged_instances_compare_equal_across_reloads() {
    let before = example();
    let edited = EXAMPLE.replace("vrid = 52", "vrid = 53");
    let after = Config::parse(&edited, "vipd.toml", &lab_interfaces).unwrap();
    assert_eq!(before.instances[..2], after.instances[..2]);
    assert_ne!(before.instances[2], after.instances[2]);
}

#[test]
fn load_reads_the_file_and_names_it_in_problems() {
    let dir = std::env::temp_dir().join(format!("vipd-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(&good, EXAMPLE).unwrap();
    assert_eq!(Config::load(&good, &lab_interfaces).unwrap(), example());

    let bad = dir.join("bad.toml");
    let instance =
        "[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 1\nvips = [\"192.0.2.1\"]\n";
    std::fs::write(&bad, format!("{GLOBAL}x = 1\n{instance}")).unwrap();
    let err = Config::load(&bad, &lab_interfaces).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}:3:1: global.x: unknown key", bad.display())),
        "{err}"
    );

    let latin1 = dir.join("latin1.toml");
    std::fs::write(&latin1, b"[global]\nrouter_id = \"caf\xe9\"\n").unwrap();
    let err = Config::load(&latin1, &lab_interfaces)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}:2:17: not valid UTF-8 (a TOML file must be UTF-8)",
            latin1.display()
        )
    );

    let missing = dir.join("missing.toml");
    let err = Config::load(&missing, &lab_interfaces)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("{}: cannot read: ", missing.display())),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
