//! The manual pages: `vipd(8)` and one page per subcommand (`vipd-run(8)`, ...) from the
//! clap definitions with clap_mangen, and `vipd.toml(5)` from the documented example
//! configuration (see [`crate::example`]). Nothing here is written by hand but the
//! sections clap knows nothing about (signals, files, environment, exit status).

use clap_mangen::Man;
use roff::{Roff, bold, italic, roman};

use crate::example::{self, Item, Para, Reference};

/// The manual all pages belong to (the centre of the page footer).
const MANUAL: &str = "vipd manual";

fn source() -> String {
    format!("vipd {}", env!("CARGO_PKG_VERSION"))
}

/// The pages' date: `SOURCE_DATE_EPOCH` (the reproducible-builds convention; `cargo xtask
/// package` sets it to the last commit's time), else today.
pub fn date() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
    civil(secs.div_euclid(86_400))
}

/// Days since 1970-01-01 as `YYYY-MM-DD` (Howard Hinnant's civil_from_days).
fn civil(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `(file name, roff source)` of every page.
pub fn pages() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cmd = vipd::cli::command().disable_help_subcommand(true);
    cmd.build();
    out.push(("vipd.8".to_owned(), vipd_page(cmd.clone())));
    subcommand_pages(&cmd, &mut out);
    out.push((
        "vipd.toml.5".to_owned(),
        config_page(&example::parse(example::EXAMPLE)),
    ));
    out
}

fn man(cmd: clap::Command) -> Man {
    Man::new(cmd)
        .section("8")
        .date(date())
        .source(source())
        .manual(MANUAL)
}

fn subcommand_pages(cmd: &clap::Command, out: &mut Vec<(String, String)>) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let page = man(sub.clone());
        let mut buf = Vec::new();
        page.render(&mut buf).expect("rendering to memory");
        let mut tail = Roff::new();
        see_also(&mut tail, &["vipd(8)", "vipd.toml(5)"]);
        buf.extend(tail.render().into_bytes());
        out.push((
            page.get_filename(),
            String::from_utf8(buf).expect("roff is UTF-8"),
        ));
        subcommand_pages(sub, out);
    }
}

fn heading(r: &mut Roff, title: &str) {
    r.control("SH", [title]);
}

fn para(r: &mut Roff, text: &str) {
    r.control("PP", []);
    r.text([roman(text)]);
}

fn tagged(r: &mut Roff, tag: &str, text: &str) {
    r.control("TP", []);
    r.text([bold(tag)]);
    r.text([roman(text)]);
}

fn see_also(r: &mut Roff, pages: &[&str]) {
    heading(r, "SEE ALSO");
    r.text([roman(pages.join(", "))]);
}

fn vipd_page(cmd: clap::Command) -> String {
    let mut buf = Vec::new();
    man(cmd).render(&mut buf).expect("rendering to memory");
    let mut r = Roff::new();
    heading(&mut r, "SIGNALS");
    tagged(
        &mut r,
        "SIGTERM, SIGINT",
        "Hand over make-before-break: priority 0 is advertised, this node keeps answering \
         until the new master's first advertisement, then releases the VIPs, detaches the \
         XDP program and exits 0. With --keep-on-exit, program, maps and VIPs stay.",
    );
    tagged(
        &mut r,
        "SIGHUP",
        "Reload the configuration, as vipd reload does without waiting for the outcome. An \
         instance whose identity (interface, VRID, family, version) is the same is changed \
         in place and keeps its state; a file with any problem is rejected whole and the \
         running configuration stays. systemctl reload vipd runs vipd reload.",
    );
    heading(&mut r, "EXIT STATUS");
    tagged(&mut r, "0", "Success (run: a clean shutdown).");
    tagged(
        &mut r,
        "1",
        "Failure: an invalid configuration, an error at start-up, or a command that \
         failed. The message names the cause with its whole chain. vipd import \
         keepalived has its own statuses (see vipd-import-keepalived(8)).",
    );
    heading(&mut r, "ENVIRONMENT");
    tagged(
        &mut r,
        "RUST_LOG",
        "Log filter, e.g. info (the default), debug, or vipd=debug,info.",
    );
    tagged(
        &mut r,
        "NOTIFY_SOCKET, WATCHDOG_USEC",
        "Set by systemd (Type=notify, WatchdogSec=): vipd reports READY=1 once the XDP \
         program is attached and every instance runs, RELOADING=1 around a reload, a \
         STATUS= summary, and pets the watchdog from its event loop.",
    );
    heading(&mut r, "FILES");
    tagged(
        &mut r,
        "/etc/vipd/vipd.toml",
        "The configuration (vipd.toml(5)); the systemd unit runs vipd with it.",
    );
    tagged(
        &mut r,
        "/run/vipd/ROUTER_ID.sock",
        "The control socket vipd status, reload, demote, promote, handover and events talk \
         to (global.control_socket; who may: global.control_group and global.admin_group).",
    );
    tagged(
        &mut r,
        "/var/lib/vipd/",
        "The operator's demotions, when global.state_file names a file there (the unit's \
         StateDirectory).",
    );
    tagged(
        &mut r,
        "/sys/fs/bpf/vipd/ROUTER_ID/",
        "Pinned maps and XDP links (global.pin_path), readable with bpftool map dump \
         pinned.",
    );
    tagged(
        &mut r,
        "/usr/share/doc/vipd/",
        "The operator's guide (operations.md), the fully commented example \
         configuration, a Grafana dashboard and Prometheus alerting rules.",
    );
    see_also(
        &mut r,
        &[
            "vipd.toml(5)",
            "vipd-run(8)",
            "vipd-check(8)",
            "vipd-status(8)",
            "systemctl(1)",
            "bpftool-map(8)",
            "keepalived(8)",
        ],
    );
    let mut page = String::from_utf8(buf).expect("roff is UTF-8");
    page.push_str(&r.render());
    page
}

fn paras(r: &mut Roff, paras: &[Para], indented: bool) {
    for (i, p) in paras.iter().enumerate() {
        // The first paragraph of a tagged entry follows its tag directly.
        if !(indented && i == 0) {
            r.control(if indented { "IP" } else { "PP" }, []);
        }
        match p {
            Para::Text(t) => {
                r.text([roman(t.as_str())]);
            }
            Para::Verbatim(lines) => verbatim(r, lines),
        }
    }
}

fn verbatim(r: &mut Roff, lines: &[String]) {
    r.control("nf", []);
    for l in lines {
        r.text([roman(l.as_str())]);
    }
    r.control("fi", []);
}

fn config_page(reference: &Reference) -> String {
    let mut r = Roff::new();
    r.control(
        "TH",
        ["VIPD.TOML", "5", date().as_str(), source().as_str(), MANUAL],
    );
    heading(&mut r, "NAME");
    r.text([roman(
        "vipd.toml - configuration of vipd, a VRRP daemon with an XDP packet path",
    )]);
    heading(&mut r, "SYNOPSIS");
    r.text([bold("/etc/vipd/vipd.toml")]);
    heading(&mut r, "DESCRIPTION");
    r.text([roman(
        "vipd reads one TOML file (vipd run --config FILE). This page is made from the \
         fully commented example shipped as /usr/share/doc/vipd/examples/vipd.toml; each \
         key is shown with the value the example gives it.",
    )]);
    paras(&mut r, &reference.intro, false);
    for table in &reference.tables {
        heading(&mut r, &format!("TABLE {}", table.header));
        paras(&mut r, &table.intro, false);
        for item in &table.items {
            match item {
                Item::Key(k) => {
                    r.control("TP", []);
                    r.text([bold(k.names.join(", "))]);
                    paras(&mut r, &k.doc, true);
                    r.control("IP", []);
                    r.text([italic("Example:")]);
                    verbatim(&mut r, &k.example);
                }
                Item::Note(p) => paras(&mut r, p, false),
            }
        }
    }
    heading(&mut r, "EXAMPLES");
    para(
        &mut r,
        "A master for 192.0.2.1 on eth0, preferred over its peer 192.0.2.12 (priority 100 \
         there), whose adverts alone are admitted:",
    );
    r.control("PP", []);
    verbatim(
        &mut r,
        &[
            "[global]",
            "router_id = \"edge1\"",
            "",
            "[[vrrp]]",
            "name = \"gateway\"",
            "interface = \"eth0\"",
            "vrid = 51",
            "priority = 150",
            "advert_interval = \"100ms\"",
            "vips = [\"192.0.2.1/24\"]",
            "allowed_peers = [\"192.0.2.12\"]",
        ]
        .map(str::to_owned),
    );
    para(
        &mut r,
        "Check a file without touching the host with vipd check --config FILE; reload a \
         running vipd with systemctl reload vipd (SIGHUP).",
    );
    heading(&mut r, "FILES");
    tagged(
        &mut r,
        "/etc/vipd/vipd.toml",
        "The configuration the systemd unit uses.",
    );
    tagged(
        &mut r,
        "/usr/share/doc/vipd/examples/vipd.toml",
        "The example this page is made from, every key with its comments.",
    );
    see_also(&mut r, &["vipd(8)", "vipd-check(8)", "keepalived.conf(5)"]);
    r.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil(0), "1970-01-01");
        assert_eq!(civil(19_782), "2024-02-29");
        assert_eq!(civil(20_453), "2025-12-31");
    }

    #[test]
    fn one_page_per_command_and_the_configuration() {
        let names: Vec<String> = pages().into_iter().map(|(n, _)| n).collect();
        for want in [
            "vipd.8",
            "vipd-run.8",
            "vipd-check.8",
            "vipd-status.8",
            "vipd-xdp.8",
            "vipd-xdp-attach.8",
            "vipd-xdp-detach.8",
            "vipd-import.8",
            "vipd-import-keepalived.8",
            "vipd.toml.5",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
    }

    #[test]
    fn the_command_pages_carry_every_option() {
        let pages = pages();
        let page = |name: &str| &pages.iter().find(|(n, _)| n == name).unwrap().1;
        // Options as roff writes them (hyphens escaped).
        for (name, options) in [
            (
                "vipd-run.8",
                &["config", "log\\-format", "keep\\-on\\-exit", "xdp\\-mode"][..],
            ),
            ("vipd-status.8", &["socket", "config", "json"][..]),
            (
                "vipd-import-keepalived.8",
                &["output", "config\\-id", "router\\-id"][..],
            ),
        ] {
            for o in options {
                assert!(
                    page(name).contains(&format!("\\-\\-{o}")),
                    "{name} lacks --{o}:\n{}",
                    page(name)
                );
            }
        }
        assert!(page("vipd.8").contains(".SH SIGNALS"));
        assert!(page("vipd.toml.5").contains(".SH \"TABLE [[vrrp]]\""));
    }
}
