//! Hybrid logical clock: orders scans across gates whose wall clocks disagree.
//!
//! A timestamp packs wall-clock milliseconds (48 bits) and a counter (16 bits).
//! Each local event gets a timestamp above every one this node has seen, and
//! never far from its wall clock (Kulkarni et al., 2014). Pure: the caller
//! passes the wall clock in.

use serde::{Deserialize, Serialize};

/// A hybrid logical timestamp; ordering it orders events causally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct HlcTimestamp(pub u64);

const COUNTER_BITS: u32 = 16;

impl HlcTimestamp {
    /// The timestamp at wall-clock `millis` with counter 0.
    pub fn from_millis(millis: u64) -> Self {
        Self(millis << COUNTER_BITS)
    }

    /// Its wall-clock part, in Unix milliseconds.
    pub fn millis(self) -> u64 {
        self.0 >> COUNTER_BITS
    }

    /// Its wall-clock part, in Unix seconds.
    pub fn seconds(self) -> u64 {
        self.millis() / 1_000
    }
}

/// One node's clock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hlc {
    last: HlcTimestamp,
}

impl Hlc {
    /// A clock that has already issued or seen `last` (e.g. from the ledger after a restart).
    pub fn resume(last: HlcTimestamp) -> Self {
        Self { last }
    }

    /// A timestamp for a local event at wall-clock `now_millis`.
    pub fn tick(&mut self, now_millis: u64) -> HlcTimestamp {
        let wall = HlcTimestamp::from_millis(now_millis);
        self.last = if wall > self.last { wall } else { HlcTimestamp(self.last.0.saturating_add(1)) };
        self.last
    }

    /// Takes in a timestamp from another node, so later local events order after it.
    pub fn observe(&mut self, remote: HlcTimestamp, now_millis: u64) -> HlcTimestamp {
        let wall = HlcTimestamp::from_millis(now_millis);
        let top = self.last.max(remote);
        self.last = if wall > top { wall } else { HlcTimestamp(top.0.saturating_add(1)) };
        self.last
    }

    /// The latest timestamp issued or seen.
    pub fn last(&self) -> HlcTimestamp {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_strictly_increasing_even_when_the_wall_clock_steps_back() {
        let mut clock = Hlc::default();
        let a = clock.tick(1_000);
        let b = clock.tick(1_000);
        let c = clock.tick(900);
        let d = clock.tick(2_000);
        assert!(a < b && b < c && c < d);
        assert_eq!((a.millis(), c.millis(), d.millis()), (1_000, 1_000, 2_000));
    }

    #[test]
    fn a_gate_running_slow_orders_after_what_it_has_seen() {
        let mut fast = Hlc::default();
        let mut slow = Hlc::default();
        let seen = fast.tick(10_000_000);
        slow.observe(seen, 10_000_000 - 300_000);
        let later = slow.tick(10_000_000 - 299_000);
        assert!(later > seen, "causality holds across a 5-minute skew");
        assert!(later.millis() - seen.millis() < 1_000);
        assert_eq!(Hlc::resume(later).tick(0), HlcTimestamp(later.0 + 1));
    }
}
