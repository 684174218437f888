//! A simulated NOR flash that obeys NOR rules and can lose power after any operation.
//!
//! - Erase sets whole `ERASE`-byte sectors to 0xFF; each sector erased is one operation and
//!   is counted per sector (wear).
//! - Programming can only clear bits: writing a 1 over a 0 is refused, as real NOR would
//!   silently not do it. Each `WRITE`-byte word programmed is one operation, so a multi-word
//!   write can be torn by a power cut.
//! - [`SimFlash::cut_power_after`] makes every operation after the n-th fail and change
//!   nothing, as if the supply died; [`SimFlash::power_on`] is the next boot.
//!
//! ```
//! use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
//! use tinytrain_sim::flash::SimFlash;
//! let mut f = SimFlash::<4, 256>::new(1024);
//! f.erase(0, 256).unwrap();
//! f.write(0, &[1, 2, 3, 4]).unwrap();
//! assert!(f.write(0, &[0xFF; 4]).is_err(), "NOR cannot set bits without an erase");
//! f.cut_power_after(1);
//! f.write(4, &[9; 8]).unwrap_err(); // the first word lands, the second does not
//! f.power_on();
//! let mut back = [0u8; 8];
//! f.read(4, &mut back).unwrap();
//! assert_eq!(back, [9, 9, 9, 9, 0xFF, 0xFF, 0xFF, 0xFF]);
//! ```

use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};

/// Why a simulated operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimFlashError {
    /// Misaligned offset or length.
    NotAligned,
    /// Past the end of the flash.
    OutOfBounds,
    /// A write tried to set a bit that is 0 (the sector was not erased).
    NotErased,
    /// The power was cut.
    PowerLost,
}

impl NorFlashError for SimFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            SimFlashError::NotAligned => NorFlashErrorKind::NotAligned,
            SimFlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            SimFlashError::NotErased | SimFlashError::PowerLost => NorFlashErrorKind::Other,
        }
    }
}

/// A RAM-backed NOR flash with `WRITE`-byte program words and `ERASE`-byte sectors.
#[derive(Debug, Clone)]
pub struct SimFlash<const WRITE: usize = 4, const ERASE: usize = 4096> {
    mem: Vec<u8>,
    erases: Vec<u32>,
    ops: usize,
    cut_after: Option<usize>,
}

impl<const WRITE: usize, const ERASE: usize> SimFlash<WRITE, ERASE> {
    /// A flash of `capacity` bytes (rounded up to whole sectors), fully erased.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let sectors = capacity.div_ceil(ERASE);
        SimFlash { mem: vec![0xFF; sectors * ERASE], erases: vec![0; sectors], ops: 0, cut_after: None }
    }

    /// From now on, only `n` more operations succeed; the rest fail as if power was lost.
    pub fn cut_power_after(&mut self, n: usize) {
        self.cut_after = Some(self.ops + n);
    }

    /// Power comes back: operations succeed again.
    pub fn power_on(&mut self) {
        self.cut_after = None;
    }

    /// Operations (sector erases and word programs) done so far.
    #[must_use]
    pub fn operations(&self) -> usize {
        self.ops
    }

    /// Erase count of each sector (wear).
    #[must_use]
    pub fn erase_counts(&self) -> &[u32] {
        &self.erases
    }

    /// The raw contents.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.mem
    }

    /// Flips bit `bit` of byte `at` (to simulate corruption).
    pub fn flip_bit(&mut self, at: usize, bit: u8) {
        if let Some(b) = self.mem.get_mut(at) {
            *b ^= 1 << (bit % 8);
        }
    }

    fn op(&mut self) -> Result<(), SimFlashError> {
        if self.cut_after.is_some_and(|c| self.ops >= c) {
            return Err(SimFlashError::PowerLost);
        }
        self.ops += 1;
        Ok(())
    }

    fn range(&self, offset: u32, len: usize, align: usize) -> Result<std::ops::Range<usize>, SimFlashError> {
        let start = offset as usize;
        if !start.is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(SimFlashError::NotAligned);
        }
        let end = start.checked_add(len).filter(|&e| e <= self.mem.len()).ok_or(SimFlashError::OutOfBounds)?;
        Ok(start..end)
    }
}

impl<const WRITE: usize, const ERASE: usize> ErrorType for SimFlash<WRITE, ERASE> {
    type Error = SimFlashError;
}

impl<const WRITE: usize, const ERASE: usize> ReadNorFlash for SimFlash<WRITE, ERASE> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let r = self.range(offset, bytes.len(), 1)?;
        bytes.copy_from_slice(&self.mem[r]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl<const WRITE: usize, const ERASE: usize> NorFlash for SimFlash<WRITE, ERASE> {
    const WRITE_SIZE: usize = WRITE;
    const ERASE_SIZE: usize = ERASE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        let len = (to as usize).checked_sub(from as usize).ok_or(SimFlashError::OutOfBounds)?;
        let r = self.range(from, len, ERASE)?;
        for sector in r.step_by(ERASE) {
            self.op()?;
            self.mem[sector..sector + ERASE].fill(0xFF);
            self.erases[sector / ERASE] += 1;
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        let r = self.range(offset, bytes.len(), WRITE)?;
        for (word, data) in r.step_by(WRITE).zip(bytes.chunks(WRITE)) {
            let cells = &self.mem[word..word + WRITE];
            if cells.iter().zip(data).any(|(&old, &new)| old & new != new) {
                return Err(SimFlashError::NotErased);
            }
            self.op()?;
            for (cell, &new) in self.mem[word..word + WRITE].iter_mut().zip(data) {
                *cell &= new;
            }
        }
        Ok(())
    }
}
