//! The summary of a `.tflite` model: one row per operator (output type and shape, parameters,
//! weights and quantisation), the parameter count, the flash the weights and biases take and
//! an estimate of the tensor arena (RAM for activations).
//!
//! The arena estimate is the largest sum of activation tensors live at the same time. A tensor
//! is live from the operator that writes it (from the start, for a subgraph input) to the last
//! operator that reads it (to the end, for a subgraph output); at each operator the live
//! tensors' bytes are added up, and the largest sum is the estimate. No tensor shares memory
//! with another (a RESHAPE's output is a copy); TFLite Micro's planner can need somewhat more
//! (fragmentation), plus its per-operator scratch buffers and interpreter structures.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::graph::{Graph, OpKind, Tensor, shape_text};
use crate::text::thousands;

/// The tensor arena estimate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arena {
    /// Bytes of the largest set of activation tensors live at once.
    pub bytes: usize,
    /// The position (in execution order) of the operator where that happens.
    pub at: usize,
    /// The tensors live there.
    pub live: Vec<usize>,
}

/// The tensor arena estimate of a graph: see the module docs.
#[must_use]
pub fn arena(g: &Graph) -> Arena {
    if g.ops.is_empty() {
        return Arena { bytes: 0, at: 0, live: Vec::new() };
    }
    let n = g.tensors.len();
    let last = g.ops.len().saturating_sub(1);
    // First and last position at which each activation tensor is live.
    let mut first = vec![usize::MAX; n];
    let mut end = vec![0usize; n];
    for &i in &g.inputs {
        first[i] = 0;
    }
    for (pos, op) in g.ops.iter().enumerate() {
        for &o in &op.outputs {
            first[o] = first[o].min(pos);
            end[o] = end[o].max(pos);
        }
        for &i in op.inputs.iter().flatten() {
            end[i] = end[i].max(pos);
        }
    }
    for &o in &g.outputs {
        end[o] = last;
    }
    // Sweep: each tensor's bytes come in at its first position and go out after its last.
    let live_at = |t: usize| !g.tensors[t].is_const() && first[t] <= end[t];
    let mut delta = vec![0i128; g.ops.len() + 1];
    for t in (0..n).filter(|&t| live_at(t)) {
        let bytes = g.tensors[t].bytes() as i128;
        delta[first[t]] += bytes;
        delta[end[t] + 1] -= bytes;
    }
    let (mut bytes, mut best, mut at) = (0i128, 0i128, 0usize);
    for (pos, d) in delta.iter().take(g.ops.len()).enumerate() {
        bytes += d;
        if bytes > best {
            (best, at) = (bytes, pos);
        }
    }
    let live = (0..n).filter(|&t| live_at(t) && first[t] <= at && at <= end[t]).collect();
    Arena { bytes: usize::try_from(best).unwrap_or(usize::MAX), at, live }
}

/// Multiply-accumulates (or, for operators without, values written) of one inference: the
/// work estimate the summary prints, and a bound fuzzing uses before running a graph.
#[must_use]
pub fn macs(g: &Graph) -> u64 {
    g.ops
        .iter()
        .map(|op| {
            let out = g.tensors[op.output()].len() as u64;
            let w = op.input(1).map(|w| &g.tensors[w]);
            let per = match (&op.kind, w) {
                (OpKind::FullyConnected { .. }, Some(w)) => w.shape.get(1).copied().unwrap_or(1),
                (OpKind::Conv2d { .. }, Some(w)) => w.shape.iter().skip(1).product(),
                (OpKind::DepthwiseConv2d { .. }, Some(w)) => w.shape.iter().skip(1).take(2).product(),
                (OpKind::AveragePool2d { window, .. } | OpKind::MaxPool2d { window, .. }, _) => {
                    window.filter_h * window.filter_w
                }
                _ => 1,
            };
            out.saturating_mul(per as u64)
        })
        .fold(0u64, u64::saturating_add)
}

/// Weight and bias tensors (constant inputs of the operators), each once.
fn parameters(g: &Graph) -> BTreeSet<usize> {
    let mut set = BTreeSet::new();
    for op in &g.ops {
        for &i in op.inputs.iter().flatten() {
            if g.tensors[i].is_const() {
                set.insert(i);
            }
        }
    }
    set
}

fn op_label(g: &Graph, pos: usize) -> String {
    let op = &g.ops[pos];
    let mut s = op.kind.name().to_owned();
    match &op.kind {
        OpKind::Conv2d { window, .. } | OpKind::DepthwiseConv2d { window, .. } => {
            if let Some(w) = op.input(1).map(|w| &g.tensors[w]) {
                let (kh, kw) = (w.shape.get(1).copied().unwrap_or(0), w.shape.get(2).copied().unwrap_or(0));
                let _ = write!(s, " {kh}x{kw}");
            }
            let _ = write!(s, "/{} {}", stride(window.stride_h, window.stride_w), window.padding);
            if (window.dilation_h, window.dilation_w) != (1, 1) {
                let _ = write!(s, " dilation {}", stride(window.dilation_h, window.dilation_w));
            }
        }
        OpKind::AveragePool2d { window, .. } | OpKind::MaxPool2d { window, .. } => {
            let _ = write!(
                s,
                " {}x{}/{} {}",
                window.filter_h,
                window.filter_w,
                stride(window.stride_h, window.stride_w),
                window.padding
            );
        }
        OpKind::Softmax { beta } if *beta != 1.0 => {
            let _ = write!(s, " beta {beta}");
        }
        _ => {}
    }
    if let Some(a) = op.kind.activation().filter(|a| *a != super::graph::Activation::None) {
        let _ = write!(s, " {a}");
    }
    if !op.folded.is_empty() {
        s.push_str(" (Flatten)");
    }
    s
}

fn stride(h: usize, w: usize) -> String {
    if h == w { h.to_string() } else { format!("{h}x{w}") }
}

fn quant_text(t: &Tensor) -> String {
    t.quant.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// The summary, as `tinytrain-sim summary model.tflite` prints it.
#[must_use]
pub fn summary(g: &Graph, name: &str) -> String {
    let mut s = String::new();
    let _ = write!(s, "Model: \"{name}\" (TFLite schema version {}", g.version);
    if !g.description.is_empty() {
        let _ = write!(s, ", {:?}", g.description);
    }
    let _ = writeln!(s, "), {} operators", g.ops.len());
    for (what, list) in [("input", &g.inputs), ("output", &g.outputs)] {
        for &i in list {
            let t = &g.tensors[i];
            let _ = writeln!(s, "{what:<6} {} {} {}", t.name, t.type_and_shape(), quant_text(t));
        }
    }
    let rule = "_".repeat(100);
    let _ = writeln!(s, "{rule}");
    let _ = writeln!(s, "{:>3}  {:<44} {:<22} {:>9}", "#", "Operator", "Output", "Param #");
    let _ = writeln!(s, "{}", "=".repeat(100));
    let mut seen = BTreeSet::new();
    for (pos, op) in g.ops.iter().enumerate() {
        let out = &g.tensors[op.output()];
        let params: usize = op
            .inputs
            .iter()
            .flatten()
            .filter(|&&i| g.tensors[i].is_const() && seen.insert(i))
            .map(|&i| g.tensors[i].len())
            .sum();
        let _ = writeln!(
            s,
            "{:>3}  {:<44} {:<22} {:>9}",
            op.index,
            op_label(g, pos),
            out.type_and_shape(),
            thousands(params)
        );
        if !op.folded.is_empty() {
            let _ = writeln!(s, "{:>3}    folded into it: {}", "", op.folded.join(", "));
        }
        let first = usize::from(!matches!(op.kind, OpKind::Add { .. }));
        for (k, &i) in op.inputs.iter().enumerate().skip(first) {
            let Some(i) = i else { continue };
            let t = &g.tensors[i];
            let role = match (&op.kind, k) {
                (OpKind::FullyConnected { .. }, 1) => "weights",
                (OpKind::Conv2d { .. } | OpKind::DepthwiseConv2d { .. }, 1) => "filter",
                (_, 2) => "bias",
                _ => "input",
            };
            let _ = writeln!(s, "{:>3}    {role} {} {}", "", t.type_and_shape(), quant_text(t));
        }
        if out.quant.is_some() {
            let _ = writeln!(s, "{:>3}    output {}", "", quant_text(out));
        }
    }
    let _ = writeln!(s, "{}", "=".repeat(100));
    let params = parameters(g);
    let count: usize = params.iter().map(|&i| g.tensors[i].len()).sum();
    let flash: usize = params.iter().map(|&i| g.tensors[i].bytes()).sum();
    let mut by_type: Vec<String> = Vec::new();
    for dtype in [super::DType::I8, super::DType::I32, super::DType::F32, super::DType::I64] {
        let n: usize = params.iter().filter(|&&i| g.tensors[i].dtype == dtype).map(|&i| g.tensors[i].len()).sum();
        if n > 0 {
            by_type.push(format!("{} {dtype}", thousands(n)));
        }
    }
    let _ = writeln!(s, "Total params: {} ({})", thousands(count), by_type.join(", "));
    let _ = writeln!(s, "Flash (weights and biases): {} bytes", thousands(flash));
    let _ = writeln!(
        s,
        "Work: {} multiply-accumulates per inference",
        thousands(usize::try_from(macs(g)).unwrap_or(usize::MAX))
    );
    let a = arena(g);
    let live: Vec<String> = a.live.iter().map(|&t| format!("{} {}", t, shape_text(&g.tensors[t].shape))).collect();
    let _ = writeln!(
        s,
        "RAM (tensor arena estimate): {} bytes, at operator {} (live: tensors {})",
        thousands(a.bytes),
        g.ops.get(a.at).map_or(0, |o| o.index),
        live.join(", ")
    );
    let _ =
        writeln!(s, "  the largest sum of activation tensors live at once, each live from the operator that writes it");
    let _ =
        writeln!(s, "  to the last one that reads it; no memory shared, scratch buffers and interpreter not counted");
    s
}
