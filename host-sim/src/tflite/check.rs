//! The checks [`super::load`] makes on every operator and on the order they run in: inputs and
//! outputs of the types, shapes and quantisation the operator needs, outputs of the shape its
//! inputs give. After these, the interpreter's indexing cannot leave a buffer.

use anyhow::{Result, bail};

use super::graph::{DType, Data, Graph, Op, OpKind, Quant, Tensor, Window, shape_text};

/// The checks of one operator. `known` holds the values known before running (constants and
/// folded shapes), indexed like `tensors`.
#[allow(clippy::too_many_lines)] // one arm per operator, read top to bottom
pub(super) fn op(op: &Op, tensors: &[Tensor], known: &[Option<Data>], here: &str) -> Result<()> {
    let c = Ctx { op, tensors, here };
    let x = c.input(0)?;
    let out = c.output();
    match &op.kind {
        OpKind::FullyConnected { keep_num_dims, .. } => {
            c.inputs_between(2, 3)?;
            let w = c.constant(1, "weights")?;
            c.same_type(x, out)?;
            let [o, i] = w.shape[..] else {
                bail!("{here} has weights of shape {}; expected [units, inputs]", shape_text(&w.shape))
            };
            if i == 0 || x.len() % i != 0 {
                bail!("{here} has weights for {i} inputs but an input of shape {}", shape_text(&x.shape));
            }
            let expected = if *keep_num_dims {
                if x.shape.last() != Some(&i) {
                    bail!("{here} keeps the input's dimensions but its last one is not {i}: {}", shape_text(&x.shape));
                }
                let mut s = x.shape.clone();
                s.pop();
                s.push(o);
                s
            } else {
                vec![x.len() / i, o]
            };
            c.output_shape(&expected)?;
            c.weights_and_bias(x, w, o, 0)?;
        }
        OpKind::Conv2d { window, .. } | OpKind::DepthwiseConv2d { window, .. } => {
            c.inputs_between(2, 3)?;
            let w = c.constant(1, "filter")?;
            c.same_type(x, out)?;
            let [n, h, wd, ci] = x.shape[..] else {
                bail!("{here} has an input of shape {}; expected [N, H, W, C]", shape_text(&x.shape))
            };
            let depthwise = matches!(op.kind, OpKind::DepthwiseConv2d { .. });
            let (co, kh, kw, channel_dim) = match (depthwise, &w.shape[..]) {
                (false, &[co, kh, kw, wci]) if wci == ci => (co, kh, kw, 0),
                (false, &[_, _, _, wci]) if wci > 0 && ci % wci == 0 => {
                    bail!("{here} is a grouped convolution ({} groups); tinytrain supports groups of 1", ci / wci)
                }
                (true, &[1, kh, kw, co]) if ci > 0 && co % ci == 0 => (co, kh, kw, 3),
                _ => bail!(
                    "{here} has a filter of shape {} for an input of shape {}; expected {}",
                    shape_text(&w.shape),
                    shape_text(&x.shape),
                    if depthwise { "[1, KH, KW, C × multiplier]" } else { "[C_out, KH, KW, C_in]" }
                ),
            };
            let (Some(oh), Some(ow)) = (
                window.padding.out_size(h, kh, window.stride_h, window.dilation_h),
                window.padding.out_size(wd, kw, window.stride_w, window.dilation_w),
            ) else {
                bail!("{here}: the {kh}x{kw} filter does not fit the {h}x{wd} input")
            };
            c.output_shape(&[n, oh, ow, co])?;
            c.weights_and_bias(x, w, co, channel_dim)?;
        }
        OpKind::AveragePool2d { window, .. } | OpKind::MaxPool2d { window, .. } => {
            c.inputs_between(1, 1)?;
            c.same_type(x, out)?;
            c.float_or_int8(x)?;
            let [n, h, w, ch] = x.shape[..] else {
                bail!("{here} has an input of shape {}; expected [N, H, W, C]", shape_text(&x.shape))
            };
            let Window { padding, stride_h, stride_w, filter_h, filter_w, .. } = *window;
            let (Some(oh), Some(ow)) =
                (padding.out_size(h, filter_h, stride_h, 1), padding.out_size(w, filter_w, stride_w, 1))
            else {
                bail!("{here}: the {filter_h}x{filter_w} window does not fit the {h}x{w} input")
            };
            c.output_shape(&[n, oh, ow, ch])?;
            if x.dtype == DType::I8 {
                let (qx, qo) = (c.per_tensor(x)?, c.per_tensor(out)?);
                if qx != qo {
                    bail!(
                        "{here} has input quantisation ({qx}) different from its output's ({qo}); TFLite requires them equal"
                    );
                }
            }
        }
        OpKind::Reshape => {
            c.inputs_between(1, 2)?;
            c.same_type(x, out)?;
            if x.len() != out.len() {
                bail!("{here} reshapes {} values into {}", shape_text(&x.shape), shape_text(&out.shape));
            }
            if let Some(s) = op.input(1) {
                if tensors[s].len() > super::load::MAX_RANK {
                    bail!(
                        "{here} has a shape input of {} values; tinytrain supports up to {} dimensions",
                        tensors[s].len(),
                        super::load::MAX_RANK
                    );
                }
                let Some(values) = known[s].as_ref().and_then(Data::as_i64) else {
                    bail!("{here} reshapes to a shape computed at run time; tinytrain needs a static shape")
                };
                let resolved = resolve_shape(&values, x.len()).ok_or_else(|| {
                    anyhow::anyhow!("{here} has new shape {values:?}, which does not fit {} values", x.len())
                })?;
                // A shape of one value for a scalar output is [] in TFLite's files.
                if resolved != out.shape && !(out.shape.is_empty() && resolved == [1]) {
                    bail!("{here} has new shape {values:?} but its output tensor has shape {}", shape_text(&out.shape));
                }
            }
        }
        OpKind::Softmax { .. } | OpKind::Logistic | OpKind::Tanh => {
            c.inputs_between(1, 1)?;
            c.same_type(x, out)?;
            c.float_or_int8(x)?;
            c.output_shape(&x.shape)?;
            if x.dtype == DType::I8 {
                c.per_tensor(x)?;
                let (scale, zero_point) = match op.kind {
                    OpKind::Tanh => (1.0 / 128.0, 0),
                    _ => (1.0 / 256.0, -128),
                };
                let q = c.per_tensor(out)?;
                if (q.scale() - scale).abs() > 0.001 * scale || q.zero_point() != zero_point {
                    bail!(
                        "{here} has output quantisation {q}; TFLite's int8 kernel needs scale {scale} zero point {zero_point}"
                    );
                }
            }
            if x.shape.is_empty() && matches!(op.kind, OpKind::Softmax { .. }) {
                bail!("{here} has a scalar input; softmax needs at least one dimension");
            }
        }
        OpKind::Quantize | OpKind::Dequantize => {
            c.inputs_between(1, 1)?;
            c.output_shape(&x.shape)?;
            let ok = match op.kind {
                OpKind::Quantize => matches!((x.dtype, out.dtype), (DType::F32 | DType::I8, DType::I8)),
                _ => (x.dtype, out.dtype) == (DType::I8, DType::F32),
            };
            if !ok {
                bail!(
                    "{here} converts {} to {}; tinytrain supports float32 or int8 to int8 (QUANTIZE) and int8 to float32 (DEQUANTIZE)",
                    x.dtype,
                    out.dtype
                );
            }
            if x.dtype == DType::I8 {
                c.per_tensor(x)?;
            }
            if out.dtype == DType::I8 {
                c.per_tensor(out)?;
            }
        }
        OpKind::Add { .. } => {
            c.inputs_between(2, 2)?;
            let y = c.input(1)?;
            c.same_type(x, out)?;
            c.same_type(y, out)?;
            c.float_or_int8(x)?;
            let Some(shape) = broadcast(&x.shape, &y.shape) else {
                bail!(
                    "{here} adds shapes {} and {}, which do not broadcast",
                    shape_text(&x.shape),
                    shape_text(&y.shape)
                )
            };
            c.output_shape(&shape)?;
            if x.dtype == DType::I8 {
                c.per_tensor(x)?;
                c.per_tensor(y)?;
                c.per_tensor(out)?;
            }
        }
    }
    Ok(())
}

/// NumPy broadcasting of two shapes.
#[must_use]
pub fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| if i + s.len() >= n { s[i + s.len() - n] } else { 1 };
    (0..n)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// A RESHAPE's new shape with its one `-1` resolved, if it holds `len` values.
fn resolve_shape(values: &[i64], len: usize) -> Option<Vec<usize>> {
    let mut known = 1usize;
    let mut free = None;
    for (i, &v) in values.iter().enumerate() {
        match v {
            -1 if free.is_none() => free = Some(i),
            v => known = known.checked_mul(usize::try_from(v).ok()?)?,
        }
    }
    let mut shape: Vec<usize> = values.iter().map(|&v| usize::try_from(v).unwrap_or(0)).collect();
    match free {
        Some(i) if known > 0 && len.is_multiple_of(known) => shape[i] = len / known,
        Some(_) => return None,
        None if known != len => return None,
        None => {}
    }
    Some(shape)
}

struct Ctx<'a> {
    op: &'a Op,
    tensors: &'a [Tensor],
    here: &'a str,
}

impl<'a> Ctx<'a> {
    fn input(&self, k: usize) -> Result<&'a Tensor> {
        match self.op.input(k) {
            Some(t) => Ok(&self.tensors[t]),
            None => bail!("{} has no input {k}", self.here),
        }
    }

    fn output(&self) -> &'a Tensor {
        &self.tensors[self.op.output()]
    }

    fn inputs_between(&self, lo: usize, hi: usize) -> Result<()> {
        let n = self.op.inputs.len();
        if n < lo || n > hi {
            bail!(
                "{} has {n} inputs; expected {}",
                self.here,
                if lo == hi { lo.to_string() } else { format!("{lo} to {hi}") }
            );
        }
        // Only the last of several inputs (a bias) may be left out.
        if self.op.inputs[..lo].iter().any(Option::is_none) {
            bail!("{} leaves out a required input", self.here);
        }
        Ok(())
    }

    fn constant(&self, k: usize, what: &str) -> Result<&'a Tensor> {
        let t = self.input(k)?;
        if !t.is_const() {
            bail!("{} has {what} computed at run time; tinytrain needs them in the file", self.here);
        }
        Ok(t)
    }

    fn same_type(&self, a: &Tensor, b: &Tensor) -> Result<()> {
        if a.dtype != b.dtype {
            bail!("{} mixes {} and {} tensors ({} and {})", self.here, a.dtype, b.dtype, a.name, b.name);
        }
        Ok(())
    }

    fn float_or_int8(&self, t: &Tensor) -> Result<()> {
        match t.dtype {
            DType::F32 | DType::I8 => Ok(()),
            d => bail!("{} runs on {d} tensors; tinytrain runs it on float32 and int8", self.here),
        }
    }

    fn output_shape(&self, expected: &[usize]) -> Result<()> {
        let out = &self.tensors[self.op.output()];
        if out.shape != expected {
            bail!("{} writes shape {} but its inputs give {}", self.here, shape_text(&out.shape), shape_text(expected));
        }
        Ok(())
    }

    /// The one scale and zero point of an int8 activation tensor.
    fn per_tensor(&self, t: &'a Tensor) -> Result<&'a Quant> {
        match &t.quant {
            Some(q) if !q.per_channel() => {
                if !(-128..=127).contains(&q.zero_point()) {
                    bail!("{}: tensor {} has zero point {} outside int8", self.here, t.name, q.zero_point());
                }
                Ok(q)
            }
            Some(_) => bail!("{}: tensor {} is quantised per channel; tinytrain expects one scale", self.here, t.name),
            None => bail!("{}: int8 tensor {} has no quantisation parameters", self.here, t.name),
        }
    }

    /// Types and quantisation of a FULLY_CONNECTED's or convolution's weights (`units`
    /// channels, along `channel_dim`) and optional bias, for input `x`.
    fn weights_and_bias(&self, x: &'a Tensor, w: &'a Tensor, units: usize, channel_dim: usize) -> Result<()> {
        let here = self.here;
        let bias = match self.op.input(2) {
            Some(_) => Some(self.constant(2, "a bias")?),
            None => None,
        };
        if let Some(b) = bias
            && b.len() != units
        {
            bail!("{here} has a bias of shape {} for {units} channels", shape_text(&b.shape));
        }
        match x.dtype {
            DType::F32 => {
                if w.dtype != DType::F32 || bias.is_some_and(|b| b.dtype != DType::F32) {
                    bail!(
                        "{here} has float32 input but {} weights (hybrid); tinytrain supports all-float32 or all-int8 layers",
                        w.dtype
                    );
                }
            }
            DType::I8 => {
                if w.dtype != DType::I8 {
                    bail!("{here} has int8 input but {} weights; tinytrain supports int8 weights", w.dtype);
                }
                if let Some(b) = bias
                    && b.dtype != DType::I32
                {
                    bail!("{here} has a {} bias; int8 layers need an int32 bias", b.dtype);
                }
                self.per_tensor(x)?;
                self.per_tensor(self.output())?;
                let Some(q) = &w.quant else {
                    bail!("{here}: int8 weights {} have no quantisation parameters", w.name)
                };
                if q.per_channel() && (q.dim != channel_dim || q.scale.len() != units) {
                    bail!(
                        "{here}: weights {} are quantised along dimension {}; expected {channel_dim} (output channels)",
                        w.name,
                        q.dim
                    );
                }
                if q.zero_point.iter().any(|&z| z != 0) {
                    bail!(
                        "{here}: weights {} have a non-zero zero point; TFLite's int8 kernels need symmetric weights",
                        w.name
                    );
                }
            }
            d => bail!("{here} runs on {d} input; tinytrain runs it on float32 and int8"),
        }
        Ok(())
    }
}

/// The order the operators run in: every input written (or constant, or a subgraph input)
/// before it is read, every tensor written once, every subgraph output written.
pub(super) fn data_flow(g: &Graph) -> Result<()> {
    let mut ready: Vec<bool> = g.tensors.iter().map(Tensor::is_const).collect();
    for &i in &g.inputs {
        let t = &g.tensors[i];
        if t.is_const() {
            bail!("subgraph input tensor {i} ({}) holds constant data", t.name);
        }
        if !matches!(t.dtype, DType::F32 | DType::I8) {
            bail!("subgraph input tensor {i} ({}) is {}; tinytrain reads float32 or int8 inputs", t.name, t.dtype);
        }
        ready[i] = true;
    }
    for op in &g.ops {
        for &i in op.inputs.iter().flatten() {
            if !ready[i] {
                bail!("operator {} ({}) reads tensor {i} before anything writes it", op.index, op.kind.name());
            }
        }
        for &o in &op.outputs {
            if ready[o] {
                bail!(
                    "operator {} ({}) writes tensor {o}, which is constant or already written",
                    op.index,
                    op.kind.name()
                );
            }
            ready[o] = true;
        }
    }
    for &o in &g.outputs {
        if !ready[o] {
            bail!("subgraph output tensor {o} ({}) is never written", g.tensors[o].name);
        }
    }
    Ok(())
}
