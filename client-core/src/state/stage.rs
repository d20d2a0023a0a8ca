//! The stage: where small data frames enter a connection's buffer without its lock.
//!
//! # The algorithm
//!
//! When the connection's lock is released, its holder may *open* the stage on the spare
//! capacity of the buffer's tail segment (the memory right after the last copied frame), with
//! an allowance of bytes carved out of the buffer's free space (see
//! `State::open_stage`). A sender then claims the next bytes of that memory and the next
//! slot of a small array of lengths with one compare-and-swap on the control word, copies its
//! frame straight into the bytes it claimed, and publishes it with one release store of its
//! length: one read-modify-write and one plain store per frame, where a lock costs two
//! read-modify-writes, and one copy, as under the lock. Whoever takes the lock next first
//! *closes* the stage and *drains* it: it waits for every claimed length to be published, then
//! extends the tail over the bytes and appends the lengths to the buffer's frame list, in the
//! order the claims were made, with no second copy. Under the lock, the connection's state is
//! then exactly what it would have been had every frame gone through the lock.
//!
//! The control word holds, from the top bit down: `OPEN`, `NOTIFY`, the allowance left, the
//! number of frames claimed and the bytes claimed since the stage opened. Because all of them
//! are in one word, a claim is judged against a consistent view:
//!
//! - **The bound.** A claim takes its bytes from the allowance in the same compare-and-swap
//!   that checks it, so the frames staged never exceed what the buffer had free when the stage
//!   opened (the buffer itself only changes under the lock): the bound is never exceeded, not
//!   even for a moment. Nor do they exceed the tail's spare capacity, which caps the
//!   allowance.
//! - **FIFO, no barging.** The stage opens only when nobody waits (in either lane), and the
//!   lock's holder closes it before doing anything else: a sender that has to wait does so
//!   under the lock, so the stage is closed from before it waits until after the last waiter is
//!   served. A claim that won its compare-and-swap before the stage closed is older than
//!   anything the lock's holder does, and it is drained first.
//! - **No lost notice.** `NOTIFY` is set when the stage opens on an empty buffer, whose
//!   driver will not look again until it is told; the first claim clears it in its
//!   compare-and-swap, and only that sender tells the driver.
//!
//! A claim that has won its room but not yet published its length is waited for by the drain:
//! the sender is between two instructions of a bounded copy (at most [`STAGE_FRAME_MAX`]
//! bytes, no allocation, nothing that can panic), so the wait is short unless the sender's
//! thread is preempted there, and then the drain yields its CPU to it.
//!
//! Frames longer than [`STAGE_FRAME_MAX`], frames with framing, urgent frames and any frame
//! while the stage is closed go through the lock, as before; so does everything but a send.
//!
//! # Why `unsafe`
//!
//! Senders write into the tail's spare capacity while no lock is held, each into the bytes it
//! claimed, through a raw pointer; and the drain extends the tail over them with
//! `BytesMut::set_len`. These two are the module's only `unsafe` operations; the arguments are
//! on each. The protocol around them is checked by a loom model (`state/loom.rs`) and by a
//! test with four sending threads against a draining one.

use bytes::BytesMut;

#[cfg(all(test, tidegate_loom))]
use ::loom::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
#[cfg(not(all(test, tidegate_loom)))]
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// How many frames one opening of a stage can take.
pub(crate) const STAGE_FRAMES: usize = 256;

/// The longest frame the stage takes: the longest the buffer copies in (longer ones are queued
/// as they are, without a copy). The buffer checks that the two agree.
pub(crate) const STAGE_FRAME_MAX: usize = 2048;

/// The most bytes one opening can take.
pub(crate) const ROOM_MAX: usize = (1 << ROOM_BITS) - 1;

const POS_BITS: u32 = 22;
const POS_MASK: u64 = (1 << POS_BITS) - 1;
const COUNT_BITS: u32 = 12;
const COUNT_SHIFT: u32 = POS_BITS;
const COUNT_MASK: u64 = ((1 << COUNT_BITS) - 1) << COUNT_SHIFT;
const ROOM_BITS: u32 = 22;
const ROOM_SHIFT: u32 = COUNT_SHIFT + COUNT_BITS;
const ROOM_MASK: u64 = ((1 << ROOM_BITS) - 1) << ROOM_SHIFT;
const NOTIFY: u64 = 1 << 62;
const OPEN: u64 = 1 << 63;

/// A connection's stage: see the [module documentation](self).
pub(crate) struct Stage {
    /// `OPEN | NOTIFY | allowance left << ROOM_SHIFT | frames claimed << COUNT_SHIFT | bytes
    /// claimed`. Invariants: while `OPEN` is clear only the lock's holder changes it; it is
    /// zero whenever the lock is free and the stage closed, and whenever the lock's holder has
    /// drained it.
    control: AtomicU64,
    /// The first byte of the tail's spare capacity when the stage opened. Stored before the
    /// opening's release store of `control`; read by a sender after its claim succeeded.
    base: AtomicPtr<u8>,
    /// The length of each frame claimed since the stage opened, in claim order; zero until its
    /// sender publishes it. Invariant: every slot is zero when the stage opens.
    lens: Box<[AtomicU32]>,
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let control = self.control.load(Ordering::Relaxed);
        f.debug_struct("Stage")
            .field("open", &(control & OPEN != 0))
            .field("claimed_frames", &((control & COUNT_MASK) >> COUNT_SHIFT))
            .field("claimed_bytes", &(control & POS_MASK))
            .finish()
    }
}

impl Stage {
    /// A closed stage that can take up to `frames` frames per opening (at most
    /// [`STAGE_FRAMES`]); zero makes a stage that never takes one.
    pub(crate) fn new(frames: usize) -> Self {
        let frames = frames.min(STAGE_FRAMES);
        Self {
            control: AtomicU64::new(0),
            base: AtomicPtr::new(std::ptr::null_mut()),
            lens: (0..frames).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// Stages `frame` if the stage is open and has room for it. `Some(notify)` if it was
    /// taken, where `notify` says that this sender must tell the driver; `None` if not, and
    /// nothing changed.
    #[inline]
    pub(crate) fn try_put(&self, frame: &[u8]) -> Option<bool> {
        let len = frame.len();
        if len == 0 || len > STAGE_FRAME_MAX {
            return None;
        }
        let mut control = self.control.load(Ordering::Relaxed);
        loop {
            if control & OPEN == 0 {
                return None;
            }
            let at = (control & POS_MASK) as usize;
            let slot = ((control & COUNT_MASK) >> COUNT_SHIFT) as usize;
            let room = ((control & ROOM_MASK) >> ROOM_SHIFT) as usize;
            if len > room || slot >= self.lens.len() {
                return None;
            }
            let next = (control & !NOTIFY) - ((len as u64) << ROOM_SHIFT)
                + (1 << COUNT_SHIFT)
                + len as u64;
            // Acquire: synchronizes with the opening's release store (this read-modify-write
            // reads from its release sequence), so `base` below is the opening's, and the
            // drain that came before it, which zeroed `lens`, happened before this claim.
            match self.control.compare_exchange_weak(
                control,
                next,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    let base = self.base.load(Ordering::Relaxed);
                    // SAFETY: `base` points to the tail's spare capacity as it was when the
                    // stage opened, and this claim owns its bytes `at..at + len`:
                    // - they are inside that spare capacity: the opening capped the
                    //   allowance at its length, and every claim since took its bytes from
                    //   the allowance and the position together, in one compare-and-swap;
                    // - no other claim of this opening overlaps them (the position only
                    //   grows), and nothing else reads or writes them until the drain has
                    //   seen this frame's length published below: the buffer is touched only
                    //   under the connection's lock, and every holder of that lock drains the
                    //   stage (waiting for this length) before anything else;
                    // - the allocation stays alive and in place until then, for the same
                    //   reason: only the lock's holder can free or move the tail;
                    // - `frame` is a shared slice of the caller's, which cannot overlap memory
                    //   that belongs to the buffer's spare capacity.
                    unsafe {
                        std::ptr::copy_nonoverlapping(frame.as_ptr(), base.add(at), len);
                    }
                    // Release: the bytes above are visible to whoever reads this length with
                    // acquire.
                    self.lens[slot].store(len as u32, Ordering::Release);
                    return Some(control & NOTIFY != 0);
                }
                Err(now) => control = now,
            }
        }
    }

    /// Opens the closed, empty stage on `tail`'s spare capacity, for up to `room` bytes (capped
    /// at that capacity and at [`ROOM_MAX`]); with `notify`, the first sender to stage a frame
    /// tells the driver. Call under the connection's lock, as the last thing before releasing
    /// it: from here until the next [`Stage::drain`], nothing may touch `tail`.
    #[inline]
    pub(crate) fn open(&self, tail: &mut BytesMut, room: usize, notify: bool) {
        debug_assert_eq!(self.control.load(Ordering::Relaxed), 0, "opened closed and empty");
        let spare = tail.spare_capacity_mut();
        let room = room.min(spare.len()).min(ROOM_MAX);
        if self.lens.is_empty() || room == 0 {
            return;
        }
        self.base.store(spare.as_mut_ptr().cast::<u8>(), Ordering::Relaxed);
        let notify = if notify { NOTIFY } else { 0 };
        // Release: see `try_put`.
        self.control.store(OPEN | notify | ((room as u64) << ROOM_SHIFT), Ordering::Release);
    }

    /// Closes the stage (for the lock's holder, first thing) and takes what was staged into
    /// `tail`, the tail it was opened on, untouched since: the tail grows by the staged
    /// bytes, and `each` gets the staged frames' lengths, oldest first, as runs of equal
    /// lengths (`each(len, count)`). Returns the number of frames and their bytes. The stage is
    /// left closed and empty.
    #[inline]
    pub(crate) fn drain(
        &self,
        tail: &mut BytesMut,
        mut each: impl FnMut(usize, usize),
    ) -> (u64, usize) {
        if self.control.load(Ordering::Relaxed) == 0 {
            return (0, 0);
        }
        let control = self.control.fetch_and(!(OPEN | NOTIFY), Ordering::AcqRel);
        let count = ((control & COUNT_MASK) >> COUNT_SHIFT) as usize;
        let end = (control & POS_MASK) as usize;
        let (mut bytes, mut run_len, mut run) = (0, 0, 0);
        for slot in &self.lens[..count] {
            let len = published(slot);
            slot.store(0, Ordering::Relaxed);
            if len != run_len {
                if run > 0 {
                    each(run_len, run);
                }
                (run_len, run) = (len, 0);
            }
            run += 1;
            bytes += len;
        }
        if run > 0 {
            each(run_len, run);
        }
        // What the `unsafe` below relies on, checked: the claims tile `end` bytes, they fit in
        // the tail's spare capacity, and that spare capacity starts where the stage opened, so
        // this is the tail it was opened on, with the same length.
        let spare_start = tail.as_ptr().wrapping_add(tail.len());
        assert!(
            bytes == end
                && end <= tail.capacity() - tail.len()
                && (end == 0 || std::ptr::eq(spare_start, self.base.load(Ordering::Relaxed))),
            "a stage is drained into the tail it was opened on"
        );
        // SAFETY: the bytes `len..len + end` of `tail` are inside its capacity (checked above),
        // and every one of them is initialized: the claims of this opening tile them (their
        // lengths, which sum to `end`, were claimed at consecutive positions from the start of
        // the spare capacity as it was at the opening, which is where it starts now, checked
        // above; only the lock's holder writes to the tail, and it drains the stage before
        // anything else), and each claim's copy happened before the release store of its
        // length that the acquire load in `published` read.
        unsafe {
            tail.set_len(tail.len() + end);
        }
        // Closed and empty: no sender changes a closed stage, so a plain store will do.
        self.control.store(0, Ordering::Relaxed);
        (count as u64, bytes)
    }
}

/// The length in `slot`, once its sender has published it.
#[inline]
fn published(slot: &AtomicU32) -> usize {
    let mut spins = 0u32;
    loop {
        // Acquire: pairs with the release store in `try_put`.
        let len = slot.load(Ordering::Acquire);
        if len != 0 {
            return len as usize;
        }
        // A claim whose copy is not finished: short, unless its thread was preempted. (Under
        // the model checker every turn yields, or the spin would be explored step by step.)
        spins += 1;
        if spins < 64 && !cfg!(all(test, tidegate_loom)) {
            std::hint::spin_loop();
        } else {
            yield_now();
        }
    }
}

#[cfg(not(all(test, tidegate_loom)))]
fn yield_now() {
    std::thread::yield_now();
}

#[cfg(all(test, tidegate_loom))]
fn yield_now() {
    ::loom::thread::yield_now();
}

#[cfg(all(test, not(tidegate_loom)))]
mod tests {
    use std::sync::Arc;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A tail with `spare` bytes of spare capacity, the stage opened on it.
    fn opened(stage: &Stage, spare: usize, room: usize, notify: bool) -> BytesMut {
        let mut tail = BytesMut::with_capacity(spare);
        stage.open(&mut tail, room, notify);
        tail
    }

    /// Drains into `tail`, returning the frames as the lengths cut the new bytes.
    fn drained(stage: &Stage, tail: &mut BytesMut) -> Vec<Vec<u8>> {
        let start = tail.len();
        let mut lens = Vec::new();
        let (frames, bytes) = stage.drain(tail, |len, n| lens.extend(std::iter::repeat_n(len, n)));
        assert_eq!(frames as usize, lens.len());
        assert_eq!(bytes, tail.len() - start);
        let mut at = start;
        lens.iter()
            .map(|&len| {
                at += len;
                tail[at - len..at].to_vec()
            })
            .collect()
    }

    #[test]
    fn a_closed_stage_takes_nothing() {
        let stage = Stage::new(16);
        assert_eq!(stage.try_put(b"abc"), None);
        let mut tail = BytesMut::with_capacity(64);
        assert!(drained(&stage, &mut tail).is_empty());
        let never = Stage::new(0);
        let mut tail = opened(&never, 64, 100, false);
        assert_eq!(never.try_put(b"abc"), None);
        assert!(drained(&never, &mut tail).is_empty());
        let mut full = BytesMut::new();
        stage.open(&mut full, 100, false);
        assert_eq!(stage.try_put(b"abc"), None, "no spare capacity, no opening");
    }

    #[test]
    fn frames_come_out_whole_and_in_order_after_what_the_tail_held() {
        let stage = Stage::new(STAGE_FRAMES);
        let mut tail = BytesMut::with_capacity(4096);
        tail.extend_from_slice(b"before");
        stage.open(&mut tail, 10_000, false);
        let frames: Vec<Vec<u8>> =
            (1..=40).map(|len| (0..len).map(|i| (i * 7 + len) as u8).collect()).collect();
        for frame in &frames {
            assert_eq!(stage.try_put(frame), Some(false));
        }
        assert_eq!(drained(&stage, &mut tail), frames);
        assert_eq!(&tail[..6], b"before");
        // Drained means closed.
        assert_eq!(stage.try_put(b"late"), None);
    }

    #[test]
    fn the_allowance_is_exact() {
        let stage = Stage::new(STAGE_FRAMES);
        let mut tail = opened(&stage, 4096, 10, false);
        assert_eq!(stage.try_put(&[1; 6]), Some(false));
        assert_eq!(stage.try_put(&[2; 5]), None, "6 + 5 > 10");
        assert_eq!(stage.try_put(&[3; 4]), Some(false));
        assert_eq!(stage.try_put(&[4; 1]), None, "the allowance is spent");
        assert_eq!(drained(&stage, &mut tail), vec![vec![1; 6], vec![3; 4]]);
    }

    #[test]
    fn the_spare_capacity_caps_the_allowance() {
        let stage = Stage::new(STAGE_FRAMES);
        let mut tail = BytesMut::with_capacity(64);
        let spare = tail.capacity();
        stage.open(&mut tail, 1_000_000, false);
        assert!(spare <= STAGE_FRAME_MAX);
        assert_eq!(stage.try_put(&vec![7; spare]), Some(false));
        assert_eq!(stage.try_put(&[8]), None, "the spare capacity is spent");
        drained(&stage, &mut tail);
        assert_eq!(tail.len(), tail.capacity());
    }

    #[test]
    fn the_frame_slots_cap_an_opening() {
        let stage = Stage::new(4);
        let mut tail = opened(&stage, 4096, 1000, false);
        for i in 0..4 {
            assert_eq!(stage.try_put(&[i; 3]), Some(false));
        }
        assert_eq!(stage.try_put(&[9; 1]), None);
        assert_eq!(drained(&stage, &mut tail).len(), 4);
        stage.open(&mut tail, 1000, false);
        assert_eq!(stage.try_put(&[9; 1]), Some(false), "room again after a drain");
        assert_eq!(drained(&stage, &mut tail), vec![vec![9]]);
    }

    #[test]
    #[should_panic(expected = "a stage is drained into the tail it was opened on")]
    fn a_drain_into_another_tail_is_refused() {
        let stage = Stage::new(STAGE_FRAMES);
        let _opened_on = opened(&stage, 4096, 100, false);
        assert_eq!(stage.try_put(b"abc"), Some(false));
        let mut other = BytesMut::with_capacity(4096);
        stage.drain(&mut other, |_, _| {});
    }

    #[test]
    fn too_long_or_empty_frames_are_declined() {
        let stage = Stage::new(STAGE_FRAMES);
        let mut tail = opened(&stage, 4096, 10_000, false);
        assert_eq!(stage.try_put(&[]), None);
        assert_eq!(stage.try_put(&[0; STAGE_FRAME_MAX + 1]), None);
        assert_eq!(stage.try_put(&[5; STAGE_FRAME_MAX]), Some(false));
        assert_eq!(drained(&stage, &mut tail), vec![vec![5; STAGE_FRAME_MAX]]);
    }

    #[test]
    fn only_the_first_claim_is_told_to_notify() {
        let stage = Stage::new(STAGE_FRAMES);
        let mut tail = opened(&stage, 4096, 100, true);
        assert_eq!(stage.try_put(b"a"), Some(true));
        assert_eq!(stage.try_put(b"b"), Some(false));
        drained(&stage, &mut tail);
        stage.open(&mut tail, 100, true);
        assert_eq!(drained(&stage, &mut tail), Vec::<Vec<u8>>::new(), "an empty drain closes too");
        stage.open(&mut tail, 100, false);
        assert_eq!(stage.try_put(b"c"), Some(false));
        drained(&stage, &mut tail);
    }

    #[test]
    fn senders_on_many_threads_lose_nothing_and_keep_their_order() {
        // Four threads stage numbered frames while this one drains and reopens, as lock
        // holders do, sealing the tail now and then as the buffer does; every frame a thread
        // was told was taken comes out once, whole, in that thread's order.
        let stage = Arc::new(Stage::new(64));
        let done = Arc::new(AtomicUsize::new(0));
        let senders: Vec<_> = (0..4u8)
            .map(|t| {
                let stage = stage.clone();
                let done = done.clone();
                std::thread::spawn(move || {
                    let mut taken = 0u32;
                    let mut tries = 0u32;
                    while taken < 2_000 && tries < 50_000_000 {
                        tries += 1;
                        let mut frame = vec![t; 5 + (taken % 20) as usize];
                        frame[1..5].copy_from_slice(&taken.to_le_bytes());
                        if stage.try_put(&frame).is_some() {
                            taken += 1;
                        } else {
                            std::thread::yield_now();
                        }
                    }
                    done.fetch_add(1, Ordering::Release);
                    taken
                })
            })
            .collect();
        let mut next = [0u32; 4];
        let mut tail = BytesMut::with_capacity(1024);
        let sealed = Mutex::new(Vec::new());
        let mut drains = 0u64;
        let mut last_round = false;
        loop {
            if tail.capacity() - tail.len() < 64 {
                sealed.lock().unwrap().push(tail.split().freeze());
                tail.reserve(1024);
            }
            stage.open(&mut tail, 300, drains.is_multiple_of(3));
            std::thread::yield_now();
            for frame in drained(&stage, &mut tail) {
                let t = frame[0] as usize;
                let n = u32::from_le_bytes(frame[1..5].try_into().unwrap());
                assert_eq!(n, next[t], "thread {t}'s frames in order, none lost or twice");
                assert_eq!(frame.len(), 5 + (n % 20) as usize);
                assert!(frame[5..].iter().all(|&b| b == frame[0]));
                next[t] += 1;
            }
            drains += 1;
            if last_round {
                break;
            }
            last_round = done.load(Ordering::Acquire) == 4;
            assert!(drains < 100_000_000, "bounded");
        }
        let taken: Vec<u32> = senders.into_iter().map(|s| s.join().unwrap()).collect();
        assert_eq!(taken, next.to_vec());
        assert_eq!(taken, vec![2_000; 4], "every sender got all its frames in");
    }
}
