//! `global_defs`: the daemon's name, the default VRRP version, the script user, the
//! startup delay and the defaults instances take for their announcements.

use std::time::Duration;

use super::values::{boolean, int_in, sanitize_name, seconds, valid_name};
use super::{Ctx, keywords};
use crate::config::print::{Table, Value, duration};
use crate::import::parse::Node;
use crate::import::report::Loc;

/// keepalived runs scripts as this user when it exists and no script_user is set.
const KEEPALIVED_SCRIPT_USER: &str = "keepalived_script";

#[derive(Debug, Default)]
pub(crate) struct Globals {
    pub(crate) loc: Option<Loc>,
    pub(crate) router_id: Option<(String, Loc)>,
    pub(crate) vrrp_version: Option<(u8, Loc)>,
    pub(crate) startup_delay: Option<(Duration, Loc)>,
    pub(crate) script_user: Option<(String, Loc)>,
    pub(crate) script_security: Option<Loc>,
    pub(crate) garp_delay: Option<(Duration, Loc)>,
    pub(crate) garp_repeat: Option<(u32, Loc)>,
    pub(crate) garp_refresh: Option<(Duration, Loc)>,
    pub(crate) garp_refresh_repeat: Option<(u32, Loc)>,
    pub(crate) garp_interval: Option<(Duration, Loc)>,
    pub(crate) gna_interval: Option<(Duration, Loc)>,
    pub(crate) strict: Option<Loc>,
    pub(crate) check_unicast_src: bool,
}

impl Globals {
    pub(crate) fn read(&mut self, node: &Node, block: &[Node], ctx: &mut Ctx<'_>) {
        self.loc = Some(node.loc.clone());
        for child in block {
            let loc = child.loc.clone();
            let arg = child.arg(0);
            match child.keyword.as_str() {
                "router_id" => match arg {
                    Some(id) => self.router_id = Some((id.to_owned(), loc)),
                    None => ctx.log.error(&loc, "router_id: needs a name"),
                },
                "vrrp_version" => match arg.and_then(|a| int_in(a, 2..=3)) {
                    Some(v) => self.vrrp_version = Some((v as u8, loc)),
                    None => ctx.log.error(
                        &loc,
                        format!(
                            "vrrp_version: expected 2 or 3, found {:?}",
                            arg.unwrap_or("")
                        ),
                    ),
                },
                "vrrp_startup_delay" => {
                    if let Some(d) = timer(child, ctx) {
                        self.startup_delay = Some((d, loc));
                    }
                }
                "script_user" => match arg {
                    Some(user) => {
                        if let Some(group) = child.arg(1) {
                            ctx.log.left_out(
                                &loc,
                                "script_user",
                                format!(
                                    "group {group}: vipd runs scripts with the script user's \
                                     primary group"
                                ),
                            );
                        }
                        self.script_user = Some((user.to_owned(), loc));
                    }
                    None => ctx.log.error(&loc, "script_user: needs a user name"),
                },
                "enable_script_security" => self.script_security = Some(loc),
                "vrrp_garp_master_delay" => {
                    if let Some(d) = timer(child, ctx) {
                        self.garp_delay = Some((d, loc));
                    }
                }
                "vrrp_garp_master_repeat" => {
                    if let Some(n) = count(child, ctx) {
                        self.garp_repeat = Some((n, loc));
                    }
                }
                "vrrp_garp_master_refresh" => {
                    if let Some(d) = timer(child, ctx) {
                        self.garp_refresh = Some((d, loc));
                    }
                }
                "vrrp_garp_master_refresh_repeat" => {
                    if let Some(n) = count(child, ctx) {
                        self.garp_refresh_repeat = Some((n, loc));
                    }
                }
                "vrrp_garp_interval" => {
                    if let Some(d) = timer(child, ctx) {
                        self.garp_interval = Some((d, loc));
                    }
                }
                "vrrp_gna_interval" => {
                    if let Some(d) = timer(child, ctx) {
                        self.gna_interval = Some((d, loc));
                    }
                }
                "vrrp_strict" => self.strict = Some(loc),
                "vrrp_check_unicast_src" => self.check_unicast_src = true,
                other => {
                    let reason = keywords::reason(keywords::GLOBAL, other).or_else(|| {
                        keywords::GLOBAL_OUT_OF_SCOPE_PREFIXES
                            .iter()
                            .find(|(prefix, _)| other.starts_with(prefix))
                            .map(|(_, r)| *r)
                    });
                    ctx.log
                        .left_out(&loc, other, reason.unwrap_or("unknown keepalived keyword"));
                }
            }
        }
    }

    /// The user scripts run as: `script_user`, else keepalived's default
    /// `keepalived_script` when that user exists on this host, else none (root).
    pub(crate) fn script_user(&self, ctx: &mut Ctx<'_>) -> Option<String> {
        if let Some((user, _)) = &self.script_user {
            return Some(user.clone());
        }
        match ctx.host.user(KEEPALIVED_SCRIPT_USER) {
            Ok(Some(_)) => {
                let loc = self.loc.clone().unwrap_or_else(|| Loc {
                    file: ctx.main_file(),
                    line: 1,
                });
                ctx.log.note(
                    &loc,
                    "script_user",
                    format!(
                        "none set, so keepalived runs scripts as {KEEPALIVED_SCRIPT_USER}, which \
                         exists here: script_user = \"{KEEPALIVED_SCRIPT_USER}\""
                    ),
                );
                Some(KEEPALIVED_SCRIPT_USER.to_owned())
            }
            _ => None,
        }
    }

    /// `[global]`.
    pub(crate) fn table(
        &self,
        ctx: &mut Ctx<'_>,
        fallback_router_id: &str,
        script_user: Option<&str>,
    ) -> Table {
        let mut t = Table::new("[global]");
        if let Some(loc) = &self.loc {
            t.comments.push(format!("from {loc} global_defs"));
        }
        let router_id = match &self.router_id {
            Some((id, loc)) => {
                if !valid_name(id) {
                    let fixed = sanitize_name(id);
                    ctx.log.note(
                        loc,
                        "router_id",
                        format!(
                            "{id:?} is not a vipd name (1 to 32 of A-Z a-z 0-9 _ . -): written as {fixed:?}"
                        ),
                    );
                    fixed
                } else {
                    id.clone()
                }
            }
            None => {
                let id = sanitize_name(fallback_router_id);
                let loc = self.loc.clone().unwrap_or_else(|| Loc {
                    file: ctx.main_file(),
                    line: 1,
                });
                ctx.log.note(
                    &loc,
                    "router_id",
                    format!("not set, so keepalived uses the host name: router_id = {id:?}"),
                );
                id
            }
        };
        t.key("router_id", Value::str(router_id));
        if let Some(user) = script_user {
            t.key("script_user", Value::str(user));
        }
        match &self.script_security {
            Some(loc) => ctx.log.note(
                loc,
                "enable_script_security",
                "always on in vipd: every script and hook must be safe from other users",
            ),
            None => {
                if let Some(loc) = &self.loc {
                    ctx.log.note(
                        loc,
                        "enable_script_security",
                        "not set here, but always on in vipd: `vipd check` refuses a script or \
                         hook that a user other than root or script_user can change",
                    );
                }
            }
        }
        if let Some((d, loc)) = &self.startup_delay {
            let max = Duration::from_secs(3600);
            let d = if *d > max {
                ctx.log.left_out(
                    loc,
                    "vrrp_startup_delay",
                    format!("{} is more than vipd's 1h: written as 3600s", duration(*d)),
                );
                max
            } else {
                *d
            };
            t.key("startup_delay", Value::duration(d));
        }
        if let Some((d, loc)) = &self.garp_delay
            && !d.is_zero()
        {
            ctx.log.left_out(
                loc,
                "vrrp_garp_master_delay",
                format!(
                    "{}: vipd sends one burst of announcements on becoming master, not a second \
                     one after a delay (garp_refresh repeats them periodically)",
                    duration(*d)
                ),
            );
        }
        if let Some((n, loc)) = &self.garp_refresh_repeat
            && *n > 1
        {
            ctx.log.left_out(
                loc,
                "vrrp_garp_master_refresh_repeat",
                format!("{n}: vipd sends one announcement per VIP on each refresh"),
            );
        }
        if let Some(loc) = &self.strict {
            ctx.log.note(
                loc,
                "vrrp_strict",
                "vipd follows RFC 5798 anyway; what strict mode changes in keepalived (accept \
                 mode off, no authentication) is applied to each instance",
            );
        }
        t
    }
}

/// A `<TIMER>` argument (seconds); an error when it is missing or malformed.
pub(crate) fn timer(node: &Node, ctx: &mut Ctx<'_>) -> Option<Duration> {
    let found = seconds(node.arg(0).unwrap_or(""));
    if found.is_none() {
        ctx.log.error(
            &node.loc,
            format!(
                "{}: expected seconds (e.g. 1 or 0.5), found {:?}",
                node.keyword,
                node.arg(0).unwrap_or("")
            ),
        );
    }
    found
}

/// A count argument (0 or more).
pub(crate) fn count(node: &Node, ctx: &mut Ctx<'_>) -> Option<u32> {
    let found = node
        .arg(0)
        .and_then(|a| int_in(a, 0..=i64::from(u32::MAX)))
        .map(|v| v as u32);
    if found.is_none() {
        ctx.log.error(
            &node.loc,
            format!(
                "{}: expected a whole number, found {:?}",
                node.keyword,
                node.arg(0).unwrap_or("")
            ),
        );
    }
    found
}

/// A `<BOOL>` argument (a keyword alone is true).
pub(crate) fn flag(node: &Node, ctx: &mut Ctx<'_>) -> Option<bool> {
    let found = boolean(node.arg(0));
    if found.is_none() {
        ctx.log.error(
            &node.loc,
            format!(
                "{}: expected on/off, true/false or yes/no, found {:?}",
                node.keyword,
                node.arg(0).unwrap_or("")
            ),
        );
    }
    found
}
