//! The reconnect policy: when to try a lost link again, and when to stop trying.
//!
//! [`Reconnect`] is the public setting; [`Backoff`] is one connection's progress through it.
//! Both are pure: the time comes from the caller and the randomness from a small generator
//! seeded once per connection, so tests can check every delay against the policy's bounds.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How a connection whose link is lost reconnects: exponential backoff with jitter, a limit,
/// and what happens to the frames of the lost link. Set with
/// [`Config::reconnect`](crate::Config::reconnect); without it (the default) a lost link ends
/// the connection.
///
/// # Why it is off by default
///
/// tidegate does not know the application's protocol, so it cannot know whether sending the
/// frames of a lost link again, on a new link, suits it: a protocol with a session (a login,
/// a selected database, a subscription) needs that session on the new link first, and a
/// protocol without idempotent frames may apply a frame twice if it was delivered before the
/// link broke. Turning reconnection on is the application's statement that it can live with
/// this, and that it will read what the connection reports as *possibly delivered*.
///
/// # What turning it on promises
///
/// When the link fails after it was up (a reset, an I/O error, the peer closing while frames
/// are written), every handle keeps working and the connection tries again after a delay.
/// Meanwhile the buffer keeps its bound and its rules: sends are accepted while there is room,
/// then wait in line with their deadlines (or, with [`Reconnect::fail_fast`], fail at once
/// with their frame). Each frame of the lost link gets one fate:
///
/// 1. **Never written**: sent first on the new link, in its order, before any newer frame.
/// 2. **Partly written**: sent again whole if the peer cannot have acted on a prefix, that is
///    with length-delimited [framing](crate::Config::framing) or when the application
///    declares its frames [atomic](Reconnect::atomic_frames); otherwise *possibly delivered*
///    (a line protocol may have applied part of it). Never resumed in the middle.
/// 3. **Written**: *acknowledged* if every byte of it is within what the peer acknowledged,
///    where the link can tell ([`Link::bytes_acked`](crate::transport::Link::bytes_acked):
///    TCP and TLS on Linux), else *possibly delivered*. Counted in
///    [`Stats::frames_acknowledged`](crate::Stats::frames_acknowledged) and
///    [`Stats::frames_possibly_delivered`](crate::Stats::frames_possibly_delivered), and not
///    sent again, unless [`at_least_once`](Reconnect::at_least_once) asks for it.
///
/// On a link that can tell what its peer acknowledged, every frame the link writes is kept
/// until its last byte is acknowledged, and counts against the capacity until then
/// ([`Stats::awaiting_ack`](crate::Stats::awaiting_ack)): that is what lets a lost link's
/// possibly delivered frames come back to the application whole, in the
/// [`Disconnected`](crate::ConnectionEvent::Disconnected) event
/// ([`PossiblyDelivered::written_frames`](crate::PossiblyDelivered::written_frames)), or be
/// sent again. The bound holds for them as for the rest; the cost is that the bytes on their
/// way to the peer (up to one round trip's worth) take room that new frames would have had.
///
/// The first link is not retried: if it fails on every endpoint of the connection (one
/// attempt each, see [`Config::fallback`](crate::Config::fallback)), the connection ends as
/// without a policy, so a wrong address is reported at once. A connection being closed or shut down is
/// not reconnected either. Permanent failures end the connection at once: a TLS certificate
/// the connection refuses, or a transport whose open fails with
/// [`PermissionDenied`](std::io::ErrorKind::PermissionDenied) or
/// [`InvalidInput`](std::io::ErrorKind::InvalidInput) (the way a plugin says "do not retry").
///
/// # Delays
///
/// The n-th attempt of an outage (from 1) waits `d · (1 + jitter · u)` after the failure
/// before it, where `d = min(initial · factorⁿ⁻¹, max)` and `u` is uniform in `[-1, 1]`. The
/// defaults: the first attempt after 100 ms (a restarted broker on the same network is
/// usually back within tens of milliseconds, and a lost link is often one bad socket), then
/// doubling up to 10 s, so that a broker that is down for minutes sees one attempt every few
/// seconds from each client and not a storm; 20 % jitter, so many clients that lost the same
/// broker at the same moment do not come back in step. A link that stayed up for 30 s resets
/// the sequence: its next outage starts at `initial` again. There is no limit by default:
/// the connection keeps trying until it is closed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate::{Config, Reconnect};
///
/// let policy = Reconnect::new()
///     .initial_delay(Duration::from_millis(50))
///     .max_delay(Duration::from_secs(5))
///     .max_attempts(20);
/// let config = Config::new().reconnect(policy.clone());
/// assert_eq!(config.reconnect_policy(), Some(&policy));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Reconnect {
    initial: Duration,
    max: Duration,
    /// Invariant: `factor >= 1`.
    factor: f64,
    /// Invariant: `0 <= jitter <= 1`.
    jitter: f64,
    stable_after: Duration,
    max_attempts: Option<u32>,
    max_outage: Option<Duration>,
    atomic_frames: bool,
    at_least_once: bool,
    fail_fast: bool,
}

impl Default for Reconnect {
    fn default() -> Self {
        Self::new()
    }
}

impl Reconnect {
    /// The default policy: 100 ms, doubling up to 10 s, 20 % jitter, reset after 30 s up, no
    /// limit, senders wait during an outage.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Reconnect;
    ///
    /// assert_eq!(Reconnect::new().initial_delay_duration(), Duration::from_millis(100));
    /// ```
    pub fn new() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            factor: 2.0,
            jitter: 0.2,
            stable_after: Duration::from_secs(30),
            max_attempts: None,
            max_outage: None,
            atomic_frames: false,
            at_least_once: false,
            fail_fast: false,
        }
    }

    /// Sets the delay before the first attempt of an outage.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Reconnect;
    ///
    /// let policy = Reconnect::new().initial_delay(Duration::from_millis(10));
    /// assert_eq!(policy.initial_delay_duration(), Duration::from_millis(10));
    /// ```
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial = delay;
        self
    }

    /// Sets the longest delay between two attempts, before jitter.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Reconnect;
    ///
    /// let policy = Reconnect::new().max_delay(Duration::from_secs(1));
    /// assert_eq!(policy.max_delay_duration(), Duration::from_secs(1));
    /// ```
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max = delay;
        self
    }

    /// Sets how much each delay grows over the one before; values below 1 count as 1 (a
    /// constant delay), and a value that is not a number as 2.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Reconnect;
    ///
    /// assert_eq!(Reconnect::new().factor(1.5).factor_value(), 1.5);
    /// assert_eq!(Reconnect::new().factor(0.5).factor_value(), 1.0);
    /// ```
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = if factor.is_nan() { 2.0 } else { factor.max(1.0) };
        self
    }

    /// Sets the jitter: each delay is moved by up to this fraction of it, up or down. Clamped
    /// to `0..=1`; a value that is not a number counts as 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Reconnect;
    ///
    /// assert_eq!(Reconnect::new().jitter(0.0).jitter_value(), 0.0);
    /// assert_eq!(Reconnect::new().jitter(3.0).jitter_value(), 1.0);
    /// ```
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_nan() { 0.0 } else { jitter.clamp(0.0, 1.0) };
        self
    }

    /// Sets how long a link must stay up for its next outage to start again from the initial
    /// delay.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Reconnect;
    ///
    /// let policy = Reconnect::new().stable_after(Duration::from_secs(5));
    /// assert_eq!(policy.stable_after_duration(), Duration::from_secs(5));
    /// ```
    pub fn stable_after(mut self, up: Duration) -> Self {
        self.stable_after = up;
        self
    }

    /// Gives up after `attempts` failed attempts in one outage: the connection then ends with
    /// the last attempt's cause, every waiting sender gets its frame back, and the frames in
    /// the buffer come back in the close report.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Reconnect;
    ///
    /// assert_eq!(Reconnect::new().max_attempts(3).max_attempts_count(), Some(3));
    /// ```
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// Gives up once an outage has lasted `outage` and an attempt fails, as
    /// [`Reconnect::max_attempts`] does.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Reconnect;
    ///
    /// let policy = Reconnect::new().max_outage(Duration::from_secs(60));
    /// assert_eq!(policy.max_outage_duration(), Some(Duration::from_secs(60)));
    /// ```
    pub fn max_outage(mut self, outage: Duration) -> Self {
        self.max_outage = Some(outage);
        self
    }

    /// Declares that the peer never acts on part of a frame, so a frame the lost link wrote
    /// only in part is sent again whole instead of being reported possibly delivered.
    /// Length-delimited framing implies it. Off by default.
    ///
    /// While it holds, the written part of a frame still being written keeps its room in the
    /// buffer until the frame's last byte is written, so the frame can always be sent again
    /// within the bound.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Reconnect;
    ///
    /// assert!(Reconnect::new().atomic_frames(true).has_atomic_frames());
    /// ```
    pub fn atomic_frames(mut self, atomic: bool) -> Self {
        self.atomic_frames = atomic;
        self
    }

    /// Sends again, first on the new link, the frames the lost link wrote whole that its
    /// peer did not acknowledge, and a frame it cut (as with
    /// [`atomic_frames`](Reconnect::atomic_frames), which this implies): at-least-once, as
    /// far as TCP can tell. Off by default.
    ///
    /// Without it, those frames are *possibly delivered*: reported in the
    /// [`Disconnected`](crate::ConnectionEvent::Disconnected) event and not sent again. With
    /// it, every frame is acknowledged by the peer's TCP on some link, or handed back at the
    /// end. Two things it cannot promise, and why it is not the default:
    ///
    /// - **Duplicates.** The acknowledged count lags what the peer received: an
    ///   acknowledgement may be delayed or lost, and a reset says nothing of what was read.
    ///   A frame the peer took but had not acknowledged goes again, so the peer may get it
    ///   twice. Use it when the protocol's frames are idempotent or deduplicated (a sequence
    ///   number, an idempotency key).
    /// - **Processing.** An acknowledged frame reached the peer's kernel, not its
    ///   application: a peer that dies before reading it loses it, and it is not sent again
    ///   (it counts in [`Stats::frames_acknowledged`](crate::Stats::frames_acknowledged)).
    ///   Only the protocol's own acknowledgements tell what was processed.
    ///
    /// It needs a link that counts what its peer acknowledged (TCP and TLS on Linux, `mem`).
    /// On one that cannot tell (Unix sockets, other systems), written frames are not kept,
    /// and are possibly delivered as without this setting.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, Reconnect};
    ///
    /// let config = Config::new().reconnect(Reconnect::new().at_least_once(true));
    /// assert!(config.reconnect_policy().unwrap().is_at_least_once());
    /// ```
    pub fn at_least_once(mut self, on: bool) -> Self {
        self.at_least_once = on;
        self
    }

    /// Makes sends fail at once with
    /// [`SendError::Disconnected`](crate::SendError::Disconnected), carrying their frame,
    /// while the link is down, instead of being accepted while there is room and waiting
    /// after that. Senders already waiting when the link is lost get their frames back too;
    /// the frames already in the buffer are still sent on the new link. Off by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Reconnect;
    ///
    /// assert!(Reconnect::new().fail_fast(true).fails_fast());
    /// ```
    pub fn fail_fast(mut self, on: bool) -> Self {
        self.fail_fast = on;
        self
    }

    /// The delay before the first attempt of an outage.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let policy = tidegate::Reconnect::new();
    /// assert_eq!(policy.initial_delay_duration(), Duration::from_millis(100));
    /// ```
    pub fn initial_delay_duration(&self) -> Duration {
        self.initial
    }

    /// The longest delay, before jitter.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// assert_eq!(tidegate::Reconnect::new().max_delay_duration(), Duration::from_secs(10));
    /// ```
    pub fn max_delay_duration(&self) -> Duration {
        self.max
    }

    /// How much each delay grows over the one before.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tidegate::Reconnect::new().factor_value(), 2.0);
    /// ```
    pub fn factor_value(&self) -> f64 {
        self.factor
    }

    /// The fraction by which a delay may move up or down.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tidegate::Reconnect::new().jitter_value(), 0.2);
    /// ```
    pub fn jitter_value(&self) -> f64 {
        self.jitter
    }

    /// How long a link must stay up to reset the delays.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// assert_eq!(tidegate::Reconnect::new().stable_after_duration(), Duration::from_secs(30));
    /// ```
    pub fn stable_after_duration(&self) -> Duration {
        self.stable_after
    }

    /// The most failed attempts in one outage, if limited.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tidegate::Reconnect::new().max_attempts_count(), None);
    /// ```
    pub fn max_attempts_count(&self) -> Option<u32> {
        self.max_attempts
    }

    /// The longest outage, if limited.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tidegate::Reconnect::new().max_outage_duration(), None);
    /// ```
    pub fn max_outage_duration(&self) -> Option<Duration> {
        self.max_outage
    }

    /// Whether frames are declared atomic.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!tidegate::Reconnect::new().has_atomic_frames());
    /// ```
    pub fn has_atomic_frames(&self) -> bool {
        self.atomic_frames
    }

    /// Whether the frames of a lost link that its peer did not acknowledge are sent again.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!tidegate::Reconnect::new().is_at_least_once());
    /// ```
    pub fn is_at_least_once(&self) -> bool {
        self.at_least_once
    }

    /// Whether sends fail at once while the link is down.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!tidegate::Reconnect::new().fails_fast());
    /// ```
    pub fn fails_fast(&self) -> bool {
        self.fail_fast
    }

    /// The delay before attempt `attempt` (from 1) of an outage, before jitter.
    pub(crate) fn base_delay(&self, attempt: u32) -> Duration {
        let steps = attempt.saturating_sub(1).min(64);
        let scaled = self.initial.as_secs_f64() * self.factor.powi(steps as i32);
        if !scaled.is_finite() || scaled >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(scaled)
        }
    }

    /// The delay before attempt `attempt`, with jitter `unit` in `[-1, 1]`.
    pub(crate) fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.base_delay(attempt).as_secs_f64();
        Duration::from_secs_f64((base * (1.0 + self.jitter * unit.clamp(-1.0, 1.0))).max(0.0))
    }

    /// Whether to stop after `failed` failed attempts in an outage that has lasted `outage`.
    pub(crate) fn gives_up(&self, failed: u32, outage: Duration) -> bool {
        self.max_attempts.is_some_and(|max| failed >= max)
            || self.max_outage.is_some_and(|max| outage >= max)
    }
}

/// One connection's progress through its [`Reconnect`] policy.
///
/// With several endpoints, attempts come in passes over the list: the first attempt of a pass
/// waits for the backoff delay, and each further one (the next endpoint) starts at once. The
/// delay grows with the passes, the limit counts the attempts.
#[derive(Debug)]
pub(crate) struct Backoff {
    /// Attempts made in the current outage, the one under way included.
    attempt: u32,
    /// Passes over the endpoints begun in the current outage; with one endpoint, `attempt`.
    passes: u32,
    /// The generator's state (xorshift64*); never zero.
    seed: u64,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        let seed = RandomState::new().build_hasher().finish() | 1;
        Self { attempt: 0, passes: 0, seed }
    }

    /// The link stayed up for `up`: a long enough one starts the next outage afresh. A link
    /// that flaps (up, then lost at once) keeps the count, so it backs off too.
    pub(crate) fn link_was_up(&mut self, policy: &Reconnect, up: Duration) {
        if up >= policy.stable_after {
            self.attempt = 0;
            self.passes = 0;
        }
    }

    /// Starts counting afresh: the attempts that brought a connection's first link are not
    /// part of an outage.
    pub(crate) fn restart(&mut self) {
        self.attempt = 0;
        self.passes = 0;
    }

    /// Attempts made so far in this outage.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Counts the next attempt, the first of a pass, and returns its number and how long to
    /// wait before it.
    pub(crate) fn next(&mut self, policy: &Reconnect) -> (u32, Duration) {
        self.attempt = self.attempt.saturating_add(1);
        self.passes = self.passes.saturating_add(1);
        (self.attempt, policy.delay(self.passes, self.unit()))
    }

    /// Counts the next attempt within a pass (the next endpoint), which does not wait, and
    /// returns its number.
    pub(crate) fn next_endpoint(&mut self) -> u32 {
        self.attempt = self.attempt.saturating_add(1);
        self.attempt
    }

    /// A number in `0..n`, for a random first endpoint; `n` must not be zero.
    pub(crate) fn pick(&mut self, n: usize) -> usize {
        let unit = (self.unit() + 1.0) / 2.0;
        ((unit * n as f64) as usize).min(n - 1)
    }

    /// A uniform number in `[-1, 1)`.
    fn unit(&mut self) -> f64 {
        self.seed ^= self.seed >> 12;
        self.seed ^= self.seed << 25;
        self.seed ^= self.seed >> 27;
        let bits = self.seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        // 53 random bits to [0, 1), then to [-1, 1).
        (bits as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_maximum() {
        let policy = Reconnect::new()
            .initial_delay(Duration::from_millis(100))
            .max_delay(Duration::from_millis(700))
            .jitter(0.0);
        let delays: Vec<u128> = (1..=6).map(|n| policy.delay(n, 0.5).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 700, 700, 700]);
        assert_eq!(policy.base_delay(u32::MAX), Duration::from_millis(700));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let policy = Reconnect::new().initial_delay(Duration::from_secs(1)).jitter(0.25);
        let mut backoff = Backoff::new();
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..1000 {
            backoff.link_was_up(&policy, policy.stable_after_duration());
            let (attempt, delay) = backoff.next(&policy);
            assert_eq!(attempt, 1);
            assert!(delay >= Duration::from_millis(750), "{delay:?}");
            assert!(delay <= Duration::from_millis(1250), "{delay:?}");
            seen_low |= delay < Duration::from_millis(900);
            seen_high |= delay > Duration::from_millis(1100);
        }
        assert!(seen_low && seen_high, "the jitter spreads the delays");
    }

    #[test]
    fn limits_and_reset() {
        let policy = Reconnect::new().max_attempts(3).stable_after(Duration::from_secs(1));
        assert!(!policy.gives_up(2, Duration::ZERO));
        assert!(policy.gives_up(3, Duration::ZERO));
        let policy = policy.max_outage(Duration::from_secs(5));
        assert!(policy.gives_up(0, Duration::from_secs(5)));
        let mut backoff = Backoff::new();
        backoff.next(&policy);
        backoff.next(&policy);
        backoff.link_was_up(&policy, Duration::from_millis(10));
        assert_eq!(backoff.attempts(), 2, "a short link keeps the count");
        backoff.link_was_up(&policy, Duration::from_secs(1));
        assert_eq!(backoff.attempts(), 0, "a stable link resets it");
    }

    #[test]
    fn the_delay_grows_with_the_passes_not_the_endpoints() {
        let policy = Reconnect::new().initial_delay(Duration::from_millis(100)).jitter(0.0);
        let mut backoff = Backoff::new();
        assert_eq!(backoff.next(&policy), (1, Duration::from_millis(100)));
        assert_eq!(backoff.next_endpoint(), 2);
        assert_eq!(backoff.next_endpoint(), 3);
        assert_eq!(backoff.next(&policy), (4, Duration::from_millis(200)), "the second pass");
        backoff.link_was_up(&policy, policy.stable_after_duration());
        assert_eq!(backoff.next(&policy), (1, Duration::from_millis(100)));
    }

    #[test]
    fn a_random_pick_stays_in_range_and_reaches_every_endpoint() {
        let mut backoff = Backoff::new();
        let mut seen = [false; 3];
        for _ in 0..300 {
            seen[backoff.pick(3)] = true;
            assert_eq!(backoff.pick(1), 0);
        }
        assert_eq!(seen, [true; 3]);
    }

    #[test]
    fn odd_settings_are_tamed() {
        let policy = Reconnect::new().factor(f64::NAN).jitter(f64::NAN);
        assert_eq!((policy.factor_value(), policy.jitter_value()), (2.0, 0.0));
        let policy =
            Reconnect::new().initial_delay(Duration::from_secs(5)).max_delay(Duration::ZERO);
        assert_eq!(policy.delay(1, 0.0), Duration::ZERO);
    }
}
