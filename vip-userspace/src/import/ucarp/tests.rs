//! `vipd import ucarp`: command lines read as ucarp 1.5.2 reads them, and the file and
//! reports they make.

use super::*;
use crate::import::{EXIT_COMPLETE, EXIT_ERROR, EXIT_LEFT_OUT};

fn loc() -> Loc {
    Loc {
        file: "command line".into(),
        line: 1,
    }
}

fn words(line: &str) -> Vec<String> {
    shlex::split(line).expect("a test command line")
}

fn import(line: &str) -> Outcome {
    ucarp(&[(loc(), words(line))], "edge1")
}

/// The README's example command line, as ucarp's usage text gives it.
const USAGE_EXAMPLE: &str = "ucarp --interface=eth0 --srcip=10.1.1.1 --vhid=1 --pass=mypassword \
    --addr=10.1.1.252 --upscript=/etc/vip-up.sh --downscript=/etc/vip-down.sh";

/// The file, which must be TOML whatever the command line held (that `vipd check`
/// accepts it: `the_imported_file_is_one_vipd_check_accepts_as_a_carp_instance`).
fn toml(o: &Outcome) -> &str {
    let t = o
        .toml
        .as_deref()
        .unwrap_or_else(|| panic!("errors: {:?}", o.errors));
    if let Err(e) = toml::de::DeTable::parse(t) {
        panic!("not TOML: {e}\n{t}");
    }
    t
}

fn reported(o: &Outcome) -> Vec<String> {
    o.reports.iter().map(ToString::to_string).collect()
}

#[test]
fn ucarps_usage_example_becomes_one_carp_instance() {
    let o = import(USAGE_EXAMPLE);
    let t = toml(&o);
    assert_eq!(o.status(), EXIT_COMPLETE, "{:?}", reported(&o));
    let table = t.split("[[vrrp]]").nth(1).unwrap();
    assert_eq!(
        table,
        "
name = \"carp-eth0-1\"
protocol = \"carp\"
interface = \"eth0\"
vrid = 1
# advskew 0 is vipd priority 255
advskew = 0
advert_interval = \"1s\"
passphrase = \"mypassword\"
preempt = false
unicast_src_ip = \"10.1.1.1\"
vips = [\"10.1.1.252/32\"]
notify_master = [\"/etc/vip-up.sh\", \"eth0\", \"10.1.1.252\"]
notify_backup = [\"/etc/vip-down.sh\", \"eth0\", \"10.1.1.252\"]
notify_fault = [\"/etc/vip-down.sh\", \"eth0\", \"10.1.1.252\"]
"
    );
    assert!(t.contains("[global]\nrouter_id = \"edge1\"\n"));
    // The source line in a comment, the password masked.
    assert!(t.contains("# from command line:1: ucarp --interface=eth0"));
    assert!(t.contains("--pass=***"));
    assert!(!t.contains(
        "# from command line:1: ucarp --interface=eth0 --srcip=10.1.1.1 --vhid=1 --pass=mypassword"
    ));
    assert!(t.contains("# Nothing ucarp would do was left out."));
}

#[test]
fn short_options_cluster_and_take_values_attached_or_following() {
    let long = import(
        "ucarp --interface eth1 --srcip 192.0.2.11 --vhid 7 --pass s3cret --addr 192.0.2.70 \
         --advbase 2 --advskew 100 --preempt --deadratio 4 --xparam tag",
    );
    let short =
        import("ucarp -ieth1 -s 192.0.2.11 -v7 -p s3cret -a192.0.2.70 -b 2 -k100 -P -r4 -x tag");
    let clustered =
        import("-Pi eth1 -s192.0.2.11 -v 7 -ps3cret -a 192.0.2.70 -b2 -k 100 -r 4 -xtag");
    let t = toml(&long);
    for other in [&short, &clustered] {
        assert_eq!(
            toml(other).split("[[vrrp]]").nth(1),
            t.split("[[vrrp]]").nth(1),
            "same settings"
        );
    }
    assert!(t.contains("vrid = 7\n"));
    assert!(t.contains("# advskew 100 is vipd priority 155\nadvskew = 100\n"));
    assert!(t.contains("advert_interval = \"2s\"\n"));
    assert!(t.contains("preempt = true\n"));
    assert!(t.contains("dead_ratio = 4\n"));
    // Masked however it was written.
    assert!(toml(&short).contains("-p ***"));
    assert!(toml(&clustered).contains(" -p*** "));
    assert_eq!(
        toml(&clustered).matches("s3cret").count(),
        1,
        "in passphrase only"
    );
}

#[test]
fn long_options_may_be_abbreviated_unless_ambiguous() {
    let o = import(
        "ucarp --int=eth0 --src=192.0.2.11 --vh=7 --pass=x --add=192.0.2.70 --advs=5 --mcast 224.0.0.18",
    );
    assert!(toml(&o).contains("advskew = 5\n"));
    // --p: --pass, --passfile or --preempt; --adv: --advbase or --advskew.
    for (line, what) in [("--p", "--p: ambiguous"), ("--adv=1", "--adv: ambiguous")] {
        let o = import(&format!("{USAGE_EXAMPLE} {line}"));
        assert_eq!(o.status(), EXIT_ERROR);
        assert!(o.errors[0].to_string().contains(what), "{:?}", o.errors);
    }
}

#[test]
fn the_last_of_a_repeated_option_wins_and_other_words_are_ignored() {
    let o = import(&format!(
        "{USAGE_EXAMPLE} --addr=10.1.1.253 stray -- --vhid=9"
    ));
    let t = toml(&o);
    assert!(t.contains("vips = [\"10.1.1.253/32\"]"));
    assert!(t.contains("vrid = 1\n"), "after -- nothing is an option");
    assert!(
        reported(&o)
            .iter()
            .any(|r| r.contains("stray --vhid=9: note: not an option"))
    );
}

#[test]
fn numbers_are_read_as_strtoul_reads_them_and_bytes_keep_their_low_byte() {
    let o = import(&format!(
        "{USAGE_EXAMPLE} --vhid=0x10 --advskew=010 --advbase=258"
    ));
    let t = toml(&o);
    assert!(t.contains("vrid = 16\n"));
    assert!(t.contains("advskew = 8\n"), "octal");
    assert!(t.contains("advert_interval = \"2s\"\n"), "258 & 0xff");
    assert!(
        reported(&o)
            .iter()
            .any(|r| r.contains("low byte of 258: 2"))
    );
    let o = import(&format!("{USAGE_EXAMPLE} --advskew=12abc"));
    assert!(toml(&o).contains("advskew = 12\n"));
    assert!(
        reported(&o)
            .iter()
            .any(|r| r.contains("reads \"12abc\" as 12"))
    );
}

#[test]
fn what_ucarp_refuses_to_start_with_is_an_error_and_nothing_is_written() {
    let cases = [
        (
            "ucarp --srcip=10.1.1.1 --vhid=1 --pass=p --addr=10.1.1.252",
            "no --interface",
        ),
        (
            "ucarp -i eth0 --srcip=10.1.1.1 --pass=p --addr=10.1.1.252",
            "no --vhid",
        ),
        (
            "ucarp -i eth0 --srcip=10.1.1.1 --vhid=1 --addr=10.1.1.252",
            "no --pass or --passfile",
        ),
        (
            "ucarp -i eth0 --vhid=1 --pass=p --addr=10.1.1.252",
            "no --srcip",
        ),
        (
            "ucarp -i eth0 --srcip=10.1.1.1 --vhid=1 --pass=p",
            "no --addr",
        ),
        (
            &format!("{USAGE_EXAMPLE} --vhid=0"),
            "--vhid 0: ucarp takes 1 to 255",
        ),
        (&format!("{USAGE_EXAMPLE} --vhid=256"), "--vhid 256"),
        (
            &format!("{USAGE_EXAMPLE} --pass=twenty-bytes-long-pw"),
            "20 bytes, ucarp takes at most 19",
        ),
        (&format!("{USAGE_EXAMPLE} --pass="), "--pass: empty"),
        (
            &format!("{USAGE_EXAMPLE} --advbase=0"),
            "--advbase 0 with --advskew 0",
        ),
        (&format!("{USAGE_EXAMPLE} --deadratio=0"), "--deadratio 0"),
        (
            &format!("{USAGE_EXAMPLE} --addr=10.1.1"),
            "not an IPv4 address",
        ),
        (
            &format!("{USAGE_EXAMPLE} --bogus"),
            "--bogus: not an option",
        ),
        (
            &format!("{USAGE_EXAMPLE} -m 224.0.0.19"),
            "-m: not an option",
        ),
        (&format!("{USAGE_EXAMPLE} --preempt=yes"), "takes no value"),
        (&format!("{USAGE_EXAMPLE} --xparam"), "needs a value"),
        (&format!("{USAGE_EXAMPLE} --help"), "usage"),
    ];
    for (line, want) in cases {
        let o = import(line);
        assert_eq!(o.status(), EXIT_ERROR, "{line}");
        assert!(o.toml.is_none());
        assert!(
            o.errors.iter().any(|e| e.to_string().contains(want)),
            "{line}: {:?}",
            o.errors
        );
        assert!(
            o.errors
                .iter()
                .all(|e| e.to_string().starts_with("command line:1: "))
        );
    }
}

#[test]
fn what_vipd_cannot_do_alike_is_left_out_with_the_reason() {
    let o = import(&format!(
        "{USAGE_EXAMPLE} --neutral --nomcast --mcastip=239.0.0.18 --advskew=255"
    ));
    assert_eq!(o.status(), EXIT_LEFT_OUT);
    let r = reported(&o);
    for want in [
        "command line:1: --neutral: vipd runs notify_backup",
        "command line:1: --nomcast: ",
        "command line:1: --mcastip: 239.0.0.18: vipd advertises to 224.0.0.18 only",
        "command line:1: --advskew: 255 is the skew of a master bowing out",
    ] {
        assert!(r.iter().any(|x| x.starts_with(want)), "{want}: {r:?}");
    }
    let t = toml(&o);
    assert!(t.contains("advskew = 254\n"));
    assert!(t.contains("# Left out (4): ucarp would do these, this file does not:"));
    // The default group is no loss.
    let o = import(&format!("{USAGE_EXAMPLE} --mcastip=224.0.0.18"));
    assert_eq!(o.status(), EXIT_COMPLETE);
}

#[test]
fn passfile_shutdown_and_ignoreifstate_carry_over() {
    let o = import(&format!(
        "{} --passfile=/etc/ucarp/vip1.pass --shutdown --ignoreifstate --xparam=x1 -B -D -f daemon",
        USAGE_EXAMPLE.replace("--pass=mypassword ", "")
    ));
    assert_eq!(o.status(), EXIT_COMPLETE, "{:?}", reported(&o));
    let t = toml(&o);
    assert!(t.contains("passphrase_file = \"/etc/ucarp/vip1.pass\"\n"));
    assert!(!t.contains("passphrase = "));
    assert!(t.contains("dont_track_primary = true\n"));
    assert!(t.contains("notify_stop = [\"/etc/vip-down.sh\", \"eth0\", \"10.1.1.252\", \"x1\"]\n"));
    assert!(t.contains("notify_master = [\"/etc/vip-up.sh\", \"eth0\", \"10.1.1.252\", \"x1\"]\n"));
    let r = reported(&o);
    for want in [
        "--shutdown: note:",
        "--ignoreifstate: note:",
        "--daemonize: note:",
        "--debug: note:",
        "--facility: note:",
    ] {
        assert!(r.iter().any(|x| x.contains(want)), "{want}: {r:?}");
    }
}

#[test]
fn a_file_of_command_lines_makes_one_instance_each() {
    let dir = std::env::temp_dir().join(format!("vipd-import-ucarp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ucarp.cmds");
    std::fs::write(
        &path,
        "# two virtual addresses\n\
         /usr/sbin/ucarp -i eth0 -s 10.1.1.1 -v 1 -p 'two words' -a 10.1.1.252\n\
         \n\
         ucarp -i eth0 -s 10.1.1.1 -v 2 \\\n  -p second -a 10.1.1.253 -k 20\n",
    )
    .unwrap();
    let lines = lines_of_file(&path).unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[1].0.line, 4,
        "a continued line is named by its first line"
    );
    let o = ucarp(&lines, "edge1");
    let t = toml(&o);
    assert!(t.contains("name = \"carp-eth0-1\""));
    assert!(t.contains("passphrase = \"two words\""));
    assert!(t.contains("name = \"carp-eth0-2\""));
    assert!(t.contains(&format!("# from {}:4: ucarp -i eth0", path.display())));
    // The same VHID twice on one interface is two processes fighting: refused.
    std::fs::write(
        &path,
        "ucarp -i eth0 -s 10.1.1.1 -v 1 -p a -a 10.1.1.252\nucarp -i eth0 -s 10.1.1.1 -v 1 -p b -a 10.1.1.253\n",
    )
    .unwrap();
    let o = ucarp(&lines_of_file(&path).unwrap(), "edge1");
    assert_eq!(o.status(), EXIT_ERROR);
    assert!(
        o.errors[0]
            .to_string()
            .contains(":2: a second command line for VHID 1 on eth0")
    );
    std::fs::write(&path, "ucarp -i eth0 -p 'unbalanced\n").unwrap();
    assert!(
        lines_of_file(&path)
            .unwrap_err()
            .to_string()
            .contains(":1: unbalanced quotes")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_writes_the_file_and_reports_like_the_keepalived_import() {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = run(
        Ok(vec![(loc(), words(&format!("{USAGE_EXAMPLE} --neutral")))]),
        "edge1",
        None,
        false,
        &mut out,
        &mut err,
    );
    assert_eq!(status, EXIT_LEFT_OUT);
    let err = String::from_utf8(err).unwrap();
    assert!(err.contains("command line:1: --neutral: "));
    assert!(err.contains("vipd import: stdout written; 1 left out"));
    assert!(
        String::from_utf8(out)
            .unwrap()
            .starts_with("# vipd configuration imported from ucarp")
    );
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(
        run(Ok(vec![]), "edge1", None, false, &mut out, &mut err),
        EXIT_ERROR
    );
    assert!(out.is_empty());
}

#[test]
fn quotes_and_odd_characters_stay_valid_toml_and_the_comment_stays_one_line() {
    let o = import(&format!(
        "{} -p 'pa\"ss #1' -x 'a b' -u '/opt/up script.sh'",
        USAGE_EXAMPLE.replace("--pass=mypassword ", "")
    ));
    let t = toml(&o);
    assert!(t.contains("passphrase = \"pa\\\"ss #1\"\n"), "{t}");
    assert!(
        t.contains("notify_master = [\"/opt/up script.sh\", \"eth0\", \"10.1.1.252\", \"a b\"]")
    );
    let comment = t.lines().find(|l| l.starts_with("# from ")).unwrap();
    assert!(comment.contains("-p *** ") && comment.contains("'/opt/up script.sh'"));
    assert!(!comment.contains("pa\"ss"));
}

#[test]
fn the_imported_file_is_one_vipd_check_accepts_as_a_carp_instance() {
    use crate::config::{Config, FakeHost};
    let host = FakeHost::lab()
        .dir("/etc", 0o755, 0, 0)
        .file("/etc/vip-up.sh", 0o755, 0, 0)
        .file("/etc/vip-down.sh", 0o755, 0, 0);
    let o = import(&format!("{USAGE_EXAMPLE} --advskew=10 --preempt"));
    let config = Config::parse(toml(&o), "vipd.toml", &host)
        .unwrap_or_else(|e| panic!("vipd check refuses the import:\n{e}"));
    let i = &config.instances[0];
    assert_eq!(i.protocol, crate::vrrp::instance::Protocol::Carp);
    assert_eq!((i.vrid, i.priority, i.preempt), (1, 245, true));
    let carp = i.carp.as_ref().unwrap();
    assert_eq!(
        carp.settings.key,
        crate::vrrp::carp::Key::new(b"mypassword").unwrap()
    );
}
