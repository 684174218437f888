//! The weights file on NOR flash: erase, write, read back.
//!
//! Works with any [`embedded_storage::nor_flash::NorFlash`]: the region starting at `offset`
//! is erased in whole erase blocks, the file is written in `WRITE_SIZE` pieces (the last one
//! padded with 0xFF, which leaves erased bits as they are), and read back in `READ_SIZE`
//! pieces.
//!
//! ```
//! use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};
//! use tinytrain_firmware_app::storage::{read_back, store};
//!
//! struct Ram([u8; 256]);
//! impl ErrorType for Ram { type Error = NorFlashErrorKind; }
//! impl ReadNorFlash for Ram {
//!     const READ_SIZE: usize = 1;
//!     fn read(&mut self, at: u32, out: &mut [u8]) -> Result<(), Self::Error> {
//!         out.copy_from_slice(&self.0[at as usize..at as usize + out.len()]);
//!         Ok(())
//!     }
//!     fn capacity(&self) -> usize { 256 }
//! }
//! impl NorFlash for Ram {
//!     const WRITE_SIZE: usize = 4;
//!     const ERASE_SIZE: usize = 64;
//!     fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
//!         self.0[from as usize..to as usize].fill(0xFF);
//!         Ok(())
//!     }
//!     fn write(&mut self, at: u32, data: &[u8]) -> Result<(), Self::Error> {
//!         for (f, d) in self.0[at as usize..].iter_mut().zip(data) { *f &= d; }
//!         Ok(())
//!     }
//! }
//!
//! let mut flash = Ram([0; 256]);
//! store(&mut flash, 64, b"hello").unwrap();
//! let mut back = [0u8; 5];
//! read_back(&mut flash, 64, &mut back).unwrap();
//! assert_eq!(&back, b"hello");
//! ```

use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind};

/// Largest `WRITE_SIZE` or `READ_SIZE` this module handles (it pads through a buffer).
pub const MAX_UNIT: usize = 64;

fn kind<E: NorFlashError>(e: &E) -> NorFlashErrorKind {
    e.kind()
}

/// Erases the blocks that `data` will occupy at `offset` and writes it there.
///
/// # Errors
/// [`NorFlashErrorKind::NotAligned`] when `offset` is not on an erase block or a unit is
/// larger than [`MAX_UNIT`]; [`NorFlashErrorKind::OutOfBounds`] when the file does not fit;
/// whatever the flash reports.
pub fn store<F: NorFlash>(flash: &mut F, offset: u32, data: &[u8]) -> Result<(), NorFlashErrorKind> {
    let (erase, unit) = (F::ERASE_SIZE.max(1), F::WRITE_SIZE.max(1));
    if !(offset as usize).is_multiple_of(erase) || unit > MAX_UNIT {
        return Err(NorFlashErrorKind::NotAligned);
    }
    let erase_len = data.len().div_ceil(erase) * erase;
    let end = offset as usize + erase_len;
    if end > flash.capacity() {
        return Err(NorFlashErrorKind::OutOfBounds);
    }
    flash.erase(offset, end as u32).map_err(|e| kind(&e))?;
    let whole = data.len() / unit * unit;
    if whole > 0 {
        flash.write(offset, &data[..whole]).map_err(|e| kind(&e))?;
    }
    let tail = &data[whole..];
    if !tail.is_empty() {
        let mut last = [0xFFu8; MAX_UNIT];
        last[..tail.len()].copy_from_slice(tail);
        flash.write(offset + whole as u32, &last[..unit]).map_err(|e| kind(&e))?;
    }
    Ok(())
}

/// Reads `out.len()` bytes at `offset` back from flash.
///
/// # Errors
/// [`NorFlashErrorKind::NotAligned`] when `offset` is not on a read unit or a unit is larger
/// than [`MAX_UNIT`]; whatever the flash reports.
pub fn read_back<F: NorFlash>(flash: &mut F, offset: u32, out: &mut [u8]) -> Result<(), NorFlashErrorKind> {
    let unit = F::READ_SIZE.max(1);
    if !(offset as usize).is_multiple_of(unit) || unit > MAX_UNIT {
        return Err(NorFlashErrorKind::NotAligned);
    }
    let whole = out.len() / unit * unit;
    let (head, tail) = out.split_at_mut(whole);
    if !head.is_empty() {
        flash.read(offset, head).map_err(|e| kind(&e))?;
    }
    if !tail.is_empty() {
        let mut last = [0u8; MAX_UNIT];
        flash.read(offset + whole as u32, &mut last[..unit]).map_err(|e| kind(&e))?;
        let n = tail.len();
        tail.copy_from_slice(&last[..n]);
    }
    Ok(())
}
