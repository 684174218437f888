//! A slice of MNIST packed for flash, unpacked on the fly.
//!
//! MNIST pixels are bytes 0..255 and about 81 % of them are 0, so an image is stored as a
//! 784-bit mask of its non-zero pixels (98 bytes) plus one byte per non-zero pixel: lossless,
//! about 250 bytes an image against 784. A table of per-image value offsets keeps random
//! access O(1), which shuffled training needs. Pixels read as `p / 255` (as `p · (1/255)`, the
//! host's scaling).
//!
//! A packed set is one byte string:
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | magic `TTMP` |
//! | 4 | 4 | image count `n`, little-endian |
//! | 8 | n | labels, one byte each |
//! | … | 4·n | offset of each image's first value, `u32` little-endian |
//! | … | 98·n | non-zero masks, bit `k % 8` of byte `k / 8` = pixel `k` |
//! | … | v | the non-zero values, one byte each |
//!
//! ```
//! use tinytrain::data::Dataset;
//! use tinytrain_firmware_app::mnist::{PIXELS, PackedMnist, pack, packed_len};
//! let mut pixels = vec![0u8; 2 * PIXELS];
//! pixels[PIXELS + 30] = 255;
//! pixels[PIXELS + 783] = 51;
//! let labels = [3u8, 9];
//! let mut buf = vec![0u8; packed_len(&pixels, 2).unwrap()];
//! pack(&pixels, &labels, &mut buf).unwrap();
//! let set = PackedMnist::new(&buf).unwrap();
//! let (mut x, mut t) = ([[[0.0f32; 28]; 28]; 1], 0usize);
//! set.get(1, &mut x, &mut t).unwrap();
//! assert_eq!((x[0][1][2], x[0][27][27], x[0][0][0], t), (1.0, 51.0 * (1.0 / 255.0), 0.0, 9));
//! ```

use tinytrain::Error;
use tinytrain::data::Dataset;

/// The magic number of a packed set.
pub const MAGIC: [u8; 4] = *b"TTMP";
/// Pixels per image (28 × 28).
pub const PIXELS: usize = 784;
/// Bytes of an image's non-zero mask.
pub const MASK_BYTES: usize = PIXELS / 8;
/// Classes (digits 0..9).
pub const CLASSES: usize = 10;
/// Pixel `p` reads as `p · SCALE`.
pub const SCALE: f32 = 1.0 / 255.0;
/// Bytes before the labels.
const HEADER_LEN: usize = 8;

/// The network's input: one 28 × 28 channel.
pub type Image = [[[f32; 28]; 28]; 1];

fn layout(n: usize) -> (usize, usize, usize) {
    let offsets = HEADER_LEN + n;
    let masks = offsets + 4 * n;
    let values = masks + MASK_BYTES * n;
    (offsets, masks, values)
}

/// Bytes that [`pack`] needs for `n` images of `pixels` (`n · 784` bytes).
///
/// # Errors
/// [`Error::ShapeMismatch`] when `pixels` is not `n · 784` bytes.
pub fn packed_len(pixels: &[u8], n: usize) -> Result<usize, Error> {
    if Some(pixels.len()) != n.checked_mul(PIXELS) {
        return Err(Error::ShapeMismatch { expected: PIXELS, found: pixels.len() / n.max(1) });
    }
    Ok(layout(n).2 + pixels.iter().filter(|&&p| p != 0).count())
}

/// Packs `labels.len()` images (`pixels`, 784 bytes each) into `out`; returns the packed
/// length.
///
/// # Errors
/// [`Error::ShapeMismatch`] for a pixel count that is not 784 per label;
/// [`Error::LabelOutOfRange`] for a label above 9; [`Error::BufferTooSmall`] when `out` is
/// shorter than [`packed_len`]; [`Error::InvalidConfig`] for more than `u32::MAX` values.
pub fn pack(pixels: &[u8], labels: &[u8], out: &mut [u8]) -> Result<usize, Error> {
    let n = labels.len();
    let len = packed_len(pixels, n)?;
    if let Some(&bad) = labels.iter().find(|&&l| usize::from(l) >= CLASSES) {
        return Err(Error::LabelOutOfRange { label: usize::from(bad), classes: CLASSES });
    }
    if u32::try_from(len).is_err() {
        return Err(Error::InvalidConfig("too many pixels for 32-bit offsets"));
    }
    let available = out.len();
    let Some(out) = out.get_mut(..len) else {
        return Err(Error::BufferTooSmall { needed: len, available });
    };
    let (offsets_at, masks_at, values_at) = layout(n);
    out.fill(0);
    out[0..4].copy_from_slice(&MAGIC);
    out[4..8].copy_from_slice(&(n as u32).to_le_bytes());
    out[HEADER_LEN..offsets_at].copy_from_slice(labels);
    let mut value = 0usize;
    for (i, image) in pixels.chunks_exact(PIXELS).enumerate() {
        out[offsets_at + 4 * i..offsets_at + 4 * i + 4].copy_from_slice(&(value as u32).to_le_bytes());
        for (k, &p) in image.iter().enumerate() {
            if p != 0 {
                out[masks_at + MASK_BYTES * i + k / 8] |= 1 << (k % 8);
                out[values_at + value] = p;
                value += 1;
            }
        }
    }
    Ok(len)
}

/// A packed slice of MNIST, read in place (from flash on a device).
#[derive(Debug, Clone, Copy)]
pub struct PackedMnist<'a> {
    labels: &'a [u8],
    offsets: &'a [u8],
    masks: &'a [u8],
    values: &'a [u8],
    len: usize,
}

impl<'a> PackedMnist<'a> {
    /// Checks the header and table sizes of `bytes` (made by [`pack`]).
    ///
    /// # Errors
    /// [`Error::BadMagic`] for another kind of data; [`Error::Truncated`] when the tables do
    /// not fit.
    pub fn new(bytes: &'a [u8]) -> Result<Self, Error> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated { expected: HEADER_LEN, found: bytes.len() });
        }
        if bytes[0..4] != MAGIC {
            return Err(Error::BadMagic);
        }
        let n = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        let (offsets_at, masks_at, values_at) = layout(n);
        if bytes.len() < values_at {
            return Err(Error::Truncated { expected: values_at, found: bytes.len() });
        }
        let set = PackedMnist {
            labels: &bytes[HEADER_LEN..offsets_at],
            offsets: &bytes[offsets_at..masks_at],
            masks: &bytes[masks_at..values_at],
            values: &bytes[values_at..],
            len: n,
        };
        // The last image's values must end inside the value table (offsets only grow).
        if let Some(last) = n.checked_sub(1) {
            let end = set.offset(last) + set.mask(last).iter().map(|b| b.count_ones() as usize).sum::<usize>();
            if end > set.values.len() {
                return Err(Error::Truncated { expected: values_at + end, found: bytes.len() });
            }
        }
        Ok(set)
    }

    fn offset(&self, index: usize) -> usize {
        let o = &self.offsets[4 * index..4 * index + 4];
        u32::from_le_bytes([o[0], o[1], o[2], o[3]]) as usize
    }

    fn mask(&self, index: usize) -> &'a [u8] {
        &self.masks[MASK_BYTES * index..MASK_BYTES * (index + 1)]
    }

    /// Image `index` as raw pixels (0..=255, row-major) and its label.
    ///
    /// # Errors
    /// [`Error::Empty`] when `index` is out of range; [`Error::Truncated`] for a value table
    /// that ends early.
    pub fn get_bytes(&self, index: usize, pixels: &mut [u8; PIXELS]) -> Result<u8, Error> {
        let Some(&label) = self.labels.get(index) else {
            return Err(Error::Empty);
        };
        let mut at = self.offset(index);
        pixels.fill(0);
        for (byte_index, &byte) in self.mask(index).iter().enumerate() {
            let mut bits = byte;
            while bits != 0 {
                let k = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let Some(&p) = self.values.get(at) else {
                    return Err(Error::Truncated { expected: at + 1, found: self.values.len() });
                };
                if let Some(o) = pixels.get_mut(8 * byte_index + k) {
                    *o = p;
                }
                at += 1;
            }
        }
        Ok(label)
    }

    /// Image `index` quantised through `lut` (pixel `p` reads `lut[p]`) into `out`, and its
    /// label; with `map`, remapped on the way: `out[i]` is source pixel `map[i]`
    /// (`u16::MAX`: outside the image, reads `lut[0]`). Decodes in place, with a table of 98
    /// running counts and no copy of the image.
    ///
    /// # Errors
    /// As [`PackedMnist::get_bytes`].
    pub fn get_quantized(
        &self,
        index: usize,
        lut: &[i8; 256],
        map: Option<&[u16; PIXELS]>,
        out: &mut [i8; PIXELS],
    ) -> Result<u8, Error> {
        let Some(&label) = self.labels.get(index) else {
            return Err(Error::Empty);
        };
        let at = self.offset(index);
        let mask = self.mask(index);
        let count: usize = mask.iter().map(|b| b.count_ones() as usize).sum();
        if at + count > self.values.len() {
            return Err(Error::Truncated { expected: at + count, found: self.values.len() });
        }
        let values = &self.values[at..at + count];
        out.fill(lut[0]);
        match map {
            None => {
                let mut v = values.iter();
                for (byte_index, &byte) in mask.iter().enumerate() {
                    let mut bits = byte;
                    while bits != 0 {
                        let k = bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        if let (Some(o), Some(&p)) = (out.get_mut(8 * byte_index + k), v.next()) {
                            *o = lut[usize::from(p)];
                        }
                    }
                }
            }
            Some(map) => {
                // Values before each mask byte.
                let mut before = [0u16; MASK_BYTES];
                let mut n = 0u16;
                for (b, &byte) in before.iter_mut().zip(mask) {
                    *b = n;
                    n += byte.count_ones() as u16;
                }
                for (o, &from) in out.iter_mut().zip(map.iter()) {
                    let from = usize::from(from);
                    let (Some(&byte), Some(&first)) = (mask.get(from / 8), before.get(from / 8)) else {
                        continue;
                    };
                    let bit = from % 8;
                    if byte & (1 << bit) != 0 {
                        let k = usize::from(first) + (byte & ((1u8 << bit) - 1)).count_ones() as usize;
                        if let Some(&p) = values.get(k) {
                            *o = lut[usize::from(p)];
                        }
                    }
                }
            }
        }
        Ok(label)
    }

    /// Bytes of packed data (header and tables included).
    #[must_use]
    pub fn packed_bytes(&self) -> usize {
        HEADER_LEN + self.labels.len() + self.offsets.len() + self.masks.len() + self.values.len()
    }
}

impl Dataset<Image, usize> for PackedMnist<'_> {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize, x: &mut Image, target: &mut usize) -> Result<(), Error> {
        let Some(&label) = self.labels.get(index) else {
            return Err(Error::Empty);
        };
        let mut at = self.offset(index);
        let out = x[0].as_flattened_mut();
        out.fill(0.0);
        for (byte_index, &byte) in self.mask(index).iter().enumerate() {
            let mut bits = byte;
            while bits != 0 {
                let k = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let Some(&p) = self.values.get(at) else {
                    return Err(Error::Truncated { expected: at + 1, found: self.values.len() });
                };
                if let Some(o) = out.get_mut(8 * byte_index + k) {
                    *o = f32::from(p) * SCALE;
                }
                at += 1;
            }
        }
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

    #[test]
    fn round_trips_every_pixel_and_label() {
        let n = 5;
        let mut s = 99u32;
        let pixels: Vec<u8> = (0..n * PIXELS)
            .map(|_| {
                s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let r = (s >> 16) % 512;
                if r < 256 { 0 } else { (r - 256) as u8 }
            })
            .collect();
        let labels: Vec<u8> = (0..n).map(|i| (i * 3 % 10) as u8).collect();
        let mut buf = vec![0u8; packed_len(&pixels, n).unwrap()];
        assert_eq!(pack(&pixels, &labels, &mut buf).unwrap(), buf.len());
        let set = PackedMnist::new(&buf).unwrap();
        assert_eq!((set.len(), set.packed_bytes()), (n, buf.len()));
        let (mut x, mut t) = ([[[0.0f32; 28]; 28]; 1], 0usize);
        for i in 0..n {
            set.get(i, &mut x, &mut t).unwrap();
            assert_eq!(t, usize::from(labels[i]));
            for (xv, &p) in x[0].as_flattened().iter().zip(&pixels[i * PIXELS..(i + 1) * PIXELS]) {
                assert_eq!(*xv, f32::from(p) * SCALE);
            }
        }
        assert_eq!(set.get(n, &mut x, &mut t), Err(Error::Empty));
        // Quantised and remapped decoding agrees with decoding then mapping.
        let lut: [i8; 256] = core::array::from_fn(|p| (p as u8 ^ 0x80).cast_signed());
        let map: [u16; PIXELS] =
            core::array::from_fn(|i| if i % 7 == 0 { u16::MAX } else { ((i * 31) % PIXELS) as u16 });
        let (mut bytes, mut q) = ([0u8; PIXELS], [0i8; PIXELS]);
        for i in 0..n {
            let label = set.get_bytes(i, &mut bytes).unwrap();
            assert_eq!(set.get_quantized(i, &lut, None, &mut q).unwrap(), label);
            assert!(q.iter().zip(&bytes).all(|(&q, &p)| q == lut[usize::from(p)]));
            set.get_quantized(i, &lut, Some(&map), &mut q).unwrap();
            for (k, &from) in map.iter().enumerate() {
                let p = if from == u16::MAX { 0 } else { bytes[usize::from(from)] };
                assert_eq!(q[k], lut[usize::from(p)], "image {i} pixel {k}");
            }
        }
        assert!(matches!(PackedMnist::new(&buf[..buf.len() - 1]), Err(Error::Truncated { .. })));
        assert!(matches!(pack(&pixels, &[1, 10, 0, 0, 0], &mut buf), Err(Error::LabelOutOfRange { .. })));
    }
}
