//! A Keras-like model summary with the memory budget, known before anything runs.
//!
//! Figures come from the layers' own descriptions (their tensors, output shapes) and the
//! optimizer's slots per parameter; the tests check them against `size_of` of the real
//! structs, so the table is the RAM the device will use. Frozen layers ([`Frozen`](crate::Frozen))
//! need no gradient and no optimizer state, and those kept in flash
//! ([`FrozenRef`](crate::FrozenRef)) no RAM for their weights: the summary counts them as
//! non-trainable and says how much training RAM freezing saves.
//!
//! ```
//! use tinytrain::prelude::*;
//! use tinytrain::zoo::DigitsMlp;
//! let s = Summary::<DigitsMlp, Adam<2410>>::new("digits-mlp");
//! assert_eq!(s.params, 2410);
//! assert_eq!(s.training_bytes(), core::mem::size_of::<Trainer<DigitsMlp, Adam<2410>>>());
//! println!("{s}");
//! ```

use core::fmt;
use core::marker::PhantomData;

use crate::layer::{Layer, LayerInfo};
use crate::optim::Optimizer;
use crate::params::Role;
use crate::tensor::Tensor;

/// Bytes of one `f32`.
const F32: usize = core::mem::size_of::<f32>();
/// Bytes of the optimizer's update counter.
const COUNTER: usize = core::mem::size_of::<u32>();

/// The summary of network `M` trained with optimizer `O`.
pub struct Summary<M, O> {
    /// Model name shown in the header.
    pub name: &'static str,
    /// Every parameter (Keras' "Total params"): trainable, frozen and buffers.
    pub params: usize,
    /// Trainable parameters: what the gradients and the optimizer state cover.
    pub trainable: usize,
    /// Bytes of the tensors kept in RAM (the network's own `size_of`).
    pub param_bytes: usize,
    /// Bytes of the tensors kept in flash ([`FrozenRef`](crate::FrozenRef)).
    pub flash_param_bytes: usize,
    /// Bytes of gradient buffers (the trainable layers' tensors).
    pub grad_bytes: usize,
    /// Bytes of activation buffers between layers (one copy).
    pub activation_bytes: usize,
    /// Bytes of the input and output tensors.
    pub io_bytes: (usize, usize),
    /// Bytes of optimizer state.
    pub optimizer_bytes: usize,
    /// Training RAM the frozen layers save against training them: their gradients and
    /// optimizer state, and their weights when they are in flash.
    pub frozen_savings: usize,
    _types: PhantomData<fn() -> (M, O)>,
}

impl<M: Layer, O: Optimizer> Summary<M, O> {
    /// Computes the summary from the layer descriptions.
    #[must_use]
    pub fn new(name: &'static str) -> Self {
        let (mut params, mut trainable, mut ram, mut flash, mut grads, mut acts, mut frozen) = (0, 0, 0, 0, 0, 0, 0);
        M::describe(&mut |info: &LayerInfo| {
            let all = info.params();
            params += all;
            trainable += info.count(Some(Role::Trainable));
            if info.in_flash {
                flash += all * F32;
            } else {
                ram += all * F32;
            }
            if info.frozen {
                // Unfrozen, the layer would hold a gradient copy of all its tensors, optimizer
                // state for its parameters, and its weights in RAM.
                frozen += all * F32 + O::SLOTS * info.count(Some(Role::Frozen)) * F32;
                if info.in_flash {
                    frozen += all * F32;
                }
            } else {
                grads += all * F32;
            }
            acts += info.output_bytes + info.cache_bytes;
        });
        Summary {
            name,
            params,
            trainable,
            param_bytes: ram,
            flash_param_bytes: flash,
            grad_bytes: grads,
            activation_bytes: acts,
            io_bytes: (M::Input::LEN * F32, M::Output::LEN * F32),
            optimizer_bytes: O::SLOTS * trainable * F32 + COUNTER,
            frozen_savings: frozen,
            _types: PhantomData,
        }
    }

    /// RAM for inference with the weights in RAM: parameters, activations, input and output.
    #[must_use]
    pub fn inference_bytes(&self) -> usize {
        self.param_bytes + self.activation_bytes + self.io_bytes.0 + self.io_bytes.1
    }

    /// RAM for inference with the weights in flash: activations, input and output.
    #[must_use]
    pub fn inference_bytes_weights_in_flash(&self) -> usize {
        self.activation_bytes + self.io_bytes.0 + self.io_bytes.1
    }

    /// RAM of the whole [`Trainer`](crate::train::Trainer): parameters in RAM, gradients,
    /// optimizer state, activations and their gradients, input, output and output gradient.
    #[must_use]
    pub fn training_bytes(&self) -> usize {
        self.param_bytes
            + self.grad_bytes
            + self.optimizer_bytes
            + 2 * self.activation_bytes
            + self.io_bytes.0
            + 2 * self.io_bytes.1
    }
}

/// Writes `n` with thousands separators.
struct Thousands(usize);

impl fmt::Display for Thousands {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut digits = [0u8; 20];
        let mut n = self.0;
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for i in (0..len).rev() {
            f.write_str(match digits[i] {
                b'0' => "0",
                b'1' => "1",
                b'2' => "2",
                b'3' => "3",
                b'4' => "4",
                b'5' => "5",
                b'6' => "6",
                b'7' => "7",
                b'8' => "8",
                _ => "9",
            })?;
            if i > 0 && i % 3 == 0 {
                f.write_str(",")?;
            }
        }
        Ok(())
    }
}

/// Writes a shape as Keras does, `(None, 32)` or `(None, 32, 26, 26)`.
struct ShapeText([usize; 3]);

impl fmt::Display for ShapeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(None")?;
        for d in self.0.iter().take_while(|&&d| d > 0) {
            write!(f, ", {d}")?;
        }
        f.write_str(")")
    }
}

impl<M: Layer, O: Optimizer> fmt::Display for Summary<M, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = "_________________________________________________________________";
        writeln!(f, "Model: \"{}\"", self.name)?;
        writeln!(f, "{rule}")?;
        writeln!(f, "{:<28}{:<26}{:>11}", "Layer (type)", "Output Shape", "Param #")?;
        writeln!(f, "=================================================================")?;
        let mut result = Ok(());
        let mut index = 0;
        M::describe(&mut |info: &LayerInfo| {
            let shape = ShapeText(info.output_shape);
            let shape_text = ShapeWidth(&shape);
            // A name longer than its column goes on a line of its own, as Keras wraps it.
            let mut name = Buf::<48>::new();
            let _ = fmt::write(&mut name, format_args!("{}", LayerName(info.name, index)));
            let row = if name.as_str().len() < 28 {
                writeln!(f, "{:<28}{:<26}{:>11}", name.as_str(), shape_text, ThousandsPad(info.params()))
            } else {
                writeln!(f, "{}", name.as_str())
                    .and_then(|()| writeln!(f, "{:<28}{:<26}{:>11}", "", shape_text, ThousandsPad(info.params())))
            };
            if result.is_ok() {
                result = row;
            }
            index += 1;
        });
        result?;
        writeln!(f, "=================================================================")?;
        let all_bytes = self.param_bytes + self.flash_param_bytes;
        writeln!(f, "Total params: {} ({} bytes)", Thousands(self.params), Thousands(all_bytes))?;
        writeln!(f, "Trainable params: {}", Thousands(self.trainable))?;
        writeln!(f, "Non-trainable params: {}", Thousands(self.params - self.trainable))?;
        if self.flash_param_bytes > 0 {
            writeln!(f, "Frozen in flash: {} bytes of weights", Thousands(self.flash_param_bytes))?;
        }
        writeln!(f, "{rule}")?;
        let mut head = Buf::<32>::new();
        let _ = fmt::write(&mut head, format_args!("training ({})", O::NAME));
        // The space keeps a long optimizer name ("training (SGD+momentum)") apart from "inference".
        writeln!(f, "{:<28}{:>16} {:>20}", "Memory (bytes)", "inference", head.as_str())?;
        let dash = "-";
        writeln!(
            f,
            "{:<28}{:>16}{:>21}",
            "parameters",
            ThousandsPad(self.param_bytes),
            ThousandsPad(self.param_bytes)
        )?;
        writeln!(f, "{:<28}{:>16}{:>21}", "gradients", dash, ThousandsPad(self.grad_bytes))?;
        writeln!(f, "{:<28}{:>16}{:>21}", "optimizer state", dash, ThousandsPad(self.optimizer_bytes))?;
        writeln!(
            f,
            "{:<28}{:>16}{:>21}",
            "activations",
            ThousandsPad(self.activation_bytes),
            ThousandsPad(2 * self.activation_bytes)
        )?;
        writeln!(
            f,
            "{:<28}{:>16}{:>21}",
            "input/output",
            ThousandsPad(self.io_bytes.0 + self.io_bytes.1),
            ThousandsPad(self.io_bytes.0 + 2 * self.io_bytes.1)
        )?;
        writeln!(
            f,
            "{:<28}{:>16}{:>21}",
            "total",
            ThousandsPad(self.inference_bytes()),
            ThousandsPad(self.training_bytes())
        )?;
        if self.frozen_savings > 0 {
            writeln!(f, "(frozen layers save {} bytes of training RAM)", Thousands(self.frozen_savings))?;
        }
        writeln!(
            f,
            "(inference with the weights in flash: {} bytes of RAM)",
            Thousands(self.inference_bytes_weights_in_flash())
        )
    }
}

/// A layer name with its index, `dense_0 (Dense)`-like.
struct LayerName(&'static str, usize);

impl fmt::Display for LayerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Render into a fixed buffer so that width and alignment apply to the whole text.
        let mut buf = Buf::<48>::new();
        let _ = fmt::write(&mut buf, format_args!("{} ({})", Lower(self.0, self.1), self.0));
        f.pad(buf.as_str())
    }
}

struct Lower(&'static str, usize);

impl fmt::Display for Lower {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            fmt::Write::write_char(f, c.to_ascii_lowercase())?;
        }
        write!(f, "_{}", self.1)
    }
}

struct ShapeWidth<'a>(&'a ShapeText);

impl fmt::Display for ShapeWidth<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Buf::<48>::new();
        let _ = fmt::write(&mut buf, format_args!("{}", self.0));
        f.pad(buf.as_str())
    }
}

struct ThousandsPad(usize);

impl fmt::Display for ThousandsPad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Buf::<32>::new();
        let _ = fmt::write(&mut buf, format_args!("{}", Thousands(self.0)));
        f.pad(buf.as_str())
    }
}

/// A small fixed-capacity string buffer for padding composed text without `alloc`.
struct Buf<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Buf<N> {
    fn new() -> Self {
        Buf { bytes: [0; N], len: 0 }
    }

    fn as_str(&self) -> &str {
        // Only whole UTF-8 strings are ever appended, so the prefix is valid.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("?")
    }
}

impl<const N: usize> fmt::Write for Buf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// FNV-1a, 32 bits.
struct Fnv(u32);

impl Fnv {
    fn eat(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u32::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0193);
        }
    }

    fn eat_usize(&mut self, n: usize) {
        self.eat(&(n as u32).to_le_bytes());
    }
}

/// A 32-bit fingerprint of the architecture: the input shape, and for every layer its kind,
/// output shape and tensors (names, shapes, element types), FNV-1a over the layers'
/// descriptions. Two networks with the same fingerprint take the same weights file. Whether a
/// layer is frozen, or kept in flash, does not change it.
#[must_use]
pub fn fingerprint<M: Layer>() -> u32 {
    let mut h = Fnv(0x811C_9DC5);
    for d in M::Input::SHAPE {
        h.eat_usize(d);
    }
    M::describe(&mut |info: &LayerInfo| {
        h.eat(info.name.as_bytes());
        for d in info.output_shape {
            h.eat_usize(d);
        }
        h.eat_usize(info.tensors.len());
        for t in info.tensors {
            h.eat(t.name.as_bytes());
            h.eat_usize(t.shape.len());
            for &d in t.shape {
                h.eat_usize(d);
            }
            h.eat_usize(t.element_bytes());
            h.eat(&[u8::from(t.role == Role::Buffer)]);
        }
    });
    h.0
}

/// The fingerprint weights files of format version 1 carry: the input shape, and every layer's
/// kind, output shape and parameter count.
#[must_use]
pub fn fingerprint_v1<M: Layer>() -> u32 {
    let mut h = Fnv(0x811C_9DC5);
    for d in M::Input::SHAPE {
        h.eat_usize(d);
    }
    M::describe(&mut |info: &LayerInfo| {
        h.eat(info.name.as_bytes());
        for d in info.output_shape {
            h.eat_usize(d);
        }
        h.eat_usize(info.params());
    });
    h.0
}
