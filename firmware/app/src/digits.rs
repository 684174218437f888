//! The digits dataset packed for flash, unpacked on the fly.
//!
//! The 8x8 digits have pixel values 0..16 and about half of them are 0, so an image is stored
//! as a 64-bit mask of its non-zero pixels plus one nibble (`value − 1`, 0..15) per non-zero
//! pixel. That is lossless and close to the data's entropy: the 1,437 training and 360 test
//! images (115,008 pixels, 112 KiB as bytes) take about 47 KiB, against 72 KiB at 5 bits per
//! pixel. A table of per-image nibble offsets keeps random access O(1), which shuffled
//! training needs.
//!
//! A packed set is one byte string:
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | magic `TTDP` |
//! | 4 | 2 | image count `n`, little-endian |
//! | 6 | 2 | pixels per image (64) |
//! | 8 | ⌈n/2⌉ | labels, two per byte, low nibble first |
//! | … | 8·n | non-zero masks, `u64` little-endian, bit `k` = pixel `k` |
//! | … | 2·n | offset of each image's first value, in nibbles, `u16` little-endian |
//! | … | ⌈v/2⌉ | values − 1, one nibble each, low nibble first |
//!
//! ```
//! use tinytrain::data::Dataset;
//! use tinytrain_firmware_app::digits::{PackedDigits, pack, packed_len};
//! let pixels: Vec<u8> = (0..128).map(|i| (i % 17) as u8).collect();
//! let labels = [3u8, 9];
//! let mut buf = vec![0u8; packed_len(&pixels, 2).unwrap()];
//! pack(&pixels, &labels, &mut buf).unwrap();
//! let set = PackedDigits::new(&buf).unwrap();
//! let (mut x, mut t) = ([0.0f32; 64], 0usize);
//! set.get(1, &mut x, &mut t).unwrap();
//! // Image 1 holds pixels 64..128 of `i % 17`: pixel 1 is 65 % 17 = 14, pixel 16 is 80 % 17 = 12.
//! assert_eq!((x[1], x[16], t), (14.0 / 16.0, 12.0 / 16.0, 9));
//! ```

use tinytrain::Error;
use tinytrain::data::Dataset;

/// The magic number of a packed set.
pub const MAGIC: [u8; 4] = *b"TTDP";
/// Pixels per image.
pub const PIXELS: usize = 64;
/// Largest pixel value.
pub const MAX_PIXEL: u8 = 16;
/// Classes (digits 0..9).
pub const CLASSES: usize = 10;
/// Pixel `p` reads as `p · SCALE` (exact: a power of two).
pub const SCALE: f32 = 1.0 / 16.0;
/// Bytes before the labels.
const HEADER_LEN: usize = 8;

fn layout(n: usize) -> (usize, usize, usize) {
    let labels = HEADER_LEN;
    let masks = labels + n.div_ceil(2);
    let offsets = masks + 8 * n;
    let values = offsets + 2 * n;
    (masks, offsets, values)
}

/// Bytes that [`pack`] needs for `n` images of `pixels` (`n · 64` bytes).
///
/// # Errors
/// [`Error::ShapeMismatch`] when `pixels` is not `n · 64` bytes.
pub fn packed_len(pixels: &[u8], n: usize) -> Result<usize, Error> {
    if Some(pixels.len()) != n.checked_mul(PIXELS) {
        return Err(Error::ShapeMismatch { expected: PIXELS, found: pixels.len() / n.max(1) });
    }
    let nonzero = pixels.iter().filter(|&&p| p != 0).count();
    Ok(layout(n).2 + nonzero.div_ceil(2))
}

/// Packs `labels.len()` images (`pixels`, 64 bytes each, values 0..16) into `out`; returns the
/// packed length.
///
/// # Errors
/// [`Error::ShapeMismatch`] for a pixel count that is not 64 per label;
/// [`Error::LabelOutOfRange`] for a label above 9; [`Error::InvalidConfig`] for a pixel
/// above 16 or more than 65,535 images or nibbles; [`Error::BufferTooSmall`] when `out` is
/// shorter than [`packed_len`].
pub fn pack(pixels: &[u8], labels: &[u8], out: &mut [u8]) -> Result<usize, Error> {
    let n = labels.len();
    let len = packed_len(pixels, n)?;
    if let Some(&bad) = labels.iter().find(|&&l| usize::from(l) >= CLASSES) {
        return Err(Error::LabelOutOfRange { label: usize::from(bad), classes: CLASSES });
    }
    if pixels.iter().any(|&p| p > MAX_PIXEL) {
        return Err(Error::InvalidConfig("digits pixels must be 0..16"));
    }
    let (masks_at, offsets_at, values_at) = layout(n);
    if n > usize::from(u16::MAX) || 2 * (len - values_at) > usize::from(u16::MAX) + 1 {
        return Err(Error::InvalidConfig("too many images or pixels for 16-bit offsets"));
    }
    let available = out.len();
    let Some(out) = out.get_mut(..len) else {
        return Err(Error::BufferTooSmall { needed: len, available });
    };
    out.fill(0);
    out[0..4].copy_from_slice(&MAGIC);
    out[4..6].copy_from_slice(&(n as u16).to_le_bytes());
    out[6..8].copy_from_slice(&(PIXELS as u16).to_le_bytes());
    for (i, &l) in labels.iter().enumerate() {
        out[HEADER_LEN + i / 2] |= l << (4 * (i % 2));
    }
    let mut nibble = 0usize;
    for (i, image) in pixels.chunks_exact(PIXELS).enumerate() {
        let mut mask = 0u64;
        out[offsets_at + 2 * i..offsets_at + 2 * i + 2].copy_from_slice(&(nibble as u16).to_le_bytes());
        for (k, &p) in image.iter().enumerate() {
            if p != 0 {
                mask |= 1 << k;
                out[values_at + nibble / 2] |= (p - 1) << (4 * (nibble % 2));
                nibble += 1;
            }
        }
        out[masks_at + 8 * i..masks_at + 8 * i + 8].copy_from_slice(&mask.to_le_bytes());
    }
    Ok(len)
}

/// The payload of an IDX file of unsigned bytes (already decompressed) with `ndim`
/// dimensions, and its first dimension (the item count).
///
/// # Errors
/// [`Error::Truncated`] when the file is shorter than its header says; [`Error::BadMagic`]
/// for another data type or number of dimensions; [`Error::TrailingBytes`] for extra bytes.
pub fn idx_payload(bytes: &[u8], ndim: usize) -> Result<(&[u8], usize), Error> {
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(Error::Truncated { expected: header, found: bytes.len() });
    }
    if bytes[0..3] != [0, 0, 0x08] || usize::from(bytes[3]) != ndim || ndim == 0 {
        return Err(Error::BadMagic);
    }
    let mut total = 1usize;
    for d in bytes[4..header].chunks_exact(4) {
        let dim = u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize;
        total = total.saturating_mul(dim);
    }
    let count = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    let expected = header.saturating_add(total);
    match bytes.len() {
        n if n < expected => Err(Error::Truncated { expected, found: n }),
        n if n > expected => Err(Error::TrailingBytes { expected, found: n }),
        _ => Ok((&bytes[header..], count)),
    }
}

/// A packed set of digits images, read in place (from flash on a device).
#[derive(Debug, Clone, Copy)]
pub struct PackedDigits<'a> {
    labels: &'a [u8],
    masks: &'a [u8],
    offsets: &'a [u8],
    values: &'a [u8],
    len: usize,
}

impl<'a> PackedDigits<'a> {
    /// Checks the header and table sizes of `bytes` (made by [`pack`]).
    ///
    /// # Errors
    /// [`Error::BadMagic`] for another kind of data; [`Error::ShapeMismatch`] for images of
    /// other than 64 pixels; [`Error::Truncated`] when the tables do not fit.
    pub fn new(bytes: &'a [u8]) -> Result<Self, Error> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated { expected: HEADER_LEN, found: bytes.len() });
        }
        if bytes[0..4] != MAGIC {
            return Err(Error::BadMagic);
        }
        let n = usize::from(u16::from_le_bytes([bytes[4], bytes[5]]));
        let sample_len = usize::from(u16::from_le_bytes([bytes[6], bytes[7]]));
        if sample_len != PIXELS {
            return Err(Error::ShapeMismatch { expected: PIXELS, found: sample_len });
        }
        let (masks_at, offsets_at, values_at) = layout(n);
        if bytes.len() < values_at {
            return Err(Error::Truncated { expected: values_at, found: bytes.len() });
        }
        let set = PackedDigits {
            labels: &bytes[HEADER_LEN..masks_at],
            masks: &bytes[masks_at..offsets_at],
            offsets: &bytes[offsets_at..values_at],
            values: &bytes[values_at..],
            len: n,
        };
        // Every image's values must lie inside the value table: check the last one once, so
        // that reading never goes out of bounds (offsets only grow).
        if let Some(last) = n.checked_sub(1) {
            let (mask, offset) = set.entry(last);
            let end = offset + mask.count_ones() as usize;
            if end.div_ceil(2) > set.values.len() {
                return Err(Error::Truncated { expected: values_at + end.div_ceil(2), found: bytes.len() });
            }
        }
        Ok(set)
    }

    fn entry(&self, index: usize) -> (u64, usize) {
        let m = &self.masks[8 * index..8 * index + 8];
        let mask = u64::from_le_bytes([m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]]);
        let o = &self.offsets[2 * index..2 * index + 2];
        (mask, usize::from(u16::from_le_bytes([o[0], o[1]])))
    }

    /// The label of image `index`, if it exists.
    #[must_use]
    pub fn label(&self, index: usize) -> Option<u8> {
        if index >= self.len {
            return None;
        }
        Some((self.labels[index / 2] >> (4 * (index % 2))) & 0x0F)
    }

    /// Unpacks the raw pixel values (0..16) of image `index`.
    ///
    /// # Errors
    /// [`Error::Empty`] when `index` is out of range; [`Error::Truncated`] when the image's
    /// values run past the end of the data.
    pub fn pixels(&self, index: usize, out: &mut [u8; PIXELS]) -> Result<(), Error> {
        self.unpack(index, out, 0, |p| p)
    }

    /// Bytes of packed data (header and tables included).
    #[must_use]
    pub fn packed_bytes(&self) -> usize {
        HEADER_LEN + self.labels.len() + self.masks.len() + self.offsets.len() + self.values.len()
    }

    /// Writes `f(value)` for every non-zero pixel of image `index` and `zero` elsewhere.
    /// Visits only the set bits of the mask: about half the pixels of a digit are 0.
    #[inline]
    fn unpack<T: Copy>(&self, index: usize, out: &mut [T; PIXELS], zero: T, f: impl Fn(u8) -> T) -> Result<(), Error> {
        if index >= self.len {
            return Err(Error::Empty);
        }
        let (mask, at) = self.entry(index);
        let end = at + mask.count_ones() as usize;
        let Some(values) = self.values.get(at / 2..end.div_ceil(2)) else {
            return Err(Error::Truncated { expected: end.div_ceil(2), found: self.values.len() });
        };
        out.fill(zero);
        // Nibble index relative to `values`, whose first byte holds nibble `at & !1`.
        let mut nibble = at & 1;
        for (base, half) in [(0, mask as u32), (32, (mask >> 32) as u32)] {
            let mut bits = half;
            while bits != 0 {
                let k = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let byte = values.get(nibble / 2).copied().unwrap_or(0);
                let value = ((byte >> (4 * (nibble % 2))) & 0x0F) + 1;
                if let Some(o) = out.get_mut(base + k) {
                    *o = f(value);
                }
                nibble += 1;
            }
        }
        Ok(())
    }
}

impl Dataset<[f32; PIXELS], usize> for PackedDigits<'_> {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize, x: &mut [f32; PIXELS], target: &mut usize) -> Result<(), Error> {
        let label = self.label(index).ok_or(Error::Empty)?;
        self.unpack(index, x, 0.0, |p| f32::from(p) * SCALE)?;
        *target = usize::from(label);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn sample(n: usize) -> (Vec<u8>, Vec<u8>) {
        let mut s = 12345u32;
        let pixels = (0..n * PIXELS)
            .map(|_| {
                s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let r = (s >> 16) % 34;
                if r < 17 { 0 } else { (r - 17) as u8 }
            })
            .collect();
        let labels = (0..n).map(|i| (i * 7 % 10) as u8).collect();
        (pixels, labels)
    }

    #[test]
    fn round_trips_every_pixel_and_label() {
        for n in [1, 2, 3, 17] {
            let (pixels, labels) = sample(n);
            let mut buf = vec![0u8; packed_len(&pixels, n).unwrap()];
            assert_eq!(pack(&pixels, &labels, &mut buf).unwrap(), buf.len());
            let set = PackedDigits::new(&buf).unwrap();
            assert_eq!(set.len(), n);
            assert_eq!(set.packed_bytes(), buf.len());
            let mut raw = [0u8; PIXELS];
            let (mut x, mut t) = ([0.0f32; PIXELS], 0usize);
            for i in 0..n {
                set.pixels(i, &mut raw).unwrap();
                assert_eq!(&raw[..], &pixels[i * PIXELS..(i + 1) * PIXELS]);
                set.get(i, &mut x, &mut t).unwrap();
                assert_eq!(t, usize::from(labels[i]));
                for (xv, &p) in x.iter().zip(&raw) {
                    assert_eq!(*xv, f32::from(p) / 16.0);
                }
            }
            assert_eq!(set.get(n, &mut x, &mut t), Err(Error::Empty));
        }
    }

    #[test]
    fn refuses_bad_input() {
        let (mut pixels, labels) = sample(2);
        let mut buf = vec![0u8; 4096];
        assert!(matches!(pack(&pixels[..100], &labels, &mut buf), Err(Error::ShapeMismatch { .. })));
        assert!(matches!(pack(&pixels, &[1, 10], &mut buf), Err(Error::LabelOutOfRange { label: 10, .. })));
        assert!(matches!(pack(&pixels, &labels, &mut buf[..20]), Err(Error::BufferTooSmall { .. })));
        pixels[5] = 17;
        assert!(matches!(pack(&pixels, &labels, &mut buf), Err(Error::InvalidConfig(_))));
    }

    #[test]
    fn reads_idx_headers() {
        let mut file = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 8, 0, 0, 0, 8];
        file.extend(0..128u8);
        let (payload, n) = idx_payload(&file, 3).unwrap();
        assert_eq!((payload.len(), n), (128, 2));
        assert!(matches!(idx_payload(&file[..100], 3), Err(Error::Truncated { .. })));
        assert_eq!(idx_payload(&file, 1).unwrap_err(), Error::BadMagic);
        file.push(0);
        assert!(matches!(idx_payload(&file, 3), Err(Error::TrailingBytes { .. })));
    }

    #[test]
    fn refuses_corrupt_data() {
        let (pixels, labels) = sample(3);
        let mut buf = vec![0u8; packed_len(&pixels, 3).unwrap()];
        pack(&pixels, &labels, &mut buf).unwrap();
        assert!(matches!(PackedDigits::new(&buf[..buf.len() - 1]), Err(Error::Truncated { .. })));
        assert!(matches!(PackedDigits::new(&buf[..5]), Err(Error::Truncated { .. })));
        let mut bad = buf.clone();
        bad[0] = b'X';
        assert_eq!(PackedDigits::new(&bad).unwrap_err(), Error::BadMagic);
    }
}
