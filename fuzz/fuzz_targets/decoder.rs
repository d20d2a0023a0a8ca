//! Feeds the length-delimited decoder arbitrary bytes, cut into arbitrary chunks, and checks
//! it against a reference that parses the whole input at once: the same frames in the same
//! order, the same ending (a clean end, or the same error), and no memory reserved by the
//! decoder.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tidegate_core::codec::{DecodeError, Decoder, LengthDelimited};

/// How a decoding ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Clean,
    TooLarge { len: u64 },
    Truncated { missing: usize, buffered: usize },
    InvalidLength { value: u64 },
}

fn end_of(err: DecodeError) -> End {
    match err {
        DecodeError::TooLarge { len, .. } => End::TooLarge { len },
        DecodeError::Truncated { missing, buffered } => {
            End::Truncated { missing: missing.expect("the codec knows what is missing"), buffered }
        }
        DecodeError::InvalidLength { value } => End::InvalidLength { value },
        other => panic!("unexpected error {other:?}"),
    }
}

/// Parses `input` in one go.
fn reference(
    input: &[u8],
    width: usize,
    big: bool,
    includes: bool,
    max: usize,
) -> (Vec<Vec<u8>>, End) {
    let mut frames = Vec::new();
    let mut at = 0;
    loop {
        let rest = &input[at..];
        if rest.is_empty() {
            return (frames, End::Clean);
        }
        if rest.len() < width {
            return (frames, End::Truncated { missing: width - rest.len(), buffered: rest.len() });
        }
        let field = &rest[..width];
        let value = if big {
            field.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b))
        } else {
            field.iter().rev().fold(0u64, |v, &b| (v << 8) | u64::from(b))
        };
        let len = if includes {
            match value.checked_sub(width as u64) {
                Some(len) => len,
                None => return (frames, End::InvalidLength { value }),
            }
        } else {
            value
        };
        if len > max as u64 {
            return (frames, End::TooLarge { len });
        }
        let len = len as usize;
        if rest.len() < width + len {
            return (
                frames,
                End::Truncated { missing: width + len - rest.len(), buffered: rest.len() },
            );
        }
        frames.push(rest[width..width + len].to_vec());
        at += width + len;
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (setup, seed, input) = (data[0], data[1], &data[2..]);
    let width = [1, 2, 3, 4, 8][usize::from(setup % 5)];
    let big = setup & 0x10 == 0;
    let includes = setup & 0x20 != 0;
    let max = [0, 1, 7, 255, 300, 4096][usize::from(setup >> 6) + usize::from(seed & 1) * 2];
    let mut codec =
        LengthDelimited::new().width(width).length_includes_header(includes).max_frame_len(max);
    codec = if big { codec.big_endian() } else { codec.little_endian() };
    let max = codec.max_frame_len_bytes();
    let (want_frames, want_end) = reference(input, width, big, includes, max);

    // Chunk sizes from a small generator seeded by `seed`.
    let mut state = u32::from(seed) | 1;
    let mut next_chunk = move || {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        1 + (state >> 16) as usize % 97
    };
    let mut src = BytesMut::new();
    let mut frames = Vec::new();
    let mut fed = 0;
    let mut end = None;
    'feed: while fed < input.len() {
        let n = next_chunk().min(input.len() - fed);
        src.extend_from_slice(&input[fed..fed + n]);
        fed += n;
        loop {
            let capacity = src.capacity();
            let decoded = codec.decode(&mut src);
            assert!(src.capacity() <= capacity, "the decoder reserved memory");
            match decoded {
                Ok(Some(frame)) => frames.push(frame.to_vec()),
                Ok(None) => break,
                Err(err) => {
                    end = Some(end_of(err));
                    break 'feed;
                }
            }
        }
    }
    let end = match end {
        Some(end) => end,
        None => loop {
            match codec.decode_eof(&mut src) {
                Ok(Some(frame)) => frames.push(frame.to_vec()),
                Ok(None) => break End::Clean,
                Err(err) => break end_of(err),
            }
        },
    };
    assert_eq!(frames, want_frames);
    assert_eq!(end, want_end);
});
