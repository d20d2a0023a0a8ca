//! Unit tests of the outgoing buffer: coalescing, order, byte accounting, urgent splicing.

use super::*;

fn frame(byte: u8, len: usize) -> Bytes {
    Bytes::from(vec![byte; len])
}

#[test]
fn small_frames_coalesce_and_large_ones_keep_order() {
    let mut buf = OutBuffer::new(1 << 20);
    buf.push(frame(1, 10));
    buf.push(frame(2, 20));
    buf.push(frame(3, COPY_MAX + 1));
    buf.push(frame(4, 5));
    assert_eq!(buf.held(), 35 + COPY_MAX + 1);
    let mut out = VecDeque::new();
    buf.take_chunks(&mut out);
    let lens: Vec<usize> = out.iter().map(Bytes::len).collect();
    assert_eq!(lens, [30, COPY_MAX + 1, 5]);
    assert_eq!(buf.queued(), 0);
    assert_eq!(buf.held(), 35 + COPY_MAX + 1);
}

#[test]
fn consume_counts_completed_frames_across_partial_writes() {
    let mut buf = OutBuffer::new(1024);
    for len in [3, 4, 5] {
        buf.push(frame(len as u8, len));
    }
    let mut out = VecDeque::new();
    buf.take_chunks(&mut out);
    assert_eq!(buf.consume(2), 0);
    assert_eq!(buf.consume(2), 1);
    assert_eq!(buf.consume(7), 1);
    assert_eq!(buf.held(), 1);
    assert_eq!(buf.consume(1), 1);
    assert_eq!(buf.held(), 0);
}

#[test]
fn drain_unsent_returns_whole_frames_with_written_prefix() {
    let mut buf = OutBuffer::new(1 << 20);
    buf.push(frame(1, 4));
    buf.push(frame(2, 6));
    buf.push(frame(3, COPY_MAX + 10));
    let mut in_flight = VecDeque::new();
    buf.take_chunks(&mut in_flight);
    buf.push(frame(4, 3));
    // The link accepted the first frame and two bytes of the second.
    assert_eq!(buf.consume(6), 1);
    let unsent = buf.drain_unsent(&mut in_flight, 6);
    let got: Vec<(u8, usize, usize)> =
        unsent.iter().map(|u| (u.frame()[0], u.frame().len(), u.written())).collect();
    assert_eq!(got, [(2, 6, 2), (3, COPY_MAX + 10, 0), (4, 3, 0)]);
    assert!(unsent.iter().all(|u| u.frame().iter().all(|b| *b == u.frame()[0])));
    assert_eq!(buf.held(), 0);
}

/// Writes everything in flight to a vector, as a link that takes it all would.
fn write_all(buf: &mut OutBuffer, in_flight: &mut VecDeque<Bytes>, offset: usize) -> Vec<u8> {
    let mut wire = Vec::new();
    for (i, chunk) in in_flight.drain(..).enumerate() {
        wire.extend_from_slice(&chunk[if i == 0 { offset } else { 0 }..]);
    }
    buf.consume(wire.len());
    wire
}

#[test]
fn urgent_frames_go_in_at_the_next_frame_boundary() {
    let mut buf = OutBuffer::new(1 << 20);
    for byte in 1..=3 {
        buf.push(frame(byte, 4));
    }
    let mut in_flight = VecDeque::new();
    buf.take_chunks(&mut in_flight);
    // Five bytes are out: frame 1 and one byte of frame 2.
    assert_eq!(buf.consume(5), 1);
    buf.push_urgent(frame(9, 2));
    assert!(!buf.at_boundary(), "frame 2 has started");
    assert_eq!(buf.head_remaining(), 3);
    // The driver writes the rest of frame 2, then splices.
    let mut offset = 5;
    assert_eq!(buf.consume(3), 1);
    offset += 3;
    assert!(buf.at_boundary());
    buf.splice_urgent(&mut in_flight, offset);
    buf.push_urgent(frame(8, 1));
    assert!(buf.at_boundary(), "behind a spliced urgent frame, more may follow");
    buf.splice_urgent(&mut in_flight, offset);
    assert_eq!(write_all(&mut buf, &mut in_flight, offset), [9, 9, 8, 3, 3, 3, 3]);
    assert_eq!(buf.held(), 0);
}

#[test]
fn unsent_frames_keep_the_order_of_the_wire() {
    let mut buf = OutBuffer::new(1 << 20);
    buf.push(frame(1, 3));
    buf.push(frame(2, 3));
    let mut in_flight = VecDeque::new();
    buf.take_chunks(&mut in_flight);
    buf.push_urgent(frame(9, 2));
    buf.splice_urgent(&mut in_flight, 0);
    buf.push_urgent(frame(8, 2));
    // One byte of the urgent frame went out.
    assert_eq!(buf.consume(1), 0);
    let unsent = buf.drain_unsent(&mut in_flight, 1);
    let got: Vec<(u8, usize)> = unsent.iter().map(|u| (u.frame()[0], u.written())).collect();
    assert_eq!(got, [(9, 1), (1, 0), (2, 0), (8, 0)]);
}

#[test]
fn tail_segments_never_split_a_frame() {
    let mut buf = OutBuffer::new(100);
    for i in 0..50u8 {
        buf.push(frame(i, 7));
    }
    let mut out = VecDeque::new();
    buf.take_chunks(&mut out);
    assert!(out.iter().all(|c| c.len() % 7 == 0));
    assert_eq!(out.iter().map(Bytes::len).sum::<usize>(), 350);
}

#[test]
fn a_batch_keeps_its_frames_whole_and_in_order_between_others() {
    let mut buf = OutBuffer::new(1 << 20);
    buf.push(frame(1, 3));
    // Small: copied into the tail behind the frame before it.
    buf.push_batch(Bytes::from_static(&[2, 2, 3, 3, 3]), &[2, 3]);
    // Large: one chunk of its own, not copied.
    let big: Vec<u8> = [vec![4; COPY_MAX], vec![5; 10]].concat();
    let big = Bytes::from(big);
    buf.push_batch(big.clone(), &[COPY_MAX, 10]);
    buf.push(frame(6, 1));
    assert_eq!(buf.held(), 3 + 5 + COPY_MAX + 10 + 1);
    let mut in_flight = VecDeque::new();
    buf.take_chunks(&mut in_flight);
    let lens: Vec<usize> = in_flight.iter().map(Bytes::len).collect();
    assert_eq!(lens, [8, COPY_MAX + 10, 1]);
    assert_eq!(in_flight[1].as_ptr(), big.as_ptr(), "a large batch is queued without a copy");
    // Every frame of the batch counts as one when it completes.
    assert_eq!(buf.consume(3 + 2 + 3), 3);
    assert_eq!(buf.consume(COPY_MAX + 10 + 1), 3);
    assert_eq!(buf.held(), 0);
}

#[test]
fn unsent_batch_frames_come_back_one_by_one() {
    let mut buf = OutBuffer::new(1 << 20);
    let big: Vec<u8> = [vec![1; 4], vec![2; COPY_MAX], vec![3; 6]].concat();
    buf.push_batch(Bytes::from(big), &[4, COPY_MAX, 6]);
    let mut in_flight = VecDeque::new();
    buf.take_chunks(&mut in_flight);
    buf.push_batch(Bytes::from_static(&[7, 8, 8]), &[1, 2]);
    // The first frame and 5 bytes of the second are out.
    assert_eq!(buf.consume(9), 1);
    let unsent = buf.drain_unsent(&mut in_flight, 9);
    let got: Vec<(u8, usize, usize)> =
        unsent.iter().map(|u| (u.frame()[0], u.frame().len(), u.written())).collect();
    assert_eq!(got, [(2, COPY_MAX, 5), (3, 6, 0), (7, 1, 0), (8, 2, 0)]);
    assert!(unsent.iter().all(|u| u.frame().iter().all(|b| *b == u.frame()[0])));
}

#[test]
fn a_framed_batch_comes_back_without_its_headers() {
    let mut buf = framed_buffer();
    let wire: Vec<u8> = [&[0u8, 2, 1, 1][..], &[0, 0], &[0, 1, 2]].concat();
    buf.push_batch(Bytes::from(wire.clone()), &[4, 2, 3]);
    let mut in_flight = VecDeque::new();
    buf.take_chunks(&mut in_flight);
    assert_eq!(wire_of(&in_flight), wire);
    let unsent = buf.drain_unsent(&mut in_flight, 0);
    let got: Vec<&[u8]> = unsent.iter().map(|u| &u.frame()[..]).collect();
    assert_eq!(got, [&[1u8, 1][..], &[], &[2]]);
}

/// A 2-byte big-endian length header, as `LengthDelimited::new().width(2)` writes it.
fn header(payload_len: usize) -> Header {
    let codec = crate::state::codec::LengthDelimited::new().width(2);
    Header::encode(&codec, payload_len).expect("fits in 2 bytes")
}

fn framed_buffer() -> OutBuffer {
    let mut buf = OutBuffer::new(1 << 20);
    buf.set_header_len(2);
    buf
}

fn wire_of(chunks: &VecDeque<Bytes>) -> Vec<u8> {
    chunks.iter().flat_map(|c| c.iter().copied()).collect()
}

#[test]
fn a_small_payload_is_copied_behind_its_header_in_the_tail() {
    let mut buf = framed_buffer();
    buf.push_framed(&header(3), frame(1, 3));
    buf.push_framed(&header(0), Bytes::new());
    buf.push_framed(&header(COPY_MAX), frame(2, COPY_MAX));
    assert_eq!(buf.held(), 3 + 2 + 2 + 2 + COPY_MAX);
    let mut out = VecDeque::new();
    buf.take_chunks(&mut out);
    assert_eq!(out.len(), 1, "header and payload share the tail: {out:?}");
    let wire = wire_of(&out);
    assert_eq!(&wire[..7], [0, 3, 1, 1, 1, 0, 0]);
    assert_eq!(&wire[7..9], (COPY_MAX as u16).to_be_bytes());
    assert!(wire[9..].iter().all(|b| *b == 2) && wire.len() == 9 + COPY_MAX);
    assert_eq!(buf.consume(wire.len()), 3, "three frames complete");
}

#[test]
fn a_large_payload_is_queued_without_a_copy_behind_its_header() {
    let mut buf = framed_buffer();
    buf.push_framed(&header(1), frame(1, 1));
    let large = frame(2, COPY_MAX + 1);
    buf.push_framed(&header(large.len()), large.clone());
    buf.push_framed(&header(2), frame(3, 2));
    let mut out = VecDeque::new();
    buf.take_chunks(&mut out);
    assert_eq!(out.len(), 3);
    assert_eq!(out[0], Bytes::from(vec![0, 1, 1, 0x08, 0x01]), "the header ends the chunk");
    assert_eq!(out[1].as_ptr(), large.as_ptr(), "the payload was not copied");
    assert_eq!(out[2], Bytes::from_static(&[0, 2, 3, 3]));
    assert_eq!(buf.consume(5 + COPY_MAX + 1 + 4), 3);
    assert_eq!(buf.held(), 0);
}

#[test]
fn unsent_framed_frames_come_back_without_their_headers() {
    // The link took part of the second frame's header, or all of it, or some payload.
    for (taken, written) in [(3, 0), (4, 1), (5, 2), (7, 4)] {
        let mut buf = framed_buffer();
        buf.push_framed(&header(1), frame(1, 1));
        let large = frame(2, COPY_MAX + 5);
        buf.push_framed(&header(large.len()), large.clone());
        buf.push_framed(&header(3), frame(3, 3));
        buf.push_urgent_framed(&header(2), frame(9, 2));
        let mut in_flight = VecDeque::new();
        buf.take_chunks(&mut in_flight);
        assert_eq!(buf.consume(taken), 1);
        let mut offset = 0;
        advance(&mut in_flight, &mut offset, taken);
        let unsent = buf.drain_unsent(&mut in_flight, offset);
        let got: Vec<(&Bytes, usize)> = unsent.iter().map(|u| (u.frame(), u.written())).collect();
        assert_eq!(
            got,
            [(&large, written), (&frame(3, 3), 0), (&frame(9, 2), 0)],
            "after {taken} bytes"
        );
        assert_eq!(buf.held(), 0);
    }
}

#[test]
fn a_framed_buffer_written_out_reports_nothing_unsent() {
    let mut buf = framed_buffer();
    buf.push_framed(&header(3), frame(1, 3));
    let mut in_flight = VecDeque::new();
    buf.take_chunks(&mut in_flight);
    assert_eq!(buf.consume(5), 1);
    in_flight.clear();
    assert!(buf.drain_unsent(&mut in_flight, 0).is_empty());
    assert!(framed_buffer().drain_unsent(&mut VecDeque::new(), 0).is_empty());
}

#[test]
fn framed_urgent_frames_go_in_whole_at_a_frame_boundary() {
    let mut buf = framed_buffer();
    let large = frame(2, COPY_MAX + 3);
    buf.push_framed(&header(large.len()), large);
    buf.push_framed(&header(1), frame(3, 1));
    let mut in_flight = VecDeque::new();
    buf.take_chunks(&mut in_flight);
    // One byte of the large frame's header is out: splicing must wait for its end.
    assert_eq!(buf.consume(1), 0);
    let mut offset = 1;
    let urgent = frame(9, COPY_MAX + 1);
    buf.push_urgent_framed(&header(urgent.len()), urgent);
    buf.push_urgent_framed(&header(1), frame(8, 1));
    assert!(!buf.at_boundary());
    assert_eq!(buf.head_remaining(), 2 + COPY_MAX + 3 - 1);
    let rest = buf.head_remaining();
    let mut wire = vec![in_flight[0][0]];
    let mut taken = 0;
    while taken < rest {
        let chunk = &in_flight[0][offset..];
        let n = chunk.len().min(rest - taken);
        wire.extend_from_slice(&chunk[..n]);
        taken += n;
        advance(&mut in_flight, &mut offset, n);
    }
    assert_eq!(buf.consume(rest), 1);
    assert!(buf.at_boundary());
    buf.splice_urgent(&mut in_flight, offset);
    wire.extend(write_all(&mut buf, &mut in_flight, offset));
    let frames = decode_all(&wire);
    let got: Vec<(u8, usize)> = frames.iter().map(|f| (f[0], f.len())).collect();
    assert_eq!(got, [(2, COPY_MAX + 3), (9, COPY_MAX + 1), (8, 1), (3, 1)]);
    assert_eq!(buf.held(), 0);
}

/// Drops `n` bytes from the front of the chunks in flight, as the driver does.
pub(crate) fn advance(in_flight: &mut VecDeque<Bytes>, offset: &mut usize, mut n: usize) {
    while n > 0 {
        let left = in_flight[0].len() - *offset;
        if n < left {
            *offset += n;
            return;
        }
        n -= left;
        in_flight.pop_front();
        *offset = 0;
    }
}

/// Decodes a wire of whole frames with 2-byte headers.
fn decode_all(wire: &[u8]) -> Vec<Bytes> {
    use crate::state::codec::Decoder;
    let mut decoder = crate::state::codec::LengthDelimited::new().width(2);
    let mut src = BytesMut::from(wire);
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode(&mut src).expect("valid frames") {
        frames.push(frame);
    }
    assert!(src.is_empty(), "the wire ends in the middle of a frame");
    frames
}

/// Random pushes (small, large, empty, urgent), random partial writes as the driver does
/// them, and a drain at a random point: the wire always holds whole frames with correct
/// headers, never interleaved, and the unsent payloads are exactly the rest, in order.
#[test]
fn framed_frames_stay_whole_under_random_writes_and_splices() {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut below = move |n: usize| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((seed >> 33) % n as u64) as usize
    };
    for round in 0..40 {
        let mut buf = framed_buffer();
        let mut in_flight = VecDeque::new();
        let mut offset = 0;
        let mut wire = Vec::new();
        let (mut data, mut urgent) = (Vec::new(), Vec::new());
        for next_id in 0..200usize {
            let len = match below(4) {
                0 => below(4),
                1 => 1 + below(40),
                2 => COPY_MAX - 2 + below(5),
                _ => COPY_MAX + below(3000),
            };
            match below(6) {
                0..=2 => {
                    // Data payloads are bytes 0..=127, urgent ones 128..=255.
                    let payload = frame((next_id % 128) as u8, len);
                    buf.push_framed(&header(len), payload.clone());
                    data.push(payload);
                }
                3 => {
                    let payload = frame(128 + (next_id % 128) as u8, len.max(1));
                    buf.push_urgent_framed(&header(payload.len()), payload.clone());
                    urgent.push(payload);
                }
                _ => {
                    // One driver round: refill, then a partial write.
                    let mut limit = usize::MAX;
                    if buf.urgent_queued() > 0 {
                        if buf.at_boundary() {
                            buf.splice_urgent(&mut in_flight, offset);
                        } else {
                            limit = buf.head_remaining();
                        }
                    }
                    buf.take_chunks(&mut in_flight);
                    let ready = in_flight.iter().map(Bytes::len).sum::<usize>() - offset;
                    let n = ready.min(limit).min(1 + below(5000));
                    if n > 0 {
                        let mut left = n;
                        let (mut i, mut start) = (0, offset);
                        while left > 0 {
                            let c: &Bytes = &in_flight[i];
                            let m = (c.len() - start).min(left);
                            wire.extend_from_slice(&c[start..start + m]);
                            left -= m;
                            i += 1;
                            start = 0;
                        }
                        advance(&mut in_flight, &mut offset, n);
                        buf.consume(n);
                    }
                }
            }
        }
        let unsent = buf.drain_unsent(&mut in_flight, offset);
        // The wire: whole frames, then maybe the written prefix of the first unsent one.
        let partial = unsent.first().map_or(0, UnsentFrame::written);
        let (whole, tail) = wire.split_at(wire.len() - partial);
        let mut frames = decode_all(whole);
        if let Some(first) = unsent.first() {
            let mut expected = header(first.frame().len()).as_slice().to_vec();
            expected.extend_from_slice(first.frame());
            assert_eq!(tail, &expected[..partial], "round {round}: the partial frame");
        }
        assert!(unsent.iter().skip(1).all(|u| u.written() == 0));
        frames.extend(unsent.iter().map(|u| u.frame().clone()));
        let (got_urgent, got_data): (Vec<Bytes>, Vec<Bytes>) =
            frames.into_iter().partition(|f| f.first().is_some_and(|b| *b >= 128));
        assert_eq!(got_data, data, "round {round}: data frames, in order, each once");
        assert_eq!(got_urgent, urgent, "round {round}: urgent frames, in order, each once");
        assert_eq!(buf.held(), 0);
    }
}

/// [`advance`], returning the chunks written whole, as the driver hands them back while the
/// buffer keeps written frames.
pub(crate) fn advance_keeping(
    in_flight: &mut VecDeque<Bytes>,
    offset: &mut usize,
    mut n: usize,
) -> Vec<Bytes> {
    let mut done = Vec::new();
    while n > 0 {
        let left = in_flight[0].len() - *offset;
        if n < left {
            *offset += n;
            break;
        }
        n -= left;
        done.extend(in_flight.pop_front());
        *offset = 0;
    }
    done
}

/// Frames small and large, framed or not; the link writes `written` bytes in writes of
/// `step`, and the peer acknowledges the first `released` frames written whole. The kept
/// frames that come back are the others written whole, and the unsent ones follow.
fn keep_and_take(framed: bool, written: usize, step: usize, released: usize) {
    let mut buf = if framed { framed_buffer() } else { OutBuffer::new(1 << 20) };
    let header_len = if framed { 2 } else { 0 };
    let frames = [frame(1, 3), frame(2, 4), frame(3, COPY_MAX + 5), frame(4, 2), frame(5, 6)];
    buf.set_keeping(true);
    let mut in_flight = VecDeque::new();
    for (i, f) in frames.iter().enumerate() {
        match framed {
            true => buf.push_framed(&header(f.len()), f.clone()),
            false => buf.push(f.clone()),
        }
        // Two takes, so that the chunks in flight are several.
        if i == 1 {
            buf.take_chunks(&mut in_flight);
        }
    }
    buf.take_chunks(&mut in_flight);
    let wire: Vec<usize> = frames.iter().map(|f| f.len() + header_len).collect();
    let mut offset = 0;
    let mut left = written;
    let mut whole = 0;
    while left > 0 {
        let n = left.min(step);
        let done = advance_keeping(&mut in_flight, &mut offset, n);
        whole += buf.consume(n) as usize;
        buf.keep_chunks(done.into_iter(), offset);
        left -= n;
    }
    let released = released.min(whole);
    let acked: usize = wire[..released].iter().sum();
    assert_eq!(buf.release_kept(acked, offset), (acked, released));
    assert_eq!(buf.kept(), wire[released..whole].iter().sum::<usize>());
    let kept = buf.take_kept(&in_flight, offset);
    assert_eq!(kept, frames[released..whole], "{written} bytes by {step}, {released} acked");
    let unsent: Vec<Bytes> =
        buf.drain_unsent(&mut in_flight, offset).into_iter().map(UnsentFrame::into_frame).collect();
    assert_eq!(unsent, frames[whole..], "{written} bytes by {step}");
}

#[test]
fn kept_frames_come_back_whole_from_any_write_position() {
    let total = 3 + 4 + COPY_MAX + 5 + 2 + 6;
    for framed in [false, true] {
        let total = total + if framed { 10 } else { 0 };
        for written in (0..=total).filter(|w| *w < 40 || *w > total - 40 || w % 97 == 0) {
            for step in [1, 7, 4096] {
                for released in [0, 1, 2, 5] {
                    keep_and_take(framed, written, step, released);
                }
            }
        }
    }
}

#[test]
fn released_frames_let_go_of_their_chunks() {
    let mut buf = OutBuffer::new(1 << 20);
    buf.set_keeping(true);
    let mut in_flight = VecDeque::new();
    for byte in 0..4 {
        buf.push(frame(byte, COPY_MAX + 1));
    }
    buf.take_chunks(&mut in_flight);
    let mut offset = 0;
    let done = advance_keeping(&mut in_flight, &mut offset, 3 * (COPY_MAX + 1));
    assert_eq!(buf.consume(3 * (COPY_MAX + 1)), 3);
    buf.keep_chunks(done.into_iter(), offset);
    assert_eq!(buf.kept_chunks.len(), 3);
    // Half of the second frame acknowledged: only the first is released.
    assert_eq!(buf.release_kept(COPY_MAX + 1 + 10, offset), (COPY_MAX + 1, 1));
    assert_eq!(buf.kept_chunks.len(), 2, "the released frame's chunk is gone");
    assert_eq!(buf.kept(), 2 * (COPY_MAX + 1));
    assert_eq!(buf.take_kept(&in_flight, offset), [frame(1, COPY_MAX + 1), frame(2, COPY_MAX + 1)]);
    assert_eq!(buf.kept(), 0);
    assert!(buf.kept_chunks.is_empty());
}

/// Frames small and large, framed or not, one urgent frame spliced in after the first write
/// and one left waiting; the link wrote `written` bytes in writes of `step`. A rewind, then a
/// drain of what it left, gives the frames a drain would have given at once, in order, the
/// head whole (restarted) or handed back (cut).
fn rewind_matches_drain(framed: bool, written: usize, step: usize, restart: bool) {
    let build = || {
        let mut buf = if framed { framed_buffer() } else { OutBuffer::new(1 << 20) };
        let frames = [frame(1, 3), frame(2, 4), frame(3, COPY_MAX + 5), frame(4, 2), frame(5, 6)];
        for f in &frames {
            match framed {
                true => buf.push_framed(&header(f.len()), f.clone()),
                false => buf.push(f.clone()),
            }
        }
        buf
    };
    let urgent = |buf: &mut OutBuffer, byte: u8| match framed {
        true => buf.push_urgent_framed(&header(2), frame(byte, 2)),
        false => buf.push_urgent(frame(byte, 2)),
    };
    // Both buffers go through the same writes.
    let mut bufs = [build(), build()];
    let mut flights = [VecDeque::new(), VecDeque::new()];
    let mut offsets = [0, 0];
    for ((buf, in_flight), offset) in bufs.iter_mut().zip(&mut flights).zip(&mut offsets) {
        buf.take_chunks(in_flight);
        let mut left = written;
        let mut first = true;
        while left > 0 {
            let n = left.min(step).min(buf.held() - buf.queued() - buf.urgent_queued());
            if n == 0 {
                break;
            }
            advance(in_flight, offset, n);
            buf.consume(n);
            left -= n;
            if first && buf.at_boundary() {
                urgent(buf, 8);
                buf.splice_urgent(in_flight, *offset);
                first = false;
            }
        }
        urgent(buf, 9);
    }
    let [mut drained, mut rewound] = bufs;
    let [mut flight_a, mut flight_b] = flights;
    let expected = drained.drain_unsent(&mut flight_a, offsets[0]);
    let head_len = rewound.head_len();
    let partial = rewound.head_written() > 0;
    let header_again = head_len.map(|len| framed.then(|| header(len - 2)));
    let outcome =
        rewound.rewind(&mut flight_b, offsets[1], restart.then(|| header_again.flatten()));
    let rest = rewound.drain_unsent(&mut VecDeque::new(), 0);
    let mut expected = expected.into_iter();
    match (&outcome, partial) {
        (Rewound::Untouched, false) => {}
        (Rewound::Restarted(done), true) => {
            let head = expected.next().unwrap();
            assert_eq!(head.written(), *done);
            assert_eq!(rest[0].frame(), head.frame(), "the head whole, first");
        }
        (Rewound::Cut(cut), true) => assert_eq!(Some(cut.clone()), expected.next()),
        other => panic!("{other:?} after {written} bytes by {step}"),
    }
    let skip = usize::from(matches!(outcome, Rewound::Restarted(_)));
    let got: Vec<&Bytes> = rest.iter().skip(skip).map(UnsentFrame::frame).collect();
    let want: Vec<Bytes> = expected.map(UnsentFrame::into_frame).collect();
    assert_eq!(got, want.iter().collect::<Vec<_>>(), "{written} bytes by {step}, {restart}");
    assert!(rest.iter().all(|u| u.written() == 0), "nothing of them is written any more");
}

#[test]
fn a_rewind_puts_back_what_a_drain_takes_out() {
    let total = 3 + 4 + COPY_MAX + 5 + 2 + 6 + 2;
    for framed in [false, true] {
        let total = total + if framed { 12 } else { 0 };
        for written in (0..=total).filter(|w| *w < 40 || *w > total - 40 || w % 89 == 0) {
            for step in [1, 5, 4096] {
                for restart in [false, true] {
                    rewind_matches_drain(framed, written, step, restart);
                }
            }
        }
    }
}
