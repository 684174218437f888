//! A Keras-like model summary with the memory budget, known before anything runs.
//!
//! Figures come from the layers' own descriptions (parameter counts, output shapes) and the
//! optimizer's slots per parameter; the tests check them against `size_of` of the real
//! structs, so the table is the RAM the device will use.
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
use crate::tensor::Tensor;

/// Bytes of one `f32`.
const F32: usize = core::mem::size_of::<f32>();
/// Bytes of the optimizer's update counter.
const COUNTER: usize = core::mem::size_of::<u32>();

/// The summary of network `M` trained with optimizer `O`.
pub struct Summary<M, O> {
    /// Model name shown in the header.
    pub name: &'static str,
    /// Trainable parameters.
    pub params: usize,
    /// Bytes of parameters.
    pub param_bytes: usize,
    /// Bytes of activation buffers between layers (one copy).
    pub activation_bytes: usize,
    /// Bytes of the input and output tensors.
    pub io_bytes: (usize, usize),
    /// Bytes of optimizer state.
    pub optimizer_bytes: usize,
    _types: PhantomData<fn() -> (M, O)>,
}

impl<M: Layer, O: Optimizer> Summary<M, O> {
    /// Computes the summary from the layer descriptions.
    #[must_use]
    pub fn new(name: &'static str) -> Self {
        let (mut params, mut acts) = (0, 0);
        M::describe(&mut |info: &LayerInfo| {
            params += info.params;
            acts += info.output_bytes + info.cache_bytes;
        });
        Summary {
            name,
            params,
            param_bytes: params * F32,
            activation_bytes: acts,
            io_bytes: (M::Input::LEN * F32, M::Output::LEN * F32),
            optimizer_bytes: O::SLOTS * params * F32 + COUNTER,
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

    /// RAM of the whole [`Trainer`](crate::train::Trainer): parameters, gradients, optimizer
    /// state, activations and their gradients, input, output and output gradient.
    #[must_use]
    pub fn training_bytes(&self) -> usize {
        2 * self.param_bytes + self.optimizer_bytes + 2 * self.activation_bytes + self.io_bytes.0 + 2 * self.io_bytes.1
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
            let row =
                writeln!(f, "{:<28}{:<26}{:>11}", LayerName(info.name, index), shape_text, ThousandsPad(info.params));
            if result.is_ok() {
                result = row;
            }
            index += 1;
        });
        result?;
        writeln!(f, "=================================================================")?;
        writeln!(f, "Total params: {} ({} bytes)", Thousands(self.params), Thousands(self.param_bytes))?;
        writeln!(f, "Trainable params: {}", Thousands(self.params))?;
        writeln!(f, "Non-trainable params: 0")?;
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
        writeln!(f, "{:<28}{:>16}{:>21}", "gradients", dash, ThousandsPad(self.param_bytes))?;
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

/// A 32-bit fingerprint of the architecture (layer kinds, output shapes, parameter counts,
/// input shape): FNV-1a over the summary rows. Two networks with the same fingerprint take the
/// same weights file.
#[must_use]
pub fn fingerprint<M: Layer>() -> u32 {
    let mut h: u32 = 0x811C_9DC5;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    for d in M::Input::SHAPE {
        eat(&(d as u32).to_le_bytes());
    }
    M::describe(&mut |info: &LayerInfo| {
        eat(info.name.as_bytes());
        for d in info.output_shape {
            eat(&(d as u32).to_le_bytes());
        }
        eat(&(info.params as u32).to_le_bytes());
    });
    h
}
