#!/bin/sh
# conntrackd primary/backup hand-over for vipd (or keepalived) state hooks.
#
#   primary-backup.sh primary|backup|fault [CONNTRACKD_CONFIG]
#
# Runs the same sequence as the primary-backup.sh example shipped with conntrackd, so a
# keepalived setup carries over unchanged; the configuration file may be passed as the
# second argument (vipd runs hooks with a cleared environment, so no variable can carry
# it). Wire it to the sync group holding the LAN and WAN instances:
#
#   [sync_groups.nat]
#   notify_master = ["/usr/local/sbin/primary-backup.sh", "primary"]
#   notify_backup = ["/usr/local/sbin/primary-backup.sh", "backup"]
#   notify_fault  = ["/usr/local/sbin/primary-backup.sh", "fault"]
#
# See docs/recipes.md ("A stateful NAT gateway pair"). Exit status 0 unless the state is
# unknown or conntrackd cannot be started.

BIN=/usr/sbin/conntrackd
CONFIG=${2:-/etc/conntrackd/conntrackd.conf}

log() {
    if command -v logger >/dev/null 2>&1; then
        logger -t primary-backup "$*"
    else
        echo "primary-backup: $*" >&2
    fi
}

ctl() {
    "$BIN" -C "$CONFIG" "$@" || log "ERROR: conntrackd $* failed"
}

case "$1" in
primary)
    # The peer's connections become this router's: commit the external cache into the
    # kernel table, then start over from the kernel (flush both caches, resync the
    # internal cache) and send the backup everything in one bulk update.
    ctl -c
    ctl -f
    ctl -R
    ctl -B
    ;;
backup)
    # conntrackd must run here to receive the new primary's state.
    if ! "$BIN" -C "$CONFIG" -s >/dev/null 2>&1; then
        lock=$(sed -n 's/^[[:space:]]*LockFile[[:space:]]\{1,\}//p' "$CONFIG" | head -n 1)
        if [ -n "$lock" ] && [ -f "$lock" ]; then
            log "WARNING: conntrackd was not cleanly stopped; removing $lock"
            rm -f "$lock"
        fi
        if ! "$BIN" -C "$CONFIG" -d; then
            log "ERROR: cannot start conntrackd"
            exit 1
        fi
    fi
    # Shorten the kernel's timers so entries of connections now served by the peer
    # expire, then ask the new primary for a full resync.
    ctl -t
    ctl -n
    ;;
fault)
    ctl -t
    ;;
*)
    log "ERROR: unknown state $1"
    echo "usage: primary-backup.sh primary|backup|fault [CONNTRACKD_CONFIG]" >&2
    exit 1
    ;;
esac
exit 0
