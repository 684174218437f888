//! Weights in and out: safetensors files under PyTorch or Keras names and layouts, and Rust
//! source that puts a network with its weights into flash.
//!
//! The tensors of a model follow from its type: [`param_layers`] walks the layer rows of
//! [`Layer::describe`] from the input shape, so the shapes are never written twice, and the
//! registry ([`crate::models`]) only names the layers ([`LayerNames`]).
//!
//! | layer | PyTorch name and shape | Keras name and shape |
//! |---|---|---|
//! | `Dense<I, O>` | `fc1.weight` `[O, I]`, `fc1.bias` `[O]` | `dense/kernel` `[I, O]`, `dense/bias` `[O]` |
//! | `Conv2d<CI, CO, K, ..>` | `conv1.weight` `[CO, CI, K, K]`, `conv1.bias` `[CO]` | `conv2d/kernel` `[K, K, CI, CO]`, `conv2d/bias` `[CO]` |
//! | `DepthwiseConv2d<C, K, ..>` | `dwconv1.weight` `[C, 1, K, K]`, `dwconv1.bias` `[C]` | `depthwise_conv2d/depthwise_kernel` `[K, K, C, 1]`, `depthwise_conv2d/bias` `[C]` |
//!
//! Layers the registry does not name get these defaults: PyTorch `fc1`, `fc2`, ... for dense
//! layers, `conv1`, ... for convolutions, `dwconv1`, ... for depthwise ones (counted per
//! kind, as the modules of a hand-written `nn.Module` usually are); Keras's own automatic
//! names `dense`, `dense_1`, `conv2d`, `conv2d_1`, `depthwise_conv2d`, ... with the variable
//! after a `/`.
//!
//! Keras flattens channels-last images (`H, W, C` order) where tinytrain and PyTorch flatten
//! `C, H, W`; with the Keras layout the rows of a dense kernel that follows a `Flatten` of an
//! image with more than one channel are reordered accordingly, so a Keras CNN computes the
//! same logits here as in Keras.
//!
//! Every tensor is `F32`. Import refuses, naming each tensor in one line: a missing tensor, an
//! extra one, a wrong shape, another dtype, or a NaN or infinite value.
//!
//! ```
//! use tinytrain::zoo::DigitsMlp;
//! use tinytrain_sim::interop::{self, Layout};
//! let specs = interop::tensor_specs::<DigitsMlp>(&[], Layout::Pytorch).unwrap();
//! let rows: Vec<String> = specs.iter().map(|s| format!("{} {:?}", s.name, s.shape)).collect();
//! assert_eq!(rows, ["fc1.weight [32, 64]", "fc1.bias [32]", "fc2.weight [10, 32]", "fc2.bias [10]"]);
//! let keras = interop::tensor_specs::<DigitsMlp>(&[], Layout::Keras).unwrap();
//! assert_eq!((keras[2].name.as_str(), &keras[2].shape[..]), ("dense_1/kernel", &[32, 10][..]));
//! ```

use std::collections::{BTreeSet, HashMap};
use std::fmt::{self, Write as _};

use anyhow::{Result, anyhow, bail, ensure};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use tinytrain::{Layer, Tensor, checkpoint};

use crate::models::Model;

/// Whose names and tensor layouts a safetensors file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Layout {
    /// PyTorch `state_dict`: `fc1.weight` `[out, in]`, `conv1.weight` `[C_out, C_in, kh, kw]`.
    #[default]
    Pytorch,
    /// Keras: `dense/kernel` `[in, out]`, `conv2d/kernel` `[kh, kw, C_in, C_out]`.
    Keras,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Pytorch => "PyTorch",
            Layout::Keras => "Keras",
        })
    }
}

/// The names of one layer with parameters: the PyTorch module name and the Keras layer name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerNames {
    /// PyTorch module (attribute) name, as in `fc1.weight`.
    pub torch: &'static str,
    /// Keras layer name, as in `dense/kernel`.
    pub keras: &'static str,
}

/// A layer with parameters, with the dimensions its tensors need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamLayer {
    /// `Dense<I, O>`; `flattened_from` is the CHW shape a `Flatten` before it flattened.
    Dense {
        /// Inputs.
        inputs: usize,
        /// Outputs.
        outputs: usize,
        /// The image shape flattened into the inputs, if a `Flatten` came before.
        flattened_from: Option<[usize; 3]>,
    },
    /// `Conv2d` with `CO` filters of `CI`x`K`x`K`.
    Conv2d {
        /// Input channels.
        in_channels: usize,
        /// Filters.
        out_channels: usize,
        /// Kernel side.
        kernel: usize,
    },
    /// `DepthwiseConv2d`: one `K`x`K` filter per channel.
    Depthwise {
        /// Channels.
        channels: usize,
        /// Kernel side.
        kernel: usize,
    },
}

fn volume(shape: [usize; 3]) -> usize {
    shape.iter().filter(|&&d| d > 0).product()
}

fn square_root(n: usize) -> Option<usize> {
    (1..=n).take_while(|k| k * k <= n).find(|k| k * k == n)
}

/// The layers with parameters of network `M`, in [`Layer::for_each_param`] order, with their
/// dimensions derived from the summary rows and the input shape.
///
/// # Errors
/// A layer with parameters of a kind that has no tensor mapping, or rows that do not add up to
/// [`Layer::NUM_PARAMS`].
pub fn param_layers<M: Layer>() -> Result<Vec<ParamLayer>> {
    let mut layers = Vec::new();
    let mut shape = <M::Input as Tensor>::SHAPE;
    let mut flattened_from: Option<[usize; 3]> = None;
    let mut problem = None;
    M::describe(&mut |row| {
        let out = row.output_shape;
        let layer = match row.name {
            _ if row.params == 0 => None,
            "Dense" if out[0] > 0 && row.params.is_multiple_of(out[0]) => {
                Some(ParamLayer::Dense { inputs: row.params / out[0] - 1, outputs: out[0], flattened_from })
            }
            "Conv2D" if out[0] > 0 && shape[0] > 0 => {
                let per_filter = (row.params / out[0]).saturating_sub(1);
                square_root(per_filter / shape[0])
                    .filter(|k| k * k * shape[0] * out[0] + out[0] == row.params)
                    .map(|kernel| ParamLayer::Conv2d { in_channels: shape[0], out_channels: out[0], kernel })
            }
            "DepthwiseConv2D" if out[0] > 0 => square_root((row.params / out[0]).saturating_sub(1))
                .filter(|k| (k * k + 1) * out[0] == row.params)
                .map(|kernel| ParamLayer::Depthwise { channels: out[0], kernel }),
            _ => {
                problem.get_or_insert_with(|| format!("layer {} has parameters but no tensor names", row.name));
                None
            }
        };
        if row.params > 0 && layer.is_none() {
            problem.get_or_insert_with(|| format!("cannot derive the tensor shapes of layer {}", row.name));
        }
        if let Some(ParamLayer::Dense { inputs, .. }) = layer
            && inputs != volume(shape)
        {
            problem.get_or_insert_with(|| format!("dense layer of {inputs} inputs after {}", volume(shape)));
        }
        flattened_from = match row.name {
            "Flatten" if shape[2] > 0 => Some(shape),
            _ if layer.is_none() && out == shape => flattened_from,
            _ => None,
        };
        layers.extend(layer);
        shape = out;
    });
    if let Some(p) = problem {
        bail!(p);
    }
    let total: usize = layers.iter().map(|l| param_lens(l).iter().sum::<usize>()).sum();
    ensure!(total == M::NUM_PARAMS, "the layers add up to {total} parameters, the network has {}", M::NUM_PARAMS);
    Ok(layers)
}

/// Lengths of a layer's parameter slices (weight, bias), in tinytrain's order.
fn param_lens(layer: &ParamLayer) -> [usize; 2] {
    match *layer {
        ParamLayer::Dense { inputs, outputs, .. } => [inputs * outputs, outputs],
        ParamLayer::Conv2d { in_channels, out_channels, kernel } => {
            [out_channels * in_channels * kernel * kernel, out_channels]
        }
        ParamLayer::Depthwise { channels, kernel } => [channels * kernel * kernel, channels],
    }
}

/// How the elements of a tensor in the file map onto tinytrain's parameter slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Same order (biases, PyTorch weights).
    Same,
    /// Keras dense kernel `[in, out]`, the inputs in HWC order if `flattened_from` is set.
    KerasDense { inputs: usize, outputs: usize, flattened_from: Option<[usize; 3]> },
    /// Keras conv kernel `[kh, kw, CI, CO]`.
    KerasConv { in_channels: usize, out_channels: usize, kernel: usize },
    /// Keras depthwise kernel `[kh, kw, C, 1]`.
    KerasDepthwise { channels: usize, kernel: usize },
}

impl Order {
    /// The index in tinytrain's slice of element `e` of the file's tensor.
    fn native(self, e: usize) -> usize {
        match self {
            Order::Same => e,
            Order::KerasDense { inputs, outputs, flattened_from } => {
                let (i, o) = (e / outputs, e % outputs);
                let i = match flattened_from {
                    // Keras index (h·W + w)·C + c, tinytrain index c·H·W + h·W + w.
                    Some([c_n, h_n, w_n]) => {
                        let (hw, c) = (i / c_n, i % c_n);
                        c * h_n * w_n + hw
                    }
                    None => i,
                };
                o * inputs + i
            }
            Order::KerasConv { in_channels, out_channels, kernel } => {
                let co = e % out_channels;
                let ci = (e / out_channels) % in_channels;
                let kk = e / (out_channels * in_channels);
                (co * in_channels + ci) * kernel * kernel + kk
            }
            Order::KerasDepthwise { channels, kernel } => {
                let (kk, c) = (e / channels, e % channels);
                c * kernel * kernel + kk
            }
        }
    }
}

/// One tensor of a model in a safetensors file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// Name in the file.
    pub name: String,
    /// Shape in the file's layout.
    pub shape: Vec<usize>,
    /// Offset of its parameter slice among all parameters, in [`Layer::for_each_param`] order.
    pub offset: usize,
    order: Order,
}

impl TensorSpec {
    /// Number of elements.
    #[must_use]
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// `true` for a tensor without elements.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn default_names(layers: &[ParamLayer]) -> Vec<(String, String)> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    layers
        .iter()
        .map(|l| {
            let (torch, keras) = match l {
                ParamLayer::Dense { .. } => ("fc", "dense"),
                ParamLayer::Conv2d { .. } => ("conv", "conv2d"),
                ParamLayer::Depthwise { .. } => ("dwconv", "depthwise_conv2d"),
            };
            let n = counts.entry(torch).or_insert(0);
            *n += 1;
            let keras = if *n == 1 { keras.to_owned() } else { format!("{keras}_{}", *n - 1) };
            (format!("{torch}{n}"), keras)
        })
        .collect()
}

/// The tensors of network `M` in `layout`, in parameter order. `names` names the layers with
/// parameters in order; empty means the defaults of the module docs.
///
/// # Errors
/// As [`param_layers`]; a `names` list of another length than the layers with parameters.
pub fn tensor_specs<M: Layer>(names: &[LayerNames], layout: Layout) -> Result<Vec<TensorSpec>> {
    let layers = param_layers::<M>()?;
    let names: Vec<(String, String)> = if names.is_empty() {
        default_names(&layers)
    } else {
        ensure!(names.len() == layers.len(), "{} layer names for {} layers with parameters", names.len(), layers.len());
        names.iter().map(|n| (n.torch.to_owned(), n.keras.to_owned())).collect()
    };
    let mut specs = Vec::with_capacity(2 * layers.len());
    let mut offset = 0;
    for (layer, (torch, keras)) in layers.iter().zip(names) {
        let [weight_len, bias_len] = param_lens(layer);
        let (weight_name, bias_name, shape, order) = match (*layer, layout) {
            (ParamLayer::Dense { inputs, outputs, .. }, Layout::Pytorch) => {
                (format!("{torch}.weight"), format!("{torch}.bias"), vec![outputs, inputs], Order::Same)
            }
            (ParamLayer::Dense { inputs, outputs, flattened_from }, Layout::Keras) => (
                format!("{keras}/kernel"),
                format!("{keras}/bias"),
                vec![inputs, outputs],
                Order::KerasDense { inputs, outputs, flattened_from },
            ),
            (ParamLayer::Conv2d { in_channels, out_channels, kernel }, Layout::Pytorch) => (
                format!("{torch}.weight"),
                format!("{torch}.bias"),
                vec![out_channels, in_channels, kernel, kernel],
                Order::Same,
            ),
            (ParamLayer::Conv2d { in_channels, out_channels, kernel }, Layout::Keras) => (
                format!("{keras}/kernel"),
                format!("{keras}/bias"),
                vec![kernel, kernel, in_channels, out_channels],
                Order::KerasConv { in_channels, out_channels, kernel },
            ),
            (ParamLayer::Depthwise { channels, kernel }, Layout::Pytorch) => {
                (format!("{torch}.weight"), format!("{torch}.bias"), vec![channels, 1, kernel, kernel], Order::Same)
            }
            (ParamLayer::Depthwise { channels, kernel }, Layout::Keras) => (
                format!("{keras}/depthwise_kernel"),
                format!("{keras}/bias"),
                vec![kernel, kernel, channels, 1],
                Order::KerasDepthwise { channels, kernel },
            ),
        };
        let bias_shape = vec![bias_len];
        specs.push(TensorSpec { name: weight_name, shape, offset, order });
        specs.push(TensorSpec { name: bias_name, shape: bias_shape, offset: offset + weight_len, order: Order::Same });
        offset += weight_len + bias_len;
    }
    let mut seen = BTreeSet::new();
    if let Some(dup) = specs.iter().find(|s| !seen.insert(s.name.as_str())) {
        bail!("two tensors are named {}", dup.name);
    }
    Ok(specs)
}

/// All parameters of `net` in [`Layer::for_each_param`] order, checked against `specs`.
fn flat_params<M: Layer>(net: &M, specs: &[TensorSpec]) -> Result<Vec<f32>> {
    let mut flat = Vec::with_capacity(M::NUM_PARAMS);
    let mut lens = Vec::new();
    net.for_each_param(&mut |p| {
        lens.push(p.len());
        flat.extend_from_slice(p);
    });
    let expected: Vec<usize> = specs.iter().map(TensorSpec::len).collect();
    ensure!(lens == expected, "parameter slices {lens:?} do not match the tensors {expected:?}");
    Ok(flat)
}

fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// The safetensors file of the weights file `weights` of network `M`, in `layout`.
///
/// # Errors
/// An invalid weights file (see [`checkpoint::verify`]) or tensor names that do not fit `M`.
pub fn export<M: Layer>(model: &str, names: &[LayerNames], weights: &[u8], layout: Layout) -> Result<Vec<u8>> {
    let specs = tensor_specs::<M>(names, layout)?;
    let mut net: Box<M> = Box::new(M::ZERO);
    checkpoint::load(&mut *net, weights).map_err(|e| anyhow!("not a valid weights file for model {model}: {e}"))?;
    let flat = flat_params(&*net, &specs)?;
    let buffers: Vec<Vec<u8>> = specs
        .iter()
        .map(|s| (0..s.len()).flat_map(|e| flat[s.offset + s.order.native(e)].to_le_bytes()).collect())
        .collect();
    let mut views = Vec::with_capacity(specs.len());
    for (spec, bytes) in specs.iter().zip(&buffers) {
        views.push((spec.name.clone(), TensorView::new(Dtype::F32, spec.shape.clone(), bytes)?));
    }
    let format = match layout {
        Layout::Pytorch => "pt",
        Layout::Keras => "keras",
    };
    // `collect` builds whichever map the safetensors crate takes (std's or hashbrown's).
    let metadata = [("format", format), ("tinytrain_model", model)].map(|(k, v)| (k.to_owned(), v.to_owned()));
    Ok(safetensors::serialize(views, Some(metadata.into_iter().collect()))?)
}

/// Reads the safetensors file `bytes` in `layout` into a network `M`.
///
/// # Errors
/// A file that is not safetensors, or one whose tensors do not fit: every missing, extra,
/// mis-shaped, non-`F32` or non-finite tensor is named, all in one line.
pub fn import<M: Layer>(names: &[LayerNames], bytes: &[u8], layout: Layout) -> Result<Box<M>> {
    let specs = tensor_specs::<M>(names, layout)?;
    let file = SafeTensors::deserialize(bytes).map_err(|e| anyhow!("not a safetensors file: {e}"))?;
    let mut flat = vec![0.0f32; M::NUM_PARAMS];
    let mut problems = Vec::new();
    for spec in &specs {
        let Ok(view) = file.tensor(&spec.name) else {
            problems.push(format!("missing tensor {} (f32 {})", spec.name, shape_text(&spec.shape)));
            continue;
        };
        if view.dtype() != Dtype::F32 {
            problems.push(format!("tensor {} is {:?}, expected F32", spec.name, view.dtype()));
            continue;
        }
        if view.shape() != spec.shape.as_slice() {
            problems.push(format!(
                "tensor {} has shape {}, expected {}",
                spec.name,
                shape_text(view.shape()),
                shape_text(&spec.shape)
            ));
            continue;
        }
        for (e, c) in view.data().chunks_exact(4).enumerate() {
            let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            if !v.is_finite() {
                problems.push(format!("tensor {} holds {v} at element {e}", spec.name));
                break;
            }
            flat[spec.offset + spec.order.native(e)] = v;
        }
    }
    let expected: BTreeSet<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let mut extra: Vec<&str> = file.names().into_iter().filter(|n| !expected.contains(n)).collect();
    extra.sort_unstable();
    problems.extend(extra.iter().map(|n| format!("unexpected tensor {n}")));
    if !problems.is_empty() {
        let other = match layout {
            Layout::Pytorch => Layout::Keras,
            Layout::Keras => Layout::Pytorch,
        };
        let hint = tensor_specs::<M>(names, other).ok().filter(|o| o.iter().all(|s| file.tensor(&s.name).is_ok()));
        let hint = if hint.is_some() { format!(" (the names are those of the {other} layout)") } else { String::new() };
        bail!("{}{hint}", problems.join("; "));
    }
    let mut net: Box<M> = Box::new(M::ZERO);
    let mut at = 0;
    net.for_each_param_mut(&mut |p| {
        p.copy_from_slice(&flat[at..at + p.len()]);
        at += p.len();
    });
    Ok(net)
}

/// The weights file of `net` ([`checkpoint::save`]).
///
/// # Errors
/// A non-finite parameter.
pub fn weights_file<M: Layer>(net: &M) -> Result<Vec<u8>> {
    let mut bytes = vec![0u8; checkpoint::file_len::<M>()];
    let n = checkpoint::save(net, &mut bytes).map_err(|e| anyhow!("cannot save the weights: {e}"))?;
    bytes.truncate(n);
    Ok(bytes)
}

/// What [`import_model`] made of a safetensors file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The tinytrain weights file ([`checkpoint::save`]).
    pub weights: Vec<u8>,
    /// The Rust source with a `pub static NET`, when asked for.
    pub rust: Option<String>,
}

/// Imports a safetensors file for registry model `model`, whose network is `M`: the weights
/// file and, with `rust`, the Rust source of [`rust_source`].
///
/// # Errors
/// As [`import`].
pub fn import_model<M: Layer>(model: &Model, bytes: &[u8], layout: Layout, rust: bool) -> Result<Imported> {
    let net = import::<M>(model.tensors, bytes, layout)?;
    let weights = weights_file(&*net)?;
    let rust = if rust { Some(rust_source::<M>(model.name, model.type_path, &net)?) } else { None };
    Ok(Imported { weights, rust })
}

/// Values per line of the generated source.
const PER_LINE: usize = 8;

fn write_values(src: &mut String, values: &[f32], indent: usize) {
    let pad = " ".repeat(indent);
    if values.len() <= PER_LINE {
        let text: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
        let _ = write!(src, "[{}]", text.join(", "));
        return;
    }
    src.push('[');
    for (i, chunk) in values.chunks(PER_LINE).enumerate() {
        let text: Vec<String> = chunk.iter().map(|v| format!("{v:?}")).collect();
        let _ = write!(src, "{}\n{pad}    {}", if i == 0 { "" } else { "," }, text.join(", "));
    }
    let _ = write!(src, "\n{pad}]");
}

/// Writes nested arrays of `values` with dimensions `dims` (outermost first).
fn write_array(src: &mut String, values: &[f32], dims: &[usize], indent: usize) {
    if dims.len() <= 1 {
        write_values(src, values, indent);
        return;
    }
    let pad = " ".repeat(indent);
    let inner = values.len() / dims[0].max(1);
    src.push('[');
    for (i, part) in values.chunks(inner.max(1)).enumerate() {
        let _ = write!(src, "{}\n{pad}    ", if i == 0 { "" } else { "," });
        write_array(src, part, &dims[1..], indent + 4);
    }
    let _ = write!(src, "\n{pad}]");
}

/// Rust source of a `pub static NET` of network `M` (named `type_path` in the source) holding
/// the parameters of `net` as literal arrays, so that it lives in flash. `model` names the
/// model in the header comment. The file is meant for `include!` (it has no inner
/// attributes) or as a module of its own; it needs the `tinytrain` crate.
///
/// # Errors
/// A network whose layers are not a `sequential!` chain with one summary row per layer, or a
/// non-finite parameter.
pub fn rust_source<M: Layer>(model: &str, type_path: &str, net: &M) -> Result<String> {
    let layers = param_layers::<M>()?;
    let specs = tensor_specs::<M>(&[], Layout::Pytorch)?;
    let flat = flat_params(net, &specs)?;
    if let Some(i) = flat.iter().position(|v| !v.is_finite()) {
        bail!("parameter {i} is {}", flat[i]);
    }
    let mut rows = Vec::new();
    M::describe(&mut |row| rows.push(row.params));
    ensure!(!rows.is_empty(), "the network has no layers");

    let mut src = String::new();
    let thousands = crate::run::thousands;
    let _ = writeln!(src, "// Network `{model}` ({type_path}) with its trained weights:");
    let _ = writeln!(
        src,
        "// {} parameters, {} bytes in flash. Generated by `tinytrain-sim import`; do not edit.",
        thousands(M::NUM_PARAMS),
        thousands(4 * M::NUM_PARAMS)
    );
    let _ =
        writeln!(src, "// Run it with `NET.predict(&x, &mut acts, &mut y)`; `acts` (`<Net as Layer>::Acts`) is RAM.");
    src.push_str("#[rustfmt::skip]\n#[allow(clippy::all, clippy::pedantic)]\n");
    let _ = write!(src, "pub static NET: {type_path} = ");
    let mut layer_iter = layers.iter();
    let mut specs_iter = specs.chunks_exact(2);
    let last = rows.len() - 1;
    for (i, &params) in rows.iter().enumerate() {
        let indent = 4 * i;
        let pad = " ".repeat(indent);
        if i < last {
            let _ = write!(src, "tinytrain::Chain {{\n{pad}    a: ");
        }
        let inner = if i < last { indent + 4 } else { indent };
        if params == 0 {
            src.push_str("<_ as tinytrain::Layer>::ZERO");
        } else {
            let (Some(layer), Some([w, b])) = (layer_iter.next(), specs_iter.next()) else {
                bail!("more layers with parameters than tensors");
            };
            let (type_name, dims) = match *layer {
                ParamLayer::Dense { inputs, outputs, .. } => ("Dense", vec![outputs, inputs]),
                ParamLayer::Conv2d { in_channels, out_channels, kernel } => {
                    ("Conv2d", vec![out_channels, in_channels, kernel, kernel])
                }
                ParamLayer::Depthwise { channels, kernel } => ("DepthwiseConv2d", vec![channels, kernel, kernel]),
            };
            let ipad = " ".repeat(inner);
            let _ = write!(src, "tinytrain::layers::{type_name} {{\n{ipad}    weight: ");
            write_array(&mut src, &flat[w.offset..w.offset + w.len()], &dims, inner + 4);
            let _ = write!(src, ",\n{ipad}    bias: ");
            write_values(&mut src, &flat[b.offset..b.offset + b.len()], inner + 4);
            let _ = write!(src, ",\n{ipad}}}");
        }
        if i < last {
            let _ = write!(src, ",\n{pad}    b: ");
        }
    }
    for i in (0..last).rev() {
        let _ = write!(src, "\n{}}}", " ".repeat(4 * i));
    }
    src.push_str(";\n");
    ensure!(layer_iter.next().is_none(), "a layer with parameters has no summary row of its own");
    Ok(src)
}

/// The tensors as `name [shape]`, comma-separated, for messages.
#[must_use]
pub fn describe_tensors(specs: &[TensorSpec]) -> String {
    let rows: Vec<String> = specs.iter().map(|s| format!("{} {}", s.name, shape_text(&s.shape))).collect();
    rows.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinytrain::prelude::*;
    use tinytrain::zoo;

    #[test]
    fn shapes_follow_from_the_layers() {
        let cnn = param_layers::<zoo::MnistCnn>().unwrap();
        assert_eq!(cnn[0], ParamLayer::Conv2d { in_channels: 1, out_channels: 32, kernel: 3 });
        assert_eq!(cnn[1], ParamLayer::Conv2d { in_channels: 32, out_channels: 64, kernel: 3 });
        assert_eq!(cnn[2], ParamLayer::Dense { inputs: 9216, outputs: 128, flattened_from: Some([64, 12, 12]) });
        assert_eq!(cnn[3], ParamLayer::Dense { inputs: 128, outputs: 10, flattened_from: None });
        let tiny = tensor_specs::<zoo::MnistCnnTiny>(&[], Layout::Pytorch).unwrap();
        let names: Vec<String> = tiny.iter().map(|s| format!("{} {:?}", s.name, s.shape)).collect();
        assert_eq!(
            names,
            ["conv1.weight [6, 1, 4, 4]", "conv1.bias [6]", "conv2.weight [24, 6, 3, 3]", "conv2.bias [24]",]
                .into_iter()
                .chain(["fc1.weight [10, 216]", "fc1.bias [10]"])
                .collect::<Vec<_>>()
        );
        let keras = tensor_specs::<zoo::MnistCnnTiny>(&[], Layout::Keras).unwrap();
        assert_eq!(keras[2].name, "conv2d_1/kernel");
        assert_eq!(keras[2].shape, [3, 3, 6, 24]);
        assert_eq!(keras[4].name, "dense/kernel");
    }

    #[test]
    fn keras_orders_are_permutations() {
        let orders = [
            (Order::KerasDense { inputs: 12, outputs: 5, flattened_from: Some([3, 2, 2]) }, 60),
            (Order::KerasConv { in_channels: 3, out_channels: 4, kernel: 3 }, 108),
            (Order::KerasDepthwise { channels: 5, kernel: 2 }, 20),
        ];
        for (order, n) in orders {
            let mut seen: Vec<usize> = (0..n).map(|e| order.native(e)).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "{order:?}");
        }
        // Keras conv kernel element [kh=1][kw=2][ci=0][co=3] is tinytrain's [3][0][1][2].
        let conv = Order::KerasConv { in_channels: 2, out_channels: 4, kernel: 3 };
        assert_eq!(conv.native(((3 + 2) * 2) * 4 + 3), ((3 * 2) * 3 + 1) * 3 + 2);
        // After flattening HWC, Keras input (h=1, w=0, c=2) is tinytrain input c·H·W + h·W + w.
        let dense = Order::KerasDense { inputs: 12, outputs: 5, flattened_from: Some([3, 2, 2]) };
        let keras_input = (2 * 3) + 2;
        assert_eq!(dense.native(keras_input * 5 + 4), 4 * 12 + (2 * 4 + 2));
    }

    #[test]
    fn export_import_round_trip_in_both_layouts() {
        type Net = tinytrain::sequential![
            Conv2d<2, 3, 3, 1, 0, 5, 5, 3, 3>,
            Act<ReluFn, [[[f32; 3]; 3]; 3]>,
            Flatten<3, 3, 3, 27>,
            Dense<27, 4>,
        ];
        let mut net = Net::ZERO;
        net.init(&mut Rng::new(3));
        let weights = weights_file(&net).unwrap();
        for layout in [Layout::Pytorch, Layout::Keras] {
            let file = export::<Net>("test", &[], &weights, layout).unwrap();
            let back = import::<Net>(&[], &file, layout).unwrap();
            assert_eq!(*back, net, "{layout}");
            let wrong =
                import::<Net>(&[], &file, if layout == Layout::Keras { Layout::Pytorch } else { Layout::Keras });
            assert!(wrong.unwrap_err().to_string().contains("names are those of the"), "{layout}");
        }
    }
}
