//! Unit tests of the state machine: admission, the FIFO lines, give-up, expiry, the close.

use std::sync::Arc;
use std::task::Wake;
use std::time::Duration;

use super::*;
use std::collections::VecDeque;

use crate::state::buffer::tests::{advance, advance_keeping};
use crate::state::machine::{Admit, Lost, State};

/// Counts its wake-ups.
#[derive(Default)]
struct Count(std::sync::atomic::AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn frame(len: usize) -> Bytes {
    Bytes::from(vec![7; len])
}

#[test]
fn waiters_are_granted_in_arrival_order_without_barging() {
    let mut state = State::new(10);
    let mut fx = Effects::new(Instant::now);
    let waker = Waker::from(Arc::new(Count::default()));
    assert!(matches!(
        state.admit(frame(8), false, None, Some(&waker), &mut fx),
        Ok(Admit::Accepted)
    ));
    let Ok(Admit::Queued(first)) = state.admit(frame(5), false, None, Some(&waker), &mut fx) else {
        panic!("the second frame must wait");
    };
    let Ok(Admit::Queued(second)) = state.admit(frame(1), false, None, Some(&waker), &mut fx)
    else {
        panic!("a small frame may not pass a waiting one");
    };
    // `try_send` may not pass them either, though its frame would fit.
    assert!(matches!(
        state.admit(frame(1), false, None, None, &mut fx),
        Err(SendError::Timeout(_))
    ));
    assert_eq!(state.waiting(), [first, second]);
    let mut in_flight = VecDeque::new();
    state.buffer().take_chunks(&mut in_flight);
    state.written(8, &mut fx);
    assert!(state.waiting().is_empty());
    assert!(matches!(state.poll_queued(first, &waker, &mut fx), Some(Ok(()))));
    assert!(matches!(state.poll_queued(second, &waker, &mut fx), Some(Ok(()))));
}

/// A waker and the counter of its wake-ups.
fn counter() -> (Arc<Count>, Waker) {
    let count = Arc::new(Count::default());
    (count.clone(), Waker::from(count))
}

fn wakes(count: &Count) -> usize {
    count.0.load(std::sync::atomic::Ordering::SeqCst)
}

/// A frame of `len` bytes, each `byte`, so frames can be told apart.
fn marked(byte: u8, len: usize) -> Bytes {
    Bytes::from(vec![byte; len])
}

fn accept(state: &mut State, frame: Bytes) {
    let (_, waker) = counter();
    let admitted = state.admit(frame, false, None, Some(&waker), &mut Effects::new(Instant::now));
    assert!(matches!(admitted, Ok(Admit::Accepted)), "{admitted:?}");
}

fn enqueue(state: &mut State, frame: Bytes, deadline: Option<Instant>, waker: &Waker) -> u64 {
    let mut fx = Effects::new(Instant::now);
    match state.admit(frame, false, deadline, Some(waker), &mut fx) {
        Ok(Admit::Queued(ticket)) => {
            assert_eq!(fx.timer, deadline, "a deadline asks the driver for a timer");
            ticket
        }
        other => panic!("the frame should wait: {other:?}"),
    }
}

fn admit_batch(state: &mut State, lens: &[usize], waker: Option<&Waker>) -> Admit {
    let bytes: Vec<u8> = lens.iter().enumerate().flat_map(|(i, &len)| vec![i as u8; len]).collect();
    let mut fx = Effects::new(Instant::now);
    let admitted = state.admit_batch(bytes.into(), lens, 0, None, waker, &mut fx);
    admitted.expect("admitted")
}

#[test]
fn a_batch_enters_whole_or_waits_whole_in_the_data_line() {
    let mut state = State::new(10);
    assert!(matches!(admit_batch(&mut state, &[2, 3], None), Admit::Accepted));
    assert_eq!((state.stats().frames_accepted, state.stats().buffered), (2, 5));
    // 7 bytes do not fit beside 5: the batch waits whole, and a frame that fits waits
    // behind it.
    let (batch_wakes, waker) = counter();
    let Admit::Queued(batch) = admit_batch(&mut state, &[3, 4], Some(&waker)) else {
        panic!("the batch should wait");
    };
    let (_, frame_waker) = counter();
    let frame = enqueue(&mut state, marked(9, 1), None, &frame_waker);
    assert_eq!(state.stats().buffered, 5, "no part of the batch went in");
    // One byte written: 6 free, not enough for 7, so neither moves (no barging).
    let mut in_flight = VecDeque::new();
    state.buffer().take_chunks(&mut in_flight);
    let mut fx = Effects::new(Instant::now);
    state.written(1, &mut fx);
    assert_eq!(state.waiting(), [batch, frame]);
    // The rest: the batch moves in whole, then the frame behind it.
    state.written(4, &mut fx);
    fx.wake_all();
    assert_eq!(wakes(&batch_wakes), 1);
    assert!(matches!(state.poll_queued(batch, &waker, &mut fx), Some(Ok(()))));
    assert!(matches!(state.poll_queued(frame, &frame_waker, &mut fx), Some(Ok(()))));
    let stats = state.stats();
    assert_eq!((stats.frames_accepted, stats.buffered, stats.frames_written), (5, 8, 2));
    // A batch waiting at the close comes back whole.
    let Admit::Queued(last) = admit_batch(&mut state, &[2, 2], Some(&waker)) else {
        panic!("the batch should wait");
    };
    assert!(state.begin_close(Instant::now(), &mut fx));
    match state.poll_queued(last, &waker, &mut fx) {
        Some(Err(SendError::Closed(back))) => assert_eq!(&back[..], [0, 0, 1, 1]),
        other => panic!("expected Closed: {other:?}"),
    }
}

#[test]
fn cancelling_the_head_waiter_lets_the_next_one_in_at_once() {
    let mut state = State::new(10);
    accept(&mut state, marked(0, 8));
    let (head_wakes, head_waker) = counter();
    let head = enqueue(&mut state, marked(1, 5), None, &head_waker);
    let (next_wakes, next_waker) = counter();
    let next = enqueue(&mut state, marked(2, 2), None, &next_waker);

    let mut fx = Effects::new(Instant::now);
    assert_eq!(state.cancel(head, &mut fx), Some(marked(1, 5)), "the frame comes back");
    // Nothing was written: only the head leaving let the next one in.
    assert!(state.waiting().is_empty());
    assert_eq!(fx.wake.len(), 1);
    fx.wake_all();
    assert_eq!((wakes(&head_wakes), wakes(&next_wakes)), (0, 1));
    assert!(matches!(state.poll_queued(next, &next_waker, &mut fx), Some(Ok(()))));
    let stats = state.stats();
    assert_eq!((stats.buffered, stats.waiters, stats.frames_accepted), (10, 0, 2));
    // Cancelling a send that completed gives nothing back.
    assert_eq!(state.cancel(next, &mut fx), None);
}

#[test]
fn cancelling_a_waiter_behind_the_head_grants_nothing() {
    let mut state = State::new(10);
    accept(&mut state, marked(0, 8));
    let (_, waker) = counter();
    let head = enqueue(&mut state, marked(1, 5), None, &waker);
    let middle = enqueue(&mut state, marked(2, 1), None, &waker);
    let last = enqueue(&mut state, marked(3, 1), None, &waker);
    let mut fx = Effects::new(Instant::now);
    assert_eq!(state.cancel(middle, &mut fx), Some(marked(2, 1)));
    assert!(fx.wake.is_empty());
    assert_eq!(state.waiting(), [head, last]);
    assert_eq!(state.stats().buffered, 8);
    assert!(state.begin_close(Instant::now(), &mut fx));
}

#[test]
fn expire_fires_deadlines_in_order_and_returns_the_next_one() {
    let mut state = State::new(10);
    accept(&mut state, marked(0, 10));
    // Far in the future, so only the `now` given to `expire` decides.
    let base = Instant::now() + Duration::from_secs(3600);
    let at = |secs| base + Duration::from_secs(secs);
    let counters: Vec<(Arc<Count>, Waker)> = (0..4).map(|_| counter()).collect();
    let a = enqueue(&mut state, marked(1, 1), Some(at(30)), &counters[0].1);
    let b = enqueue(&mut state, marked(2, 2), Some(at(10)), &counters[1].1);
    let c = enqueue(&mut state, marked(3, 3), Some(at(20)), &counters[2].1);
    let d = enqueue(&mut state, marked(4, 4), None, &counters[3].1);

    let mut fx = Effects::new(Instant::now);
    assert_eq!(state.expire(base, &mut fx), Some(at(10)));
    assert!(fx.wake.is_empty(), "nothing is due yet");
    let fired = [(at(10), b, 1, Some(at(20))), (at(25), c, 2, Some(at(30))), (at(99), a, 0, None)];
    for (now, ticket, index, next) in fired {
        let mut fx = Effects::new(Instant::now);
        assert_eq!(state.expire(now, &mut fx), next);
        assert_eq!(fx.wake.len(), 1, "exactly one deadline is due at {now:?}");
        fx.wake_all();
        assert_eq!(wakes(&counters[index].0), 1);
        let byte = [1, 2, 3][index];
        match state.poll_queued(ticket, &counters[index].1, &mut fx) {
            Some(Err(SendError::Timeout(frame))) => {
                assert_eq!(frame, marked(byte, byte.into()))
            }
            other => panic!("expected a timeout: {other:?}"),
        }
    }
    assert_eq!(state.waiting(), [d], "the sender without a deadline still waits");
    assert_eq!(wakes(&counters[3].0), 0);
    assert_eq!(state.stats().waiters, 1);
    assert!(state.begin_close(at(100), &mut fx));
}

#[test]
fn an_expired_head_lets_the_next_one_in() {
    let mut state = State::new(10);
    accept(&mut state, marked(0, 6));
    let deadline = Instant::now() + Duration::from_secs(3600);
    let (head_wakes, head_waker) = counter();
    let head = enqueue(&mut state, marked(1, 5), Some(deadline), &head_waker);
    let (next_wakes, next_waker) = counter();
    let next = enqueue(&mut state, marked(2, 4), None, &next_waker);
    let mut fx = Effects::new(Instant::now);
    assert_eq!(state.expire(deadline, &mut fx), None);
    fx.wake_all();
    assert_eq!((wakes(&head_wakes), wakes(&next_wakes)), (1, 1));
    assert!(matches!(
        state.poll_queued(head, &head_waker, &mut fx),
        Some(Err(SendError::Timeout(_)))
    ));
    assert!(matches!(state.poll_queued(next, &next_waker, &mut fx), Some(Ok(()))));
    assert_eq!(state.stats().buffered, 10);
}

#[test]
fn begin_close_fails_every_waiter_with_closed_carrying_its_frame() {
    let mut state = State::new(10);
    accept(&mut state, marked(0, 10));
    let deadline = Instant::now() + Duration::from_secs(3600);
    let waiters: Vec<(u64, Bytes, Arc<Count>, Waker)> = (1..=3u8)
        .map(|byte| {
            let (count, waker) = counter();
            let frame = marked(byte, byte.into());
            let until = (byte == 2).then_some(deadline);
            let ticket = enqueue(&mut state, frame.clone(), until, &waker);
            (ticket, frame, count, waker)
        })
        .collect();

    let close_by = Instant::now() + Duration::from_secs(60);
    let mut fx = Effects::new(Instant::now);
    assert!(state.begin_close(close_by, &mut fx));
    assert!(fx.notify_driver, "the driver must start draining");
    assert_eq!(fx.timer, Some(close_by));
    assert_eq!(fx.wake.len(), 3);
    fx.wake_all();
    for (ticket, frame, count, waker) in &waiters {
        assert_eq!(wakes(count), 1);
        match state.poll_queued(*ticket, waker, &mut fx) {
            Some(Err(SendError::Closed(back))) => assert_eq!(&back, frame),
            other => panic!("expected Closed: {other:?}"),
        }
    }
    assert!(!state.begin_close(close_by, &mut fx), "a second close changes nothing");
    let stats = state.stats();
    assert_eq!((stats.waiters, stats.buffered), (0, 10), "buffered frames stay to drain");
    // The waiter's deadline is gone; only the drain deadline is left.
    assert_eq!(state.expire(deadline, &mut fx), Some(close_by));
    let refused = state.admit(marked(9, 1), false, None, Some(&waiters[0].3), &mut fx);
    assert!(matches!(refused, Err(SendError::Closed(f)) if f == marked(9, 1)));
}

#[test]
fn finish_with_a_cause_disconnects_waiters_and_reports_the_buffered_frames() {
    let mut state = State::new(20);
    let mut fx = Effects::new(Instant::now);
    state.opened(0, 0, &mut fx);
    for (byte, len) in [(1, 3), (2, 4), (3, 5)] {
        accept(&mut state, marked(byte, len));
    }
    // The driver takes the 12 bytes and the link accepts the first frame and 2 bytes more.
    let mut in_flight = VecDeque::new();
    state.buffer().take_chunks(&mut in_flight);
    state.written(5, &mut fx);
    accept(&mut state, marked(4, 6));
    let (count, waker) = counter();
    let waiting = enqueue(&mut state, marked(5, 10), None, &waker);

    let cause = Disconnect::from_io(std::io::ErrorKind::ConnectionReset.into());
    let mut fx = Effects::new(Instant::now);
    state.finish(Some(cause), &mut in_flight, 5, &mut fx);
    fx.wake_all();
    assert_eq!(wakes(&count), 1);
    match state.poll_queued(waiting, &waker, &mut fx) {
        Some(Err(SendError::Disconnected { frame, cause })) => {
            assert_eq!(frame, marked(5, 10));
            assert_eq!(cause.kind(), crate::DisconnectKind::Reset);
        }
        other => panic!("expected Disconnected: {other:?}"),
    }
    let report = state.report().expect("closed");
    let unsent: Vec<(Bytes, usize)> =
        report.unsent().iter().map(|u| (u.frame().clone(), u.written())).collect();
    assert_eq!(unsent, [(marked(2, 4), 2), (marked(3, 5), 0), (marked(4, 6), 0)]);
    assert_eq!((report.bytes_written(), report.frames_written()), (5, 1));
    assert_eq!(report.cause().map(Disconnect::kind), Some(crate::DisconnectKind::Reset));
    assert!(!report.timed_out() && !report.is_clean());
    // Only the first report has the frames; the cause stays.
    let again = state.report().expect("closed");
    assert!(again.unsent().is_empty() && again.cause().is_some());
    let refused = state.admit(marked(6, 1), false, None, Some(&waker), &mut fx);
    assert!(matches!(refused, Err(SendError::Disconnected { .. })));
    let target = state.flush_target();
    let id = state.next_id();
    let flushed = state.poll_flush(id, target, None, &waker, &mut fx);
    assert!(matches!(flushed, Some(Err(FlushError::Disconnected(_)))), "{flushed:?}");
    assert_eq!(state.stats().buffered, 0);
}

/// A small deterministic generator for the randomized test.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

#[test]
fn the_bound_and_fifo_hold_under_random_operations() {
    for seed in 0..8u64 {
        let mut rng = Lcg(seed);
        let capacity = 1 + rng.below(300);
        let mut state = State::new(capacity);
        let (_, waker) = counter();
        // A clock of our own, far ahead of the real one, drives `admit` and `expire`.
        let mut clock = Instant::now() + Duration::from_secs(3600);
        let mut in_flight = VecDeque::new();
        let mut offset = 0;
        // Every frame that entered the buffer, in order; frames queued by ticket.
        let mut accepted: Vec<Bytes> = Vec::new();
        let mut queued: BTreeMap<u64, Bytes> = BTreeMap::new();
        let mut returned = 0u64;
        for step in 0..3000u32 {
            let mut fx = Effects::at(clock);
            let frame = marked((step % 251) as u8, 1 + rng.below(capacity + capacity / 10));
            match rng.below(7) {
                0 | 1 => {
                    let deadline = (rng.below(3) == 0)
                        .then(|| clock + Duration::from_millis(rng.below(50) as u64));
                    match state.admit(frame.clone(), false, deadline, Some(&waker), &mut fx) {
                        Ok(Admit::Accepted) => accepted.push(frame),
                        Ok(Admit::Queued(ticket)) => {
                            queued.insert(ticket, frame);
                        }
                        Err(SendError::TooLarge { .. }) => assert!(frame.len() > capacity),
                        Err(SendError::Timeout(_)) => returned += 1,
                        Err(other) => panic!("unexpected {other:?}"),
                    }
                }
                2 => match state.admit(frame.clone(), false, None, None, &mut fx) {
                    Ok(Admit::Accepted) => accepted.push(frame),
                    Ok(Admit::Queued(_)) => panic!("try_send never queues"),
                    Err(SendError::Timeout(_) | SendError::TooLarge { .. }) => {}
                    Err(other) => panic!("unexpected {other:?}"),
                },
                3 | 4 => {
                    state.buffer().take_chunks(&mut in_flight);
                    let ready = in_flight.iter().map(Bytes::len).sum::<usize>() - offset;
                    if ready > 0 {
                        let n = 1 + rng.below(ready);
                        advance(&mut in_flight, &mut offset, n);
                        state.written(n, &mut fx);
                    }
                }
                5 => {
                    if let Some(&ticket) = queued.keys().nth(rng.below(queued.len().max(1))) {
                        if let Some(back) = state.cancel(ticket, &mut fx) {
                            assert_eq!(back, queued[&ticket], "cancel returns its own frame");
                            returned += 1;
                        }
                        queued.remove(&ticket);
                    }
                }
                _ => {
                    clock += Duration::from_millis(rng.below(20) as u64);
                    state.expire(clock, &mut fx);
                }
            }
            // Sends that ended: granted ones entered the buffer in ticket order.
            let ended: Vec<u64> =
                queued.keys().copied().filter(|t| !state.waiters.contains_key(t)).collect();
            for ticket in ended {
                let frame = queued.remove(&ticket).expect("listed above");
                match state.poll_queued(ticket, &waker, &mut fx) {
                    Some(Ok(())) => accepted.push(frame),
                    Some(Err(SendError::Timeout(back))) => {
                        assert_eq!(back, frame);
                        returned += 1;
                    }
                    other => panic!("ticket {ticket}: unexpected {other:?}"),
                }
            }

            let stats = state.stats();
            assert!(stats.buffered <= capacity, "seed {seed} step {step}: {stats:?}");
            assert!(stats.high_water <= capacity, "seed {seed} step {step}: {stats:?}");
            assert_eq!(stats.bytes_accepted - stats.bytes_written, stats.buffered as u64);
            assert_eq!(stats.frames_accepted, accepted.len() as u64);
            assert_eq!(stats.waiters, queued.len());
            if let Some((_, head)) = state.waiters.first_key_value() {
                assert!(
                    stats.buffered + head.frame.len() > capacity,
                    "seed {seed} step {step}: the head fits but waits"
                );
            }
        }
        // Close: the waiters get their frames back, the report the unwritten ones.
        let mut fx = Effects::new(Instant::now);
        state.begin_close(clock, &mut fx);
        for (ticket, frame) in std::mem::take(&mut queued) {
            match state.poll_queued(ticket, &waker, &mut fx) {
                Some(Err(SendError::Closed(back))) => assert_eq!(back, frame),
                other => panic!("unexpected {other:?}"),
            }
        }
        state.finish(None, &mut in_flight, offset, &mut fx);
        let report = state.report().expect("closed");
        let written = report.frames_written() as usize;
        let unsent: Vec<&Bytes> = report.unsent().iter().map(UnsentFrame::frame).collect();
        assert_eq!(unsent, accepted[written..].iter().collect::<Vec<_>>(), "seed {seed}");
        let waited = state.stats().sends_waited;
        assert!(
            returned > 0 && written > 0 && waited > 0,
            "seed {seed}: the mix of operations is too thin"
        );
    }
}

#[test]
fn deadlines_are_judged_by_the_callers_clock_not_the_real_one() {
    // A clock far from the real one: a state that read the real clock would see no deadline
    // due at all, or every one due at once.
    let start = Instant::now() + Duration::from_secs(3600);
    let mut state = State::new(4);
    let (_, waker) = counter();
    let admitted = state.admit(marked(1, 4), false, None, Some(&waker), &mut Effects::at(start));
    assert!(matches!(admitted, Ok(Admit::Accepted)));
    let deadline = start + Duration::from_secs(10);
    let Ok(Admit::Queued(ticket)) =
        state.admit(marked(2, 1), false, Some(deadline), Some(&waker), &mut Effects::at(start))
    else {
        panic!("the buffer is full: the frame waits");
    };
    let before = deadline - Duration::from_nanos(1);
    assert!(state.poll_queued(ticket, &waker, &mut Effects::at(before)).is_none());
    match state.poll_queued(ticket, &waker, &mut Effects::at(deadline)) {
        Some(Err(SendError::Timeout(frame))) => assert_eq!(frame, marked(2, 1)),
        other => panic!("due at its deadline on the caller's clock: {other:?}"),
    }
    // A deadline already past on the caller's clock refuses at once, with the frame.
    let late =
        state.admit(marked(3, 1), false, Some(start), Some(&waker), &mut Effects::at(deadline));
    assert!(matches!(late, Err(SendError::Timeout(frame)) if frame == marked(3, 1)));
    // The wait time is the caller's, too: 10 s of it.
    assert_eq!(state.stats().wait_time, Duration::from_secs(10));
}

/// Three frames of 10 bytes, the first written whole and 5 bytes of the second, then the link
/// is lost. Returns the state and the lost link's account.
fn lose_mid_frame(hold_partial: bool) -> (State, Lost, Effects) {
    let mut state = State::new(40);
    state.set_reconnect(hold_partial, false, false);
    let mut fx = Effects::new(Instant::now);
    let (a, b, c) = (Bytes::from(vec![1; 10]), Bytes::from(vec![2; 10]), Bytes::from(vec![3; 10]));
    for f in [a, b, c] {
        assert!(matches!(state.admit(f, false, None, None, &mut fx), Ok(Admit::Accepted)));
    }
    state.opened(0, 0, &mut fx);
    let mut in_flight = VecDeque::new();
    let mut offset = 0;
    state.buffer().take_chunks(&mut in_flight);
    advance(&mut in_flight, &mut offset, 15);
    state.written(15, &mut fx);
    let cause = Disconnect::new(crate::state::error::DisconnectKind::Reset);
    let lost = state.link_lost(cause, &mut in_flight, offset, None, None, &mut fx);
    (state, lost.expect("an open connection reconnects"), fx)
}

#[test]
fn acknowledged_bytes_make_the_frames_within_them_acknowledged_rounding_down_to_a_write() {
    let mut state = State::new(100);
    state.set_reconnect(false, false, false);
    let mut fx = Effects::new(Instant::now);
    // A first link writes one frame, and is lost with it acknowledged.
    assert!(matches!(state.admit(frame(10), false, None, None, &mut fx), Ok(Admit::Accepted)));
    state.opened(0, 0, &mut fx);
    let mut in_flight = VecDeque::new();
    state.buffer().take_chunks(&mut in_flight);
    state.written(10, &mut fx);
    in_flight.clear();
    let cause = || Disconnect::new(crate::state::error::DisconnectKind::Reset);
    let lost = state.link_lost(cause(), &mut in_flight, 0, None, Some(10), &mut fx).unwrap();
    assert_eq!((lost.acknowledged, lost.possibly.written()), (0..1, 1..1));
    // The next link writes four frames of 10 bytes in writes of 15, 15 and 10 bytes; its peer
    // acknowledged 29 bytes: the first frame for sure (the first write ended inside the second).
    for _ in 0..4 {
        assert!(matches!(state.admit(frame(10), false, None, None, &mut fx), Ok(Admit::Accepted)));
    }
    state.opened(1, 0, &mut fx);
    state.buffer().take_chunks(&mut in_flight);
    let mut offset = 0;
    for n in [15, 15, 10] {
        advance(&mut in_flight, &mut offset, n);
        state.written(n, &mut fx);
    }
    let lost = state.link_lost(cause(), &mut in_flight, offset, None, Some(29), &mut fx).unwrap();
    assert_eq!(lost.acknowledged, 1..2, "frames are numbered across links");
    assert_eq!(lost.possibly.written(), 2..5);
    let stats = state.stats();
    assert_eq!((stats.frames_acknowledged, stats.frames_possibly_delivered), (2, 3));
    // A count past what was written is held to it.
    state.opened(2, 0, &mut fx);
    assert!(matches!(state.admit(frame(10), false, None, None, &mut fx), Ok(Admit::Accepted)));
    state.buffer().take_chunks(&mut in_flight);
    state.written(10, &mut fx);
    in_flight.clear();
    let lost = state.link_lost(cause(), &mut in_flight, 0, None, Some(99), &mut fx).unwrap();
    assert_eq!((lost.acknowledged, lost.possibly.written()), (5..6, 6..6));
}

#[test]
fn a_lost_link_replays_unwritten_frames_and_hands_back_a_cut_one() {
    let (mut state, lost, mut fx) = lose_mid_frame(false);
    assert_eq!(lost.possibly.written(), 0..1, "the first frame was written whole");
    assert_eq!(lost.possibly.cut_frames(), [Bytes::from(vec![2; 10])], "the cut frame comes back");
    assert_eq!(lost.replayed, 1);
    assert_eq!(state.phase(), Phase::Connecting);
    assert_eq!(state.buffer().held(), 10, "only the third frame is held");
    let stats = state.stats();
    assert_eq!((stats.frames_possibly_delivered, stats.frames_replayed), (2, 1));
    // A flush of everything accepted completes once the third frame is written again.
    let (_, waker) = counter();
    let target = state.flush_target();
    assert!(state.poll_flush(1, target, None, &waker, &mut fx).is_none());
    state.opened(0, 0, &mut fx);
    let mut in_flight = VecDeque::new();
    state.buffer().take_chunks(&mut in_flight);
    assert_eq!(in_flight.iter().map(|c| c.to_vec()).collect::<Vec<_>>().concat(), vec![3; 10]);
    state.written(10, &mut fx);
    assert!(matches!(state.poll_flush(1, target, None, &waker, &mut fx), Some(Ok(()))));
}

#[test]
fn an_atomic_cut_frame_is_replayed_whole_within_the_bound() {
    let (mut state, lost, mut fx) = lose_mid_frame(true);
    assert!(lost.possibly.cut_frames().is_empty());
    assert_eq!(lost.replayed, 2);
    assert_eq!(state.buffer().held(), 20, "the cut frame is held whole again");
    // While the cut frame's room was kept, a 30-byte frame did not fit; now 20 are free.
    assert!(matches!(state.admit(frame(20), false, None, None, &mut fx), Ok(Admit::Accepted)));
    assert!(state.admit(frame(1), false, None, None, &mut fx).is_err(), "the bound holds");
    let mut in_flight = VecDeque::new();
    state.buffer().take_chunks(&mut in_flight);
    let wire: Vec<u8> = in_flight.iter().flat_map(|c| c.to_vec()).collect();
    assert_eq!(&wire[..20], [vec![2; 10], vec![3; 10]].concat().as_slice(), "in order");
    assert_eq!(state.stats().frames_accepted, 4, "a replayed frame is accepted once");
}

#[test]
fn a_written_prefix_keeps_its_room_while_frames_are_atomic() {
    let mut state = State::new(20);
    state.set_reconnect(true, false, false);
    let mut fx = Effects::new(Instant::now);
    assert!(matches!(state.admit(frame(20), false, None, None, &mut fx), Ok(Admit::Accepted)));
    let mut in_flight = VecDeque::new();
    state.buffer().take_chunks(&mut in_flight);
    state.written(5, &mut fx);
    assert!(state.admit(frame(5), false, None, None, &mut fx).is_err(), "kept for a replay");
    state.written(15, &mut fx);
    assert!(matches!(state.admit(frame(20), false, None, None, &mut fx), Ok(Admit::Accepted)));
}

#[test]
fn a_link_lost_after_a_close_began_is_not_replaced() {
    let mut state = State::new(40);
    state.set_reconnect(false, false, false);
    let mut fx = Effects::new(Instant::now);
    state.opened(0, 0, &mut fx);
    assert!(state.begin_close(Instant::now() + Duration::from_secs(1), &mut fx));
    let cause = Disconnect::new(crate::state::error::DisconnectKind::Reset);
    assert!(state.link_lost(cause, &mut VecDeque::new(), 0, None, None, &mut fx).is_none());
    assert_eq!(state.phase(), Phase::Closing, "the close goes on");
}

/// A state keeping written frames, with frames of 10 bytes marked 1 to `count` accepted, the
/// link up, and `written` bytes written (the chunks handed back as the driver does).
fn keeping(capacity: usize, count: u8, written: usize, at_least_once: bool) -> (State, Kept) {
    let mut state = State::new(capacity);
    state.set_reconnect(false, false, at_least_once);
    let mut fx = Effects::new(Instant::now);
    state.buffer().set_keeping(true);
    state.opened(0, 0, &mut fx);
    for byte in 1..=count {
        let f = marked(byte, 10);
        assert!(matches!(state.admit(f, false, None, None, &mut fx), Ok(Admit::Accepted)));
    }
    let mut kept = Kept { in_flight: VecDeque::new(), offset: 0 };
    state.buffer().take_chunks(&mut kept.in_flight);
    kept.write(&mut state, written, &mut fx);
    (state, kept)
}

/// The driver's chunks in flight, in the keeping tests.
struct Kept {
    in_flight: VecDeque<Bytes>,
    offset: usize,
}

impl Kept {
    fn write(&mut self, state: &mut State, n: usize, fx: &mut Effects) {
        let done = advance_keeping(&mut self.in_flight, &mut self.offset, n);
        state.written(n, fx);
        state.buffer().keep_chunks(done.into_iter(), self.offset);
    }

    fn lose(&mut self, state: &mut State, acked: u64, fx: &mut Effects) -> Lost {
        let cause = Disconnect::new(crate::state::error::DisconnectKind::Reset);
        let lost = state.link_lost(cause, &mut self.in_flight, self.offset, None, Some(acked), fx);
        lost.expect("an open connection reconnects")
    }
}

#[test]
fn written_frames_keep_their_room_until_acknowledged() {
    let (mut state, kept) = keeping(30, 3, 20, false);
    let mut fx = Effects::new(Instant::now);
    let stats = state.stats();
    assert_eq!((stats.buffered, stats.awaiting_ack), (10, 20));
    let (count, waker) = counter();
    let Ok(Admit::Queued(ticket)) = state.admit(marked(4, 10), false, None, Some(&waker), &mut fx)
    else {
        panic!("the kept frames fill the capacity");
    };
    // Half of the second frame is not enough to release it.
    assert_eq!(state.acked(5, kept.offset, &mut fx), 0);
    assert_eq!(state.acked(15, kept.offset, &mut fx), 10, "the first frame is released");
    fx.wake_all();
    assert_eq!(wakes(&count), 1);
    assert!(matches!(state.poll_queued(ticket, &waker, &mut fx), Some(Ok(()))));
    assert_eq!(state.stats().awaiting_ack, 10);
    assert_eq!(state.stats().high_water, 30, "the bound held");
}

#[test]
fn a_lost_link_hands_back_the_written_frames_its_peer_did_not_acknowledge() {
    // Frames 1 and 2 written whole, 5 bytes of frame 3; the peer acknowledged frame 1.
    let (mut state, mut kept) = keeping(40, 4, 25, false);
    let mut fx = Effects::new(Instant::now);
    let lost = kept.lose(&mut state, 10, &mut fx);
    assert_eq!(lost.acknowledged, 0..1);
    assert_eq!(lost.possibly.written(), 1..2);
    assert_eq!(lost.possibly.written_frames(), [marked(2, 10)]);
    assert_eq!(lost.possibly.cut_frames(), [marked(3, 10)]);
    assert_eq!(lost.replayed, 1, "frame 4 goes again");
    let stats = state.stats();
    assert_eq!((stats.buffered, stats.awaiting_ack), (10, 0), "the returned frames left");
}

#[test]
fn at_least_once_sends_the_unacknowledged_frames_again_first() {
    let (mut state, mut kept) = keeping(40, 4, 25, true);
    let mut fx = Effects::new(Instant::now);
    let lost = kept.lose(&mut state, 10, &mut fx);
    assert_eq!(lost.acknowledged, 0..1);
    assert!(lost.possibly.is_empty(), "{:?}", lost.possibly);
    assert_eq!(lost.replayed, 3);
    assert_eq!(state.stats().buffered, 30);
    let mut in_flight = VecDeque::new();
    state.buffer().take_chunks(&mut in_flight);
    let wire: Vec<u8> = in_flight.iter().flat_map(|c| c.to_vec()).collect();
    let expected: Vec<u8> = [marked(2, 10), marked(3, 10), marked(4, 10)].concat();
    assert_eq!(wire, expected, "in their order, the cut one whole");
    // A flush of everything accepted waits for them to be written again.
    let target = state.flush_target();
    let (_, waker) = counter();
    assert!(state.poll_flush(1, target, None, &waker, &mut fx).is_none());
    assert_eq!(state.stats().frames_accepted, 4, "a frame sent again is accepted once");
}

/// One instant for every clock read, so two states fed the same operations agree exactly.
fn fixed_clock() -> Instant {
    static AT: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);
    *AT
}

/// Lets every waiter go, as their operations would when dropped.
fn release_all(state: &mut State) {
    let mut fx = Effects::new(fixed_clock);
    for ticket in state.waiting() {
        state.cancel(ticket, &mut fx);
    }
}

/// A send as the connection makes it: the short path (copying the frame, or moving it in),
/// then the full path if it declined.
fn send_both_ways(state: &mut State, frame: Bytes, copy: bool, waker: &Waker) -> (bool, Effects) {
    let mut fx = Effects::new(fixed_clock);
    let short = if copy {
        state.try_copy(&frame, fixed_clock).ok_or(frame)
    } else {
        state.try_push(frame, (), fixed_clock)
    };
    match short {
        Ok(notify) => {
            fx.notify_driver = notify;
            (true, fx)
        }
        Err(frame) => {
            let taken = matches!(
                state.admit(frame, false, None, Some(waker), &mut fx),
                Ok(Admit::Accepted)
            );
            (taken, fx)
        }
    }
}

#[test]
fn the_short_path_takes_exactly_the_frames_the_full_path_takes_at_once() {
    // Two states fed the same operations, one sending through the short path first, the other
    // through the full path only, must agree after every step: in what they took, what they
    // told the driver, their counters, and who waits.
    for (capacity, reserve, marks) in [(64, 0, None), (64, 8, None), (64, 0, Some((40, 20)))] {
        let mut short = State::new(capacity);
        let mut full = State::new(capacity);
        for state in [&mut short, &mut full] {
            state.set_reserve(reserve);
            state.set_watermarks(marks);
        }
        let (_, waker) = counter();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut tickets = Vec::new();
        for step in 0..2_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            match seed % 7 {
                0..=3 => {
                    let copy = step % 2 == 0;
                    let (took, fx_short) = send_both_ways(&mut short, frame(len), copy, &waker);
                    let mut fx_full = Effects::new(fixed_clock);
                    let admitted = full.admit(frame(len), false, None, Some(&waker), &mut fx_full);
                    let took_full = matches!(admitted, Ok(Admit::Accepted));
                    if let Ok(Admit::Queued(ticket)) = admitted {
                        tickets.push(ticket);
                    }
                    assert_eq!(took, took_full, "step {step}: a {len}-byte frame");
                    assert_eq!(fx_short.notify_driver, fx_full.notify_driver, "step {step}");
                }
                4 | 5 => {
                    for state in [&mut short, &mut full] {
                        let mut fx = Effects::new(fixed_clock);
                        let mut in_flight = VecDeque::new();
                        state.buffer().take_chunks(&mut in_flight);
                        let n = len.min(state.buffer().held() - state.buffer().queued());
                        state.written(n, &mut fx);
                    }
                }
                _ => {
                    if let Some(ticket) = tickets.pop() {
                        let mut fx = Effects::new(fixed_clock);
                        assert_eq!(
                            short.cancel(ticket, &mut fx).map(|f| f.len()),
                            full.cancel(ticket, &mut fx).map(|f| f.len()),
                            "step {step}"
                        );
                    }
                }
            }
            assert_eq!(short.stats(), full.stats(), "step {step}");
            assert_eq!(short.waiting(), full.waiting(), "step {step}");
            assert_eq!(short.buffer().held(), full.buffer().held(), "step {step}");
        }
        assert!(short.stats().frames_accepted > 100, "the sequence exercised the short path");
        release_all(&mut short);
        release_all(&mut full);
    }
}

#[test]
fn the_short_path_declines_what_it_must_leave_to_the_full_path() {
    let (_, waker) = counter();
    // Nobody waits and there is room, but the frame is empty: the full path refuses it.
    let mut state = State::new(16);
    assert!(state.try_push(Bytes::new(), (), fixed_clock).is_err());
    // A frame that would not fit.
    assert_eq!(state.try_push(frame(17), (), fixed_clock).map_err(|f| f.len()), Err(17));
    // The reserve is the urgent frames' alone.
    state.set_reserve(4);
    assert!(state.try_push(frame(13), (), fixed_clock).is_err());
    assert_eq!(state.try_push(frame(12), (), fixed_clock).ok(), Some(true), "the driver is told");
    // A sender waits: a frame that would fit may not pass it.
    let mut state = State::new(16);
    let mut fx = Effects::new(fixed_clock);
    assert!(state.try_push(frame(10), (), fixed_clock).is_ok());
    assert!(matches!(
        state.admit(frame(10), false, None, Some(&waker), &mut fx),
        Ok(Admit::Queued(_))
    ));
    assert!(state.try_push(frame(1), (), fixed_clock).is_err(), "no barging");
    assert!(state.try_copy(&frame(1), fixed_clock).is_none(), "no barging");
    release_all(&mut state);
    // Crossing the high watermark publishes an event: the full path does that.
    let mut state = State::new(16);
    state.set_watermarks(Some((8, 4)));
    assert!(state.try_push(frame(7), (), fixed_clock).is_ok());
    assert!(state.try_push(frame(1), (), fixed_clock).is_err());
    assert!(state.try_copy(&frame(1), fixed_clock).is_none());
    // A closing connection takes nothing.
    let mut state = State::new(16);
    let mut fx = Effects::new(fixed_clock);
    state.begin_close(fixed_clock() + Duration::from_secs(1), &mut fx);
    assert!(state.try_push(frame(1), (), fixed_clock).is_err());
}

/// A state with a stage in front of it, locked and unlocked as the connection does it: every
/// lock drains the stage first, every unlock opens it last.
struct Fronted {
    state: State,
    stage: Stage,
    /// Frames the stage took.
    staged: usize,
}

impl Fronted {
    fn new(capacity: usize) -> Self {
        let stage = Stage::new(crate::state::stage::STAGE_FRAMES);
        Self { state: State::new(capacity), stage, staged: 0 }
    }

    fn with<R>(&mut self, f: impl FnOnce(&mut State) -> R) -> R {
        self.state.unstage(&self.stage, fixed_clock);
        let result = f(&mut self.state);
        self.state.open_stage(&self.stage);
        result
    }

    /// A send as the connection makes it: the stage, then, under the lock, the short path and
    /// the full one.
    fn send(&mut self, frame: Bytes, waker: &Waker) -> (bool, bool) {
        if let Some(notify) = self.stage.try_put(&frame) {
            self.staged += 1;
            return (true, notify);
        }
        self.with(|state| {
            let (took, fx) = send_both_ways(state, frame, true, waker);
            (took, fx.notify_driver)
        })
    }
}

#[test]
fn the_stage_takes_exactly_the_frames_the_short_path_takes() {
    // Two states fed the same operations, one behind a stage, the other through the lock
    // only, must agree after every step (looked at under the lock): in what they took, what
    // they told the driver, their counters, who waits, and the bytes the driver gets. Sends
    // come in bursts, so that one opening of the stage takes several frames.
    // Capacities of a few hundred bytes: the tail's segments are a quarter of the capacity,
    // and the stage opens on the spare part of one.
    let configs = [(600, 0, None), (600, 40, None), (600, 0, Some((400, 200))), (8192, 0, None)];
    for (capacity, reserve, marks) in configs {
        let mut staged = Fronted::new(capacity);
        let mut plain = State::new(capacity);
        staged.with(|state| {
            state.set_reserve(reserve);
            state.set_watermarks(marks);
        });
        plain.set_reserve(reserve);
        plain.set_watermarks(marks);
        let (_, waker) = counter();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut tickets = Vec::new();
        let (mut wire_staged, mut wire_plain) = (Vec::new(), Vec::new());
        let mut byte = 0u8;
        for step in 0..2_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let most = if seed.is_multiple_of(5) { 700 } else { 48 };
            match seed % 7 {
                0..=3 => {
                    for _ in 0..1 + (seed >> 8) % 4 {
                        let len = ((seed >> 16) as usize + usize::from(byte)) % most;
                        byte = byte.wrapping_add(1);
                        let (took, told) = staged.send(marked(byte, len), &waker);
                        let (took_plain, fx) =
                            send_both_ways(&mut plain, marked(byte, len), true, &waker);
                        assert_eq!(took, took_plain, "step {step}: a {len}-byte frame");
                        assert_eq!(told, fx.notify_driver, "step {step}: the driver's notice");
                        if !took && let Some(ticket) = plain.waiting().last() {
                            tickets.push(*ticket);
                        }
                    }
                }
                4 | 5 => {
                    let len = (seed >> 16) as usize % 1200;
                    for (state, wire) in
                        [(&mut staged.state, &mut wire_staged), (&mut plain, &mut wire_plain)]
                    {
                        // The staged state is looked at under its lock.
                        state.unstage(&staged.stage, fixed_clock);
                        let mut fx = Effects::new(fixed_clock);
                        let mut in_flight = VecDeque::new();
                        state.buffer().take_chunks(&mut in_flight);
                        in_flight.iter().for_each(|chunk| wire.extend_from_slice(chunk));
                        let n = len.min(state.buffer().held() - state.buffer().queued());
                        state.written(n, &mut fx);
                    }
                    staged.state.open_stage(&staged.stage);
                }
                _ => {
                    if let Some(ticket) = tickets.pop() {
                        let mut fx = Effects::new(fixed_clock);
                        assert_eq!(
                            staged.with(|state| state.cancel(ticket, &mut fx)),
                            plain.cancel(ticket, &mut fx),
                            "step {step}"
                        );
                    }
                }
            }
            staged.with(|state| {
                assert_eq!(state.stats(), plain.stats(), "step {step}");
                assert_eq!(state.waiting(), plain.waiting(), "step {step}");
                assert_eq!(state.buffer().held(), plain.buffer().held(), "step {step}");
            });
            assert_eq!(wire_staged, wire_plain, "step {step}: the bytes the driver gets");
        }
        assert!(staged.staged > 300, "the sequence exercised the stage: {}", staged.staged);
        assert!(
            plain.stats().frames_accepted as usize > staged.staged + 100,
            "and the lock's paths"
        );
        staged.with(release_all);
        release_all(&mut plain);
    }
}
