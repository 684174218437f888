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
//! [`TrainingStore`] keeps training checkpoints (weights, optimizer state and [`FitState`]) the
//! same way, so that training on the device goes on after a power cut with the same bits as a
//! run that was never cut (magic `TTTS`, payload in its docs).
//!
//! Writes and reads go through a 64-byte buffer: flashes with `WRITE_SIZE` and `READ_SIZE`
//! dividing 64 are supported (all common MCUs).

use embedded_storage::nor_flash::{NorFlash, NorFlashError, ReadNorFlash};

use core::marker::PhantomData;

use crate::checkpoint::{self, CRC32, HEADER_LEN, file_len};
use crate::error::{Error, FlashError};
use crate::layer::Layer;
use crate::optim::Optimizer;
use crate::train::{FitState, Trainer};

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
        let slots = Slots::new(flash, base, file_len::<M>())?;
        Ok(CheckpointStore { base, slot_size: slots.slot_size, _net: PhantomData })
    }

    fn slots(self) -> Slots {
        Slots { base: self.base, slot_size: self.slot_size }
    }

    /// Bytes of one slot (a whole number of erase blocks).
    #[must_use]
    pub fn slot_size(&self) -> usize {
        self.slot_size as usize
    }

    /// Offset of slot `i` in the flash.
    #[must_use]
    pub fn slot_offset(&self, i: usize) -> u32 {
        self.slots().offset(i)
    }

    /// Checks slot `i` for network `M`; returns its sequence number when valid.
    ///
    /// # Errors
    /// Only flash read errors; an invalid slot is `Ok(None)`.
    pub fn check_slot<F: ReadNorFlash>(&self, flash: &mut F, i: usize) -> Result<Option<u32>, Error> {
        // One pass: slot CRC, the weights file's own header and CRC. Values are checked on load.
        // The header of this build's format, or of version 1 (whose payload is the same).
        let len = file_len::<M>();
        let expected_header = checkpoint::header::<M>();
        let header_v1 = checkpoint::header_v1::<M>();
        let mut file_crc = CRC32.digest();
        let (mut header_ok, mut header_v1_ok, mut tail) = (true, true, [0u8; 4]);
        let seq = self.slots().check(flash, i, SLOT_MAGIC, len, &mut |at, b| {
            header_ok &= expected_header.get(at).is_none_or(|&e| e == b);
            header_v1_ok &= header_v1.get(at).is_none_or(|&e| e == b);
            match tail.get_mut((at + 4).saturating_sub(len)) {
                Some(t) if at + 4 >= len => *t = b,
                _ => file_crc.update(&[b]),
            }
        })?;
        let valid = (header_ok || header_v1_ok) && u32::from_le_bytes(tail) == file_crc.finalize();
        Ok(seq.filter(|_| valid))
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
        load_model(flash, data, HEADER_LEN, model)?;
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
        let newest = self.scan(flash)?.newest();
        self.slots()
            .save(flash, SLOT_MAGIC, file_len::<M>(), newest, |w| checkpoint::stream(model, &mut |piece| w.put(piece)))
    }
}

/// Checks the stored values of `M` at `data + skip` (every one finite, those kept in flash
/// equal), then writes them into `model`: nothing is half-loaded.
fn load_model<F: ReadNorFlash, M: Layer>(flash: &mut F, data: u32, skip: usize, model: &mut M) -> Result<(), Error> {
    let mut reader = Reader::new(flash, data, skip);
    for index in 0..M::STORED_LEN {
        if !reader.f32().is_finite() {
            reader.error()?;
            return Err(Error::NonFinite { index });
        }
    }
    reader.error()?;
    let mut reader = Reader::new(flash, data, skip);
    let differs = checkpoint::fixed_differs(model, core::iter::from_fn(|| Some(reader.f32())));
    reader.error()?;
    if let Some(index) = differs {
        return Err(Error::FixedTensorDiffers { index });
    }
    let mut reader = Reader::new(flash, data, skip);
    checkpoint::write_values(model, core::iter::from_fn(|| Some(reader.f32())));
    reader.error()
}

/// Magic number of a training-checkpoint slot header ([`TrainingStore`]).
pub const TRAINING_MAGIC: [u8; 4] = *b"TTTS";

/// Two slots of training checkpoints for network `M` trained with optimizer `O`: everything a
/// run on the device needs to go on after a power cut with the same bits as a run that never
/// stopped (the weights, the optimizer state and [`FitState`]). Same slot layout and commit
/// rule as [`CheckpointStore`] (magic `TTTS`); the payload is
///
/// | bytes | field |
/// |---|---|
/// | 4 | network fingerprint ([`checkpoint::fingerprint`]) |
/// | 4 | the run's settings (a hash the caller chooses: a checkpoint of other settings is not loaded) |
/// | [`FitState::BYTES`] | [`FitState::to_bytes`] |
/// | 4 | the optimizer's update counter |
/// | 4 per value | the optimizer state ([`Optimizer::visit_state`]) |
/// | 4 per value | every stored value of the model, in visiting order |
///
/// all little-endian. The slot's CRC-32 covers it all. A run that keeps a snapshot for the
/// divergence guard's rollback keeps it in RAM only: after a reboot the snapshot is the resumed
/// weights.
pub struct TrainingStore<M, O> {
    slots: Slots,
    _run: PhantomData<fn() -> (M, O)>,
}

impl<M, O> Clone for TrainingStore<M, O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M, O> Copy for TrainingStore<M, O> {}

impl<M, O> core::fmt::Debug for TrainingStore<M, O> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TrainingStore")
            .field("base", &self.slots.base)
            .field("slot_size", &self.slots.slot_size)
            .finish()
    }
}

impl<M: Layer, O: Optimizer> TrainingStore<M, O> {
    /// Optimizer state values of the run (its slots times the trainable parameters).
    const STATE_VALUES: usize = O::SLOTS * M::NUM_PARAMS;

    /// Bytes of a training checkpoint of `M` with `O`.
    pub const PAYLOAD_LEN: usize = 8 + FitState::BYTES + 4 + 4 * Self::STATE_VALUES + 4 * M::STORED_LEN;

    /// Lays out two slots from `base` (erase-aligned).
    ///
    /// # Errors
    /// As [`CheckpointStore::new`].
    pub fn new<F: NorFlash>(flash: &F, base: u32) -> Result<Self, Error> {
        Ok(TrainingStore { slots: Slots::new(flash, base, Self::PAYLOAD_LEN)?, _run: PhantomData })
    }

    /// Bytes of one slot (a whole number of erase blocks).
    #[must_use]
    pub fn slot_size(&self) -> usize {
        self.slots.slot_size as usize
    }

    /// Offset of slot `i` in the flash.
    #[must_use]
    pub fn slot_offset(&self, i: usize) -> u32 {
        self.slots.offset(i)
    }

    /// Offset just past the second slot: where the next region can start.
    #[must_use]
    pub fn end(&self) -> u32 {
        self.slots.offset(1) + self.slots.slot_size
    }

    fn prefix(settings: u32) -> [u8; 8] {
        let mut p = [0u8; 8];
        p[..4].copy_from_slice(&checkpoint::fingerprint::<M>().to_le_bytes());
        p[4..].copy_from_slice(&settings.to_le_bytes());
        p
    }

    /// Checks both slots for a training checkpoint of this network and `settings`.
    ///
    /// # Errors
    /// Flash read errors.
    pub fn scan<F: ReadNorFlash>(&self, flash: &mut F, settings: u32) -> Result<Scan, Error> {
        let prefix = Self::prefix(settings);
        let mut slots = [None; 2];
        for (i, slot) in slots.iter_mut().enumerate() {
            let mut ours = true;
            let seq = self.slots.check(flash, i, TRAINING_MAGIC, Self::PAYLOAD_LEN, &mut |at, b| {
                ours &= prefix.get(at).is_none_or(|&e| e == b);
            })?;
            *slot = seq.filter(|_| ours);
        }
        Ok(Scan { slots })
    }

    fn state_len(opt: &O) -> usize {
        let mut n = 0;
        opt.visit_state(&mut |p| n += p.len());
        n
    }

    /// Saves the run: `trainer`'s model and optimizer state and `state`, for `settings`.
    /// Returns (slot, sequence number).
    ///
    /// # Errors
    /// [`Error::NonFinite`] for weights holding NaN and [`Error::InvalidConfig`] for an
    /// optimizer not sized for the network (nothing written); flash errors (the previous
    /// checkpoint stays the newest valid one).
    pub fn save<F: NorFlash>(
        &self,
        flash: &mut F,
        trainer: &Trainer<M, O>,
        state: &FitState,
        settings: u32,
    ) -> Result<(usize, u32), Error> {
        if let Some(index) = checkpoint::first_non_finite(&trainer.model) {
            return Err(Error::NonFinite { index });
        }
        if Self::state_len(&trainer.opt) != Self::STATE_VALUES {
            return Err(Error::InvalidConfig("optimizer state not sized for the network"));
        }
        let newest = self.scan(flash, settings)?.newest();
        self.slots.save(flash, TRAINING_MAGIC, Self::PAYLOAD_LEN, newest, |w| {
            w.put(&Self::prefix(settings));
            w.put(&state.to_bytes());
            w.put(&trainer.opt.steps().to_le_bytes());
            trainer.opt.visit_state(&mut |p| p.iter().for_each(|v| w.put(&v.to_le_bytes())));
            trainer.model.visit(&mut |_, p| p.iter().for_each(|v| w.put(&v.to_le_bytes())));
            Ok(())
        })
    }

    /// Loads the newest valid training checkpoint of `settings` into `trainer` (model and
    /// optimizer state) and `state`, and returns its sequence number; `None` (nothing touched)
    /// when there is none.
    ///
    /// # Errors
    /// Flash read errors; [`Error::NonFinite`] for a checkpoint holding NaN weights or state,
    /// [`Error::FixedTensorDiffers`] for weights that differ from those kept in flash, and
    /// [`Error::InvalidConfig`] for an optimizer not sized for the network (nothing touched).
    pub fn load<F: ReadNorFlash>(
        &self,
        flash: &mut F,
        trainer: &mut Trainer<M, O>,
        state: &mut FitState,
        settings: u32,
    ) -> Result<Option<u32>, Error> {
        if Self::state_len(&trainer.opt) != Self::STATE_VALUES {
            return Err(Error::InvalidConfig("optimizer state not sized for the network"));
        }
        let Some((slot, seq)) = self.scan(flash, settings)?.newest() else {
            return Ok(None);
        };
        let data = self.slots.offset(slot) + DATA_OFFSET as u32;
        let opt_at = 8 + FitState::BYTES + 4;
        let model_at = opt_at + 4 * Self::STATE_VALUES;
        // The optimizer state must be finite too; then the model is checked and loaded.
        let mut reader = Reader::new(flash, data, opt_at);
        for index in 0..Self::STATE_VALUES {
            if !reader.f32().is_finite() {
                reader.error()?;
                return Err(Error::NonFinite { index });
            }
        }
        reader.error()?;
        load_model(flash, data, model_at, &mut trainer.model)?;
        let mut reader = Reader::new(flash, data, 8);
        let mut bytes = [0u8; FitState::BYTES];
        bytes.iter_mut().for_each(|b| *b = reader.byte());
        let steps = u32::from_le_bytes([reader.byte(), reader.byte(), reader.byte(), reader.byte()]);
        trainer.opt.visit_state_mut(&mut |p| p.iter_mut().for_each(|v| *v = reader.f32()));
        reader.error()?;
        trainer.opt.set_steps(steps);
        *state = FitState::from_bytes(&bytes);
        Ok(Some(seq))
    }
}

/// The two slots of a store and their commit rule, for any payload.
#[derive(Debug, Clone, Copy)]
struct Slots {
    base: u32,
    slot_size: u32,
}

impl Slots {
    fn new<F: NorFlash>(flash: &F, base: u32, payload: usize) -> Result<Self, Error> {
        let aligned = |n: usize| n > 0 && CHUNK.is_multiple_of(n);
        if !aligned(F::WRITE_SIZE) || !aligned(F::READ_SIZE) || !(base as usize).is_multiple_of(F::ERASE_SIZE.max(1)) {
            return Err(Error::Flash(FlashError::NotAligned));
        }
        let slot = round_up(DATA_OFFSET + round_up(payload, CHUNK), F::ERASE_SIZE);
        let available = flash.capacity().saturating_sub(base as usize);
        if 2 * slot > available || u32::try_from(base as usize + 2 * slot).is_err() {
            return Err(Error::StorageTooSmall { needed: 2 * slot, available });
        }
        Ok(Slots { base, slot_size: slot as u32 })
    }

    fn offset(self, i: usize) -> u32 {
        self.base + if i == 0 { 0 } else { self.slot_size }
    }

    /// Reads slot `i`: when its header has `magic` and a payload of `len` bytes, hands every
    /// payload byte to `inspect` (offset, byte) and returns the sequence number if the slot's
    /// CRC-32 holds.
    fn check<F: ReadNorFlash>(
        self,
        flash: &mut F,
        i: usize,
        magic: [u8; 4],
        len: usize,
        inspect: &mut impl FnMut(usize, u8),
    ) -> Result<Option<u32>, Error> {
        let mut head = [0u8; CHUNK];
        flash.read(self.offset(i), &mut head).map_err(|e| flash_err(&e))?;
        let word = |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
        let (seq, stored_len, stored) = (word(4), word(8) as usize, word(12));
        if head[0..4] != magic || stored_len != len {
            return Ok(None);
        }
        let mut slot_crc = CRC32.digest();
        slot_crc.update(&head[4..12]);
        let mut reader = Reader::new(flash, self.offset(i) + DATA_OFFSET as u32, 0);
        for at in 0..len {
            let b = reader.byte();
            slot_crc.update(&[b]);
            inspect(at, b);
        }
        reader.error()?;
        Ok((slot_crc.finalize() == stored).then_some(seq))
    }

    /// Erases the slot that does not hold `newest`, writes the payload `produce` gives (exactly
    /// `len` bytes) and commits it with the header block: one program operation.
    fn save<F: NorFlash>(
        self,
        flash: &mut F,
        magic: [u8; 4],
        len: usize,
        newest: Option<(usize, u32)>,
        produce: impl FnOnce(&mut Writer<'_, F>) -> Result<(), Error>,
    ) -> Result<(usize, u32), Error> {
        let (target, seq) = match newest {
            Some((slot, seq)) => (1 - slot, seq.wrapping_add(1)),
            None => (0, 1),
        };
        let start = self.offset(target);
        let erase = F::ERASE_SIZE.max(1) as u32;
        let mut at = start;
        while at < start + self.slot_size {
            flash.erase(at, at + erase).map_err(|e| flash_err(&e))?;
            at += erase;
        }
        let mut slot_crc = CRC32.digest();
        slot_crc.update(&seq.to_le_bytes());
        slot_crc.update(&(len as u32).to_le_bytes());
        let mut writer = Writer {
            flash,
            next: start + DATA_OFFSET as u32,
            buf: [0xFF; CHUNK],
            fill: 0,
            written: 0,
            crc: slot_crc,
            err: None,
        };
        produce(&mut writer)?;
        let Writer { flash, written, crc, .. } = writer.finish()?;
        if written != len {
            return Err(Error::InvalidConfig("checkpoint payload of the wrong length"));
        }
        // The commit: one program operation of the header block.
        let mut head = [0xFFu8; CHUNK];
        head[0..4].copy_from_slice(&magic);
        head[4..8].copy_from_slice(&seq.to_le_bytes());
        head[8..12].copy_from_slice(&(len as u32).to_le_bytes());
        head[12..16].copy_from_slice(&crc.finalize().to_le_bytes());
        flash.write(start, &head).map_err(|e| flash_err(&e))?;
        Ok((target, seq))
    }
}

/// Writes a payload to flash through an aligned 64-byte buffer, keeping its CRC-32.
struct Writer<'f, F> {
    flash: &'f mut F,
    next: u32,
    buf: [u8; CHUNK],
    fill: usize,
    written: usize,
    crc: crc::Digest<'static, u32>,
    err: Option<Error>,
}

impl<F: NorFlash> Writer<'_, F> {
    fn put(&mut self, bytes: &[u8]) {
        self.crc.update(bytes);
        for &b in bytes {
            self.buf[self.fill] = b;
            self.fill += 1;
            if self.fill == CHUNK {
                self.flush();
            }
        }
        self.written += bytes.len();
    }

    fn flush(&mut self) {
        if self.err.is_none()
            && let Err(e) = self.flash.write(self.next, &self.buf)
        {
            self.err = Some(flash_err(&e));
        }
        self.next += CHUNK as u32;
        self.buf = [0xFF; CHUNK];
        self.fill = 0;
    }

    fn finish(mut self) -> Result<Self, Error> {
        if self.fill > 0 {
            self.flush();
        }
        self.err.map_or(Ok(self), Err)
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
