//! The lengths of a buffer's frames, oldest first, kept as runs of equal lengths.
//!
//! A producer of small frames mostly sends frames of one size, so a run is one entry for
//! thousands of frames: appending a frame adds one to the last run's count, and a write that
//! completes thousands of frames is accounted for in a step per run. Frames of mixed sizes
//! cost one run each, as a plain list of lengths would.

use std::collections::VecDeque;

/// `count` frames of `len` bytes each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    len: usize,
    /// Invariant: at least 1.
    count: usize,
}

/// A queue of frame lengths, oldest first.
#[derive(Debug, Default)]
pub(crate) struct FrameLens {
    /// Oldest first. Two neighbours may have the same length: merging is an optimisation,
    /// not an invariant.
    runs: VecDeque<Run>,
    /// The number of frames: the sum of the runs' counts.
    frames: usize,
}

impl FrameLens {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The number of frames.
    pub(crate) fn len(&self) -> usize {
        self.frames
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.frames == 0
    }

    /// The oldest frame's length.
    #[inline]
    pub(crate) fn front(&self) -> Option<usize> {
        self.runs.front().map(|run| run.len)
    }

    /// Appends a frame of `len` bytes.
    #[inline]
    pub(crate) fn push_back(&mut self, len: usize) {
        self.push_run_back(len, 1);
    }

    /// Appends `count` frames of `len` bytes.
    #[inline]
    pub(crate) fn push_run_back(&mut self, len: usize, count: usize) {
        if count == 0 {
            return;
        }
        self.frames += count;
        if let Some(last) = self.runs.back_mut()
            && last.len == len
        {
            last.count += count;
            return;
        }
        self.runs.push_back(Run { len, count });
    }

    /// Puts a frame of `len` bytes ahead of all.
    pub(crate) fn push_front(&mut self, len: usize) {
        self.frames += 1;
        if let Some(first) = self.runs.front_mut()
            && first.len == len
        {
            first.count += 1;
            return;
        }
        self.runs.push_front(Run { len, count: 1 });
    }

    /// Takes the oldest frame's length out.
    pub(crate) fn pop_front(&mut self) -> Option<usize> {
        let first = self.runs.front_mut()?;
        let len = first.len;
        first.count -= 1;
        if first.count == 0 {
            self.runs.pop_front();
        }
        self.frames -= 1;
        Some(len)
    }

    /// Puts a frame of `len` bytes at position `index` (0 is the front), ahead of the frame
    /// there.
    ///
    /// # Panics
    ///
    /// If `index` is past the last frame.
    pub(crate) fn insert(&mut self, index: usize, len: usize) {
        assert!(index <= self.frames, "insert at {index} of {} frames", self.frames);
        // Find the run the position falls in: `at` frames into run `i`.
        let (mut i, mut at) = (0, index);
        while i < self.runs.len() && at > self.runs[i].count {
            at -= self.runs[i].count;
            i += 1;
        }
        if i == self.runs.len() {
            self.push_back(len);
            return;
        }
        self.frames += 1;
        let run = self.runs[i];
        if run.len == len {
            self.runs[i].count += 1;
        } else if at == 0 {
            self.runs.insert(i, Run { len, count: 1 });
        } else if at == run.count {
            match self.runs.get_mut(i + 1) {
                Some(next) if next.len == len => next.count += 1,
                _ => self.runs.insert(i + 1, Run { len, count: 1 }),
            }
        } else {
            self.runs[i].count = at;
            self.runs.insert(i + 1, Run { len, count: 1 });
            self.runs.insert(i + 2, Run { len: run.len, count: run.count - at });
        }
    }

    /// Every frame's length, oldest first.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.runs.iter().flat_map(|run| std::iter::repeat_n(run.len, run.count))
    }

    /// The bytes of all frames.
    pub(crate) fn sum(&self) -> usize {
        self.runs.iter().map(|run| run.len * run.count).sum()
    }

    /// The bytes of the first `count` frames.
    pub(crate) fn sum_first(&self, mut count: usize) -> usize {
        let mut bytes = 0;
        for run in &self.runs {
            let take = run.count.min(count);
            bytes += take * run.len;
            count -= take;
            if count == 0 {
                break;
            }
        }
        bytes
    }

    /// How many frames, after skipping the first `skip`, lie whole within `budget` bytes from
    /// the first one after them, and how many bytes they make: a step per run.
    #[inline]
    pub(crate) fn covered(&self, mut skip: usize, mut budget: usize) -> (usize, usize) {
        let (mut frames, mut bytes) = (0, 0);
        for run in &self.runs {
            let skipped = run.count.min(skip);
            skip -= skipped;
            let count = run.count - skipped;
            if count == 0 {
                continue;
            }
            let whole = count.min(budget / run.len);
            frames += whole;
            bytes += whole * run.len;
            budget -= whole * run.len;
            if whole < count {
                break;
            }
        }
        (frames, bytes)
    }

    /// Moves the first `count` frames to the back of `to`, oldest first; `None` drops them.
    #[inline]
    pub(crate) fn move_front(&mut self, mut count: usize, mut to: Option<&mut Self>) {
        debug_assert!(count <= self.frames, "move {count} of {} frames", self.frames);
        self.frames -= count;
        while count > 0 {
            let Some(first) = self.runs.front_mut() else { break };
            let take = first.count.min(count);
            if let Some(to) = to.as_deref_mut() {
                to.push_run_back(first.len, take);
            }
            count -= take;
            first.count -= take;
            if first.count == 0 {
                self.runs.pop_front();
            }
        }
    }

    /// Takes every frame's length out, oldest first.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = usize> + use<> {
        self.frames = 0;
        std::mem::take(&mut self.runs)
            .into_iter()
            .flat_map(|run| std::iter::repeat_n(run.len, run.count))
    }

    pub(crate) fn clear(&mut self) {
        self.runs.clear();
        self.frames = 0;
    }
}

impl Extend<usize> for FrameLens {
    /// Appends the frames, a run at a time: equal neighbours are counted before they go in.
    fn extend<I: IntoIterator<Item = usize>>(&mut self, lens: I) {
        let mut lens = lens.into_iter();
        let Some(mut len) = lens.next() else { return };
        let mut count = 1;
        for next in lens {
            if next == len {
                count += 1;
            } else {
                self.push_run_back(len, count);
                (len, count) = (next, 1);
            }
        }
        self.push_run_back(len, count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation on a `FrameLens` and on a plain list of lengths, side by side, with
    /// lengths from a small set so runs form and break.
    #[test]
    fn runs_behave_as_a_plain_list_of_lengths() {
        let mut lens = FrameLens::new();
        let mut other = FrameLens::new();
        let mut model: VecDeque<usize> = VecDeque::new();
        let mut other_model: VecDeque<usize> = VecDeque::new();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for step in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = 1 + (seed >> 40) as usize % 3 * 7;
            let pick = (seed >> 20) as usize;
            match seed % 11 {
                0..=2 => {
                    lens.push_back(len);
                    model.push_back(len);
                }
                3 => {
                    let batch = [len, len, 1 + pick % 3 * 7, len];
                    lens.extend(batch);
                    model.extend(batch);
                }
                4 => {
                    lens.push_front(len);
                    model.push_front(len);
                }
                5 => assert_eq!(lens.pop_front(), model.pop_front(), "step {step}"),
                6 => {
                    let at = pick % (model.len() + 1);
                    lens.insert(at, len);
                    model.insert(at, len);
                }
                7 => {
                    let (skip, budget) = (pick % 4, pick % 200);
                    let mut left = budget;
                    let whole = model
                        .iter()
                        .skip(skip)
                        .take_while(|&&l| {
                            let fits = l <= left;
                            if fits {
                                left -= l;
                            }
                            fits
                        })
                        .count();
                    assert_eq!(lens.covered(skip, budget), (whole, budget - left), "step {step}");
                }
                8 => {
                    let count = pick % (model.len() + 1);
                    assert_eq!(
                        lens.sum_first(count),
                        model.iter().take(count).sum::<usize>(),
                        "step {step}"
                    );
                    let keep = pick.is_multiple_of(2);
                    lens.move_front(count, keep.then_some(&mut other));
                    let moved: Vec<usize> = model.drain(..count).collect();
                    if keep {
                        other_model.extend(moved);
                    }
                }
                9 => {
                    if pick.is_multiple_of(50) {
                        assert_eq!(lens.drain().collect::<Vec<_>>(), Vec::from(model.clone()));
                        model.clear();
                    }
                }
                _ => {
                    if pick.is_multiple_of(50) {
                        other.clear();
                        other_model.clear();
                    }
                }
            }
            assert_eq!(lens.len(), model.len(), "step {step}");
            assert_eq!(lens.is_empty(), model.is_empty(), "step {step}");
            assert_eq!(lens.front(), model.front().copied(), "step {step}");
            assert_eq!(lens.sum(), model.iter().sum::<usize>(), "step {step}");
            assert!(lens.iter().eq(model.iter().copied()), "step {step}");
            assert!(other.iter().eq(other_model.iter().copied()), "step {step}");
            assert_eq!(other.len(), other_model.len(), "step {step}");
        }
    }

    #[test]
    fn equal_lengths_share_one_run() {
        let mut lens = FrameLens::new();
        lens.extend([64; 1000]);
        assert_eq!(lens.runs.len(), 1);
        assert_eq!(lens.covered(1, 64 * 500 + 63), (500, 64 * 500));
        lens.move_front(600, None);
        assert_eq!((lens.len(), lens.runs.len()), (400, 1));
        lens.insert(200, 8);
        assert_eq!(lens.runs.len(), 3, "a different length splits the run");
    }
}
