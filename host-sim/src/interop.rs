//! Weights in and out: safetensors files under PyTorch or Keras names and layouts, and Rust
//! source that puts a network with its weights into flash.
//!
//! Everything here follows from the layers' own descriptions ([`Layer::describe`] rows with
//! their [`TensorDesc`]s, and [`Params::visit`] for the values): the local names (`weight`,
//! `bias`, `running_mean`; Keras `kernel`, `gamma`), the shapes in PyTorch order, and how Keras
//! lays each tensor out. No layer kind is special-cased, so a new layer needs no change here.
//!
//! | tensor kind ([`KerasLayout`]) | PyTorch name and shape | Keras name and shape |
//! |---|---|---|
//! | `Same` (biases, vectors) | `fc1.bias` `[O]` | `dense/bias` `[O]` |
//! | `Kernel` (dense, convolutions) | `fc1.weight` `[O, I]`, `conv1.weight` `[CO, CI, K, K]` | `dense/kernel` `[I, O]`, `conv2d/kernel` `[K, K, CI, CO]` |
//! | `Depthwise` | `dwconv1.weight` `[C, 1, K, K]` | `depthwise_conv2d/depthwise_kernel` `[K, K, C, 1]` |
//!
//! Module names: the registry may name each layer with tensors ([`LayerNames`]); otherwise
//! PyTorch names are the layer's module prefix counted per prefix (`fc1`, `fc2`, `conv1`,
//! ...), and Keras names are Keras' own automatic ones: the class name in snake case, counted
//! per class (`dense`, `dense_1`, `conv2d`, ...).
//!
//! Keras flattens channels-last images (`H, W, C` order) where tinytrain and PyTorch flatten
//! `C, H, W`; with the Keras layout the rows of a dense kernel that follows a flattening of an
//! image with more than one channel are reordered accordingly, so a Keras CNN computes the
//! same logits here as in Keras. A flattening is recognised by shape: a layer without tensors
//! whose rank-1 output has as many elements as its rank-3 input.
//!
//! [`import`] accepts what people actually save (a PyTorch BatchNorm's `num_batches_tracked`
//! counter, which eval() mode never reads, is skipped and named), trying in turn: the expected names; the same
//! under a `module.` prefix (DataParallel); `nn.Sequential` indices (`0.weight`, `2.weight`);
//! Keras automatic names with any numeric suffix or a model prefix (`dense_2/kernel`,
//! `sequential_1/dense_2/kernel`); and a match by position when the shapes leave no doubt. It
//! says which mapping it used. When nothing fits, the error lists the expected and the found
//! tensors side by side.
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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::{self, Write as _};

use anyhow::{Result, anyhow, bail};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use tinytrain::layer::LayerInfo;
use tinytrain::params::{KerasLayout, Role, Slot, TensorDesc};
use tinytrain::{Layer, Tensor, checkpoint};

use crate::text::thousands;

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

impl Layout {
    fn other(self) -> Layout {
        match self {
            Layout::Pytorch => Layout::Keras,
            Layout::Keras => Layout::Pytorch,
        }
    }
}

/// The names of one layer with tensors: the PyTorch module name and the Keras layer name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerNames {
    /// PyTorch module (attribute) name, as in `fc1.weight`.
    pub torch: &'static str,
    /// Keras layer name, as in `dense/kernel`.
    pub keras: &'static str,
}

/// How the elements of a tensor in the file map onto tinytrain's storage.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Order {
    /// Same order (PyTorch layout, vectors).
    Same,
    /// Keras kernel `[k.., in, out]` of a PyTorch `[out, in, k..]` kernel; the inputs in HWC
    /// order if `flattened_from` (the CHW shape a flattening made them from) is set.
    KerasKernel { torch: Vec<usize>, flattened_from: Option<[usize; 3]> },
    /// Keras depthwise kernel `[k.., C, M]` of a PyTorch `[C, M, k..]` one.
    KerasDepthwise { torch: Vec<usize> },
}

/// Row-major index of `idx` in `dims`.
fn flat_index(idx: &[usize], dims: &[usize]) -> usize {
    idx.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// Multi-index of row-major index `e` in `dims`.
fn multi_index(mut e: usize, dims: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; dims.len()];
    for (i, &d) in idx.iter_mut().zip(dims).rev() {
        *i = e % d.max(1);
        e /= d.max(1);
    }
    idx
}

impl Order {
    /// The index in tinytrain's storage of element `e` of the file's tensor.
    fn native(&self, e: usize) -> usize {
        match self {
            Order::Same => e,
            Order::KerasKernel { torch, flattened_from } => {
                // Keras dims: [k.., in, out].
                let rank = torch.len();
                let mut keras_dims: Vec<usize> = torch[2..].to_vec();
                keras_dims.extend([torch[1], torch[0]]);
                let k = multi_index(e, &keras_dims);
                let (o, mut i) = (k[rank - 1], k[rank - 2]);
                if let Some([c_n, h_n, w_n]) = *flattened_from {
                    // Keras input (h·W + w)·C + c is tinytrain's c·H·W + h·W + w.
                    let (hw, c) = (i / c_n.max(1), i % c_n.max(1));
                    i = c * h_n * w_n + hw;
                }
                let mut t = vec![o, i];
                t.extend_from_slice(&k[..rank - 2]);
                flat_index(&t, torch)
            }
            Order::KerasDepthwise { torch } => {
                let rank = torch.len();
                let mut keras_dims: Vec<usize> = torch[2..].to_vec();
                keras_dims.extend([torch[0], torch[1]]);
                let k = multi_index(e, &keras_dims);
                let mut t = vec![k[rank - 2], k[rank - 1]];
                t.extend_from_slice(&k[..rank - 2]);
                flat_index(&t, torch)
            }
        }
    }

    /// The file's shape of a tensor of PyTorch shape `torch`.
    fn file_shape(&self, torch: &[usize]) -> Vec<usize> {
        match self {
            Order::Same => torch.to_vec(),
            Order::KerasKernel { .. } => {
                let mut s = torch[2..].to_vec();
                s.extend([torch[1], torch[0]]);
                s
            }
            Order::KerasDepthwise { .. } => {
                let mut s = torch[2..].to_vec();
                s.extend([torch[0], torch[1]]);
                s
            }
        }
    }
}

/// One tensor of a model in a safetensors file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// Name in the file.
    pub name: String,
    /// Local name within its layer, in the file's convention (`weight`, `kernel`).
    pub local: &'static str,
    /// Index of its layer among the layers with tensors.
    pub layer: usize,
    /// Shape in the file's layout.
    pub shape: Vec<usize>,
    /// Offset of its values among all stored values, in [`Params::visit`] order.
    pub offset: usize,
    /// Trainable, frozen or buffer.
    pub role: Role,
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

/// Keras' `to_snake_case` of a class name: `Conv2D` -> `conv2d`, `DepthwiseConv2D` ->
/// `depthwise_conv2d`, `BatchNormalization` -> `batch_normalization`.
#[must_use]
pub fn snake_case(class: &str) -> String {
    let chars: Vec<char> = class.chars().filter(char::is_ascii_alphanumeric).collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            // "(.)([A-Z][a-z]+)" then "([a-z])([A-Z])", as Keras does it.
            if next_lower || prev.is_ascii_lowercase() {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A layer with tensors, as the rows of [`Layer::describe`] give it, with the image shape a
/// flattening before it made its input from.
struct TensorLayer {
    info: LayerInfo,
    flattened_from: Option<[usize; 3]>,
}

fn rank(shape: [usize; 3]) -> usize {
    shape.iter().take_while(|&&d| d > 0).count()
}

fn volume(shape: [usize; 3]) -> usize {
    shape.iter().filter(|&&d| d > 0).product()
}

/// The layers of `M` that have tensors, in visiting order.
fn tensor_layers<M: Layer>() -> Vec<TensorLayer> {
    let mut layers = Vec::new();
    let mut shape = <M::Input as Tensor>::SHAPE;
    let mut flattened_from: Option<[usize; 3]> = None;
    M::describe(&mut |row| {
        let out = row.output_shape;
        if row.tensors.is_empty() {
            flattened_from = if rank(shape) == 3 && rank(out) == 1 && volume(shape) == volume(out) {
                Some(shape)
            } else if out == shape {
                flattened_from
            } else {
                None
            };
        } else {
            layers.push(TensorLayer { info: *row, flattened_from });
            flattened_from = None;
        }
        shape = out;
    });
    layers
}

/// The (PyTorch, Keras) names of `layers`: `names` when given, else the defaults.
fn layer_names(layers: &[TensorLayer], names: &[LayerNames]) -> Result<Vec<(String, String)>> {
    if !names.is_empty() {
        if names.len() != layers.len() {
            bail!("{} layer names for {} layers with tensors", names.len(), layers.len());
        }
        return Ok(names.iter().map(|n| (n.torch.to_owned(), n.keras.to_owned())).collect());
    }
    let mut torch_counts: HashMap<&str, usize> = HashMap::new();
    let mut keras_counts: HashMap<String, usize> = HashMap::new();
    Ok(layers
        .iter()
        .map(|l| {
            let n = torch_counts.entry(l.info.module).or_insert(0);
            *n += 1;
            let torch = format!("{}{n}", l.info.module);
            let base = snake_case(l.info.name);
            let k = keras_counts.entry(base.clone()).or_insert(0);
            let keras = if *k == 0 { base } else { format!("{base}_{k}") };
            *k += 1;
            (torch, keras)
        })
        .collect())
}

fn order_of(d: &TensorDesc, layout: Layout, flattened_from: Option<[usize; 3]>) -> Order {
    match (layout, d.keras_layout) {
        (Layout::Pytorch, _) | (Layout::Keras, KerasLayout::Same) => Order::Same,
        (Layout::Keras, KerasLayout::Kernel) => Order::KerasKernel {
            torch: d.shape.to_vec(),
            flattened_from: flattened_from.filter(|s| s[0] > 1 && d.shape.len() == 2),
        },
        (Layout::Keras, KerasLayout::Depthwise) => Order::KerasDepthwise { torch: d.shape.to_vec() },
    }
}

/// The tensors of network `M` in `layout`, in visiting order. `names` names the layers with
/// tensors in order; empty means the defaults of the module docs.
///
/// # Errors
/// A `names` list of another length than the layers with tensors, or two tensors of one name.
pub fn tensor_specs<M: Layer>(names: &[LayerNames], layout: Layout) -> Result<Vec<TensorSpec>> {
    let layers = tensor_layers::<M>();
    let names = layer_names(&layers, names)?;
    let mut specs = Vec::new();
    let mut offset = 0;
    for (index, (layer, (torch, keras))) in layers.iter().zip(names).enumerate() {
        for d in layer.info.tensors {
            let order = order_of(d, layout, layer.flattened_from);
            let (name, local) = match layout {
                Layout::Pytorch => (format!("{torch}.{}", d.name), d.name),
                Layout::Keras => (format!("{keras}/{}", d.keras_name), d.keras_name),
            };
            specs.push(TensorSpec {
                name,
                local,
                layer: index,
                shape: order.file_shape(d.shape),
                offset,
                role: layer.info.role(d),
                order,
            });
            offset += d.len();
        }
    }
    let mut seen = BTreeSet::new();
    if let Some(dup) = specs.iter().find(|s| !seen.insert(s.name.as_str())) {
        bail!("two tensors are named {}", dup.name);
    }
    if offset != M::STORED_LEN {
        bail!("the layers' tensors add up to {offset} values, the network stores {}", M::STORED_LEN);
    }
    Ok(specs)
}

/// Every stored value of `net`, in visiting order.
#[must_use]
pub fn flat_values<M: Layer>(net: &M) -> Vec<f32> {
    let mut flat = Vec::with_capacity(M::STORED_LEN);
    net.visit(&mut |_, p| flat.extend_from_slice(p));
    flat
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
    let flat = flat_values(&*net);
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

/// A file tensor's name split into its layer part and its local name (`0.weight` ->
/// (`0`, `weight`); `sequential_1/dense_2/kernel` -> (`sequential_1/dense_2`, `kernel`)).
fn split_name(name: &str) -> (&str, &str) {
    match name.rfind(['.', '/']) {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => ("", name),
    }
}

/// A name as a person orders it: digit runs as numbers.
type NaturalKey = Vec<(u8, u64, String)>;

/// Compares names as a person would: digit runs as numbers (`2` before `10`).
fn natural_key(s: &str) -> NaturalKey {
    let mut key = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        let mut run = String::new();
        let digits = c.is_ascii_digit();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() != digits {
                break;
            }
            run.push(d);
            chars.next();
        }
        if digits {
            key.push((0, run.parse().unwrap_or(u64::MAX), String::new()));
        } else {
            key.push((1, 0, run));
        }
    }
    key
}

/// A layer name of Keras' automatic form: `base` or `base_N`, after any model prefix
/// (`sequential_1/`). Returns the base and N (0 without a suffix).
fn keras_auto_name(layer: &str) -> (&str, u64) {
    let last = layer.rsplit('/').next().unwrap_or(layer);
    if let Some((base, n)) = last.rsplit_once('_')
        && let Ok(n) = n.parse::<u64>()
    {
        return (base, n);
    }
    (last, 0)
}

/// How the tensors of a file were matched to the network's.
struct Matched {
    /// File name of each of the network's tensors (in spec order).
    names: Vec<String>,
    /// The layout the file's tensors are in.
    layout: Layout,
    /// One line saying which mapping was used.
    how: String,
}

/// The file's tensors grouped by layer part, in natural order of the layer parts.
fn file_layers<'a>(file_names: &[&'a str]) -> Vec<(&'a str, Vec<&'a str>)> {
    let mut groups: BTreeMap<NaturalKey, (&'a str, Vec<&'a str>)> = BTreeMap::new();
    for &n in file_names {
        let (layer, _) = split_name(n);
        groups.entry(natural_key(layer)).or_insert((layer, Vec::new())).1.push(n);
    }
    groups.into_values().collect()
}

/// Maps the file's layers onto the network's layers with tensors one to one, in the order
/// `file_layers` gives, and checks every local name exists.
fn match_layers(specs: &[TensorSpec], layers: &[(&str, Vec<&str>)], available: &BTreeSet<&str>) -> Option<Vec<String>> {
    let count = specs.iter().map(|s| s.layer + 1).max().unwrap_or(0);
    if layers.len() != count {
        return None;
    }
    let mut names = Vec::with_capacity(specs.len());
    for s in specs {
        let (layer, _) = &layers[s.layer];
        let sep = if s.name.contains('/') { '/' } else { '.' };
        let name = if layer.is_empty() { s.local.to_owned() } else { format!("{layer}{sep}{}", s.local) };
        if !available.contains(name.as_str()) {
            return None;
        }
        names.push(name);
    }
    Some(names)
}

/// The file's layers in the network's order when they carry Keras automatic names: the k-th
/// layer of a class in the network is the k-th of that class in the file, by suffix.
fn keras_auto_order<'a, M: Layer>(layers: &[(&'a str, Vec<&'a str>)]) -> Option<Vec<(&'a str, Vec<&'a str>)>> {
    let tl = tensor_layers::<M>();
    let mut by_base: BTreeMap<&str, Vec<(u64, &str)>> = BTreeMap::new();
    for (layer, _) in layers {
        let (base, n) = keras_auto_name(layer);
        by_base.entry(base).or_default().push((n, layer));
    }
    by_base.values_mut().for_each(|v| v.sort_unstable());
    let mut used: HashMap<String, usize> = HashMap::new();
    let mut order = Vec::new();
    for l in &tl {
        let base = snake_case(l.info.name);
        let k = used.entry(base.clone()).or_insert(0);
        let &(_, layer) = by_base.get(base.as_str()).and_then(|v| v.get(*k))?;
        order.push((layer, Vec::new()));
        *k += 1;
    }
    (by_base.values().map(Vec::len).sum::<usize>() == tl.len()).then_some(order)
}

/// Finds how the file's tensors map onto `M`'s (see the module docs for the order of tries),
/// saying which PyTorch batch counters it skipped.
fn match_names<M: Layer>(names: &[LayerNames], layout: Layout, file: &SafeTensors<'_>) -> Result<Matched> {
    let mut matched = match_tensor_names::<M>(names, layout, file)?;
    let mut skipped: Vec<String> =
        file.names().into_iter().filter(|n| split_name(n).1 == "num_batches_tracked").map(str::to_owned).collect();
    skipped.sort_unstable();
    if !skipped.is_empty() {
        let _ = write!(matched.how, "; skipped PyTorch's batch counters {}", skipped.join(", "));
    }
    Ok(matched)
}

/// Finds how the file's tensors, batch counters aside, map onto `M`'s.
fn match_tensor_names<M: Layer>(names: &[LayerNames], layout: Layout, file: &SafeTensors<'_>) -> Result<Matched> {
    // PyTorch's BatchNorm keeps an int64 count of training batches (`num_batches_tracked`)
    // that eval() mode never reads; a network that does not describe it skips it.
    let counter = |n: &str| split_name(n).1 == "num_batches_tracked";
    let file_names: Vec<&str> = {
        let mut v: Vec<&str> = file.names().into_iter().filter(|n| !counter(n)).collect();
        v.sort_unstable();
        v
    };
    let available: BTreeSet<&str> = file_names.iter().copied().collect();
    let shape_of = |n: &str| file.tensor(n).ok().map(|t| t.shape().to_vec());
    let fits = |specs: &[TensorSpec], chosen: &[String]| {
        chosen.len() == file_names.len()
            && specs.iter().zip(chosen).all(|(s, n)| shape_of(n).is_some_and(|shape| shape == s.shape))
    };
    let mut candidates: Vec<(Layout, Vec<TensorSpec>)> = Vec::new();
    for l in [layout, layout.other()] {
        candidates.push((l, tensor_specs::<M>(names, l)?));
    }
    // 1. The expected names, in the asked-for layout and then the other one.
    for (l, specs) in &candidates {
        let chosen: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        if fits(specs, &chosen) {
            let how = if *l == layout {
                format!("{l} names as expected")
            } else {
                format!("{l} names and layout (asked for {layout})")
            };
            return Ok(Matched { names: chosen, layout: *l, how });
        }
    }
    // 2. A `module.` prefix (DataParallel) over the expected names.
    if file_names.iter().all(|n| n.starts_with("module.")) {
        let (_, specs) = &candidates.iter().find(|(l, _)| *l == Layout::Pytorch).ok_or_else(|| anyhow!("no layout"))?;
        let chosen: Vec<String> = specs.iter().map(|s| format!("module.{}", s.name)).collect();
        if fits(specs, &chosen) {
            return Ok(Matched {
                names: chosen,
                layout: Layout::Pytorch,
                how: "PyTorch names under a DataParallel `module.` prefix".to_owned(),
            });
        }
    }
    let layers = file_layers(&file_names);
    let stripped: Vec<&str> = layers.iter().map(|(l, _)| l.strip_prefix("module.").unwrap_or(l)).collect();
    // 3. nn.Sequential indices: every layer part a number (after a `module.` prefix).
    if !layers.is_empty() && stripped.iter().all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit())) {
        let (_, specs) = &candidates.iter().find(|(l, _)| *l == Layout::Pytorch).ok_or_else(|| anyhow!("no layout"))?;
        if let Some(chosen) = match_layers(specs, &layers, &available)
            && fits(specs, &chosen)
        {
            let prefix = if layers[0].0.starts_with("module.") { " under a `module.` prefix" } else { "" };
            let indices: Vec<&str> = stripped.clone();
            return Ok(Matched {
                names: chosen,
                layout: Layout::Pytorch,
                how: format!("nn.Sequential indices {}{prefix}", indices.join(", ")),
            });
        }
    }
    // 4. Keras automatic names with any suffix (and any model prefix).
    if let Some((_, specs)) = candidates.iter().find(|(l, _)| *l == Layout::Keras)
        && let Some(order) = keras_auto_order::<M>(&layers)
        && let Some(chosen) = match_layers(specs, &order, &available)
        && fits(specs, &chosen)
    {
        let layer_list: Vec<&str> = order.iter().map(|(l, _)| *l).collect();
        return Ok(Matched {
            names: chosen,
            layout: Layout::Keras,
            how: format!("Keras layer names {}", layer_list.join(", ")),
        });
    }
    // 5. By position: the file's layers in natural order, when their local names and shapes
    //    fit the network's layers one to one, in the layout their local names say.
    for (l, specs) in &candidates {
        let renamed: Vec<(&str, Vec<&str>)> = layers.clone();
        if let Some(chosen) = match_layers(specs, &renamed, &available)
            && fits(specs, &chosen)
        {
            let layer_list: Vec<&str> = renamed.iter().map(|(n, _)| *n).collect();
            return Ok(Matched {
                names: chosen,
                layout: *l,
                how: format!("{l} layout by position: {}", layer_list.join(", ")),
            });
        }
    }
    Err(no_fit(&candidates[0].1, layout, &file_names, &shape_of))
}

/// The error when nothing fits: what is wrong against the expected names `specs`, then
/// expected and found side by side, all in one line.
fn no_fit(
    specs: &[TensorSpec],
    layout: Layout,
    file_names: &[&str],
    shape_of: &dyn Fn(&str) -> Option<Vec<usize>>,
) -> anyhow::Error {
    let mut problems = Vec::new();
    for spec in specs {
        match shape_of(&spec.name) {
            None => problems.push(format!("missing tensor {} (f32 {})", spec.name, shape_text(&spec.shape))),
            Some(shape) if shape != spec.shape => problems.push(format!(
                "tensor {} has shape {}, expected {}",
                spec.name,
                shape_text(&shape),
                shape_text(&spec.shape)
            )),
            Some(_) => {}
        }
    }
    let expected: BTreeSet<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    problems.extend(file_names.iter().filter(|n| !expected.contains(*n)).map(|n| format!("unexpected tensor {n}")));
    let found = |n: &str| shape_of(n).map_or_else(|| "-".to_owned(), |s| format!("{n} {}", shape_text(&s)));
    let pairs: Vec<String> = specs
        .iter()
        .map(|s| format!("{} {} | {}", s.name, shape_text(&s.shape), found(&s.name)))
        .chain(file_names.iter().filter(|n| !expected.contains(*n)).map(|n| format!("- | {}", found(n))))
        .collect();
    anyhow!("{}; no mapping of names fits ({layout} expected | found: {})", problems.join("; "), pairs.join(", "))
}

/// Reads the safetensors file `bytes` into a network `M`, preferring `layout`'s names, and
/// returns it with one line saying which mapping was used.
///
/// # Errors
/// A file that is not safetensors, one whose tensors match no mapping (expected and found
/// listed side by side), a tensor of another dtype, or a NaN or infinite value.
pub fn import<M: Layer>(names: &[LayerNames], bytes: &[u8], layout: Layout) -> Result<(Box<M>, String)> {
    let file = SafeTensors::deserialize(bytes).map_err(|e| anyhow!("not a safetensors file: {e}"))?;
    let matched = match_names::<M>(names, layout, &file)?;
    let specs = tensor_specs::<M>(names, matched.layout)?;
    let mut flat = vec![0.0f32; M::STORED_LEN];
    let mut problems = Vec::new();
    for (spec, name) in specs.iter().zip(&matched.names) {
        let view = file.tensor(name).map_err(|e| anyhow!("tensor {name}: {e}"))?;
        if view.dtype() != Dtype::F32 {
            problems.push(format!("tensor {name} is {:?}, expected F32", view.dtype()));
            continue;
        }
        for (e, c) in view.data().chunks_exact(4).enumerate() {
            let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            if !v.is_finite() {
                problems.push(format!("tensor {name} holds {v} at element {e}"));
                break;
            }
            flat[spec.offset + spec.order.native(e)] = v;
        }
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    let mut net: Box<M> = Box::new(M::ZERO);
    set_flat_values(&mut *net, &flat)?;
    Ok((net, matched.how))
}

/// Writes `flat` (every stored value, in visiting order, as [`flat_values`] reads them) into
/// `net`. Tensors in flash cannot be written: their values in `flat` must be theirs, bit for
/// bit. Nothing is written when they are not.
///
/// # Errors
/// A length other than the network's stored values, or values that differ from weights in
/// flash.
pub fn set_flat_values<M: Layer>(net: &mut M, flat: &[f32]) -> Result<()> {
    if flat.len() != M::STORED_LEN {
        bail!("{} values given, the network stores {}", flat.len(), M::STORED_LEN);
    }
    let (mut at, mut fixed_differs) = (0, None);
    net.visit_mut(&mut |_, slot| {
        let n = slot.values().len();
        if let Slot::Fixed(p) = slot
            && fixed_differs.is_none()
            && p.iter().zip(&flat[at..at + n]).any(|(a, b)| a.to_bits() != b.to_bits())
        {
            fixed_differs = Some(at);
        }
        at += n;
    });
    if let Some(at) = fixed_differs {
        bail!("the values from {at} on differ from the frozen weights in flash");
    }
    let mut at = 0;
    net.visit_mut(&mut |_, slot| {
        let n = slot.values().len();
        if let Slot::Mut(p) = slot {
            p.copy_from_slice(&flat[at..at + n]);
        }
        at += n;
    });
    Ok(())
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
    /// Which mapping of names the import used, in one line.
    pub mapping: String,
}

/// Imports a safetensors file for network `M` (called `model`, `type_path` in Rust source,
/// its layers named `names`): the weights file and, with `rust`, the Rust source of
/// [`rust_source`].
///
/// # Errors
/// As [`import`].
pub fn import_model<M: Layer>(
    model: &str,
    type_path: &str,
    names: &[LayerNames],
    bytes: &[u8],
    layout: Layout,
    rust: bool,
) -> Result<Imported> {
    let (net, mapping) = import::<M>(names, bytes, layout)?;
    let weights = weights_file(&*net)?;
    let rust = if rust { Some(rust_source::<M>(model, type_path, &net)?) } else { None };
    Ok(Imported { weights, rust, mapping })
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
/// the tensors of `net` as literal arrays, so that it lives in flash. `model` names the model
/// in the header comment. Each layer is written from its description: its Rust struct with one
/// field per tensor, wrapped in `tinytrain::Frozen` when frozen. The file is meant for
/// `include!` (it has no inner attributes) or as a module of its own; it needs the `tinytrain`
/// crate.
///
/// # Errors
/// A non-finite value, or a network that is not a `sequential!` chain of single layers.
pub fn rust_source<M: Layer>(model: &str, type_path: &str, net: &M) -> Result<String> {
    let flat = flat_values(net);
    if let Some(i) = flat.iter().position(|v| !v.is_finite()) {
        bail!("value {i} is {}", flat[i]);
    }
    let mut rows = Vec::new();
    M::describe(&mut |row| rows.push(*row));
    if rows.is_empty() {
        bail!("the network has no layers");
    }
    let mut src = String::new();
    let _ = writeln!(src, "// Network `{model}` ({type_path}) with its trained weights:");
    let _ = writeln!(
        src,
        "// {} parameters, {} bytes in flash. Generated by `tinytrain-sim import`; do not edit.",
        thousands(M::STORED_LEN),
        thousands(4 * M::STORED_LEN)
    );
    let _ =
        writeln!(src, "// Run it with `NET.predict(&x, &mut acts, &mut y)`; `acts` (`<Net as Layer>::Acts`) is RAM.");
    src.push_str("#[rustfmt::skip]\n#[allow(clippy::all, clippy::pedantic)]\n");
    let _ = write!(src, "pub static NET: {type_path} = ");
    let last = rows.len() - 1;
    let mut at = 0;
    for (i, row) in rows.iter().enumerate() {
        let indent = 4 * i;
        let pad = " ".repeat(indent);
        if i < last {
            let _ = write!(src, "tinytrain::Chain {{\n{pad}    a: ");
        }
        let inner = if i < last { indent + 4 } else { indent };
        if row.tensors.is_empty() || row.in_flash {
            src.push_str("<_ as tinytrain::Layer>::ZERO");
            at += row.params();
        } else {
            if row.rust_path.is_empty() {
                bail!("layer {i} ({}) has tensors but no Rust struct to write them into", row.name);
            }
            let ipad = " ".repeat(inner);
            if row.frozen {
                src.push_str("tinytrain::Frozen(");
            }
            let _ = write!(src, "{} {{", row.rust_path);
            for d in row.tensors {
                let _ = write!(src, "\n{ipad}    {}: ", d.name);
                write_array(&mut src, &flat[at..at + d.len()], d.rust_dims, inner + 4);
                src.push(',');
                at += d.len();
            }
            let _ = write!(src, "\n{ipad}}}");
            if row.frozen {
                src.push(')');
            }
        }
        if i < last {
            let _ = write!(src, ",\n{pad}    b: ");
        }
    }
    for i in (0..last).rev() {
        let _ = write!(src, "\n{}}}", " ".repeat(4 * i));
    }
    src.push_str(";\n");
    if at != flat.len() {
        bail!("the layer rows describe {at} values, the network stores {}", flat.len());
    }
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
        let cnn = tensor_layers::<zoo::MnistCnn>();
        assert_eq!(cnn.len(), 4);
        assert_eq!(cnn[2].flattened_from, Some([64, 12, 12]));
        assert_eq!(cnn[3].flattened_from, None);
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
    fn snake_case_is_keras_to_snake_case() {
        let cases = [
            ("Dense", "dense"),
            ("Conv2D", "conv2d"),
            ("DepthwiseConv2D", "depthwise_conv2d"),
            ("BatchNormalization", "batch_normalization"),
            ("Conv1D", "conv1d"),
            ("MaxPooling2D", "max_pooling2d"),
            ("GlobalAveragePooling1D", "global_average_pooling1d"),
        ];
        for (class, snake) in cases {
            assert_eq!(snake_case(class), snake, "{class}");
        }
    }

    #[test]
    fn keras_orders_are_permutations() {
        let orders = [
            (Order::KerasKernel { torch: vec![5, 12], flattened_from: Some([3, 2, 2]) }, 60),
            (Order::KerasKernel { torch: vec![4, 3, 3, 3], flattened_from: None }, 108),
            (Order::KerasKernel { torch: vec![4, 3, 5], flattened_from: None }, 60),
            (Order::KerasDepthwise { torch: vec![5, 1, 2, 2] }, 20),
        ];
        for (order, n) in orders {
            let mut seen: Vec<usize> = (0..n).map(|e| order.native(e)).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "{order:?}");
        }
        // Keras conv kernel element [kh=1][kw=2][ci=0][co=3] is tinytrain's [3][0][1][2].
        let conv = Order::KerasKernel { torch: vec![4, 2, 3, 3], flattened_from: None };
        assert_eq!(conv.native(((3 + 2) * 2) * 4 + 3), ((3 * 2) * 3 + 1) * 3 + 2);
        // After flattening HWC, Keras input (h=1, w=0, c=2) is tinytrain input c·H·W + h·W + w.
        let dense = Order::KerasKernel { torch: vec![5, 12], flattened_from: Some([3, 2, 2]) };
        let keras_input = (2 * 3) + 2;
        assert_eq!(dense.native(keras_input * 5 + 4), 4 * 12 + (2 * 4 + 2));
        // Depthwise [kh=1][kw=0][c=3][m=0] is tinytrain's [3][0][1][0].
        let dw = Order::KerasDepthwise { torch: vec![5, 1, 2, 2] };
        assert_eq!(dw.native(2 * 5 + 3), 3 * 4 + 2);
    }

    #[test]
    fn natural_order_puts_two_before_ten() {
        let mut v = ["10", "2", "module.1", "0"];
        v.sort_by_key(|s| natural_key(s));
        assert_eq!(v, ["0", "2", "10", "module.1"]);
        assert_eq!(keras_auto_name("sequential_1/dense_2"), ("dense", 2));
        assert_eq!(keras_auto_name("conv2d"), ("conv2d", 0));
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
            let (back, how) = import::<Net>(&[], &file, layout).unwrap();
            assert_eq!(*back, net, "{layout}");
            assert!(how.contains("as expected"), "{how}");
            let other = layout.other();
            let (back, how) = import::<Net>(&[], &file, other).unwrap();
            assert_eq!(*back, net, "{layout} file read as {other}");
            assert!(how.contains(&format!("asked for {other}")), "{how}");
        }
    }
}
