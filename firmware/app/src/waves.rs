//! The waves time series packed for flash: a count, then per signal its label and its 64
//! samples as bytes (`x = b · SCALE`, as the shipped IDX files store them). Small enough raw:
//! 65 bytes a signal.
//!
//! ```
//! use tinytrain::data::Dataset;
//! use tinytrain_firmware_app::waves::{PackedWaves, packed_len, pack};
//! let signals = [7u8; 2 * 64];
//! let mut out = vec![0u8; packed_len(2)];
//! pack(&signals, &[3, 9], &mut out).unwrap();
//! let set = PackedWaves::new(&out).unwrap();
//! let (mut x, mut label) = ([[0.0f32; 64]; 1], 0usize);
//! set.get(1, &mut x, &mut label).unwrap();
//! assert_eq!((label, x[0][5]), (9, 7.0 * (1.0 / 255.0)));
//! ```

use tinytrain::Error;
use tinytrain::data::Dataset;

/// Samples per signal.
pub const SAMPLES: usize = 64;
/// Classes.
pub const CLASSES: usize = 10;
/// Sample byte `b` reads as `b · SCALE`.
pub const SCALE: f32 = 1.0 / 255.0;
/// The network's input: one channel of 64 samples.
pub type Signal = [[f32; SAMPLES]; 1];

/// Bytes of `n` packed signals.
#[must_use]
pub const fn packed_len(n: usize) -> usize {
    4 + n * (1 + SAMPLES)
}

/// Packs `signals` (`SAMPLES` bytes each) with their `labels` into `out`.
///
/// # Errors
/// [`Error::ShapeMismatch`] for sizes that disagree, [`Error::LabelOutOfRange`],
/// [`Error::BufferTooSmall`].
pub fn pack(signals: &[u8], labels: &[u8], out: &mut [u8]) -> Result<usize, Error> {
    let n = labels.len();
    if signals.len() != n * SAMPLES {
        return Err(Error::ShapeMismatch { expected: n * SAMPLES, found: signals.len() });
    }
    if let Some(&l) = labels.iter().find(|&&l| usize::from(l) >= CLASSES) {
        return Err(Error::LabelOutOfRange { label: usize::from(l), classes: CLASSES });
    }
    let len = packed_len(n);
    let available = out.len();
    let out = out.get_mut(..len).ok_or(Error::BufferTooSmall { needed: len, available })?;
    out[..4].copy_from_slice(&(n as u32).to_le_bytes());
    for ((record, signal), &label) in
        out[4..].chunks_exact_mut(1 + SAMPLES).zip(signals.chunks_exact(SAMPLES)).zip(labels)
    {
        record[0] = label;
        record[1..].copy_from_slice(signal);
    }
    Ok(len)
}

/// Packed signals, read in place from flash.
#[derive(Debug, Clone, Copy)]
pub struct PackedWaves<'a> {
    records: &'a [u8],
    len: usize,
}

impl<'a> PackedWaves<'a> {
    /// Checks `bytes` and reads the signals from them.
    ///
    /// # Errors
    /// [`Error::Truncated`] or [`Error::TrailingBytes`] for a length that disagrees with the
    /// count, [`Error::LabelOutOfRange`] for a bad label.
    pub fn new(bytes: &'a [u8]) -> Result<Self, Error> {
        let Some(count) = bytes.first_chunk::<4>() else {
            return Err(Error::Truncated { expected: 4, found: bytes.len() });
        };
        let len = u32::from_le_bytes(*count) as usize;
        let expected = packed_len(len);
        if bytes.len() < expected {
            return Err(Error::Truncated { expected, found: bytes.len() });
        }
        if bytes.len() > expected {
            return Err(Error::TrailingBytes { expected, found: bytes.len() });
        }
        let records = &bytes[4..];
        if let Some(r) = records.chunks_exact(1 + SAMPLES).find(|r| usize::from(r[0]) >= CLASSES) {
            return Err(Error::LabelOutOfRange { label: usize::from(r[0]), classes: CLASSES });
        }
        Ok(PackedWaves { records, len })
    }

    /// Bytes in flash.
    #[must_use]
    pub fn packed_bytes(&self) -> usize {
        4 + self.records.len()
    }
}

impl Dataset<Signal, usize> for PackedWaves<'_> {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize, x: &mut Signal, target: &mut usize) -> Result<(), Error> {
        let start = index.checked_mul(1 + SAMPLES).ok_or(Error::Empty)?;
        let Some(record) = self.records.get(start..start + 1 + SAMPLES) else {
            return Err(Error::Empty);
        };
        *target = usize::from(record[0]);
        for (v, &b) in x[0].iter_mut().zip(&record[1..]) {
            *v = f32::from(b) * SCALE;
        }
        Ok(())
    }
}

/// The training and test signals of the `qemu_waves` firmware.
#[derive(Debug, Clone, Copy)]
pub struct WavesSets<'a> {
    /// Training signals.
    pub train: PackedWaves<'a>,
    /// Test signals.
    pub test: PackedWaves<'a>,
}

impl<'a> WavesSets<'a> {
    /// Reads both packed sets.
    ///
    /// # Errors
    /// As [`PackedWaves::new`].
    pub fn new(train: &'a [u8], test: &'a [u8]) -> Result<Self, Error> {
        Ok(WavesSets { train: PackedWaves::new(train)?, test: PackedWaves::new(test)? })
    }
}
