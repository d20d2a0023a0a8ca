//! Tests of the framing codec (`tidegate_core::codec`) on its own, without a connection:
//! `LengthDelimited` encodes and decodes exactly, whatever the prefix width, byte order and
//! header accounting, and however the byte stream is cut into chunks; oversize headers are
//! refused from the header alone without reserving memory; streams that end inside a frame are
//! reported as truncated; and `Framing` hands out independent decoders.

use std::error::Error;

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use tidegate_core::codec::{
    DecodeError, Decoder, EncodeError, Encoder, Framing, LengthDelimited, MAX_HEADER_LEN,
};

const WIDTHS: [usize; 5] = [1, 2, 3, 4, 8];

/// A codec and how it was built.
#[derive(Debug, Clone, Copy)]
struct Built {
    codec: LengthDelimited,
    little: bool,
    includes: bool,
}

/// Every combination of width, byte order and header accounting, with a small maximum so the
/// largest frames stay cheap.
fn all_built(max: usize) -> Vec<Built> {
    let mut all = Vec::new();
    for width in WIDTHS {
        for little in [false, true] {
            for includes in [false, true] {
                let codec = LengthDelimited::new().width(width).length_includes_header(includes);
                let codec = if little { codec.little_endian() } else { codec.big_endian() };
                all.push(Built { codec: codec.max_frame_len(max), little, includes });
            }
        }
    }
    all
}

fn all_codecs(max: usize) -> Vec<LengthDelimited> {
    all_built(max).into_iter().map(|b| b.codec).collect()
}

/// A payload whose bytes depend on its index and position, so misplaced bytes show.
fn payload(index: usize, len: usize) -> Bytes {
    (0..len).map(|i| (index * 31 + i * 7) as u8).collect::<Vec<u8>>().into()
}

/// Header then payload, for each frame.
fn encode_all(codec: &LengthDelimited, frames: &[Bytes]) -> Vec<u8> {
    let mut wire = Vec::new();
    for frame in frames {
        let mut header = vec![0u8; codec.header_len()];
        codec.encode_header(frame.len(), &mut header).expect("within the maximum");
        wire.extend_from_slice(&header);
        wire.extend_from_slice(frame);
    }
    wire
}

/// Feeds `wire` to a fresh decoder in chunks ending at `cuts`, decoding after every chunk as
/// a connection does, then at end of stream. Checks that decoding never grows the buffer.
fn decode_in_chunks(
    codec: &LengthDelimited,
    wire: &[u8],
    cuts: &[usize],
) -> Result<Vec<Bytes>, DecodeError> {
    let mut decoder = *codec;
    let mut src = BytesMut::new();
    let mut frames = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain([&wire.len()]) {
        let end = end.clamp(start, wire.len());
        src.extend_from_slice(&wire[start..end]);
        start = end;
        let capacity = src.capacity();
        while let Some(frame) = decoder.decode(&mut src)? {
            frames.push(frame);
        }
        assert!(src.capacity() <= capacity, "decoding reserved memory");
    }
    while let Some(frame) = decoder.decode_eof(&mut src)? {
        frames.push(frame);
    }
    assert!(src.is_empty(), "decode_eof left {} bytes without an error", src.len());
    Ok(frames)
}

/// Writes `value` as a length field of `width` bytes.
fn raw_field(value: u64, width: usize, little: bool) -> Vec<u8> {
    let be = value.to_be_bytes();
    let mut field = be[8 - width..].to_vec();
    if little {
        field.reverse();
    }
    field
}

fn codec_strategy() -> impl Strategy<Value = LengthDelimited> {
    (prop::sample::select(WIDTHS.to_vec()), any::<bool>(), any::<bool>()).prop_map(
        |(width, little, includes)| {
            let codec = LengthDelimited::new()
                .width(width)
                .length_includes_header(includes)
                .max_frame_len(600);
            if little { codec.little_endian() } else { codec }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random frame sizes (empty, one byte, the maximum, anything between), encoded and
    /// concatenated, then cut into random chunks: decoding gives back exactly the frames, in
    /// order, whatever the width, byte order and header accounting.
    #[test]
    fn random_frames_in_random_chunks_decode_exactly(
        codec in codec_strategy(),
        picks in prop::collection::vec((0u8..4, 0usize..=600), 0..24),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
    ) {
        let max = codec.max_frame_len_bytes();
        let frames: Vec<Bytes> = picks
            .iter()
            .enumerate()
            .map(|(i, &(kind, len))| {
                let len = match kind {
                    0 => 0,
                    1 => 1,
                    2 => max,
                    _ => len.min(max),
                };
                payload(i, len)
            })
            .collect();
        let wire = encode_all(&codec, &frames);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
        cuts.sort_unstable();
        let decoded = decode_in_chunks(&codec, &wire, &cuts).expect("valid frames");
        prop_assert_eq!(decoded, frames);
    }
}

#[test]
fn every_split_point_of_the_stream_decodes_the_same_frames() {
    for codec in all_codecs(300) {
        let max = codec.max_frame_len_bytes();
        let frames: Vec<Bytes> = [0, 1, 2, max, 0, 17, max - 1]
            .iter()
            .enumerate()
            .map(|(i, &n)| payload(i, n))
            .collect();
        let wire = encode_all(&codec, &frames);
        for cut in 0..=wire.len() {
            let decoded = decode_in_chunks(&codec, &wire, &[cut]).expect("valid frames");
            assert_eq!(decoded, frames, "{codec:?} cut at {cut}");
        }
        let every_byte: Vec<usize> = (1..wire.len()).collect();
        let decoded = decode_in_chunks(&codec, &wire, &every_byte).expect("valid frames");
        assert_eq!(decoded, frames, "{codec:?} byte by byte");
    }
}

#[test]
fn headers_match_the_documented_wire_format() {
    let cases: [(LengthDelimited, usize, &[u8]); 7] = [
        (LengthDelimited::new(), 0x0102, &[0, 0, 1, 2]),
        (LengthDelimited::new().little_endian(), 0x0102, &[2, 1, 0, 0]),
        (LengthDelimited::new().width(1), 200, &[200]),
        (LengthDelimited::new().width(3).max_frame_len(1 << 20), 0x010203, &[1, 2, 3]),
        (
            LengthDelimited::new().width(3).little_endian().max_frame_len(1 << 20),
            0x010203,
            &[3, 2, 1],
        ),
        (LengthDelimited::new().width(8), 5, &[0, 0, 0, 0, 0, 0, 0, 5]),
        (LengthDelimited::new().width(2).length_includes_header(true), 5, &[0, 7]),
    ];
    for (codec, len, expected) in cases {
        let mut header = vec![0u8; codec.header_len()];
        codec.encode_header(len, &mut header).unwrap();
        assert_eq!(header, expected, "{codec:?} for {len}");
    }
}

#[test]
fn the_maximum_is_clamped_to_what_the_field_can_express() {
    assert_eq!(LengthDelimited::new().width(1).max_frame_len_bytes(), 255);
    assert_eq!(LengthDelimited::new().width(2).max_frame_len_bytes(), 65_535);
    let counted = LengthDelimited::new().width(2).length_includes_header(true);
    assert_eq!(counted.max_frame_len_bytes(), 65_533);
    assert_eq!(LengthDelimited::new().width(8).max_frame_len(7).max_frame_len_bytes(), 7);
    assert_eq!(LengthDelimited::new().width(1).max_encoded_len(), Some(256));
    assert!(LengthDelimited::new().width(8).max_frame_len(usize::MAX).max_encoded_len().is_some());
}

#[test]
fn encoding_a_payload_over_the_maximum_fails() {
    for codec in all_codecs(100) {
        let mut header = vec![0u8; codec.header_len()];
        let max = codec.max_frame_len_bytes();
        assert_eq!(
            codec.encode_header(max + 1, &mut header),
            Err(EncodeError::TooLarge { len: max + 1, max })
        );
        codec.encode_header(max, &mut header).unwrap();
    }
}

#[test]
fn an_oversize_header_is_refused_from_the_header_alone() {
    for Built { codec, little, includes } in all_built(100) {
        let width = codec.header_len();
        let max = codec.max_frame_len_bytes();
        let announced = (max + 1) as u64 + if includes { width as u64 } else { 0 };
        let mut src = BytesMut::with_capacity(64);
        src.put_slice(&raw_field(announced, width, little));
        let (len, capacity) = (src.len(), src.capacity());
        match { codec }.decode(&mut src) {
            Err(DecodeError::TooLarge { len, max: m }) => {
                assert_eq!((len, m), ((max + 1) as u64, max), "{codec:?}");
            }
            other => panic!("{codec:?}: expected TooLarge, got {other:?}"),
        }
        assert_eq!((src.len(), src.capacity()), (len, capacity), "{codec:?}: src untouched");
        // At end of stream too: too large, not truncated.
        assert!(matches!({ codec }.decode_eof(&mut src), Err(DecodeError::TooLarge { .. })));
    }
}

#[test]
fn an_all_ones_eight_byte_header_allocates_nothing() {
    for includes in [false, true] {
        let mut decoder = LengthDelimited::new().width(8).length_includes_header(includes);
        let mut src = BytesMut::with_capacity(8);
        src.put_slice(&[0xFF; 8]);
        let capacity = src.capacity();
        let err = decoder.decode(&mut src).unwrap_err();
        let expected_len = if includes { u64::MAX - 8 } else { u64::MAX };
        assert!(matches!(err, DecodeError::TooLarge { len, .. } if len == expected_len), "{err:?}");
        assert_eq!(src.capacity(), capacity, "decoding reserved memory");
        assert_eq!(src.len(), 8);
    }
}

#[test]
fn a_stream_that_ends_inside_a_frame_is_truncated() {
    for codec in all_codecs(100) {
        let width = codec.header_len();
        let wire = encode_all(&codec, &[payload(0, 10)]);
        // Inside the header.
        for cut in 1..width {
            let mut src = BytesMut::from(&wire[..cut]);
            let err = { codec }.decode_eof(&mut src).unwrap_err();
            assert!(
                matches!(err, DecodeError::Truncated { missing: Some(m), buffered }
                    if m == width - cut && buffered == cut),
                "{codec:?} cut {cut}: {err:?}"
            );
        }
        // Inside the body.
        for cut in width..wire.len() {
            let mut src = BytesMut::from(&wire[..cut]);
            let err = { codec }.decode_eof(&mut src).unwrap_err();
            assert!(
                matches!(err, DecodeError::Truncated { missing: Some(m), buffered }
                    if m == wire.len() - cut && buffered == cut),
                "{codec:?} cut {cut}: {err:?}"
            );
        }
        // Whole frames then nothing: a clean end.
        let mut src = BytesMut::from(&wire[..]);
        assert_eq!({ codec }.decode_eof(&mut src).unwrap(), Some(payload(0, 10)));
        assert_eq!({ codec }.decode_eof(&mut src).unwrap(), None);
    }
}

#[test]
fn a_length_smaller_than_the_header_it_counts_is_invalid() {
    let mut decoder = LengthDelimited::new().width(4).length_includes_header(true);
    let mut src = BytesMut::from(&[0, 0, 0, 3, 9][..]);
    let err = decoder.decode(&mut src).unwrap_err();
    assert!(matches!(err, DecodeError::InvalidLength { value: 3 }), "{err:?}");
    assert_eq!(src.len(), 5);
}

/// Frames ending with a zero byte, with no limit, for the trait's default methods.
#[derive(Clone)]
struct ZeroTerminated;

impl Decoder for ZeroTerminated {
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, DecodeError> {
        let Some(end) = src.iter().position(|b| *b == 0) else { return Ok(None) };
        let frame = src.split_to(end + 1).freeze();
        Ok(Some(frame.slice(..end)))
    }
}

#[test]
fn the_default_decode_eof_reports_leftover_bytes() {
    let mut src = BytesMut::from(&b"ab\0cd"[..]);
    let mut decoder = ZeroTerminated;
    assert_eq!(decoder.decode_eof(&mut src).unwrap().unwrap(), "ab");
    let err = decoder.decode_eof(&mut src).unwrap_err();
    assert!(matches!(err, DecodeError::Truncated { missing: None, buffered: 2 }), "{err:?}");
    assert_eq!(decoder.max_encoded_len(), None);
}

#[test]
fn framing_hands_out_independent_decoders() {
    let framing = Framing::new(LengthDelimited::new().width(1));
    let mut first = framing.new_decoder().unwrap();
    let mut second = framing.new_decoder().unwrap();
    let mut a = BytesMut::from(&b"\x02xy\x01"[..]);
    let mut b = BytesMut::from(&b"\x01z"[..]);
    assert_eq!(first.decode(&mut a).unwrap().unwrap(), "xy");
    assert_eq!(second.decode(&mut b).unwrap().unwrap(), "z");
    assert_eq!(first.decode(&mut a).unwrap(), None);
    assert_eq!(framing.encoder().unwrap().header_len(), 1);

    let decode_only = Framing::none().with_decoder_fn(|| ZeroTerminated);
    assert!(decode_only.encoder().is_none());
    let mut src = BytesMut::from(&b"q\0"[..]);
    assert_eq!(decode_only.new_decoder().unwrap().decode(&mut src).unwrap().unwrap(), "q");
    assert!(Framing::none().is_none() && !decode_only.is_none());
    assert!(format!("{framing:?}").contains("header_len"));
}

#[test]
#[should_panic(expected = "MAX_HEADER_LEN")]
fn an_encoder_with_a_header_over_the_limit_is_refused() {
    struct Wide;
    impl Encoder for Wide {
        fn header_len(&self) -> usize {
            MAX_HEADER_LEN + 1
        }
        fn encode_header(&self, _: usize, _: &mut [u8]) -> Result<(), EncodeError> {
            Ok(())
        }
    }
    let _ = Framing::none().with_encoder(Wide);
}

#[test]
#[should_panic(expected = "1, 2, 3, 4 or 8")]
fn an_unsupported_width_is_refused() {
    let _ = LengthDelimited::new().width(5);
}

#[test]
fn errors_are_thread_safe_and_print_their_cause_once() {
    fn assert_error<E: Error + Send + Sync + 'static>() {}
    assert_error::<DecodeError>();
    assert_error::<EncodeError>();
    let err = DecodeError::malformed("bad tag 7");
    assert_eq!(err.to_string(), "malformed frame");
    assert_eq!(err.source().unwrap().to_string(), "bad tag 7");
    let err = DecodeError::Truncated { missing: Some(3), buffered: 5 };
    assert_eq!(err.to_string(), "the stream ended inside a frame: 5 bytes received, 3 more needed");
    assert!(err.source().is_none());
}
