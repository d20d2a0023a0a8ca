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

#[test]
fn a_frame_is_its_ramp_and_any_changed_byte_is_caught() {
    let frame = support::frame(3, 41, 1000);
    // The payload is the header's constant plus the offset, modulo 256.
    let base = 3u64 * 31 + 41 * 7;
    for (i, &b) in frame.iter().enumerate().skip(support::HEADER) {
        assert_eq!(b, (base + i as u64) as u8, "byte {i}");
    }
    assert!(support::is_frame(&frame, 3, 41));
    assert!(!support::is_frame(&frame, 3, 42), "another frame's number");
    assert!(!support::is_frame(&frame[..999], 3, 41), "a frame cut short");
    for at in [support::HEADER, 200, 255, 256, 271, 272, 999] {
        let mut bad = frame.to_vec();
        bad[at] ^= 0x40;
        assert!(!support::is_frame(&bad, 3, 41), "byte {at} changed");
        let err = support::Verifier::new().feed(&bad).unwrap_err();
        assert!(err.contains(&format!("byte {at} ")), "{err}");
    }
}
