//! Power-safe checkpoints on NOR flash: two slots, the newest valid one wins.
//!
//! A region of any [`NorFlash`] (from `embedded-storage`) holds two slots. Each slot is a
//! 64-byte header block followed by the weights file ([`crate::checkpoint`]):
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | magic `TTCS` |
//! | 4 | 4 | sequence number, little-endian |
//! | 8 | 4 | length of the weights file |
//! | 12 | 4 | CRC-32 of sequence number, length and weights file |
//! | 16 | 48 | erased (0xFF) |
//! | 64 | len | the weights file: magic, format version, network fingerprint, count, CRC-32 |
//!
//! [`CheckpointStore::save`] erases the slot that does *not* hold the newest checkpoint,
//! writes the weights file into it, and writes the header block last: until that one program
//! operation completes the slot is invalid, so a power cut at any point leaves the previous
//! checkpoint the newest valid one. [`CheckpointStore::load`] checks both slots (magic, CRC,
//! network fingerprint, every value finite) and loads the newest valid one; nothing is
//! half-loaded.
//!
//! Writes and reads go through a 64-byte buffer: flashes with `WRITE_SIZE` and `READ_SIZE`
//! dividing 64 are supported (all common MCUs).

use embedded_storage::nor_flash::{NorFlash, NorFlashError, ReadNorFlash};

use core::marker::PhantomData;

use crate::checkpoint::{self, CRC32, HEADER_LEN, file_len};
use crate::error::{Error, FlashError};
use crate::layer::Layer;

/// Magic number of a slot header.
pub const SLOT_MAGIC: [u8; 4] = *b"TTCS";
/// Bytes of the header block before the weights file.
pub const DATA_OFFSET: usize = 64;
const CHUNK: usize = 64;

fn flash_err<E: NorFlashError>(e: &E) -> Error {
    Error::Flash(e.kind().into())
}

fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to.max(1)) * to.max(1)
}

/// `a` is a later sequence number than `b` (wrapping, like TCP).
fn newer(a: u32, b: u32) -> bool {
    a.wrapping_sub(b).cast_signed() > 0
}

/// What a scan of the two slots found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Scan {
    /// Sequence number of each slot's checkpoint, if it is valid for the network.
    pub slots: [Option<u32>; 2],
}

impl Scan {
    /// Slot and sequence number of the newest valid checkpoint.
    #[must_use]
    pub fn newest(&self) -> Option<(usize, u32)> {
        match self.slots {
            [Some(a), Some(b)] => Some(if newer(b, a) { (1, b) } else { (0, a) }),
            [Some(a), None] => Some((0, a)),
            [None, Some(b)] => Some((1, b)),
            [None, None] => None,
        }
    }
}

/// Two checkpoint slots for network `M` in a region of a NOR flash starting at `base`.
///
/// The store is typed by its network: saving or loading another network does not compile.
pub struct CheckpointStore<M> {
    base: u32,
    slot_size: u32,
    _net: PhantomData<fn() -> M>,
}

impl<M> Clone for CheckpointStore<M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M> Copy for CheckpointStore<M> {}

impl<M> core::fmt::Debug for CheckpointStore<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CheckpointStore").field("base", &self.base).field("slot_size", &self.slot_size).finish()
    }
}

impl<M: Layer> CheckpointStore<M> {
    /// Lays out two slots for network `M` from `base` (which must be erase-aligned).
    ///
    /// # Errors
    /// [`Error::Flash`] with `NotAligned` for an unaligned base or a write/read size that does
    /// not divide 64; [`Error::StorageTooSmall`] when two slots do not fit.
    pub fn new<F: NorFlash>(flash: &F, base: u32) -> Result<Self, Error> {
        let aligned = |n: usize| n > 0 && CHUNK.is_multiple_of(n);
        if !aligned(F::WRITE_SIZE) || !aligned(F::READ_SIZE) || !(base as usize).is_multiple_of(F::ERASE_SIZE.max(1)) {
            return Err(Error::Flash(FlashError::NotAligned));
        }
        let slot = round_up(DATA_OFFSET + round_up(file_len::<M>(), CHUNK), F::ERASE_SIZE);
        let available = flash.capacity().saturating_sub(base as usize);
        if 2 * slot > available || u32::try_from(base as usize + 2 * slot).is_err() {
            return Err(Error::StorageTooSmall { needed: 2 * slot, available });
        }
        Ok(CheckpointStore { base, slot_size: slot as u32, _net: PhantomData })
    }

    /// Bytes of one slot (a whole number of erase blocks).
    #[must_use]
    pub fn slot_size(&self) -> usize {
        self.slot_size as usize
    }

    /// Offset of slot `i` in the flash.
    #[must_use]
    pub fn slot_offset(&self, i: usize) -> u32 {
        self.base + if i == 0 { 0 } else { self.slot_size }
    }

    /// Checks slot `i` for network `M`; returns its sequence number when valid.
    ///
    /// # Errors
    /// Only flash read errors; an invalid slot is `Ok(None)`.
    pub fn check_slot<F: ReadNorFlash>(&self, flash: &mut F, i: usize) -> Result<Option<u32>, Error> {
        let mut head = [0u8; CHUNK];
        flash.read(self.slot_offset(i), &mut head).map_err(|e| flash_err(&e))?;
        let word = |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
        let (seq, len, stored) = (word(4), word(8) as usize, word(12));
        if head[0..4] != SLOT_MAGIC || len != file_len::<M>() {
            return Ok(None);
        }
        // One pass: slot CRC, the weights file's own header and CRC. Values are checked on load.
        // The header of this build's format, or of version 1 (whose payload is the same).
        let expected_header = checkpoint::header::<M>();
        let header_v1 = checkpoint::header_v1::<M>();
        let mut slot_crc = CRC32.digest();
        slot_crc.update(&head[4..12]);
        let mut file_crc = CRC32.digest();
        let (mut header_ok, mut header_v1_ok) = (true, true);
        let mut reader = Reader::new(flash, self.slot_offset(i) + DATA_OFFSET as u32, 0);
        for at in 0..len - 4 {
            let b = reader.byte();
            header_ok &= expected_header.get(at).is_none_or(|&e| e == b);
            header_v1_ok &= header_v1.get(at).is_none_or(|&e| e == b);
            slot_crc.update(&[b]);
            file_crc.update(&[b]);
        }
        let tail = [reader.byte(), reader.byte(), reader.byte(), reader.byte()];
        slot_crc.update(&tail);
        reader.error()?;
        let valid = (header_ok || header_v1_ok)
            && u32::from_le_bytes(tail) == file_crc.finalize()
            && slot_crc.finalize() == stored;
        Ok(valid.then_some(seq))
    }

    /// Checks both slots.
    ///
    /// # Errors
    /// Flash read errors.
    pub fn scan<F: ReadNorFlash>(&self, flash: &mut F) -> Result<Scan, Error> {
        Ok(Scan { slots: [self.check_slot(flash, 0)?, self.check_slot(flash, 1)?] })
    }

    /// Loads the newest valid checkpoint into `model` and returns its sequence number, or
    /// `None` (model untouched) when neither slot holds one.
    ///
    /// # Errors
    /// Flash read errors; [`Error::NonFinite`] for a checkpoint holding NaN (model untouched).
    pub fn load<F: ReadNorFlash>(&self, flash: &mut F, model: &mut M) -> Result<Option<u32>, Error> {
        let Some((slot, seq)) = self.scan(flash)?.newest() else {
            return Ok(None);
        };
        let data = self.slot_offset(slot) + DATA_OFFSET as u32;
        // First pass: every value finite. Second pass: copy. Nothing is half-loaded.
        let mut reader = Reader::new(flash, data, HEADER_LEN);
        for index in 0..M::STORED_LEN {
            if !reader.f32().is_finite() {
                reader.error()?;
                return Err(Error::NonFinite { index });
            }
        }
        reader.error()?;
        let mut reader = Reader::new(flash, data, HEADER_LEN);
        let differs = checkpoint::fixed_differs(model, core::iter::from_fn(|| Some(reader.f32())));
        reader.error()?;
        if let Some(index) = differs {
            return Err(Error::FixedTensorDiffers { index });
        }
        let mut reader = Reader::new(flash, data, HEADER_LEN);
        checkpoint::write_values(model, core::iter::from_fn(|| Some(reader.f32())));
        reader.error()?;
        Ok(Some(seq))
    }

    /// Saves `model` as the new newest checkpoint and returns (slot, sequence number).
    ///
    /// # Errors
    /// [`Error::NonFinite`] for a model holding NaN (nothing is written); flash errors (the
    /// previous checkpoint stays the newest valid one).
    pub fn save<F: NorFlash>(&self, flash: &mut F, model: &M) -> Result<(usize, u32), Error> {
        if let Some(index) = checkpoint::first_non_finite(model) {
            return Err(Error::NonFinite { index });
        }
        let (target, seq) = match self.scan(flash)?.newest() {
            Some((slot, seq)) => (1 - slot, seq.wrapping_add(1)),
            None => (0, 1),
        };
        let start = self.slot_offset(target);
        let erase = F::ERASE_SIZE.max(1) as u32;
        let mut at = start;
        while at < start + self.slot_size {
            flash.erase(at, at + erase).map_err(|e| flash_err(&e))?;
            at += erase;
        }
        let len = file_len::<M>();
        let mut slot_crc = CRC32.digest();
        slot_crc.update(&seq.to_le_bytes());
        slot_crc.update(&(len as u32).to_le_bytes());
        let mut buf = [0xFFu8; CHUNK];
        let (mut fill, mut written) = (0usize, 0u32);
        let mut result = Ok(());
        let data = start + DATA_OFFSET as u32;
        checkpoint::stream(model, &mut |piece| {
            slot_crc.update(piece);
            for &b in piece {
                buf[fill] = b;
                fill += 1;
                if fill == CHUNK {
                    if result.is_ok() {
                        result = flash.write(data + written, &buf).map_err(|e| flash_err(&e));
                    }
                    written += CHUNK as u32;
                    buf = [0xFF; CHUNK];
                    fill = 0;
                }
            }
        })?;
        result?;
        if fill > 0 {
            flash.write(data + written, &buf).map_err(|e| flash_err(&e))?;
        }
        // The commit: one program operation of the header block.
        let mut head = [0xFFu8; CHUNK];
        head[0..4].copy_from_slice(&SLOT_MAGIC);
        head[4..8].copy_from_slice(&seq.to_le_bytes());
        head[8..12].copy_from_slice(&(len as u32).to_le_bytes());
        head[12..16].copy_from_slice(&slot_crc.finalize().to_le_bytes());
        flash.write(start, &head).map_err(|e| flash_err(&e))?;
        Ok((target, seq))
    }
}

/// Reads a flash region byte by byte through an aligned 64-byte buffer.
struct Reader<'f, F> {
    flash: &'f mut F,
    next: u32,
    buf: [u8; CHUNK],
    pos: usize,
    err: Option<Error>,
}

impl<'f, F: ReadNorFlash> Reader<'f, F> {
    /// Starts at the aligned offset `start`, skipping `skip` bytes.
    fn new(flash: &'f mut F, start: u32, skip: usize) -> Self {
        let mut r = Reader { flash, next: start, buf: [0; CHUNK], pos: CHUNK, err: None };
        for _ in 0..skip {
            r.byte();
        }
        r
    }

    fn byte(&mut self) -> u8 {
        if self.pos == CHUNK {
            if self.err.is_none()
                && let Err(e) = self.flash.read(self.next, &mut self.buf)
            {
                self.err = Some(flash_err(&e));
            }
            self.next += CHUNK as u32;
            self.pos = 0;
        }
        self.pos += 1;
        self.buf[self.pos - 1]
    }

    fn f32(&mut self) -> f32 {
        f32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn error(&self) -> Result<(), Error> {
        self.err.map_or(Ok(()), Err)
    }
}
