//! The tracked objects and announcement settings of one instance, with keepalived's
//! rules for sync groups and address owners applied.

use std::collections::BTreeSet;
use std::time::Duration;

use super::super::track;
use super::super::{Ctx, Defs, Globals};
use super::{Instance, MAX_GARP_INTERVAL, MAX_GARP_REFRESH, MAX_GARP_REPEAT};
use crate::config::print::{Value, duration};

impl Instance {
    pub(super) fn track_interfaces_out(
        &self,
        why: Option<&str>,
        owner: bool,
        ctx: &mut Ctx<'_>,
    ) -> Vec<Value> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for t in &self.track_ifs {
            if !seen.insert(t.name.clone()) {
                ctx.log.note(
                    &t.loc,
                    "track_interface",
                    format!(
                        "{} is tracked twice; keepalived ignores the second, so does the import",
                        t.name
                    ),
                );
                continue;
            }
            let mut weight = t.weight;
            if weight != 0
                && let Some(why) = why
            {
                if owner {
                    ctx.log.note(
                        &t.loc,
                        "track_interface",
                        format!(
                            "{} weight {weight}: keepalived stops tracking a weighted interface of {why}; so does the import",
                            t.name
                        ),
                    );
                    continue;
                }
                ctx.log.note(
                    &t.loc,
                    "track_interface",
                    format!(
                        "{} weight {weight}: keepalived ignores the weight of {why}, so the \
                         interface going down means FAULT: weight = 0",
                        t.name
                    ),
                );
                weight = 0;
            }
            let mut pairs = vec![
                ("name".to_owned(), Value::str(&t.name)),
                ("weight".to_owned(), Value::Int(weight)),
            ];
            if t.reverse {
                pairs.push(("reverse".into(), Value::Bool(true)));
            }
            out.push(Value::Inline(pairs));
        }
        out
    }

    pub(super) fn track_scripts_out(
        &self,
        defs: &Defs,
        why: Option<&str>,
        ctx: &mut Ctx<'_>,
    ) -> Vec<Value> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for r in &self.track_scripts {
            let Some(def) = defs.scripts.get(&r.name) else {
                ctx.log.note(
                    &r.loc,
                    "track_script",
                    format!("no vrrp_script {} is defined, so keepalived ignores it; so does the import", r.name),
                );
                continue;
            };
            if def.index > self.index {
                ctx.log.note(
                    &r.loc,
                    "track_script",
                    format!(
                        "vrrp_script {} is defined after this instance (at {}); keepalived finds \
                         only scripts defined before, so it ignores it; so does the import",
                        r.name, def.loc
                    ),
                );
                continue;
            }
            if !seen.insert(r.name.clone()) {
                ctx.log.note(
                    &r.loc,
                    "track_script",
                    format!(
                        "{} is tracked twice; keepalived ignores the second, so does the import",
                        r.name
                    ),
                );
                continue;
            }
            let weight = r.weight.unwrap_or(def.weight);
            let reverse = r.reverse.unwrap_or(def.reverse);
            if weight != 0
                && let Some(why) = why
            {
                ctx.log.note(
                    &r.loc,
                    "track_script",
                    format!(
                        "{} weight {weight}: keepalived ignores a weighted script of {why}; so \
                         does the import (give it weight 0 to fault instead)",
                        r.name
                    ),
                );
                continue;
            }
            match track::script_entry(def, weight, reverse) {
                Some(entry) => out.push(entry),
                None => ctx.log.left_out(
                    &r.loc,
                    "track_script",
                    format!(
                        "{}: its script could not be carried over (see {})",
                        r.name, def.loc
                    ),
                ),
            }
        }
        out
    }

    pub(super) fn track_files_out(
        &self,
        defs: &Defs,
        why: Option<&str>,
        ctx: &mut Ctx<'_>,
    ) -> Vec<Value> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for r in &self.track_files {
            let Some(def) = defs.track_files.get(&r.name) else {
                ctx.log.note(
                    &r.loc,
                    "track_file",
                    format!(
                        "no track_file {} is defined, so keepalived ignores it; so does the import",
                        r.name
                    ),
                );
                continue;
            };
            if def.index > self.index {
                ctx.log.note(
                    &r.loc,
                    "track_file",
                    format!(
                        "track_file {} is defined after this instance (at {}); keepalived finds \
                         only files defined before, so it ignores it; so does the import",
                        r.name, def.loc
                    ),
                );
                continue;
            }
            let Some(path) = &def.path else { continue };
            if !seen.insert(path.clone()) {
                ctx.log.note(
                    &r.loc,
                    "track_file",
                    format!("{path} is tracked twice; written once"),
                );
                continue;
            }
            let mut weight = r.weight.unwrap_or(def.weight);
            let reverse = r.reverse.unwrap_or(def.reverse);
            if weight != 0
                && let Some(why) = why
            {
                if weight == 1 && r.weight.is_none() {
                    ctx.log.note(
                        &r.loc,
                        "track_file",
                        format!(
                            "{}: keepalived turns the default weight 1 of {why} into 0 (any \
                             non-zero value means FAULT): weight = 0",
                            r.name
                        ),
                    );
                    weight = 0;
                } else {
                    ctx.log.note(
                        &r.loc,
                        "track_file",
                        format!(
                            "{} weight {weight}: keepalived ignores a weighted file of {why}; so \
                             does the import",
                            r.name
                        ),
                    );
                    continue;
                }
            }
            let mut pairs = vec![
                ("path".to_owned(), Value::str(path)),
                ("weight".to_owned(), Value::Int(weight)),
            ];
            if reverse {
                pairs.push(("reverse".into(), Value::Bool(true)));
            }
            out.push(Value::Inline(pairs));
        }
        out
    }

    /// keepalived keeps a process's weight for sync group members and address owners
    /// (unlike a script's or a file's; an owner's priority simply never moves), and so
    /// does the import.
    pub(super) fn track_processes_out(&self, defs: &Defs, ctx: &mut Ctx<'_>) -> Vec<Value> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for r in &self.track_processes {
            let Some(def) = defs.track_processes.get(&r.name) else {
                ctx.log.note(
                    &r.loc,
                    "track_process",
                    format!(
                        "no vrrp_track_process {} is defined (or it was left out), so \
                         keepalived ignores it; so does the import",
                        r.name
                    ),
                );
                continue;
            };
            if def.index > self.index {
                ctx.log.note(
                    &r.loc,
                    "track_process",
                    format!(
                        "vrrp_track_process {} is defined after this instance (at {}); \
                         keepalived finds only processes defined before, so it ignores it; so \
                         does the import",
                        r.name, def.loc
                    ),
                );
                continue;
            }
            if !seen.insert(r.name.clone()) {
                ctx.log.note(
                    &r.loc,
                    "track_process",
                    format!(
                        "{} is tracked twice; keepalived ignores the second, so does the import",
                        r.name
                    ),
                );
                continue;
            }
            let weight = r.weight.unwrap_or(def.weight);
            let reverse = r.reverse.unwrap_or(def.reverse);
            if let Some(entry) = track::process_entry(def, weight, reverse) {
                out.push(entry);
            }
        }
        out
    }

    pub(super) fn garp(
        &self,
        globals: &Globals,
        defs: &Defs,
        interface: &str,
        v6: bool,
        ctx: &mut Ctx<'_>,
    ) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        // A global vrrp_garp_master_delay is reported once, with global_defs.
        if let Some((d, l)) = &self.garp_delay
            && !d.is_zero()
        {
            ctx.log.left_out(
                l,
                "garp_master_delay",
                format!(
                    "{}: vipd sends one burst of announcements on becoming master, not a \
                     second one after a delay (garp_refresh repeats them periodically)",
                    duration(*d)
                ),
            );
        }
        if let Some((n, l)) = self.garp_repeat.as_ref().or(globals.garp_repeat.as_ref()) {
            let n = match *n {
                0 => {
                    ctx.log.note(
                        l,
                        "garp_master_repeat",
                        "keepalived takes 0 as 1: garp_repeat = 1",
                    );
                    1
                }
                n if n > MAX_GARP_REPEAT => {
                    ctx.log.left_out(
                        l,
                        "garp_master_repeat",
                        format!("{n} is more than vipd's {MAX_GARP_REPEAT}: written as {MAX_GARP_REPEAT}"),
                    );
                    MAX_GARP_REPEAT
                }
                n => n,
            };
            out.push(("garp_repeat", Value::Int(i64::from(n))));
        }
        let group = defs.garp_groups.get(interface);
        let from_group = group.and_then(|g| {
            if v6 {
                g.gna_interval.clone()
            } else {
                g.garp_interval.clone()
            }
        });
        let interval = from_group.clone().or_else(|| {
            if v6 {
                globals.gna_interval.clone()
            } else {
                globals.garp_interval.clone()
            }
        });
        if let Some((d, l)) = interval {
            if from_group.is_some() && group.is_some_and(|g| g.shared) {
                ctx.log.note(
                    &l,
                    if v6 { "gna_interval" } else { "garp_interval" },
                    format!(
                        "keepalived paces all the interfaces of this garp_group together; vipd \
                         paces each instance's announcements on its own (instance {})",
                        self.source_name
                    ),
                );
            }
            let d = if d > MAX_GARP_INTERVAL {
                ctx.log.left_out(
                    &l,
                    if v6 { "gna_interval" } else { "garp_interval" },
                    format!("{} is more than vipd's 1s: written as 1s", duration(d)),
                );
                MAX_GARP_INTERVAL
            } else {
                d
            };
            out.push(("garp_interval", Value::duration(d)));
        }
        if let Some((d, l)) = self.garp_refresh.as_ref().or(globals.garp_refresh.as_ref()) {
            let secs = Duration::from_secs(d.as_secs());
            if secs.is_zero() {
                // Off, as vipd's default.
            } else if secs > MAX_GARP_REFRESH {
                ctx.log.left_out(
                    l,
                    "garp_master_refresh",
                    format!(
                        "{} is more than vipd's 1h: written as 3600s",
                        duration(secs)
                    ),
                );
                out.push(("garp_refresh", Value::str("3600s")));
            } else {
                out.push(("garp_refresh", Value::duration(secs)));
            }
        }
        if let Some((n, l)) = &self.garp_refresh_repeat
            && *n > 1
        {
            ctx.log.left_out(
                l,
                "garp_master_refresh_repeat",
                format!("{n}: vipd sends one announcement per VIP on each refresh"),
            );
        }
        out
    }
}
