//! keepalived keywords vipd has no equivalent for, with the reason given for each, so
//! a known keyword is never reported as unknown.

/// Top-level blocks left out, and why.
pub(crate) const TOP_LEVEL: &[(&str, &str)] = &[
    (
        "virtual_server_group",
        "vipd balances an address and port (or every port) per [[service]]: write one per address",
    ),
    (
        "static_ipaddress",
        "vipd adds addresses only while master; configure static addresses in the host's network configuration",
    ),
    (
        "static_routes",
        "vipd adds routes only while master; configure static routes in the host's network configuration",
    ),
    (
        "static_rules",
        "vipd adds rules only while master; configure static rules in the host's network configuration",
    ),
    (
        "track_group",
        "vipd does not track static addresses, routes or rules",
    ),
    ("bfd_instance", "vipd does not speak BFD"),
    (
        "linkbeat_interfaces",
        "vipd follows link state through netlink only",
    ),
    (
        "linkbeat_use_polling",
        "vipd follows link state through netlink only",
    ),
    (
        "net_namespace",
        "run vipd inside the network namespace instead (e.g. with nsenter --net)",
    ),
    (
        "net_namespace_ipvs",
        "out of scope: vipd does not do load balancing",
    ),
    ("namespace_with_ipsets", "vipd uses no ipsets"),
    (
        "use_pid_dir",
        "no vipd equivalent (vipd writes no pid file)",
    ),
    (
        "instance",
        "no vipd equivalent (router_id names the daemon's files)",
    ),
    (
        "child_wait_time",
        "no vipd equivalent (vipd runs as one process)",
    ),
];

/// `global_defs` keywords left out, and why (those not listed here are unknown).
pub(crate) const GLOBAL: &[(&str, &str)] = &[
    (
        "notification_email",
        "vipd sends no e-mail; use a notify hook",
    ),
    ("notification_email_from", "vipd sends no e-mail"),
    ("smtp_server", "vipd sends no e-mail"),
    ("smtp_helo_name", "vipd sends no e-mail"),
    ("smtp_connect_timeout", "vipd sends no e-mail"),
    ("smtp_alert", "vipd sends no e-mail"),
    ("smtp_alert_vrrp", "vipd sends no e-mail"),
    ("smtp_alert_checker", "vipd sends no e-mail"),
    ("no_email_faults", "vipd sends no e-mail"),
    (
        "default_interface",
        "vipd requires every instance to name its interface",
    ),
    (
        "dynamic_interfaces",
        "vipd requires its interfaces to exist when it starts",
    ),
    (
        "vrrp_mcast_group4",
        "vipd uses the standard group 224.0.0.18",
    ),
    ("vrrp_mcast_group6", "vipd uses the standard group ff02::12"),
    (
        "vrrp_garp_master_refresh_repeat",
        "vipd sends one announcement per VIP on each refresh",
    ),
    ("vrrp_garp_lower_prio_delay", "no vipd equivalent"),
    ("vrrp_garp_lower_prio_repeat", "no vipd equivalent"),
    (
        "vrrp_down_timer_adverts",
        "vipd uses RFC 5798's 3 intervals plus skew",
    ),
    ("vrrp_min_garp", "no vipd equivalent"),
    (
        "vrrp_garp_extra_if",
        "vipd announces VIPs only on their own devices",
    ),
    (
        "vrrp_vmac_garp_intvl",
        "vipd announces VIPs only on their own devices",
    ),
    ("vrrp_lower_prio_no_advert", "no vipd equivalent"),
    ("vrrp_higher_prio_send_advert", "no vipd equivalent"),
    (
        "vrrp_iptables",
        "vipd needs no firewall rules: its XDP program handles accept mode",
    ),
    ("vrrp_ipsets", "vipd uses no ipsets"),
    (
        "nftables",
        "vipd needs no firewall rules: its XDP program handles accept mode",
    ),
    ("nftables_priority", "vipd needs no firewall rules"),
    ("nftables_ifindex", "vipd needs no firewall rules"),
    ("nftables_counters", "vipd needs no firewall rules"),
    (
        "vrrp_skip_check_adv_addr",
        "vipd checks every advertisement as RFC 5798 section 7.1 says",
    ),
    (
        "vrrp_priority",
        "no vipd equivalent (set the service's scheduling instead)",
    ),
    (
        "vrrp_no_swap",
        "no vipd equivalent (set the service's memory locking instead)",
    ),
    (
        "vrrp_rt_priority",
        "no vipd equivalent (set the service's scheduling instead)",
    ),
    (
        "vrrp_cpu_affinity",
        "no vipd equivalent (set the service's CPU affinity instead)",
    ),
    ("vrrp_rlimit_rttime", "no vipd equivalent"),
    ("vrrp_rlimit_rtime", "no vipd equivalent"),
    (
        "notify_fifo",
        "vipd has no notify FIFO (`vipd events` streams transitions as JSON lines)",
    ),
    (
        "notify_fifo_script",
        "vipd has no notify FIFO (`vipd events` streams transitions as JSON lines)",
    ),
    (
        "vrrp_notify_fifo",
        "vipd has no notify FIFO (`vipd events` streams transitions as JSON lines)",
    ),
    (
        "vrrp_notify_fifo_script",
        "vipd has no notify FIFO (`vipd events` streams transitions as JSON lines)",
    ),
    (
        "vrrp_notify_priority_changes",
        "vipd has no notify FIFO (`vipd events` streams transitions as JSON lines)",
    ),
    (
        "fifo_write_vrrp_states_on_reload",
        "vipd has no notify FIFO",
    ),
    (
        "snmp_socket",
        "vipd has no SNMP agent; use its Prometheus metrics",
    ),
    ("enable_traps", "vipd has no SNMP agent"),
    (
        "enable_snmp_vrrp",
        "vipd has no SNMP agent; use its Prometheus metrics",
    ),
    (
        "enable_snmp_keepalived",
        "vipd has no SNMP agent; use its Prometheus metrics",
    ),
    (
        "enable_snmp_rfc",
        "vipd has no SNMP agent; use its Prometheus metrics",
    ),
    (
        "enable_snmp_rfcv2",
        "vipd has no SNMP agent; use its Prometheus metrics",
    ),
    (
        "enable_snmp_rfcv3",
        "vipd has no SNMP agent; use its Prometheus metrics",
    ),
    (
        "enable_dbus",
        "vipd has no D-Bus interface; use its control socket",
    ),
    ("dbus_service_name", "vipd has no D-Bus interface"),
    ("dbus_no_interface_name", "vipd has no D-Bus interface"),
    ("vrrp_netlink_cmd_rcv_bufs", "no vipd equivalent"),
    ("vrrp_netlink_cmd_rcv_bufs_force", "no vipd equivalent"),
    ("vrrp_netlink_monitor_rcv_bufs", "no vipd equivalent"),
    ("vrrp_netlink_monitor_rcv_bufs_force", "no vipd equivalent"),
    ("vrrp_rx_bufs_policy", "no vipd equivalent"),
    ("vrrp_rx_bufs_multiplier", "no vipd equivalent"),
    (
        "vrrp_delay_after_boot",
        "no vipd equivalent; use startup_delay",
    ),
    ("vrrp_owner_ignore_adverts", "no vipd equivalent"),
    (
        "log_unknown_vrids",
        "no vipd equivalent (vipd counts them in its metrics)",
    ),
    ("vmac_prefix", "vipd creates no macvlan interfaces"),
    ("vmac_addr_prefix", "vipd creates no macvlan interfaces"),
    (
        "startup_script",
        "no vipd equivalent (run it from the service manager)",
    ),
    ("startup_script_timeout", "no vipd equivalent"),
    (
        "shutdown_script",
        "no vipd equivalent (run it from the service manager)",
    ),
    ("shutdown_script_timeout", "no vipd equivalent"),
    (
        "max_auto_priority",
        "no vipd equivalent (set the service's scheduling instead)",
    ),
    ("min_auto_priority_delay", "no vipd equivalent"),
    ("process_names", "no vipd equivalent"),
    ("process_name", "no vipd equivalent"),
    ("vrrp_process_name", "no vipd equivalent"),
    (
        "checker_process_name",
        "out of scope: vipd does not do load balancing",
    ),
    (
        "lvs_process_name",
        "out of scope: vipd does not do load balancing",
    ),
    ("bfd_process_name", "vipd does not speak BFD"),
    ("use_symlink_paths", "no vipd equivalent"),
    (
        "set_supplementary_groups",
        "vipd runs scripts with the script user's primary group only",
    ),
    ("umask", "no vipd equivalent"),
    ("random_seed", "no vipd equivalent"),
    (
        "reload_check_config",
        "vipd checks every file before it reloads",
    ),
    ("reload_time_file", "no vipd equivalent"),
    ("reload_repeat", "no vipd equivalent"),
    ("reload_file", "no vipd equivalent"),
    ("include_check", "the importer follows includes itself"),
    ("config_save_dir", "no vipd equivalent"),
    ("tmp_config_directory", "no vipd equivalent"),
    ("data_use_instance", "no vipd equivalent"),
    ("json_version", "no vipd equivalent; vipd status --json"),
    (
        "iproute_usr_dir",
        "vipd takes route tables and protocols as numbers",
    ),
    (
        "iproute_etc_dir",
        "vipd takes route tables and protocols as numbers",
    ),
    ("state_dump_file", "no vipd equivalent; use vipd status"),
    (
        "stats_dump_file",
        "no vipd equivalent; use the Prometheus metrics",
    ),
    (
        "json_dump_file",
        "no vipd equivalent; use vipd status --json",
    ),
    (
        "checker_log_all_failures",
        "out of scope: vipd does not do load balancing",
    ),
    (
        "rs_init_notifies",
        "out of scope: vipd does not do load balancing",
    ),
    (
        "no_checker_emails",
        "out of scope: vipd does not do load balancing",
    ),
    ("disable_local_igmp", "no vipd equivalent"),
    (
        "v3_checksum_as_v2",
        "vipd computes the RFC 5798 checksum only",
    ),
];

/// The reason a known keyword is left out, if it is in `table`.
pub(crate) fn reason(table: &[(&str, &'static str)], keyword: &str) -> Option<&'static str> {
    table.iter().find(|(k, _)| *k == keyword).map(|(_, r)| *r)
}

/// `global_defs` keywords starting with these concern only the load balancer or BFD.
pub(crate) const GLOBAL_OUT_OF_SCOPE_PREFIXES: &[(&str, &str)] = &[
    ("lvs_", "out of scope: vipd does not do load balancing"),
    ("checker_", "out of scope: vipd does not do load balancing"),
    (
        "nftables_ipvs",
        "out of scope: vipd does not do load balancing",
    ),
    ("snmp_", "vipd has no SNMP agent"),
    ("enable_snmp_", "vipd has no SNMP agent"),
    ("bfd_", "vipd does not speak BFD"),
    (
        "process_monitor_",
        "vipd sizes the process connector's buffer itself (doubled after lost events, up to 4 MiB)",
    ),
];
