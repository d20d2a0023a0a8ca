//! Drives the outgoing buffer and the waiter queue of the core with arbitrary operation
//! sequences and checks their invariants (see `tidegate_core::fuzzing`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tidegate_core::fuzzing::run(data));
