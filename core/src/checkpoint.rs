//! The weights file: a versioned binary format written to and read from a byte slice.
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | magic `TTWF` |
//! | 4 | 2 | format version, little-endian (currently 2; version 1 files still load) |
//! | 6 | 2 | header length (24) |
//! | 8 | 4 | network fingerprint ([`fingerprint`]) |
//! | 12 | 4 | value count P: every element of every tensor ([`Params::STORED_LEN`]: trainable, frozen and buffers) |
//! | 16 | 4 | payload length in bytes (4 × P) |
//! | 20 | 4 | reserved, 0 |
//! | 24 | 4·P | the tensors, `f32` little-endian, in [`Params::visit`] order |
//! | 24+4·P | 4 | CRC-32 (ISO-HDLC, as zlib) of everything before it |
//!
//! Loading checks everything (length, magic, version, checksum, fingerprint, count, every
//! value finite) before it writes a single parameter: a bad file is refused and the network
//! keeps its weights.
//!
//! Version 2 fingerprints the tensors' descriptions (names, shapes, element types) as well as
//! the layers; version 1 fingerprinted the layer rows only. The payload is the same for the
//! networks version 1 could describe, so a version 1 file still loads when its fingerprint is
//! the version 1 fingerprint of the network ([`fingerprint_v1`]). Frozen layers save and load
//! like trainable ones: a file of the unfrozen network loads into the frozen one.
//!
//! ```
//! use tinytrain::prelude::*;
//! use tinytrain::checkpoint::{file_len, load, save};
//! type Net = tinytrain::sequential![Dense<3, 2>, Relu<2>, Dense<2, 1>];
//! let mut net = Net::ZERO;
//! net.init(&mut Rng::new(5));
//! let mut buf = [0u8; 128];
//! let n = save(&net, &mut buf).unwrap();
//! assert_eq!(n, file_len::<Net>());
//! let mut copy = Net::ZERO;
//! load(&mut copy, &buf[..n]).unwrap();
//! assert_eq!(copy, net);
//! buf[30] ^= 1;
//! assert!(matches!(load(&mut copy, &buf[..n]), Err(Error::Checksum { .. })));
//! ```

use crate::error::Error;
use crate::layer::Layer;
use crate::params::{Params, Slot};
pub use crate::summary::{fingerprint, fingerprint_v1};

/// The magic number at the start of a weights file.
pub const MAGIC: [u8; 4] = *b"TTWF";
/// The format version this build writes and reads.
pub const VERSION: u16 = 2;
/// The older version this build still reads.
pub const VERSION_1: u16 = 1;
/// Bytes before the parameters.
pub const HEADER_LEN: usize = 24;
/// Bytes of the trailing checksum.
pub const CRC_LEN: usize = 4;

/// The CRC-32 used by weights files and checkpoints (ISO-HDLC, the zlib/PNG one).
pub const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Bytes of the weights file of network `M`.
#[must_use]
pub const fn file_len<M: Layer>() -> usize {
    HEADER_LEN + 4 * M::STORED_LEN + CRC_LEN
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The 24-byte header of network `M`'s weights file.
#[must_use]
pub fn header<M: Layer>() -> [u8; HEADER_LEN] {
    header_with::<M>(VERSION, fingerprint::<M>())
}

/// The header a version 1 file of network `M` has (same payload, older fingerprint).
#[must_use]
pub fn header_v1<M: Layer>() -> [u8; HEADER_LEN] {
    header_with::<M>(VERSION_1, fingerprint_v1::<M>())
}

fn header_with<M: Layer>(version: u16, fingerprint: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC);
    h[4..6].copy_from_slice(&version.to_le_bytes());
    h[6..8].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
    h[8..12].copy_from_slice(&fingerprint.to_le_bytes());
    h[12..16].copy_from_slice(&(M::STORED_LEN as u32).to_le_bytes());
    h[16..20].copy_from_slice(&((4 * M::STORED_LEN) as u32).to_le_bytes());
    h
}

/// Streams the weights file of `model` to `sink` in pieces (header, each parameter, CRC), so
/// that it can go to flash without a buffer of its size.
///
/// # Errors
/// [`Error::NonFinite`] when a parameter is NaN or infinite; then nothing is streamed.
pub fn stream<M: Layer>(model: &M, sink: &mut impl FnMut(&[u8])) -> Result<(), Error> {
    if let Some(index) = first_non_finite(model) {
        return Err(Error::NonFinite { index });
    }
    let mut digest = CRC32.digest();
    let h = header::<M>();
    digest.update(&h);
    sink(&h);
    model.visit(&mut |_, p| {
        for v in p {
            let b = v.to_le_bytes();
            digest.update(&b);
            sink(&b);
        }
    });
    sink(&digest.finalize().to_le_bytes());
    Ok(())
}

/// Writes the weights file of `model` into `out` and returns its length.
///
/// # Errors
/// [`Error::BufferTooSmall`] when `out` is shorter than [`file_len`]; [`Error::NonFinite`]
/// when a parameter is NaN or infinite (such weights are never saved).
pub fn save<M: Layer>(model: &M, out: &mut [u8]) -> Result<usize, Error> {
    let len = file_len::<M>();
    let available = out.len();
    let Some(out) = out.get_mut(..len) else {
        return Err(Error::BufferTooSmall { needed: len, available });
    };
    let mut at = 0;
    stream(model, &mut |piece| {
        out[at..at + piece.len()].copy_from_slice(piece);
        at += piece.len();
    })?;
    Ok(len)
}

/// Checks a weights file for network `M` without loading it.
///
/// # Errors
/// [`Error::Truncated`], [`Error::BadMagic`], [`Error::UnsupportedVersion`],
/// [`Error::TrailingBytes`], [`Error::Checksum`], [`Error::BadHeader`] (header length,
/// payload length, reserved), [`Error::WrongNetwork`], [`Error::ParamCount`] or
/// [`Error::NonFinite`], whichever is found first.
pub fn verify<M: Layer>(bytes: &[u8]) -> Result<(), Error> {
    let len = bytes.len();
    if len < HEADER_LEN + CRC_LEN {
        return Err(Error::Truncated { expected: file_len::<M>(), found: len });
    }
    if bytes[0..4] != MAGIC {
        return Err(Error::BadMagic);
    }
    let version = u16_at(bytes, 4);
    if version != VERSION && version != VERSION_1 {
        return Err(Error::UnsupportedVersion { found: version, supported: VERSION });
    }
    let count = u32_at(bytes, 12) as usize;
    let payload_len = u32_at(bytes, 16) as usize;
    // A header whose fields agree with each other announces a length we can trust enough to
    // call a short file truncated; otherwise a mismatch is plain corruption.
    let consistent = u16_at(bytes, 6) as usize == HEADER_LEN && Some(payload_len) == count.checked_mul(4);
    let announced = HEADER_LEN.saturating_add(payload_len).saturating_add(CRC_LEN);
    let crc_ok = |end: usize| {
        bytes
            .get(end - CRC_LEN..end)
            .is_some_and(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) == CRC32.checksum(&bytes[..end - CRC_LEN]))
    };
    if !crc_ok(len) {
        if consistent && len < announced {
            return Err(Error::Truncated { expected: announced, found: len });
        }
        if consistent && len > announced && crc_ok(announced) {
            return Err(Error::TrailingBytes { expected: announced, found: len });
        }
        let computed = CRC32.checksum(&bytes[..len - CRC_LEN]);
        return Err(Error::Checksum { computed, stored: u32_at(bytes, len - CRC_LEN) });
    }
    verify_fields::<M>(bytes, version)?;
    let payload = &bytes[HEADER_LEN..len - CRC_LEN];
    if let Some(index) = payload.chunks_exact(4).position(|c| !f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite())
    {
        return Err(Error::NonFinite { index });
    }
    Ok(())
}

/// The header fields after a valid checksum, each with its own error, then the length.
fn verify_fields<M: Layer>(bytes: &[u8], version: u16) -> Result<(), Error> {
    let bad = |field, expected: usize, found: u32| Error::BadHeader { field, expected: expected as u32, found };
    let header_len = u16_at(bytes, 6);
    if usize::from(header_len) != HEADER_LEN {
        return Err(bad("header length", HEADER_LEN, u32::from(header_len)));
    }
    let fp = u32_at(bytes, 8);
    let expected_fp = if version == VERSION_1 { fingerprint_v1::<M>() } else { fingerprint::<M>() };
    if fp != expected_fp {
        return Err(Error::WrongNetwork { expected: expected_fp, found: fp });
    }
    let count = u32_at(bytes, 12) as usize;
    if count != M::STORED_LEN {
        return Err(Error::ParamCount { expected: M::STORED_LEN, found: count });
    }
    let payload_len = u32_at(bytes, 16);
    if payload_len as usize != 4 * M::STORED_LEN {
        return Err(bad("payload length", 4 * M::STORED_LEN, payload_len));
    }
    let reserved = u32_at(bytes, 20);
    if reserved != 0 {
        return Err(bad("reserved", 0, reserved));
    }
    let (len, expected) = (bytes.len(), file_len::<M>());
    if len < expected {
        return Err(Error::Truncated { expected, found: len });
    }
    if len > expected {
        return Err(Error::TrailingBytes { expected, found: len });
    }
    Ok(())
}

/// Loads a weights file into `model`. On any error the model is left untouched.
///
/// # Errors
/// As [`verify`]; [`Error::FixedTensorDiffers`] when the file's values for tensors kept in
/// flash differ from the flash's.
pub fn load<M: Layer>(model: &mut M, bytes: &[u8]) -> Result<(), Error> {
    verify::<M>(bytes)?;
    let payload = &bytes[HEADER_LEN..bytes.len() - CRC_LEN];
    let values = || payload.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    if let Some(index) = fixed_differs(model, values()) {
        return Err(Error::FixedTensorDiffers { index });
    }
    write_values(model, values());
    Ok(())
}

/// Index of the first NaN or infinite value among the tensors of `model`, in visiting order.
pub(crate) fn first_non_finite<M: Params>(model: &M) -> Option<usize> {
    let mut index = 0;
    let mut bad = None;
    model.visit(&mut |_, p| {
        if bad.is_none()
            && let Some(k) = p.iter().position(|v| !v.is_finite())
        {
            bad = Some(index + k);
        }
        index += p.len();
    });
    bad
}

/// Index of the first of `values` (every stored value in visiting order) that differs from a
/// tensor of `model` kept in flash, which cannot be written.
pub(crate) fn fixed_differs<M: Params>(model: &mut M, mut values: impl Iterator<Item = f32>) -> Option<usize> {
    let (mut index, mut differs) = (0, None);
    model.visit_mut(&mut |_, slot| {
        let n = slot.values().len();
        for (k, v) in values.by_ref().take(n).enumerate() {
            if let Slot::Fixed(p) = &slot
                && differs.is_none()
                && p[k].to_bits() != v.to_bits()
            {
                differs = Some(index + k);
            }
        }
        index += n;
    });
    differs
}

/// Writes `values` (every stored value in visiting order, already checked) into the writable
/// tensors of `model`, skipping those kept in flash.
pub(crate) fn write_values<M: Params>(model: &mut M, mut values: impl Iterator<Item = f32>) {
    model.visit_mut(&mut |_, slot| match slot {
        Slot::Mut(p) => p.iter_mut().zip(values.by_ref()).for_each(|(d, v)| *d = v),
        Slot::Fixed(p) => values.by_ref().take(p.len()).for_each(drop),
    });
}
