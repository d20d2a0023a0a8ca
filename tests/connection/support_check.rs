//! Checks the test-support module against itself.

use crate::support;

#[test]
fn verifier_accepts_frames_split_anywhere() {
    let mut all = Vec::new();
    for seq in 0..20 {
        all.extend_from_slice(&support::frame(1, seq, 16 + seq as usize * 3));
    }
    for split in [1, 7, 16, 17, 100] {
        let mut v = support::Verifier::new();
        for chunk in all.chunks(split) {
            v.feed(chunk).unwrap();
        }
        assert_eq!(v.frames, 20);
        assert!(v.at_boundary());
    }
    let mut bad = all.clone();
    bad[40] ^= 1;
    assert!(support::Verifier::new().feed(&bad).is_err());
}
