//! Training checkpoints: everything a run needs to go on after the process is killed, with the
//! same bits as a run that never stopped.
//!
//! | part | content |
//! |---|---|
//! | header | magic `TTTC`, format version (1), network fingerprint, hash of the run's settings |
//! | state | [`FitState`]: epoch, batch, dropout generator, guard and early-stopping state |
//! | optimizer | update counter, then every state array (`Optimizer::visit_state`) |
//! | weights | the model, the snapshot (best or last weights) and the initial weights, each every stored value in visiting order |
//! | trailer | CRC-32 of everything before it |
//!
//! All little-endian. Loading checks the magic, version, length, checksum, fingerprint and the
//! settings hash before it writes anything: resuming with other settings (another seed, batch
//! size, optimizer, data) is refused, since it would not give the run that was asked for.
//!
//! ```
//! use tinytrain::prelude::*;
//! use tinytrain::train::FitState;
//! use tinytrain_sim::resume::{Checkpoint, read, write};
//! type Net = tinytrain::sequential![Dense<2, 2>];
//! let mut t = Trainer::<Net, Adam<6>>::ZERO;
//! t.model.init(&mut Rng::new(1));
//! let (snap, init) = (t.model.clone(), t.model.clone());
//! let state = FitState::new();
//! let bytes = write(&Checkpoint { trainer: &t, snapshot: &snap, initial: &init, state: &state }, 7);
//! let mut back = Trainer::<Net, Adam<6>>::ZERO;
//! let (mut s2, mut i2, mut st2) = (Net::ZERO, Net::ZERO, FitState::new());
//! read(&bytes, 7, &mut back, &mut s2, &mut i2, &mut st2).unwrap();
//! assert_eq!(back.model, t.model);
//! assert!(read(&bytes, 8, &mut back, &mut s2, &mut i2, &mut st2).is_err(), "other settings");
//! ```

use anyhow::{Result, bail, ensure};
use tinytrain::Layer;
use tinytrain::checkpoint::{CRC32, fingerprint};
use tinytrain::optim::Optimizer;
use tinytrain::params::Slot;
use tinytrain::train::{FitState, Trainer};

/// Magic number of a training checkpoint.
pub const MAGIC: [u8; 4] = *b"TTTC";
/// Format version.
pub const VERSION: u16 = 1;

/// What a training checkpoint holds.
pub struct Checkpoint<'a, M: Layer, O: Optimizer> {
    /// The model and the optimizer state.
    pub trainer: &'a Trainer<M, O>,
    /// The snapshot (best weights with early stopping, else the last epoch's).
    pub snapshot: &'a M,
    /// The weights training started from.
    pub initial: &'a M,
    /// Where the run is.
    pub state: &'a FitState,
}

fn put_values(out: &mut Vec<u8>, values: &[f32]) {
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn put_model<M: Layer>(out: &mut Vec<u8>, m: &M) {
    m.visit(&mut |_, p| put_values(out, p));
}

fn put_state(out: &mut Vec<u8>, s: &FitState) {
    out.extend_from_slice(&s.to_bytes());
}

/// Bytes of the state part.
const STATE_LEN: usize = FitState::BYTES;

/// The training checkpoint of `c`, for a run whose settings hash to `settings`.
#[must_use]
pub fn write<M: Layer, O: Optimizer>(c: &Checkpoint<'_, M, O>, settings: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&fingerprint::<M>().to_le_bytes());
    out.extend_from_slice(&settings.to_le_bytes());
    put_state(&mut out, c.state);
    out.extend_from_slice(&c.trainer.opt.steps().to_le_bytes());
    c.trainer.opt.visit_state(&mut |p| put_values(&mut out, p));
    put_model(&mut out, &c.trainer.model);
    put_model(&mut out, c.snapshot);
    put_model(&mut out, c.initial);
    let crc = CRC32.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reads little-endian values from a checked byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn u32(&mut self) -> u32 {
        let b = &self.bytes[self.at..self.at + 4];
        self.at += 4;
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    fn f32(&mut self) -> f32 {
        f32::from_bits(self.u32())
    }

    fn values(&mut self, dst: &mut [f32]) {
        for v in dst {
            *v = self.f32();
        }
    }

    fn model<M: Layer>(&mut self, m: &mut M) {
        m.visit_mut(&mut |_, slot| match slot {
            Slot::Mut(p) => self.values(p),
            Slot::Fixed(p) => self.at += 4 * p.len(),
        });
    }
}

/// Bytes of the checkpoint of network `M` with optimizer `O`.
fn expected_len<M: Layer, O: Optimizer>(opt: &O) -> usize {
    let mut state = 0;
    opt.visit_state(&mut |p| state += p.len());
    4 + 2 + 4 + 4 + STATE_LEN + 4 + 4 * state + 3 * 4 * M::STORED_LEN + 4
}

/// Loads a training checkpoint into `trainer` (model and optimizer), `snapshot`, `initial`
/// and `state`; nothing is written unless the whole file checks out.
///
/// # Errors
/// A file that is not a training checkpoint, of another version, cut short or corrupt (CRC),
/// of another network, or of a run with other settings.
pub fn read<M: Layer, O: Optimizer>(
    bytes: &[u8],
    settings: u32,
    trainer: &mut Trainer<M, O>,
    snapshot: &mut M,
    initial: &mut M,
    state: &mut FitState,
) -> Result<()> {
    ensure!(bytes.len() >= 14 && bytes[..4] == MAGIC, "not a training checkpoint (no TTTC magic)");
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    ensure!(version == VERSION, "training checkpoint format version {version}; this build reads version {VERSION}");
    let expected = expected_len::<M, O>(&trainer.opt);
    ensure!(
        bytes.len() == expected,
        "training checkpoint of {} bytes, expected {expected} for this network and optimizer",
        bytes.len()
    );
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    ensure!(CRC32.checksum(body) == stored, "training checkpoint is corrupt (CRC-32 mismatch)");
    let mut r = Reader { bytes: body, at: 6 };
    let fp = r.u32();
    if fp != fingerprint::<M>() {
        bail!("training checkpoint of another network (fingerprint {fp:#010x}, expected {:#010x})", fingerprint::<M>());
    }
    let theirs = r.u32();
    ensure!(
        theirs == settings,
        "training checkpoint of a run with other settings (seed, batch, epochs, optimizer, data or validation split): resume with the same options"
    );
    let mut bytes_of_state = [0u8; FitState::BYTES];
    bytes_of_state.copy_from_slice(&body[r.at..r.at + FitState::BYTES]);
    r.at += FitState::BYTES;
    *state = FitState::from_bytes(&bytes_of_state);
    let steps = r.u32();
    trainer.opt.set_steps(steps);
    trainer.opt.visit_state_mut(&mut |p| r.values(p));
    r.model(&mut trainer.model);
    r.model(snapshot);
    r.model(initial);
    Ok(())
}
