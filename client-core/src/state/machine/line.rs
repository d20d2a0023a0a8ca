//! One lane's line of waiting senders, oldest first, by ticket.
//!
//! Senders join at the back with increasing tickets and are mostly let in from the front, so
//! the line is a ring of slots rather than a search tree: joining and leaving at the front
//! cost a push and a pop, and a waiting sender costs its slot and no tree node around it
//! (a B-tree's nodes were a little over half full in the benchmark's parked senders). A sender
//! that gives up from the middle leaves an empty slot behind, found by its ticket with a
//! binary search; empty slots are dropped when they reach the front, and all at once when they
//! outnumber the waiting senders, so they never hold more than about as many slots as wait.

use std::collections::VecDeque;

/// Empty slots tolerated beyond the number of waiting senders before the line is compacted.
const SLACK: usize = 32;

/// A line of `T`s by increasing ticket.
#[derive(Debug)]
pub(crate) struct Line<T> {
    /// Oldest first, tickets increasing. `None` is a sender that left from the middle.
    ///
    /// Invariant: the front slot, if any, holds a sender.
    slots: VecDeque<(u64, Option<T>)>,
    /// The slots that hold a sender.
    live: usize,
}

impl<T> Default for Line<T> {
    fn default() -> Self {
        Self { slots: VecDeque::new(), live: 0 }
    }
}

impl<T> Line<T> {
    /// How many wait.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Puts `item` at the back under `ticket`, which is greater than every ticket in line.
    pub(crate) fn insert(&mut self, ticket: u64, item: T) {
        debug_assert!(
            self.slots.back().is_none_or(|&(last, _)| last < ticket),
            "tickets join in increasing order"
        );
        self.slots.push_back((ticket, Some(item)));
        self.live += 1;
    }

    /// The head of the line.
    pub(crate) fn first_key_value(&self) -> Option<(&u64, &T)> {
        let (ticket, item) = self.slots.front()?;
        Some((ticket, item.as_ref().expect("the front slot holds a sender")))
    }

    /// Takes the head of the line out.
    pub(crate) fn pop_first(&mut self) -> Option<(u64, T)> {
        let (ticket, item) = self.slots.pop_front()?;
        self.live -= 1;
        self.trim();
        Some((ticket, item.expect("the front slot holds a sender")))
    }

    /// The sender under `ticket`, if it waits here.
    pub(crate) fn get_mut(&mut self, ticket: &u64) -> Option<&mut T> {
        let at = self.find(*ticket)?;
        self.slots[at].1.as_mut()
    }

    /// Takes the sender under `ticket` out, if it waits here.
    pub(crate) fn remove(&mut self, ticket: &u64) -> Option<T> {
        let at = self.find(*ticket)?;
        let item = self.slots[at].1.take()?;
        self.live -= 1;
        self.trim();
        if self.slots.len() > 2 * self.live + SLACK {
            self.slots.retain(|(_, item)| item.is_some());
        }
        Some(item)
    }

    /// Takes every sender out, oldest first.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (u64, T)> + use<T> {
        self.live = 0;
        std::mem::take(&mut self.slots)
            .into_iter()
            .filter_map(|(ticket, item)| item.map(|item| (ticket, item)))
    }

    /// Whether the sender under `ticket` waits here.
    #[cfg(test)]
    pub(crate) fn contains_key(&self, ticket: &u64) -> bool {
        self.find(*ticket).is_some_and(|at| self.slots[at].1.is_some())
    }

    /// The tickets in line, oldest first.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> impl Iterator<Item = &u64> + '_ {
        self.slots.iter().filter(|(_, item)| item.is_some()).map(|(ticket, _)| ticket)
    }

    fn find(&self, ticket: u64) -> Option<usize> {
        self.slots.binary_search_by_key(&ticket, |&(t, _)| t).ok()
    }

    /// Drops the empty slots at the front, and gives memory back once most of it is unused.
    fn trim(&mut self) {
        while matches!(self.slots.front(), Some((_, None))) {
            self.slots.pop_front();
        }
        let capacity = self.slots.capacity();
        if capacity > 4 * self.slots.len() + SLACK {
            self.slots.shrink_to(2 * self.slots.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A `Line` and a `BTreeMap` fed the same joins, pops, removals and look-ups agree on
    /// every answer, and the line's slots stay within its bound.
    #[test]
    fn a_line_answers_as_an_ordered_map_does() {
        let mut line: Line<u64> = Line::default();
        let mut model: BTreeMap<u64, u64> = BTreeMap::new();
        let mut next = 0u64;
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for step in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Pick a ticket near the live range, sometimes one that never joined or left.
            let probe = if next == 0 { 0 } else { (seed >> 16) % (next + 2) };
            match seed % 8 {
                0..=2 => {
                    line.insert(next, next * 3);
                    model.insert(next, next * 3);
                    next += 1;
                }
                3 => assert_eq!(line.pop_first(), model.pop_first(), "step {step}"),
                4 | 5 => assert_eq!(line.remove(&probe), model.remove(&probe), "step {step}"),
                6 => {
                    if let Some(item) = line.get_mut(&probe) {
                        *item += 1;
                    }
                    if let Some(item) = model.get_mut(&probe) {
                        *item += 1;
                    }
                }
                _ => {
                    if (seed >> 8).is_multiple_of(500) {
                        assert!(line.drain().eq(std::mem::take(&mut model)), "step {step}");
                    }
                }
            }
            assert_eq!(line.len(), model.len(), "step {step}");
            assert_eq!(line.first_key_value(), model.first_key_value(), "step {step}");
            assert!(line.keys().eq(model.keys()), "step {step}");
            assert_eq!(line.contains_key(&probe), model.contains_key(&probe), "step {step}");
            assert!(line.slots.len() <= 2 * line.live + SLACK + 1, "step {step}: slack bounded");
        }
    }

    #[test]
    fn a_long_line_gives_its_memory_back_once_it_empties() {
        let mut line: Line<[u8; 64]> = Line::default();
        for ticket in 0..100_000 {
            line.insert(ticket, [0; 64]);
        }
        for ticket in (0..100_000).rev() {
            assert!(line.remove(&ticket).is_some());
        }
        assert!(line.is_empty());
        assert!(line.slots.capacity() <= 4 * SLACK, "{} slots kept", line.slots.capacity());
    }
}
