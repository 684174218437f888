//! Fine-tuning on the device: a frozen int8 backbone in flash, a trainable f32 head in RAM,
//! and labelled samples that arrive from an interrupt.
//!
//! - [`Backbone`]: an int8 network ([`Int8Layer`], weights borrowed from `static`s in flash)
//!   with the quantisation of its input bytes and of its output features. The int8 → f32
//!   boundary dequantises: `f = scale · (q − zero_point)`.
//! - [`FineTuner`]: a [`Backbone`] by reference and a [`Trainer`] of the head: the training
//!   memory is the head's only (its weights, gradients, optimizer state and activations).
//!   Its `size_of` is the trainer's plus a pointer.
//! - [`Inlet`] / [`StreamCounters`]: the interrupt's end of a `heapless::spsc::Queue` of
//!   labelled samples. A full queue drops the sample and counts it: the interrupt never waits.
//! - [`Replay`]: a `heapless::HistoryBuf` of the most recent samples' int8 *features* and
//!   labels, so replaying a sample against forgetting costs no backbone pass.
//! - [`FineTuneSummary`]: the memory budget, with the replay buffer's and the queue's share.
//! - [`Int8Conv2dValid`], [`Int8MaxPool2d`]: backbone layers for the Cortex-M4 (dual 16-bit
//!   multiply-accumulates), bit-identical to the TFLite reference kernels of [`crate::int8`].
//!
//! ```
//! use tinytrain::finetune::{Feature, Inlet, Replay, StreamCounters};
//! use heapless::spsc::Queue;
//! let counters = StreamCounters::new();
//! let mut queue: Queue<u8, 3> = Queue::new(); // holds 2
//! let (producer, mut consumer) = queue.split();
//! let mut inlet = Inlet::new(producer, &counters);
//! assert!(inlet.offer(1) && inlet.offer(2));
//! assert!(!inlet.offer(3), "full: dropped, counted, never blocks");
//! inlet.close();
//! assert_eq!((counters.offered(), counters.dropped(), counters.is_closed()), (3, 1, true));
//! assert_eq!(consumer.dequeue(), Some(1));
//! let mut replay = Replay::<4, 2>::new();
//! replay.write(Feature { q: [1, 2, 3, 4], label: 7 });
//! replay.write(Feature { q: [5; 4], label: 1 });
//! replay.write(Feature { q: [6; 4], label: 2 }); // the oldest goes
//! assert_eq!(replay.len(), 2);
//! assert!(replay.get(0).is_some_and(|f| f.label != 7) && replay.get(1).is_some_and(|f| f.label != 7));
//! ```

mod conv;

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use heapless::HistoryBuf;
use heapless::spsc::Producer;

pub use conv::{Int8Conv2dValid, pack_pairs, requantize};

use crate::error::Error;
use crate::int8::{Int8Chain, Int8Conv2d, Int8Layer};
#[cfg(test)]
use crate::int8::{PoolParams, Shape4, max_pool};
use crate::layer::{Layer, Mode};
use crate::loss::Loss;
use crate::optim::Optimizer;
use crate::summary::Summary;
use crate::train::{Step, Trainer};

/// Bytes an int8 layer keeps in flash (weights, biases, multipliers) and the stack it needs
/// for its intermediate buffers.
pub trait Int8Footprint {
    /// Bytes of weights, biases and per-channel multipliers.
    const FLASH_BYTES: usize;
    /// Bytes of intermediate activations the layer puts on the stack.
    const STACK_BYTES: usize;
}

impl<
    const H: usize,
    const W: usize,
    const CI: usize,
    const CO: usize,
    const KH: usize,
    const KW: usize,
    const SH: usize,
    const SW: usize,
    const HO: usize,
    const WO: usize,
    R,
> Int8Footprint for Int8Conv2d<'_, H, W, CI, CO, KH, KW, SH, SW, HO, WO, R>
{
    // Weights, an i32 bias and a (multiplier, shift) pair per output channel.
    const FLASH_BYTES: usize = CO * KH * KW * CI + 4 * CO + 8 * CO;
    // Its scratch: two im2col columns of 16-bit taps and the padded strip of input rows.
    const STACK_BYTES: usize = 4 * KH * KW * CI + 2 * KH * W * CI;
}

impl<A: Int8Footprint, B: Int8Footprint, const MID: usize> Int8Footprint for Int8Chain<A, B, MID> {
    const FLASH_BYTES: usize = A::FLASH_BYTES + B::FLASH_BYTES;
    const STACK_BYTES: usize = MID + if A::STACK_BYTES > B::STACK_BYTES { A::STACK_BYTES } else { B::STACK_BYTES };
}

/// MAX_POOL_2D, NHWC, `K`x`K` window, stride `K`, VALID (as [`max_pool`](crate::int8::max_pool)): no parameters; the
/// output keeps the input's scale and zero point.
///
/// # Shapes
/// `[i8; H*W*C] -> [i8; HO*WO*C]` with `HO = H / K`, `WO = W / K`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Int8MaxPool2d<
    const C: usize,
    const K: usize,
    const H: usize,
    const W: usize,
    const HO: usize,
    const WO: usize,
>;

impl<
    const C: usize,
    const K: usize,
    const H: usize,
    const W: usize,
    const HO: usize,
    const WO: usize,
    const IN: usize,
    const OUT: usize,
> Int8Layer<IN, OUT> for Int8MaxPool2d<C, K, H, W, HO, WO>
{
    fn forward(&self, input: &[i8; IN], output: &mut [i8; OUT]) {
        const {
            assert!(C > 0 && K > 0 && HO > 0 && WO > 0, "Int8MaxPool2d: zero dim");
            assert!(HO == H / K && WO == W / K, "Int8MaxPool2d: HO != H / K or WO != W / K");
            assert!(IN == H * W * C && OUT == HO * WO * C, "Int8MaxPool2d: IN or OUT do not match the shape");
        };
        // MAX_POOL_2D of windows inside the image, with the full int8 range as the clamp.
        for oy in 0..HO {
            for ox in 0..WO {
                for c in 0..C {
                    let mut max = i8::MIN;
                    for ky in 0..K {
                        for kx in 0..K {
                            if let Some(&v) = input.get(((oy * K + ky) * W + ox * K + kx) * C + c) {
                                max = max.max(v);
                            }
                        }
                    }
                    if let Some(o) = output.get_mut((oy * WO + ox) * C + c) {
                        *o = max;
                    }
                }
            }
        }
    }
}

impl<const C: usize, const K: usize, const H: usize, const W: usize, const HO: usize, const WO: usize> Int8Footprint
    for Int8MaxPool2d<C, K, H, W, HO, WO>
{
    const FLASH_BYTES: usize = 0;
    const STACK_BYTES: usize = 0;
}

/// A frozen int8 network from `IN` input bytes (pixels 0..=255) to `F` int8 features, with
/// its quantisation: `input_lut[p]` is pixel `p` quantised (`round(p / 255 / s_in) + zp_in`,
/// clamped), and feature `q` reads as `feature_scale · (q − feature_zero_point)`.
///
/// Built as a `static` on the device (weights, tables and all in flash).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backbone<'a, B, const IN: usize, const F: usize> {
    /// The int8 layers.
    pub layers: B,
    /// Quantised value of each input byte.
    pub input_lut: &'a [i8; 256],
    /// Scale of the output features.
    pub feature_scale: f32,
    /// Zero point of the output features.
    pub feature_zero_point: i32,
}

impl<B: Int8Layer<IN, F>, const IN: usize, const F: usize> Backbone<'_, B, IN, F> {
    /// The int8 features of the input bytes `pixels`.
    pub fn features(&self, pixels: &[u8; IN], features: &mut [i8; F]) {
        let mut q = [0i8; IN];
        self.quantize_input(pixels, &mut q);
        self.layers.forward(&q, features);
    }

    /// The input bytes `pixels` quantised with the input table.
    pub fn quantize_input(&self, pixels: &[u8; IN], q: &mut [i8; IN]) {
        for (qi, &p) in q.iter_mut().zip(pixels) {
            *qi = self.input_lut[usize::from(p)];
        }
    }

    /// The int8 features of an input already quantised ([`Backbone::quantize_input`]). Not
    /// inlined: the layers' intermediate buffers live in this one frame, for every caller.
    #[inline(never)]
    pub fn features_quantized(&self, q: &[i8; IN], features: &mut [i8; F]) {
        self.layers.forward(q, features);
    }

    /// Int8 features as the head reads them: `scale · (q − zero_point)`.
    pub fn dequantize(&self, q: &[i8; F], out: &mut [f32; F]) {
        for (o, &v) in out.iter_mut().zip(q) {
            *o = (i32::from(v) - self.feature_zero_point) as f32 * self.feature_scale;
        }
    }
}

impl<B: Int8Footprint, const IN: usize, const F: usize> Backbone<'_, B, IN, F> {
    /// Bytes of the backbone in flash: the layers' weights, biases and multipliers, and the
    /// input table.
    pub const FLASH_BYTES: usize = B::FLASH_BYTES + 256;
    /// Bytes of stack a backbone pass takes: the quantised input, the intermediate
    /// activations and the features.
    pub const STACK_BYTES: usize = IN + B::STACK_BYTES + F;
}

/// One sample's backbone features, int8, and its label: what the replay buffer keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Feature<const F: usize> {
    /// The int8 features.
    pub q: [i8; F],
    /// The class.
    pub label: u8,
}

/// The `N` most recent samples' features, the oldest overwritten first.
pub struct Replay<const F: usize, const N: usize> {
    buf: HistoryBuf<Feature<F>, N>,
}

impl<const F: usize, const N: usize> Replay<F, N> {
    /// An empty buffer (`const`: a `static` in `.bss`).
    #[must_use]
    pub const fn new() -> Self {
        Replay { buf: HistoryBuf::new() }
    }

    /// Adds a sample, overwriting the oldest when full.
    pub fn write(&mut self, f: Feature<F>) {
        self.buf.write(f);
    }

    /// Samples held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// `true` when empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Sample `i` in storage order (`0..len`); not ordered by age.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<&Feature<F>> {
        self.buf.as_slice().get(i)
    }

    /// The most recent sample.
    #[must_use]
    pub fn recent(&self) -> Option<&Feature<F>> {
        self.buf.recent()
    }

    /// Forgets every sample.
    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

impl<const F: usize, const N: usize> Default for Replay<F, N> {
    fn default() -> Self {
        Self::new()
    }
}

/// What the interrupt side of a stream did, shared with the training loop.
#[derive(Debug, Default)]
pub struct StreamCounters {
    offered: AtomicU32,
    dropped: AtomicU32,
    closed: AtomicBool,
}

impl StreamCounters {
    /// Nothing offered yet (`const`: a `static`).
    #[must_use]
    pub const fn new() -> Self {
        StreamCounters { offered: AtomicU32::new(0), dropped: AtomicU32::new(0), closed: AtomicBool::new(false) }
    }

    /// Samples the interrupt offered to the queue.
    #[must_use]
    pub fn offered(&self) -> u32 {
        self.offered.load(Ordering::Acquire)
    }

    /// Samples dropped because the queue was full.
    #[must_use]
    pub fn dropped(&self) -> u32 {
        self.dropped.load(Ordering::Acquire)
    }

    /// `true` once the interrupt side said no more samples will come.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// The interrupt's end of the stream: offers samples to the queue, drops and counts them when
/// it is full. Never blocks.
pub struct Inlet<'q, T> {
    producer: Producer<'q, T>,
    counters: &'q StreamCounters,
}

impl<'q, T> Inlet<'q, T> {
    /// The inlet of `producer`, counting into `counters`.
    #[must_use]
    pub fn new(producer: Producer<'q, T>, counters: &'q StreamCounters) -> Self {
        Inlet { producer, counters }
    }

    /// Queues `sample`; `false` when the queue was full and the sample was dropped (counted).
    pub fn offer(&mut self, sample: T) -> bool {
        self.counters.offered.fetch_add(1, Ordering::AcqRel);
        if self.producer.enqueue(sample).is_ok() {
            true
        } else {
            self.counters.dropped.fetch_add(1, Ordering::AcqRel);
            false
        }
    }

    /// Says that no more samples will come.
    pub fn close(&mut self) {
        self.counters.closed.store(true, Ordering::Release);
    }

    /// Whether the queue has room for one more sample.
    #[must_use]
    pub fn ready(&self) -> bool {
        self.producer.ready()
    }
}

/// A frozen int8 backbone (by reference: a `static` in flash) and the trainer of an f32 head
/// that reads its dequantised features: the network fine-tuning trains on the device.
///
/// Training and replay work on features: [`FineTuner::load_feature`] dequantises a stored
/// feature vector into the head's input, so a replayed sample costs no backbone pass.
pub struct FineTuner<'b, B, H: Layer, O: Optimizer, const IN: usize, const F: usize> {
    /// The backbone, in flash.
    pub backbone: &'b Backbone<'b, B, IN, F>,
    /// The head's trainer: the only training memory.
    pub trainer: Trainer<H, O>,
}

impl<'b, B, H, O, const IN: usize, const F: usize> FineTuner<'b, B, H, O, IN, F>
where
    B: Int8Layer<IN, F>,
    H: Layer<Input = [f32; F]>,
    O: Optimizer,
{
    /// A fine-tuner with a zero head (`const`: a `static` in `.bss` but for the pointer).
    #[must_use]
    pub const fn new(backbone: &'b Backbone<'b, B, IN, F>) -> Self {
        FineTuner { backbone, trainer: Trainer::ZERO }
    }

    /// Runs the backbone on `pixels`.
    pub fn features(&self, pixels: &[u8; IN], out: &mut [i8; F]) {
        self.backbone.features(pixels, out);
    }

    /// Dequantises `q` into the head's input.
    pub fn load_feature(&mut self, q: &[i8; F]) {
        self.backbone.dequantize(q, &mut self.trainer.x);
    }

    /// Adds the gradient of the loaded feature's sample, scaled by `scale`, to the head's
    /// gradients; returns its loss and whether the head got it right.
    ///
    /// # Errors
    /// What the loss reports (a label out of range).
    pub fn accumulate<L: Loss<H::Output>>(
        &mut self,
        loss: &L,
        target: &L::Target,
        scale: f32,
    ) -> Result<(f32, bool), Error> {
        self.trainer.accumulate(loss, target, scale, &mut Mode::Infer)
    }

    /// Applies the accumulated gradients (skipped when one is not finite).
    pub fn apply(&mut self, cfg: &O::Config) -> Step {
        self.trainer.apply(cfg, None)
    }

    /// The head's output for the loaded feature.
    pub fn infer(&mut self) -> &H::Output {
        self.trainer.infer()
    }

    /// The head's output for `pixels`: backbone, dequantisation, head.
    pub fn predict(&mut self, pixels: &[u8; IN]) -> &H::Output {
        let mut q = [0i8; F];
        self.features(pixels, &mut q);
        self.load_feature(&q);
        self.trainer.infer()
    }
}

/// The memory budget of fine-tuning head `H` with optimizer `O` over backbone `B`, with a
/// replay buffer of `R` features and a queue of `Q` slots of `sample_bytes` each.
pub struct FineTuneSummary<B, H, O, const IN: usize, const F: usize, const R: usize> {
    /// The head's summary: its training memory is all the training memory.
    pub head: Summary<H, O>,
    /// Bytes of the [`FineTuner`] (the head's trainer and the backbone's address).
    pub tuner_bytes: usize,
    /// Bytes of the backbone in flash.
    pub backbone_flash_bytes: usize,
    /// Bytes of stack one backbone pass takes.
    pub backbone_stack_bytes: usize,
    /// Bytes of the replay buffer.
    pub replay_bytes: usize,
    /// Bytes of the queue.
    pub queue_bytes: usize,
    /// Slots of the queue (it holds one less).
    pub queue_slots: usize,
    _types: core::marker::PhantomData<fn() -> B>,
}

impl<B, H, O, const IN: usize, const F: usize, const R: usize> FineTuneSummary<B, H, O, IN, F, R>
where
    B: Int8Layer<IN, F> + Int8Footprint + 'static,
    H: Layer<Input = [f32; F]>,
    O: Optimizer,
{
    /// The budget, for a queue of `queue_slots` slots of `sample_bytes` (the `size_of` of a
    /// `heapless::spsc::Queue<Sample, queue_slots>`).
    #[must_use]
    pub fn new(name: &'static str, queue_bytes: usize, queue_slots: usize) -> Self {
        FineTuneSummary {
            head: Summary::new(name),
            tuner_bytes: core::mem::size_of::<FineTuner<'static, B, H, O, IN, F>>(),
            backbone_flash_bytes: Backbone::<'static, B, IN, F>::FLASH_BYTES,
            backbone_stack_bytes: Backbone::<'static, B, IN, F>::STACK_BYTES,
            replay_bytes: core::mem::size_of::<Replay<F, R>>(),
            queue_bytes,
            queue_slots,
            _types: core::marker::PhantomData,
        }
    }

    /// Bytes of RAM in statics: the tuner, the replay buffer and the queue.
    #[must_use]
    pub fn static_bytes(&self) -> usize {
        self.tuner_bytes + self.replay_bytes + self.queue_bytes
    }
}

impl<B, H, O, const IN: usize, const F: usize, const R: usize> fmt::Display for FineTuneSummary<B, H, O, IN, F, R>
where
    B: Int8Layer<IN, F> + Int8Footprint + 'static,
    H: Layer<Input = [f32; F]>,
    O: Optimizer,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.head)?;
        let total = self.static_bytes().max(1);
        let share = |b: usize| b * 1000 / total;
        writeln!(f, "Fine-tuning over a frozen int8 backbone")?;
        writeln!(
            f,
            "backbone: int8 in flash, {} bytes (weights, biases, multipliers, input table); no RAM but {} bytes of stack per pass",
            self.backbone_flash_bytes, self.backbone_stack_bytes
        )?;
        writeln!(f, "training memory is the head's only: {} bytes (trainer of the head above)", self.tuner_bytes)?;
        let (r, q) = (share(self.replay_bytes), share(self.queue_bytes));
        writeln!(
            f,
            "replay buffer: {R} features of {F} int8 + label, {} bytes ({}.{}% of the statics)",
            self.replay_bytes,
            r / 10,
            r % 10
        )?;
        writeln!(
            f,
            "queue: {} slots ({} samples), {} bytes ({}.{}% of the statics)",
            self.queue_slots,
            self.queue_slots.saturating_sub(1),
            self.queue_bytes,
            q / 10,
            q % 10
        )?;
        writeln!(f, "statics in RAM: {} bytes (tuner, replay buffer, queue), before the stack", self.static_bytes())
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop, clippy::cast_possible_wrap, clippy::manual_is_multiple_of)]
mod tests {
    use super::*;
    use crate::int8::{OutputScale, QuantizedMultiplier};

    #[test]
    fn max_pool_wrapper_matches_the_kernel() {
        let x: [i8; 4 * 4 * 2] = core::array::from_fn(|i| (i as i8).wrapping_mul(37));
        let mut y = [0i8; 8];
        Int8MaxPool2d::<2, 2, 4, 4, 2, 2>.forward(&x, &mut y);
        let mut z = [0i8; 8];
        let p = PoolParams {
            stride_height: 2,
            stride_width: 2,
            filter_height: 2,
            filter_width: 2,
            pad_height: 0,
            pad_width: 0,
            activation_min: -128,
            activation_max: 127,
        };
        max_pool(&p, Shape4([1, 4, 4, 2]), &x, Shape4([1, 2, 2, 2]), &mut z).unwrap();
        assert_eq!(y, z);
    }

    #[test]
    fn backbone_dequantizes_as_scale_times_offset() {
        static LUT: [i8; 256] = {
            let mut t = [0i8; 256];
            let mut i = 0;
            while i < 256 {
                t[i] = (i as i32 - 128) as i8;
                i += 1;
            }
            t
        };
        static W: [[[[i8; 1]; 1]; 1]; 1] = [[[[2]]]];
        static M: [QuantizedMultiplier; 1] = [QuantizedMultiplier { multiplier: 1 << 30, shift: 0 }];
        let conv: Int8Conv2d<'_, 2, 2, 1, 1, 1, 1, 1, 1, 2, 2> = Int8Conv2d {
            weight: &W,
            bias: None,
            input_offset: 128,
            output_offset: -128,
            activation_min: -128,
            activation_max: 127,
            scale: OutputScale::PerChannel(&M),
        };
        let b = Backbone { layers: conv, input_lut: &LUT, feature_scale: 0.5, feature_zero_point: -128 };
        let mut q = [0i8; 4];
        b.features(&[0, 1, 100, 255], &mut q);
        // (p - 128 + 128) * 2 * 0.5 - 128 = p - 128.
        assert_eq!(q, [-128, -127, -28, 127]);
        let mut f = [0f32; 4];
        b.dequantize(&q, &mut f);
        assert_eq!(f, [0.0, 0.5, 50.0, 127.5]);
        assert_eq!(
            Backbone::<'static, Int8Conv2d<'static, 2, 2, 1, 1, 1, 1, 1, 1, 2, 2>, 4, 4>::FLASH_BYTES,
            1 + 12 + 256
        );
    }
}
