//! Every single-bit flip of every sample frame and datagram is rejected, by the CRC or by the
//! structure, and none panics.

use bytes::Bytes;
use framewire_protocol::samples;
use framewire_protocol::wire::{
    DEFAULT_MAX_FRAME_LEN, Datagram, decode_stream_frame, encode_stream_frame, stream_frame_len,
};

#[test]
fn every_bit_flip_of_a_stream_frame_is_rejected() {
    let mut checked = 0;
    for s in samples::frames() {
        let mut bytes = vec![0u8; stream_frame_len(&s.frame)];
        encode_stream_frame(&s.frame, &mut bytes).unwrap();
        assert!(decode_stream_frame(&bytes, DEFAULT_MAX_FRAME_LEN).is_ok());
        for bit in 0..bytes.len() * 8 {
            let mut corrupt = bytes.clone();
            corrupt[bit / 8] ^= 1 << (bit % 8);
            let result = decode_stream_frame(&corrupt, DEFAULT_MAX_FRAME_LEN);
            assert!(
                result.is_err(),
                "{}: flipping bit {bit} was accepted as {result:?}",
                s.name
            );
            checked += 1;
        }
    }
    assert!(checked > 2000, "only {checked} flips checked");
}

#[test]
fn every_bit_flip_of_a_datagram_is_rejected() {
    for s in samples::datagrams() {
        let encoded = s.encode();
        let bytes = &encoded[..];
        let n = bytes.len();
        assert!(Datagram::parse(Bytes::copy_from_slice(bytes)).is_ok());
        for bit in 0..n * 8 {
            let mut corrupt = bytes.to_vec();
            corrupt[bit / 8] ^= 1 << (bit % 8);
            let result = Datagram::parse(Bytes::from(corrupt));
            assert!(
                result.is_err(),
                "{}: flipping bit {bit} was accepted as {result:?}",
                s.name
            );
        }
    }
}

#[test]
fn every_truncation_of_a_stream_frame_is_rejected() {
    for s in samples::frames() {
        let mut bytes = vec![0u8; stream_frame_len(&s.frame)];
        encode_stream_frame(&s.frame, &mut bytes).unwrap();
        for len in 0..bytes.len() {
            assert!(
                decode_stream_frame(&bytes[..len], DEFAULT_MAX_FRAME_LEN).is_err(),
                "{} cut to {len} bytes was accepted",
                s.name
            );
        }
    }
}
