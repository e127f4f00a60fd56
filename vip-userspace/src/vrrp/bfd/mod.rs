//! Bidirectional Forwarding Detection (RFC 5880, single hop per RFC 5881): one session's
//! state machine, pure like the VRRP machine — `now` and an input in, outputs out,
//! [`Session::poll_at`] for the next deadline.
//!
//! vipd runs BFD between VRRP routers so a backup notices a dead master in a few
//! milliseconds instead of Master_Down_Interval (docs/architecture.md, "BFD"). The
//! asynchronous mode with the Echo function: Control packets come from the daemon, at a
//! slow rate once the Echo function runs; Echo packets are sent by the daemon and looped
//! back by the far end's XDP program, so a busy or frozen daemon on the far end never
//! makes the session fail — only a broken path or host does.
//!
//! What follows RFC 5880 and what vipd chooses:
//! - §6.8.3: while the session is not Up, Control packets go out at most once a second;
//!   once Up, the configured rates are negotiated with a Poll Sequence, and a slower
//!   transmit rate or a faster detection only takes effect when the Final arrives.
//! - §6.8.4: the detection time is the remote Detect Mult × the agreed receive interval;
//!   the Echo function's detection time is the local Detect Mult × the echo interval.
//! - §6.8.7: transmission is jittered to 75–100 % of the interval (75–90 % with a Detect
//!   Mult of 1), from a generator seeded by the discriminator so replays are exact.
//! - Demand mode and authentication are not implemented: a packet with the A bit is
//!   discarded (as §6.8.6 requires without authentication configured), D is never set.
//! - §6.8.6: a packet with Your Discriminator zero is discarded unless it says Down or
//!   AdminDown, as the RFC requires; vipd also ignores one while its own session is past
//!   Down (a restarted neighbour is heard once our detection time has run out), so a
//!   packet that needs no knowledge of the session cannot take an established one down.
//! - Until the session is Up, the remote's Desired Min TX and Required Min RX count as at
//!   most [`UNTIL_UP_MAX_INTERVAL`] and its Detect Mult as at most [`UNTIL_UP_MAX_MULT`]:
//!   §6.8.3 has every system send at one packet a second then, so only a broken or
//!   hostile neighbour announces more, and taken as sent it would hold a session in Init
//!   for hours. Once Up (which takes packets naming our random discriminator), the
//!   remote's values count as sent.
//! - The Echo function's round trip is measured from the time the echo left (the daemon
//!   reports it, [`Session::echo_sent`]) to the kernel's receive timestamp of its return
//!   (`Input::Echo::arrived`), so it is the path's, not the time the event loop took to
//!   get to it.

pub mod packet;

use std::time::Duration;

use packet::{BfdState, Control, Diag, Echo};

use super::timing::Time;

/// The RFC's floor for the transmit interval while not Up (§6.8.3).
pub const SLOW: Duration = Duration::from_secs(1);
/// The longest Desired Min TX / Required Min RX of the remote's taken as sent until the
/// session is Up: twice the RFC's one packet a second.
pub const UNTIL_UP_MAX_INTERVAL: Duration = Duration::from_secs(2);
/// The largest remote Detect Mult taken as sent until the session is Up, so a session
/// waits at most 2 s × 5 = 10 s in Init for a neighbour that fell silent.
pub const UNTIL_UP_MAX_MULT: u8 = 5;

/// What a session is configured to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// With the Echo function: the echo interval. Without: the Control packet interval,
    /// sent and wanted.
    pub interval: Duration,
    pub detect_mult: u8,
    pub echo: bool,
    /// Control packet interval while the Echo function runs.
    pub control_interval: Duration,
}

impl Params {
    /// Our Desired Min TX and Required Min RX once Up.
    fn up_rates(&self) -> Duration {
        if self.echo {
            self.control_interval.max(self.interval)
        } else {
            self.interval
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A Control packet for this session (already decoded and found ours).
    Control(Control),
    /// One of our Echo packets came back, reaching this host at `arrived` (the kernel's
    /// receive timestamp; never later than the `now` it is handled at). An echo whose
    /// discriminator or nonce is not this session's is ignored.
    Echo {
        echo: Echo,
        arrived: Time,
    },
    /// Administrative control (configuration removed, instance stopping).
    AdminDown,
    AdminUp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    SendControl(Control),
    SendEcho(Echo),
    Changed {
        from: BfdState,
        to: BfdState,
        diag: Diag,
    },
    /// The echo path looks down (the Echo function's detection rule fired) but the
    /// session stays Up for [`Session::confirm_window`]: one of our echoes coming back
    /// meanwhile ([`Output::EchoRestored`]) shows the path was slow, not gone; none, and
    /// the session goes down (diagnostic 2).
    EchoSuspect,
    /// An echo came back while the path was suspect.
    EchoRestored,
}

#[derive(Debug, Clone)]
pub struct Session {
    params: Params,
    local_disc: u32,
    /// Random, drawn when the session opened: only echoes that carry it are ours.
    nonce: u64,
    state: BfdState,
    diag: Diag,
    remote_state: BfdState,
    remote_disc: u32,
    remote_min_rx: Duration,
    remote_desired_tx: Duration,
    /// The remote's previous Desired Min TX: a remote that announces a faster rate may
    /// send its next packet at the old one (it only has to speed up once its Poll
    /// Sequence ends, and bfdd does so), so the detection timer armed by that packet
    /// still allows the slower interval.
    remote_desired_tx_before: Duration,
    remote_mult: u8,
    remote_echo_rx: Duration,
    /// What our packets say now.
    desired_tx: Duration,
    required_rx: Duration,
    /// Used for detection until a Poll Sequence confirms `required_rx`.
    active_rx: Duration,
    /// Used for transmission until a Poll Sequence confirms a slower `desired_tx`.
    active_tx: Duration,
    polling: bool,
    detect_at: Option<Time>,
    next_tx: Option<Time>,
    echo_next: Option<Time>,
    echo_detect_at: Option<Time>,
    echo_seq: u32,
    /// Send time of the oldest echo sent after the latest one that came back: the
    /// evidence. A path is declared down only when an echo that had `multiplier` − 1
    /// echo intervals to return has not, so an end that could not send (its daemon
    /// descheduled under load) does not mistake its own silence for the path's, and an
    /// echo held up on a loaded path for less than that is no failure. On a dead path
    /// this costs nothing: the first unanswered echo left at most one interval after the
    /// last one that came back.
    echo_unanswered_since: Option<Time>,
    /// While the echo path is suspect: when the session goes down unless an echo comes
    /// back first.
    echo_suspect_until: Option<Time>,
    /// When the path or this host last stalled (see [`Session::stalled_lately`]).
    stall_seen: Option<Time>,
    rng: u64,
    last_down: Option<(Time, Diag)>,
    /// Whether this end sends Echo packets (`params.echo` unless [`Session::set_echo`]
    /// turned it off). Looping the far end's echoes back is the data plane's job and is
    /// offered whenever `params.echo` is set.
    echo_tx: bool,
    /// Send times of the latest echoes, by sequence number, for their round trip.
    echo_sent: [(u32, Option<Time>); ECHO_RING],
    /// Worst echo round trip in the current and the previous [`RTT_WINDOW`].
    rtt_worst: (Duration, Duration),
    rtt_window_start: Time,
}

/// Echoes remembered for their round trip: more than any detection window holds.
const ECHO_RING: usize = 32;
/// How long a slow round trip is remembered (see [`Session::recent_echo_rtt`]).
pub const RTT_WINDOW: Duration = Duration::from_secs(1);
/// How long a stall is remembered (see [`Session::stalled_lately`]).
pub const STALL_MEMORY: Duration = Duration::from_secs(60);

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u128::from(u32::MAX)) as u32
}

fn from_micros(us: u32) -> Duration {
    Duration::from_micros(u64::from(us))
}

impl Session {
    /// A session in Down, sending its first Control packet at `now`. `local_disc` must be
    /// unique among the node's sessions and non-zero; it and `nonce` should be random
    /// (RFC 5880 §6.8.1), so nobody who has not seen our packets can name the session or
    /// forge its echoes.
    pub fn new(params: Params, local_disc: u32, nonce: u64, now: Time) -> Session {
        let slow = SLOW.max(params.up_rates());
        Session {
            params,
            local_disc,
            nonce,
            state: BfdState::Down,
            diag: Diag::None,
            remote_state: BfdState::Down,
            remote_disc: 0,
            remote_min_rx: Duration::from_micros(1),
            remote_desired_tx: Duration::ZERO,
            remote_desired_tx_before: Duration::ZERO,
            remote_mult: 0,
            remote_echo_rx: Duration::ZERO,
            desired_tx: slow,
            required_rx: params.up_rates(),
            active_rx: params.up_rates(),
            active_tx: slow,
            polling: false,
            detect_at: None,
            next_tx: Some(now),
            echo_next: None,
            echo_detect_at: None,
            echo_seq: 0,
            echo_unanswered_since: None,
            echo_suspect_until: None,
            stall_seen: None,
            rng: u64::from(local_disc) | 1,
            last_down: None,
            echo_tx: params.echo,
            echo_sent: [(0, None); ECHO_RING],
            rtt_worst: (Duration::ZERO, Duration::ZERO),
            rtt_window_start: now,
        }
    }

    /// The worst echo round trip of the last one to two seconds: how long this path takes
    /// when it is slow (a loaded host defers packet processing), which is how long a
    /// "down" is worth double-checking for.
    pub fn recent_echo_rtt(&self) -> Duration {
        self.rtt_worst.0.max(self.rtt_worst.1)
    }

    /// The Echo function's detection time as configured (it applies once echoes run).
    pub fn echo_detection_limit(&self) -> Duration {
        self.echo_interval() * u32::from(self.params.detect_mult)
    }

    /// How long the echo path stays suspect before the session goes down: two echo
    /// detection times, longer than any probe a backup runs meanwhile (its skew is under
    /// one echo interval, its window at most one detection time), so an echo held up on
    /// the path until then still clears it.
    pub fn confirm_window(&self) -> Duration {
        self.echo_detection_limit() * 2
    }

    /// Whether the echo path is suspect right now.
    pub fn echo_suspect(&self) -> bool {
        self.echo_suspect_until.is_some()
    }

    /// Whether the path or this host stalled within [`STALL_MEMORY`] of `now`: an echo
    /// came back `multiplier` − 1 echo intervals or more after it left (by the kernel's
    /// receive timestamp), the daemon got to one only that long after the kernel had it,
    /// or a suspect path turned out to be slow — stalls long enough to make a working
    /// path look down. Such a host can hold up a probe's answer as long as the echoes, so
    /// no quick probe can tell the next stall from a failure.
    pub fn stalled_lately(&self, now: Time) -> bool {
        self.stalled_ago(now).is_some()
    }

    /// How long ago the last stall was, while it is remembered (see
    /// [`Session::stalled_lately`]): until then a failed echo path is not probed quickly
    /// and a backup takes over in VRRP's own time.
    pub fn stalled_ago(&self, now: Time) -> Option<Duration> {
        self.stall_seen
            .map(|t| now.saturating_duration_since(t))
            .filter(|ago| *ago < STALL_MEMORY)
    }

    fn record_rtt(&mut self, now: Time, seq: u32) {
        let Some(sent) = self
            .echo_sent
            .iter()
            .find(|(s, _)| *s == seq)
            .and_then(|(_, t)| *t)
        else {
            return;
        };
        if now.saturating_duration_since(self.rtt_window_start) >= RTT_WINDOW {
            self.rtt_worst = (Duration::ZERO, self.rtt_worst.0);
            self.rtt_window_start = now;
        }
        let rtt = now.saturating_duration_since(sent);
        if rtt >= self.echo_grace() {
            self.stall_seen = Some(now);
        }
        self.rtt_worst.0 = self.rtt_worst.0.max(rtt);
        // Everything up to `seq` is answered; what is outstanding starts after it.
        self.echo_unanswered_since = if seq == self.echo_seq {
            None
        } else {
            let next = seq.wrapping_add(1);
            self.echo_sent
                .iter()
                .find(|(s, _)| *s == next)
                .and_then(|(_, t)| *t)
        };
    }

    /// When echo `seq` really left (the daemon's clock right before it handed the frame to
    /// the kernel), if later than the `now` it was decided at: its round trip counts from
    /// there.
    pub fn echo_sent(&mut self, seq: u32, at: Time) {
        let Some(slot) = self.echo_sent.iter_mut().find(|(s, _)| *s == seq) else {
            return;
        };
        let Some(decided) = slot.1 else { return };
        if at <= decided {
            return;
        }
        slot.1 = Some(at);
        if self.echo_unanswered_since == Some(decided) {
            self.echo_unanswered_since = Some(at);
        }
    }

    /// Starts or stops sending Echo packets, the detection only this end needs: a session
    /// kept for the far end's sake (a master answering its backups) leaves them off.
    pub fn set_echo(&mut self, now: Time, on: bool) {
        let on = on && self.params.echo;
        if on == self.echo_tx {
            return;
        }
        self.echo_tx = on;
        if !on {
            self.echo_next = None;
            self.echo_detect_at = None;
            self.echo_suspect_until = None;
        } else if self.state == BfdState::Up && !self.remote_echo_rx.is_zero() {
            self.start_echo(now);
        }
    }

    /// Takes on new settings (a reload) without leaving the current state. Once Up the
    /// new rates are negotiated as at the start (§6.8.3): a Poll goes out at once; a
    /// faster transmission applies now, a slower one and a new detection time once the
    /// remote's Final confirms them. The echo interval and multiplier apply from the next
    /// echo; the session stays Up throughout.
    pub fn retune(&mut self, now: Time, params: Params) {
        if params == self.params {
            return;
        }
        self.params = params;
        if !params.echo {
            self.echo_tx = false;
            self.echo_next = None;
            self.echo_detect_at = None;
        }
        if self.state == BfdState::Up {
            self.desired_tx = params.up_rates();
            self.required_rx = params.up_rates();
            self.active_tx = self.active_tx.min(self.desired_tx);
            // A faster detection waits for the Final; a slower one is safe at once.
            self.active_rx = self.active_rx.max(self.required_rx);
            self.polling = true;
            self.next_tx = Some(now);
            if let Some(t) = self.echo_detect_at {
                // Never sooner than the settings it was armed with allowed.
                self.echo_detect_at =
                    Some(t.max(now + self.echo_interval() * u32::from(params.detect_mult)));
            }
        } else {
            let slow = SLOW.max(params.up_rates());
            self.desired_tx = slow;
            self.active_tx = slow;
            self.required_rx = params.up_rates();
            self.active_rx = params.up_rates();
        }
    }

    pub fn sends_echo(&self) -> bool {
        self.echo_tx
    }

    pub fn state(&self) -> BfdState {
        self.state
    }

    pub fn diag(&self) -> Diag {
        self.diag
    }

    pub fn local_disc(&self) -> u32 {
        self.local_disc
    }

    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    pub fn remote_disc(&self) -> u32 {
        self.remote_disc
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// When and why the session last went down from Up.
    pub fn last_down(&self) -> Option<(Time, Diag)> {
        self.last_down
    }

    /// The time without Control packets after which the session goes down.
    pub fn detection_time(&self) -> Duration {
        self.active_rx.max(self.remote_desired_tx) * u32::from(self.remote_mult.max(1))
    }

    /// The Echo function's detection time, while it runs.
    pub fn echo_detection_time(&self) -> Option<Duration> {
        self.echo_next
            .map(|_| self.echo_interval() * u32::from(self.params.detect_mult))
    }

    fn echo_interval(&self) -> Duration {
        self.params.interval.max(self.remote_echo_rx)
    }

    /// How long an echo may be out before its absence is evidence: `multiplier` − 1
    /// intervals (one, with a multiplier of 1).
    fn echo_grace(&self) -> Duration {
        self.echo_interval() * u32::from(self.params.detect_mult.max(2) - 1)
    }

    pub fn poll_at(&self) -> Option<Time> {
        [
            self.detect_at,
            self.next_tx,
            self.echo_next,
            self.echo_detect_at,
            self.echo_suspect_until,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn control(&self, final_: bool) -> Control {
        Control {
            diag: self.diag,
            state: self.state,
            poll: self.polling && !final_,
            final_,
            cpi: false,
            demand: false,
            detect_mult: self.params.detect_mult,
            my_disc: self.local_disc,
            your_disc: self.remote_disc,
            desired_min_tx: micros(self.desired_tx),
            required_min_rx: micros(self.required_rx),
            required_min_echo_rx: if self.params.echo {
                micros(self.params.interval)
            } else {
                0
            },
        }
    }

    fn jitter(&mut self, interval: Duration) -> Duration {
        // xorshift64*: the only randomness BFD needs, deterministic per session.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
        let span = if self.params.detect_mult == 1 { 15 } else { 25 };
        let percent = 75 + (r % (span + 1)) as u32;
        interval * percent / 100
    }

    fn tx_interval(&self) -> Duration {
        self.active_tx.max(self.remote_min_rx)
    }

    pub fn handle(&mut self, now: Time, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Control(c) => self.receive(now, c, &mut out),
            Input::Echo { echo, arrived } => {
                let ours = echo.disc == self.local_disc && echo.nonce == self.nonce;
                if ours && self.echo_next.is_some() {
                    let arrived = arrived.min(now);
                    let late = now.saturating_duration_since(arrived) >= self.echo_grace();
                    if self.echo_suspect_until.take().is_some() {
                        out.push(Output::EchoRestored);
                        self.stall_seen = Some(now);
                    } else if late {
                        self.stall_seen = Some(now);
                    }
                    self.record_rtt(arrived, echo.seq);
                    self.echo_detect_at =
                        Some(arrived + self.echo_interval() * u32::from(self.params.detect_mult));
                }
            }
            Input::AdminDown => {
                if self.state != BfdState::AdminDown {
                    self.go(
                        now,
                        BfdState::AdminDown,
                        Diag::AdministrativelyDown,
                        &mut out,
                    );
                }
            }
            Input::AdminUp => {
                if self.state == BfdState::AdminDown {
                    self.go(now, BfdState::Down, Diag::None, &mut out);
                }
            }
        }
        out
    }

    /// RFC 5880 §6.8.6, after the session-independent checks of `Control::decode`.
    fn receive(&mut self, now: Time, c: Control, out: &mut Vec<Output>) {
        if c.your_disc == 0
            && (!matches!(c.state, BfdState::Down | BfdState::AdminDown)
                || !matches!(self.state, BfdState::Down | BfdState::AdminDown))
        {
            return;
        }
        if c.your_disc != 0 && c.your_disc != self.local_disc {
            return;
        }
        // Until Up, what a neighbour announces is held within what a working one sends.
        let (max_interval, max_mult) = if self.state == BfdState::Up {
            (Duration::MAX, u8::MAX)
        } else {
            (UNTIL_UP_MAX_INTERVAL, UNTIL_UP_MAX_MULT)
        };
        self.remote_disc = c.my_disc;
        self.remote_state = c.state;
        self.remote_min_rx = from_micros(c.required_min_rx)
            .max(Duration::from_micros(1))
            .min(max_interval);
        let previous = self.remote_desired_tx;
        self.remote_desired_tx = from_micros(c.desired_min_tx).min(max_interval);
        // A remote in a Poll Sequence may keep sending at the rate in force before it
        // began until our Final reaches it (bfdd does, and repeats its Poll at that rate),
        // so the slower rate stays allowed until it stops polling.
        self.remote_desired_tx_before = if c.poll {
            self.remote_desired_tx_before.max(previous)
        } else {
            previous
        };
        self.remote_mult = c.detect_mult.min(max_mult);
        self.remote_echo_rx = from_micros(c.required_min_echo_rx);
        if c.final_ && self.polling {
            self.polling = false;
            self.active_rx = self.required_rx;
            self.active_tx = self.desired_tx;
        }
        if self.state == BfdState::AdminDown {
            return;
        }
        match (self.state, c.state) {
            (s, BfdState::AdminDown) if s != BfdState::Down => {
                self.go(now, BfdState::Down, Diag::NeighborSignaledDown, out)
            }
            (BfdState::Down, BfdState::Down) => self.go(now, BfdState::Init, Diag::None, out),
            (BfdState::Down, BfdState::Init) | (BfdState::Init, BfdState::Init | BfdState::Up) => {
                self.go(now, BfdState::Up, Diag::None, out)
            }
            (BfdState::Up, BfdState::Down) => {
                self.go(now, BfdState::Down, Diag::NeighborSignaledDown, out)
            }
            _ => {}
        }
        if matches!(self.state, BfdState::Init | BfdState::Up) {
            let grace = self.remote_desired_tx_before * u32::from(self.remote_mult.max(1));
            self.detect_at = Some(now + self.detection_time().max(grace));
        }
        // A Poll is answered at once with a Final (§6.8.7).
        if c.poll {
            out.push(Output::SendControl(self.control(true)));
        }
        // The remote may now accept packets faster than the interval the next periodic one
        // was scheduled with (bfdd asks for 1 s in Init, then 10 ms once Up): bring it in,
        // or the remote's detection time runs out before our next packet leaves.
        if let Some(t) = self.next_tx {
            let sooner = now + self.tx_interval();
            if sooner < t {
                self.next_tx = Some(now + self.jitter(self.tx_interval()));
            }
        }
        if self.remote_echo_rx.is_zero() {
            self.echo_next = None;
            self.echo_detect_at = None;
            self.echo_suspect_until = None;
        } else if self.state == BfdState::Up && self.echo_tx && self.echo_next.is_none() {
            self.start_echo(now);
        }
    }

    fn start_echo(&mut self, now: Time) {
        self.echo_next = Some(now);
        self.echo_unanswered_since = None;
        // The first echo gets a whole detection time to come back.
        self.echo_detect_at = Some(now + self.echo_interval() * u32::from(self.params.detect_mult));
    }

    fn go(&mut self, now: Time, to: BfdState, diag: Diag, out: &mut Vec<Output>) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.diag = diag;
        if from == BfdState::Up {
            self.last_down = Some((now, diag));
        }
        let slow = SLOW.max(self.params.up_rates());
        // The peer hears of every change at once, not a periodic interval later.
        self.next_tx = Some(now);
        match to {
            BfdState::Up => {
                // Negotiate the configured rates (§6.8.3): faster transmission at once,
                // the new detection time once the remote confirms with a Final.
                self.desired_tx = self.params.up_rates();
                self.required_rx = self.params.up_rates();
                self.active_tx = self.active_tx.min(self.desired_tx);
                self.polling = true;
                if self.echo_tx && !self.remote_echo_rx.is_zero() {
                    self.start_echo(now);
                }
            }
            _ => {
                self.desired_tx = slow;
                self.active_tx = slow;
                self.active_rx = self.required_rx;
                self.polling = false;
                self.echo_next = None;
                self.echo_detect_at = None;
                self.echo_suspect_until = None;
                if to != BfdState::Init {
                    self.detect_at = None;
                }
                if to == BfdState::Down && from != BfdState::AdminDown && diag != Diag::None {
                    // §6.8.1: a session that timed out forgets the remote's discriminator.
                    if diag == Diag::ControlDetectionTimeExpired {
                        self.remote_disc = 0;
                    }
                }
            }
        }
        out.push(Output::Changed { from, to, diag });
    }

    pub fn poll(&mut self, now: Time) -> Vec<Output> {
        let mut out = Vec::new();
        if self.detect_at.is_some_and(|t| t <= now) {
            self.detect_at = None;
            if matches!(self.state, BfdState::Init | BfdState::Up) {
                self.go(
                    now,
                    BfdState::Down,
                    Diag::ControlDetectionTimeExpired,
                    &mut out,
                );
            }
        }
        if self.echo_suspect_until.is_some_and(|t| t <= now) {
            // Suspect for the whole confirmation window and nothing came back: down.
            self.echo_suspect_until = None;
            if self.state == BfdState::Up {
                self.go(now, BfdState::Down, Diag::EchoFunctionFailed, &mut out);
            }
        }
        if self.echo_detect_at.is_some_and(|t| t <= now) {
            self.echo_detect_at = None;
            let grace = self.echo_grace();
            match self.echo_unanswered_since {
                // No echo came back for a detection time, and one that had the grace to
                // do so is still out: the path looks down. Echoes go on; one coming back
                // within the confirmation window clears it.
                Some(t) if t + grace <= now => {
                    if self.state == BfdState::Up {
                        self.echo_suspect_until = Some(now + self.confirm_window());
                        out.push(Output::EchoSuspect);
                    }
                }
                // This end sent nothing for a while (or only just now): no evidence
                // yet; decide once its oldest outstanding echo has had its grace.
                Some(t) => self.echo_detect_at = Some(t + grace),
                None => self.echo_detect_at = Some(now + grace),
            }
        }
        if self.next_tx.is_some_and(|t| t <= now) {
            out.push(Output::SendControl(self.control(false)));
            let interval = self.tx_interval();
            self.next_tx = Some(now + self.jitter(interval));
        }
        if let Some(t) = self.echo_next
            && t <= now
        {
            self.echo_seq = self.echo_seq.wrapping_add(1);
            self.echo_sent[self.echo_seq as usize % ECHO_RING] = (self.echo_seq, Some(now));
            self.echo_unanswered_since.get_or_insert(now);
            out.push(Output::SendEcho(Echo {
                disc: self.local_disc,
                seq: self.echo_seq,
                nonce: self.nonce,
            }));
            self.echo_next = Some(now + self.echo_interval());
        }
        out
    }
}

#[cfg(test)]
mod tests;
