//! The one error type of the crate.
//!
//! Everything that arrives at run time (weights files, datasets, sensor values, NaN,
//! configuration) is checked and reported as an [`Error`]; shapes are checked at compile time.
//!
//! ```
//! use tinytrain::Error;
//! let e = Error::Truncated { expected: 24, found: 3 };
//! assert_eq!(e.to_string(), "input truncated: expected 24 bytes, found 3");
//! ```

use core::fmt;

/// What went wrong, with what was expected where that helps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// A byte slice ended before the data it announces.
    Truncated {
        /// Bytes needed.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// A file does not start with the expected magic number.
    BadMagic,
    /// A weights file of a format version this build cannot read.
    UnsupportedVersion {
        /// Version in the file.
        found: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// A weights file saved from a different network.
    WrongNetwork {
        /// Fingerprint of the network being loaded into.
        expected: u32,
        /// Fingerprint stored in the file.
        found: u32,
    },
    /// The parameter count in a weights file differs from the network's.
    ParamCount {
        /// Parameters of the network.
        expected: usize,
        /// Parameters in the file.
        found: usize,
    },
    /// A checksum does not match: the data is corrupt.
    Checksum {
        /// Checksum computed over the data.
        computed: u32,
        /// Checksum stored with the data.
        stored: u32,
    },
    /// Trailing bytes after a complete record.
    TrailingBytes {
        /// Bytes expected in total.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// A value that must be finite is NaN or infinite.
    NonFinite {
        /// Index of the first bad value.
        index: usize,
    },
    /// A class label outside `0..classes`.
    LabelOutOfRange {
        /// The label.
        label: usize,
        /// Number of classes of the model.
        classes: usize,
    },
    /// A sample whose size does not match the model's input.
    ShapeMismatch {
        /// Elements the model expects.
        expected: usize,
        /// Elements provided.
        found: usize,
    },
    /// A dataset index past its end, or an empty dataset where samples are needed.
    Empty,
    /// An output buffer is too small.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A hyper-parameter outside its valid range.
    InvalidConfig(&'static str),
    /// Training diverged: the loss or a gradient became NaN or infinite.
    Diverged,
    /// The flash refused an operation.
    Flash(FlashError),
    /// A checkpoint region that cannot hold two slots of this network's checkpoint.
    StorageTooSmall {
        /// Bytes needed for both slots.
        needed: usize,
        /// Bytes available after the region's start.
        available: usize,
    },
    /// A weights file whose values for a tensor kept in flash ([`FrozenRef`](crate::FrozenRef))
    /// differ from the flash's: flash is not rewritten, so the file cannot be loaded.
    FixedTensorDiffers {
        /// Index of the first differing value among all stored values.
        index: usize,
    },
    /// A header field of a file with a valid checksum that does not hold the value it must:
    /// the file was written that way, not damaged on the way.
    BadHeader {
        /// The field, as the format's documentation names it (`header length`, ...).
        field: &'static str,
        /// The value it must hold.
        expected: u32,
        /// The value in the file.
        found: u32,
    },
}

/// Why a flash operation failed (the kinds of `embedded-storage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FlashError {
    /// An offset or length not aligned to the flash's read, write or erase size.
    NotAligned,
    /// An offset or length past the end of the flash.
    OutOfBounds,
    /// Any other failure the driver reports.
    Other,
}

impl From<embedded_storage::nor_flash::NorFlashErrorKind> for FlashError {
    fn from(kind: embedded_storage::nor_flash::NorFlashErrorKind) -> Self {
        use embedded_storage::nor_flash::NorFlashErrorKind as K;
        match kind {
            K::NotAligned => FlashError::NotAligned,
            K::OutOfBounds => FlashError::OutOfBounds,
            _ => FlashError::Other,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { expected, found } => {
                write!(f, "input truncated: expected {expected} bytes, found {found}")
            }
            Error::BadMagic => f.write_str("bad magic number: not a file of the expected kind"),
            Error::UnsupportedVersion { found, supported } => {
                write!(f, "unsupported format version {found} (this build reads version {supported})")
            }
            Error::WrongNetwork { expected, found } => {
                write!(f, "weights are for a different network (fingerprint {found:#010x}, expected {expected:#010x})")
            }
            Error::ParamCount { expected, found } => {
                write!(f, "wrong parameter count: file has {found}, network has {expected}")
            }
            Error::Checksum { computed, stored } => {
                write!(f, "checksum mismatch: data is corrupt (CRC-32 {computed:#010x}, stored {stored:#010x})")
            }
            Error::TrailingBytes { expected, found } => {
                write!(f, "trailing bytes: expected {expected} bytes, found {found}")
            }
            Error::NonFinite { index } => write!(f, "non-finite value (NaN or infinity) at index {index}"),
            Error::LabelOutOfRange { label, classes } => {
                write!(f, "label {label} out of range: the model has {classes} classes")
            }
            Error::ShapeMismatch { expected, found } => {
                write!(f, "shape mismatch: the model expects {expected} values per sample, the data has {found}")
            }
            Error::Empty => f.write_str("empty dataset or index out of range"),
            Error::BufferTooSmall { needed, available } => {
                write!(f, "buffer too small: need {needed} bytes, have {available}")
            }
            Error::InvalidConfig(what) => write!(f, "invalid configuration: {what}"),
            Error::Diverged => f.write_str("training diverged: loss or gradient is not finite"),
            Error::Flash(kind) => write!(f, "flash operation failed: {kind:?}"),
            Error::StorageTooSmall { needed, available } => {
                write!(f, "checkpoint region too small: two slots need {needed} bytes, the flash has {available}")
            }
            Error::FixedTensorDiffers { index } => {
                write!(f, "value {index} of the file differs from the frozen weights in flash, which are not rewritten")
            }
            Error::BadHeader { field, expected, found } => {
                write!(f, "bad header: the {field} field is {found}, expected {expected}")
            }
        }
    }
}

impl core::error::Error for Error {}
