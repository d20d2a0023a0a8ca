//! A memory budget shared by many connections: a data frame must fit both its connection and
//! the budget; senders waiting on the budget are served in order across connections, may give
//! up cleanly, and a stalled connection holds at most its own capacity of it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Wake, Waker};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use futures::task::noop_waker;
use tidegate::transport::mem::{MemListener, MemPeer};
use tidegate::{Budget, Bytes, Client, Config, Connection, FrameLimit, SendError};
use tidegate_core::SendOp;

use crate::support::{self, MemSink, Verifier, Watchdog};

const LONG: Duration = Duration::from_secs(10);

fn connect(budget: &Budget, capacity: usize, name: &str) -> (Client, MemListener, MemPeer) {
    let listener = MemListener::bind(&support::unique_name(name)).unwrap();
    let client =
        Client::builder().capacity(capacity).budget(budget).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    // The peer takes nothing until a test lets it: bytes stay in the buffer, counted.
    peer.set_write_capacity(0);
    (client, listener, peer)
}

/// Lets a peer take everything, for a sink to read.
fn open(peer: MemPeer) -> MemPeer {
    peer.set_write_capacity(usize::MAX);
    peer
}

/// Sends `frame` on a thread of its own; the thread returns how the send ended.
fn send_in_background(client: &Client, frame: Bytes) -> JoinHandle<Result<(), SendError<Bytes>>> {
    let client = client.clone();
    thread::spawn(move || client.send(frame))
}

/// Fills `budget` (1,000 bytes) through a client whose peer takes nothing.
fn fill(budget: &Budget) -> (Client, MemListener, MemPeer) {
    let (a, listener, peer) = connect(budget, 1000, "budget-filler");
    for seq in 0..10 {
        a.try_send(support::frame(0, seq, 100)).unwrap();
    }
    assert_eq!(budget.used(), 1000);
    (a, listener, peer)
}

#[test]
fn a_data_frame_must_fit_the_budget_as_well_as_its_connection() {
    let budget = Budget::new(1000);
    let (a, _la, pa) = connect(&budget, 800, "budget-fit-a");
    let (b, _lb, pb) = connect(&budget, 800, "budget-fit-b");
    a.try_send(support::frame(1, 0, 700)).unwrap();
    // `b` is empty, but the budget has only 300 bytes left.
    let err = b.try_send(support::frame(2, 0, 400)).unwrap_err();
    assert!(err.is_full());
    assert_eq!(err.into_inner().len(), 400, "the frame comes back");
    b.try_send(support::frame(2, 0, 300)).unwrap();
    assert_eq!(budget.used(), 1000);
    // Larger than the budget: it could never fit, so it is refused at once.
    let (c, _lc, _pc) = connect(&budget, 4000, "budget-fit-c");
    match c.send(support::frame(3, 0, 1500)) {
        Err(err @ SendError::TooLarge { .. }) => {
            let text = err.to_string();
            let SendError::TooLarge { frame, max_len, limit } = err else { unreachable!() };
            assert_eq!(frame.len(), 1500);
            assert_eq!((max_len, limit), (1000, FrameLimit::Budget));
            assert!(text.contains("budget") && text.contains("1000 bytes"), "{text}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // The budget's bytes come back as the peers read.
    pa.set_write_capacity(usize::MAX);
    pb.set_write_capacity(usize::MAX);
    a.flush().unwrap();
    b.flush().unwrap();
    assert!(support::wait_until(LONG, || budget.used() == 0), "used {}", budget.used());
}

#[test]
fn senders_waiting_on_the_budget_are_served_in_order_across_connections() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "budget FIFO");
    let budget = Budget::new(1000);
    let (a, _la, pa) = fill(&budget);
    let (b, _lb, _pb) = connect(&budget, 1000, "budget-fifo-b");
    let (c, _lc, _pc) = connect(&budget, 1000, "budget-fifo-c");
    let first = send_in_background(&b, support::frame(2, 0, 600));
    assert!(support::wait_until(LONG, || budget.waiting() == 1));
    let second = send_in_background(&c, support::frame(3, 0, 300));
    assert!(support::wait_until(LONG, || budget.waiting() == 2));
    // A newcomer does not pass them, not even a try_send that would fit.
    pa.set_write_capacity(400);
    assert!(support::wait_until(LONG, || a.stats().bytes_written == 400));
    assert_eq!(budget.used(), 600);
    assert!(c.try_send(support::frame(3, 1, 20)).unwrap_err().is_full());
    let (d, _ld, _pd) = connect(&budget, 1000, "budget-fifo-d");
    assert!(
        d.try_send(support::frame(4, 0, 20)).unwrap_err().is_full(),
        "a connection with no waiter of its own may not pass those waiting on the budget"
    );
    // 400 bytes are free: the 300-byte frame would fit, but the 600-byte one is first.
    assert_eq!(budget.waiting(), 2);
    assert_eq!(c.stats().frames_accepted, 0, "the second waiter must not pass the first");
    // 600 free: the first goes in; the second (300 more) does not fit yet.
    pa.set_write_capacity(600);
    support::join_within(first, LONG, "the first waiter").unwrap();
    assert_eq!(budget.used(), 1000);
    assert_eq!(budget.waiting(), 1);
    assert_eq!(c.stats().frames_accepted, 0);
    pa.set_write_capacity(1000);
    support::join_within(second, LONG, "the second waiter").unwrap();
    assert_eq!(budget.waiting(), 0);
    assert_eq!(b.stats().frames_accepted, 1);
    assert_eq!(c.stats().frames_accepted, 1);
}

#[test]
fn a_waiter_that_times_out_on_the_budget_lets_the_next_one_in() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "budget timeout");
    let budget = Budget::new(1000);
    let (a, _la, pa) = fill(&budget);
    pa.set_write_capacity(500);
    assert!(support::wait_until(LONG, || a.stats().bytes_written == 500));
    let (b, _lb, _pb) = connect(&budget, 1000, "budget-timeout-b");
    let (c, _lc, _pc) = connect(&budget, 1000, "budget-timeout-c");
    let big = {
        let b = b.clone();
        thread::spawn(move || b.send_timeout(support::frame(2, 0, 800), Duration::from_millis(300)))
    };
    assert!(support::wait_until(LONG, || budget.waiting() == 1));
    let small = send_in_background(&c, support::frame(3, 0, 300));
    assert!(support::wait_until(LONG, || budget.waiting() == 2));
    match support::join_within(big, LONG, "the timed-out waiter") {
        Err(SendError::Timeout(frame)) => assert_eq!(frame.len(), 800),
        other => panic!("expected a timeout, got {other:?}"),
    }
    // It was in the way; the one behind it fits and goes in at once.
    support::join_within(small, LONG, "the next waiter").unwrap();
    assert_eq!(budget.used(), 800);
    assert_eq!(budget.waiting(), 0);
    assert_eq!(b.stats().waiters, 0);
}

#[test]
fn a_cancelled_waiter_leaves_the_budget_line_and_hands_on_its_turn() {
    let budget = Budget::new(1000);
    let (a, _la, pa) = fill(&budget);
    let listener = MemListener::bind(&support::unique_name("budget-cancel")).unwrap();
    let conn =
        Connection::open(&listener.url(), Config::new().capacity(1000).budget(&budget)).unwrap();
    let (c, _lc, _pc) = connect(&budget, 1000, "budget-cancel-c");
    let waker = noop_waker();
    let mut op = conn.send(support::frame(2, 0, 900), None);
    assert!(op.poll_with(&waker).is_pending());
    assert_eq!(budget.waiting(), 1);
    let next = send_in_background(&c, support::frame(3, 0, 200));
    assert!(support::wait_until(LONG, || budget.waiting() == 2));
    pa.set_write_capacity(300);
    assert!(support::wait_until(LONG, || a.stats().bytes_written == 300));
    // The 900-byte head does not fit in 300 free bytes; the 200-byte one waits behind it.
    assert_eq!(c.stats().frames_accepted, 0);
    assert_eq!(op.cancel().map(|f| f.len()), Some(900), "the frame comes back");
    support::join_within(next, LONG, "the waiter behind the cancelled one").unwrap();
    assert_eq!(budget.used(), 900);
    assert_eq!(budget.waiting(), 0);
}

/// A send parked in a slot that a waker of another send can reach.
type Slot = Arc<Mutex<Option<SendOp<Connection>>>>;

/// A waker that, the first time it is woken, cancels the send in `other` (if it is still
/// there) and keeps what the cancel returned.
struct CancelsOther {
    woken: AtomicUsize,
    other: Slot,
    cancelled: Mutex<Option<Option<Bytes>>>,
}

impl Wake for CancelsOther {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.woken.fetch_add(1, Ordering::SeqCst) == 0 {
            let op = self.other.lock().unwrap().take();
            if let Some(op) = op {
                *self.cancelled.lock().unwrap() = Some(op.cancel());
            }
        }
    }
}

#[test]
fn a_grant_to_a_waiter_that_left_before_its_delivery_is_passed_on() {
    // Two waiters on two connections are granted room in the same release; grants are
    // delivered one at a time, with no lock held. The wake-up of whichever is delivered
    // first cancels the other, whose grant is then still on its way: that grant must go to
    // the third waiter, the next in the budget's line. Deterministic: the cancel happens
    // inside the delivery, between the two grants.
    let _watchdog = Watchdog::new(Duration::from_secs(60), "budget grant to a leaver");
    let budget = Budget::new(1000);
    let (_a, _la, pa) = fill(&budget);
    let (b, _lb, _pb) = connect(&budget, 1000, "budget-leaver-b");
    let (c, _lc, _pc) = connect(&budget, 1000, "budget-leaver-c");
    let (d, _ld, _pd) = connect(&budget, 1000, "budget-leaver-d");
    let frames: Vec<Bytes> = (1..=3).map(|i| support::frame(i, 0, 300)).collect();
    let slots: Vec<Slot> = [&b, &c]
        .iter()
        .zip(&frames)
        .map(|(client, frame)| {
            let op = client.connection().clone().send_owned(frame.clone(), None);
            Arc::new(Mutex::new(Some(op)))
        })
        .collect();
    let wakers: Vec<Arc<CancelsOther>> = [1, 0]
        .into_iter()
        .map(|other| {
            Arc::new(CancelsOther {
                woken: AtomicUsize::new(0),
                other: slots[other].clone(),
                cancelled: Mutex::new(None),
            })
        })
        .collect();
    for (i, (slot, waker)) in slots.iter().zip(&wakers).enumerate() {
        let waker = Waker::from(waker.clone());
        let mut op = slot.lock().unwrap();
        assert!(op.as_mut().unwrap().poll_with(&waker).is_pending());
        assert_eq!(budget.waiting(), i + 1);
    }
    let mut third = d.connection().clone().send_owned(frames[2].clone(), None);
    let (third_wakes, third_waker) = support::WakeCounter::new();
    assert!(third.poll_with(&third_waker).is_pending());
    assert_eq!(budget.waiting(), 3);

    // 600 bytes free in one write: room for the first two waiters, not for the third.
    pa.set_write_capacity(600);
    let delivered =
        support::wait_until(LONG, || wakers.iter().any(|w| w.cancelled.lock().unwrap().is_some()));
    assert!(delivered, "no grant was delivered");
    let winner = wakers.iter().position(|w| w.woken.load(Ordering::SeqCst) > 0).unwrap();
    let loser = 1 - winner;
    assert_eq!(
        *wakers[winner].cancelled.lock().unwrap(),
        Some(Some(frames[loser].clone())),
        "the other waiter was cancelled before its grant arrived, and got its frame back"
    );
    assert_eq!(wakers[loser].woken.load(Ordering::SeqCst), 0, "a cancelled waiter is not woken");
    let passed_on = support::wait_until(LONG, || third_wakes.count() == 1);
    assert!(
        passed_on,
        "the grant of the waiter that left was not passed on: the third waiter still waits \
         (budget: {budget:?})"
    );
    assert!(matches!(third.poll_with(&third_waker), Poll::Ready(Ok(()))));
    let mut won = slots[winner].lock().unwrap().take().expect("the winner is still in its slot");
    assert!(matches!(won.poll_with(Waker::noop()), Poll::Ready(Ok(()))));
    // 400 left of the filler, and the two frames that went in: nothing leaked, nothing owed.
    assert_eq!(budget.used(), 1000);
    assert_eq!(budget.waiting(), 0);
    let accepted: Vec<u64> = [&b, &c, &d].iter().map(|x| x.stats().frames_accepted).collect();
    let mut expected = vec![0, 0, 1];
    expected[winner] = 1;
    assert_eq!(accepted, expected);
}

#[test]
fn a_grant_to_a_waiter_that_left_is_passed_on() {
    // A stress test of the same rule (the test above forces the race): many waiters on a few
    // connections give up while room is being freed: whatever they were granted must go to
    // the next ones, and the budget must end exactly empty.
    let _watchdog = Watchdog::new(Duration::from_secs(60), "budget hand-on");
    let budget = Budget::new(2000);
    let (a, _la, pa) = fill(&budget);
    let mut clients = Vec::new();
    let mut sinks = Vec::new();
    for i in 0..4 {
        let (client, listener, peer) = connect(&budget, 1000, &format!("budget-handon-{i}"));
        clients.push((client, listener));
        sinks.push(MemSink::start(open(peer), Verifier::allowing_gaps()));
    }
    let mut senders = Vec::new();
    for (i, (client, _)) in clients.iter().enumerate() {
        for seq in 0..20u64 {
            let client = client.clone();
            let timeout = Duration::from_millis(if seq % 3 == 0 { 5 } else { 10_000 });
            senders.push(thread::spawn(move || {
                client.send_timeout(
                    support::frame(i as u32 + 1, seq, 100 + 37 * seq as usize),
                    timeout,
                )
            }));
        }
    }
    pa.set_write_capacity(usize::MAX);
    let mut sent = 0;
    for sender in senders {
        match support::join_within(sender, LONG, "a sender") {
            Ok(()) => sent += 1,
            Err(SendError::Timeout(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(sent >= 40, "most senders had all the time they needed ({sent} sent)");
    a.flush().unwrap();
    for (client, _) in &clients {
        client.flush_timeout(LONG).unwrap();
    }
    assert!(support::wait_until(LONG, || budget.used() == 0), "used {}", budget.used());
    assert_eq!(budget.waiting(), 0);
}

#[test]
fn a_stalled_connection_holds_only_its_capacity_and_the_others_keep_flowing() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "budget with a stalled peer");
    let budget = Budget::new(16 * 1024);
    let (stalled, _ls, _ps) = connect(&budget, 4096, "budget-stall-s");
    let stop = Arc::new(AtomicBool::new(false));
    let pusher = {
        let (stalled, stop) = (stalled.clone(), stop.clone());
        thread::spawn(move || {
            let mut seq = 0;
            while !stop.load(Ordering::SeqCst) && seq < 10_000 {
                let _ =
                    stalled.send_timeout(support::frame(9, seq, 500), Duration::from_millis(20));
                seq += 1;
            }
        })
    };
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (budget, stop, peak) = (budget.clone(), stop.clone(), peak.clone());
        thread::spawn(move || {
            for _ in 0..100_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                peak.fetch_max(budget.used(), Ordering::SeqCst);
                thread::yield_now();
            }
        })
    };
    let mut producers = Vec::new();
    for i in 0..3u32 {
        let (client, listener, peer) = connect(&budget, 8192, &format!("budget-stall-{i}"));
        let sink = MemSink::start(open(peer), Verifier::new());
        producers.push((
            thread::spawn(move || {
                let mut rng = support::Lcg::new(u64::from(i) + 7);
                for seq in 0..2000 {
                    client.send(support::frame(i, seq, rng.range(support::HEADER, 3000))).unwrap();
                }
                client.close_timeout(LONG).expect("close")
            }),
            sink,
            listener,
        ));
    }
    for (producer, sink, _listener) in producers {
        let report = support::join_within(producer, Duration::from_secs(30), "a producer");
        assert!(report.is_clean(), "{report:?}");
        let seen = sink.finish(LONG);
        assert!(seen.error.is_none(), "{:?}", seen.error);
        assert_eq!(seen.verifier.frames, 2000);
    }
    assert!(stalled.stats().buffered <= 4096);
    stop.store(true, Ordering::SeqCst);
    support::join_within(pusher, LONG, "the stalled pusher");
    support::join_within(sampler, LONG, "the sampler");
    assert!(peak.load(Ordering::SeqCst) <= 16 * 1024, "peak {}", peak.load(Ordering::SeqCst));
    // Closing the stalled connection hands its bytes back.
    let report = stalled.close_timeout(Duration::from_millis(50)).expect("close");
    assert!(!report.unsent().is_empty());
    assert_eq!(budget.used(), 0);
}

#[test]
fn closing_a_connection_hands_its_bytes_to_senders_of_other_connections() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "budget close");
    let budget = Budget::new(1000);
    let (a, _la, _pa) = fill(&budget);
    let (b, _lb, _pb) = connect(&budget, 1000, "budget-close-b");
    let waiting = send_in_background(&b, support::frame(2, 0, 700));
    assert!(support::wait_until(LONG, || budget.waiting() == 1));
    let report = a.close_timeout(Duration::from_millis(20)).expect("close");
    assert_eq!(report.unsent().len(), 10, "the unsent frames come back");
    support::join_within(waiting, LONG, "the waiter").unwrap();
    assert_eq!(budget.used(), 700);
    assert_eq!(b.stats().buffered, 700);
}

#[test]
fn a_waiter_on_a_closed_connection_leaves_the_budget_line() {
    let budget = Budget::new(1000);
    let (a, _la, pa) = fill(&budget);
    let (b, _lb, _pb) = connect(&budget, 1000, "budget-closed-b");
    let (c, _lc, _pc) = connect(&budget, 1000, "budget-closed-c");
    let doomed = send_in_background(&b, support::frame(2, 0, 900));
    assert!(support::wait_until(LONG, || budget.waiting() == 1));
    let next = send_in_background(&c, support::frame(3, 0, 300));
    assert!(support::wait_until(LONG, || budget.waiting() == 2));
    pa.set_write_capacity(400);
    assert!(support::wait_until(LONG, || a.stats().bytes_written == 400));
    let report = b.close_timeout(LONG).expect("close");
    assert!(report.is_clean());
    match support::join_within(doomed, LONG, "the closed waiter") {
        Err(SendError::Closed(frame)) => assert_eq!(frame.len(), 900),
        other => panic!("expected Closed, got {other:?}"),
    }
    support::join_within(next, LONG, "the next waiter").unwrap();
    assert_eq!(budget.used(), 900);
}

#[test]
fn urgent_frames_still_go_out_when_the_budget_is_exhausted() {
    let budget = Budget::new(1000);
    let listener = MemListener::bind(&support::unique_name("budget-urgent")).unwrap();
    let client = Client::builder()
        .capacity(2000)
        .urgent_reserve(200)
        .budget(&budget)
        .connect(&listener.url())
        .unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    peer.set_write_capacity(0);
    for seq in 0..10 {
        client.try_send(support::frame(0, seq, 100)).unwrap();
    }
    assert!(client.try_send(support::frame(0, 10, 100)).unwrap_err().is_full());
    client.try_send_urgent(support::frame(9, 0, 150)).unwrap();
    assert_eq!(budget.used(), 1150, "urgent frames are counted, but never wait");
    peer.set_write_capacity(usize::MAX);
    client.flush().unwrap();
    assert!(support::wait_until(LONG, || budget.used() == 0));
}

#[test]
fn an_async_sender_waiting_on_the_budget_is_woken_when_another_connection_drains() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "async budget");
    let budget = Budget::new(1000);
    let (_a, _la, pa) = fill(&budget);
    let listener = MemListener::bind(&support::unique_name("budget-async")).unwrap();
    let connecting =
        tidegate::AsyncClient::builder().capacity(1000).budget(&budget).connect(&listener.url());
    let client = futures::executor::block_on(connecting).unwrap();
    let _peer = listener.accept_timeout(LONG).unwrap();
    let task = thread::spawn(move || {
        futures::executor::block_on(client.send(support::frame(5, 0, 500))).map(|()| client)
    });
    assert!(support::wait_until(LONG, || budget.waiting() == 1));
    pa.set_write_capacity(500);
    let client = support::join_within(task, LONG, "the async sender").unwrap();
    assert_eq!(client.stats().frames_accepted, 1);
    assert_eq!(budget.waiting(), 0);
}

#[test]
fn the_budget_holds_and_ends_empty_under_random_timeouts_and_stalls() {
    let _watchdog = Watchdog::new(Duration::from_secs(90), "budget stress");
    const LIMIT: usize = 6000;
    let budget = Budget::new(LIMIT);
    let group = tidegate::IoGroup::new(2).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (budget, stop, peak) = (budget.clone(), stop.clone(), peak.clone());
        thread::spawn(move || {
            for _ in 0..1_000_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                peak.fetch_max(budget.used(), Ordering::SeqCst);
                thread::yield_now();
            }
        })
    };
    let mut conns = Vec::new();
    for c in 0..4 {
        let listener =
            MemListener::bind(&support::unique_name(&format!("budget-stress-{c}"))).unwrap();
        let client = Client::builder()
            .capacity(3000)
            .budget(&budget)
            .io_group(&group)
            .connect(&listener.url())
            .unwrap();
        let peer = listener.accept_timeout(LONG).unwrap();
        let sink = MemSink::start(open(peer), Verifier::allowing_gaps());
        conns.push((client, sink, listener));
    }
    let mut producers = Vec::new();
    for p in 0..8u32 {
        let client = conns[p as usize % 4].0.clone();
        producers.push(thread::spawn(move || {
            let mut rng = support::Lcg::new(u64::from(p) * 31 + 1);
            let mut sent = 0u32;
            for seq in 0..400 {
                let frame = support::frame(p, seq, rng.range(support::HEADER, 2500));
                let timeout = Duration::from_micros(rng.range(0, 3000) as u64);
                match client.send_timeout(frame, timeout) {
                    Ok(()) => sent += 1,
                    Err(SendError::Timeout(back)) => assert_eq!(support::ident(&back), (p, seq)),
                    Err(other) => panic!("unexpected {other:?}"),
                }
            }
            sent
        }));
    }
    // The peers stall and resume in turn while the producers run.
    for round in 0..20 {
        let peer = conns[round % 4].1.peer();
        peer.pause();
        thread::sleep(Duration::from_millis(2));
        peer.resume();
    }
    let sent: u32 = producers
        .into_iter()
        .map(|p| support::join_within(p, Duration::from_secs(60), "a producer"))
        .sum();
    assert!(sent > 0);
    let mut received = 0;
    for (client, sink, _listener) in conns {
        let report = client.close_timeout(LONG).expect("close");
        assert!(report.is_clean(), "{report:?}");
        let seen = sink.finish(LONG);
        assert!(seen.error.is_none(), "{:?}", seen.error);
        received += seen.verifier.frames;
    }
    stop.store(true, Ordering::SeqCst);
    support::join_within(sampler, LONG, "the sampler");
    assert_eq!(received, u64::from(sent), "every accepted frame arrived, once");
    assert!(peak.load(Ordering::SeqCst) <= LIMIT, "peak {}", peak.load(Ordering::SeqCst));
    assert_eq!(budget.used(), 0);
    assert_eq!(budget.waiting(), 0);
}
