//! Running a checked [`Graph`] on the host: shapes at run time, one buffer per tensor.
//!
//! int8 operators run on the core's kernels ([`tinytrain::int8`]), which mirror TFLite's
//! reference integer kernels, with the prepare-time constants (multipliers, activation ranges,
//! lookup tables) computed once in [`Interpreter::new`] as TFLite's `Prepare` functions compute
//! them. FULLY_CONNECTED requantises in f64 as TensorFlow 2.20+'s reference kernel does (the
//! `BUILTIN_REF` resolver the fixtures were made with); CONV_2D and DEPTHWISE_CONV_2D use the
//! fixed-point per-channel multipliers. float32 operators run on [`super::float`].
//!
//! ```no_run
//! use tinytrain_sim::tflite::{Data, Interpreter, load};
//! let graph = load(&std::fs::read("hello_world_int8.tflite").unwrap()).unwrap();
//! let interpreter = Interpreter::new(&graph).unwrap();
//! let outputs = interpreter.run(&[Data::I8(vec![-128])]).unwrap();
//! println!("{outputs:?}");
//! ```

use anyhow::{Result, bail};
use tinytrain::int8::{
    self, AddParams, ConvParams, FullyConnectedParams, FusedActivation, Lut, PoolParams, QuantizedMultiplier, Requant,
    Shape4, SoftmaxParams,
};

use super::float::{self, Geometry};
use super::graph::{Activation, DType, Data, Graph, Op, OpKind, Tensor, Window};

/// Most bytes of activation tensors [`Interpreter::new`] accepts (a run keeps them all).
pub const MAX_ACTIVATION_BYTES: usize = 2 << 30;

/// Prepare-time constants of one operator.
#[derive(Debug, Clone)]
enum Plan {
    /// float32, or a plain copy: nothing to prepare.
    None,
    FullyConnected {
        params: FullyConnectedParams,
        scales: Vec<f64>,
    },
    Conv {
        params: ConvParams,
        multipliers: Vec<QuantizedMultiplier>,
    },
    Pool(PoolParams),
    Softmax(SoftmaxParams),
    Lut(Box<Lut>),
    Add(AddParams),
    Quantize {
        scale: f32,
        zero_point: i32,
    },
    Requantize {
        multiplier: QuantizedMultiplier,
        input_zero_point: i32,
        output_zero_point: i32,
    },
    Dequantize {
        scale: f32,
        zero_point: i32,
    },
}

/// A graph with its operators prepared, ready to run samples.
#[derive(Debug, Clone)]
pub struct Interpreter<'g> {
    graph: &'g Graph,
    plans: Vec<Plan>,
}

fn fused(a: Activation) -> FusedActivation {
    match a {
        Activation::None => FusedActivation::None,
        Activation::Relu => FusedActivation::Relu,
        Activation::Relu6 => FusedActivation::Relu6,
    }
}

/// Scale and zero point of a per-tensor quantised tensor (checked by the loader).
fn qparams(t: &Tensor) -> (f32, i32) {
    t.quant.as_ref().map_or((0.0, 0), |q| (q.scale(), q.zero_point() as i32))
}

fn shape4(s: &[usize]) -> Shape4 {
    let mut d = [1usize; 4];
    for (o, &v) in d.iter_mut().zip(s) {
        *o = v;
    }
    Shape4(d)
}

impl<'g> Interpreter<'g> {
    /// Prepares every operator.
    ///
    /// # Errors
    /// Quantisation parameters TFLite's `Prepare` refuses too (an ADD whose output scale is too
    /// small against its inputs', a softmax whose beta times input scale is too small);
    /// activations above [`MAX_ACTIVATION_BYTES`].
    pub fn new(graph: &'g Graph) -> Result<Self> {
        let activations: usize =
            graph.tensors.iter().filter(|t| !t.is_const()).map(Tensor::bytes).fold(0, usize::saturating_add);
        if activations > MAX_ACTIVATION_BYTES {
            bail!(
                "the model's activations take {activations} bytes; the host interpreter holds at most {MAX_ACTIVATION_BYTES}"
            );
        }
        let plans = graph
            .ops
            .iter()
            .map(|op| {
                prepare(graph, op).map_err(|e| anyhow::anyhow!("operator {} ({}): {e:#}", op.index, op.kind.name()))
            })
            .collect::<Result<_>>()?;
        Ok(Interpreter { graph, plans })
    }

    /// The graph it runs.
    #[must_use]
    pub fn graph(&self) -> &'g Graph {
        self.graph
    }

    /// Runs one sample: one value per subgraph input (its type, its number of elements), one
    /// per subgraph output back.
    ///
    /// # Errors
    /// An input of the wrong type or length; a kernel's error (none for a checked graph).
    pub fn run(&self, inputs: &[Data]) -> Result<Vec<Data>> {
        let g = self.graph;
        if inputs.len() != g.inputs.len() {
            bail!("the model takes {} inputs, got {}", g.inputs.len(), inputs.len());
        }
        let mut values: Vec<Option<Data>> = vec![None; g.tensors.len()];
        for (k, (&t, v)) in g.inputs.iter().zip(inputs).enumerate() {
            let tensor = &g.tensors[t];
            let ok_type = matches!((tensor.dtype, v), (DType::F32, Data::F32(_)) | (DType::I8, Data::I8(_)));
            if !ok_type {
                bail!("input {k} must be {} values", tensor.dtype);
            }
            if v.len() != tensor.len() {
                bail!("input {k} needs {} values ({}), got {}", tensor.len(), tensor.type_and_shape(), v.len());
            }
            values[t] = Some(v.clone());
        }
        for (op, plan) in g.ops.iter().zip(&self.plans) {
            let out = self
                .step(op, plan, &values)
                .map_err(|e| anyhow::anyhow!("operator {} ({}): {e:#}", op.index, op.kind.name()))?;
            values[op.output()] = Some(out);
        }
        g.outputs
            .iter()
            .map(|&t| match values[t].take().or_else(|| g.tensors[t].data.clone()) {
                Some(v) => Ok(v),
                None => bail!("output tensor {t} was not computed"),
            })
            .collect()
    }

    #[allow(clippy::too_many_lines)] // one arm per operator and type, read top to bottom
    fn step(&self, op: &Op, plan: &Plan, values: &[Option<Data>]) -> Result<Data> {
        let g = self.graph;
        let get = |k: usize| -> Result<&Data> {
            let Some(t) = op.input(k) else { bail!("input {k} missing") };
            match values[t].as_ref().or(g.tensors[t].data.as_ref()) {
                Some(v) => Ok(v),
                None => bail!("tensor {t} has no value"),
            }
        };
        let opt =
            |k: usize| -> Result<Option<&Data>> { if op.input(k).is_some() { get(k).map(Some) } else { Ok(None) } };
        let x_t = &g.tensors[op.input(0).unwrap_or(0)];
        let out_t = &g.tensors[op.output()];
        let n = out_t.len();
        Ok(match (&op.kind, plan, get(0)?) {
            (OpKind::Reshape, _, x) => x.clone(),
            // float32
            (OpKind::FullyConnected { activation, .. }, Plan::None, Data::F32(x)) => {
                let (Data::F32(w), b) = (get(1)?, f32_opt(opt(2)?)?) else { bail!("float32 weights expected") };
                let mut y = vec![0.0; n];
                float::fully_connected(x, w, b, g.tensors[op.input(1).unwrap_or(0)].shape[0], *activation, &mut y);
                Data::F32(y)
            }
            (
                OpKind::Conv2d { window, activation } | OpKind::DepthwiseConv2d { window, activation },
                Plan::None,
                Data::F32(x),
            ) => {
                let (Data::F32(w), b) = (get(1)?, f32_opt(opt(2)?)?) else { bail!("float32 filter expected") };
                let geo = geometry(x_t, out_t, &g.tensors[op.input(1).unwrap_or(0)], *window);
                let mut y = vec![0.0; n];
                if matches!(op.kind, OpKind::Conv2d { .. }) {
                    float::conv_2d(&geo, x, w, b, *activation, &mut y);
                } else {
                    float::depthwise_conv_2d(&geo, x, w, b, *activation, &mut y);
                }
                Data::F32(y)
            }
            (
                OpKind::AveragePool2d { window, activation } | OpKind::MaxPool2d { window, activation },
                Plan::None,
                Data::F32(x),
            ) => {
                let geo = pool_geometry(x_t, out_t, *window);
                let mut y = vec![0.0; n];
                float::pool(&geo, matches!(op.kind, OpKind::MaxPool2d { .. }), x, *activation, &mut y);
                Data::F32(y)
            }
            (OpKind::Softmax { beta }, Plan::None, Data::F32(x)) => {
                let mut y = vec![0.0; n];
                float::softmax(x, x_t.shape.last().copied().unwrap_or(1), *beta, &mut y);
                Data::F32(y)
            }
            (OpKind::Logistic, Plan::None, Data::F32(x)) => Data::F32(x.iter().map(|&v| float::logistic(v)).collect()),
            (OpKind::Tanh, Plan::None, Data::F32(x)) => Data::F32(x.iter().map(|&v| float::tanh(v)).collect()),
            (OpKind::Add { activation }, Plan::None, Data::F32(a)) => {
                let Data::F32(b) = get(1)? else { bail!("float32 input 1 expected") };
                let y_t = &g.tensors[op.input(1).unwrap_or(0)];
                let (ia, ib) = (broadcast_map(&out_t.shape, &x_t.shape), broadcast_map(&out_t.shape, &y_t.shape));
                Data::F32(ia.iter().zip(&ib).map(|(&i, &j)| float::activate(a[i] + b[j], *activation)).collect())
            }
            (OpKind::Quantize, Plan::Quantize { scale, zero_point }, Data::F32(x)) => {
                let mut y = vec![0i8; n];
                int8::quantize(x, *scale, *zero_point, &mut y)?;
                Data::I8(y)
            }
            // int8
            (OpKind::Quantize, Plan::Requantize { multiplier, input_zero_point, output_zero_point }, Data::I8(x)) => {
                Data::I8(
                    x.iter()
                        .map(|&v| {
                            let o = multiplier
                                .apply(i32::from(v).wrapping_sub(*input_zero_point))
                                .wrapping_add(*output_zero_point);
                            o.clamp(-128, 127) as i8
                        })
                        .collect(),
                )
            }
            (OpKind::Dequantize, Plan::Dequantize { scale, zero_point }, Data::I8(x)) => {
                let mut y = vec![0.0; n];
                int8::dequantize(x, *scale, *zero_point, &mut y)?;
                Data::F32(y)
            }
            (OpKind::FullyConnected { .. }, Plan::FullyConnected { params, scales }, Data::I8(x)) => {
                let (Data::I8(w), b) = (get(1)?, i32_opt(opt(2)?)?) else { bail!("int8 weights expected") };
                let requant = if scales.len() == 1 {
                    Requant::FloatPerTensor(scales[0])
                } else {
                    Requant::FloatPerChannel(scales)
                };
                let mut y = vec![0i8; n];
                int8::fully_connected(params, requant, x, w, g.tensors[op.input(1).unwrap_or(0)].shape[0], b, &mut y)?;
                Data::I8(y)
            }
            (
                OpKind::Conv2d { .. } | OpKind::DepthwiseConv2d { .. },
                Plan::Conv { params, multipliers },
                Data::I8(x),
            ) => {
                let (Data::I8(w), b) = (get(1)?, i32_opt(opt(2)?)?) else { bail!("int8 filter expected") };
                let w_t = &g.tensors[op.input(1).unwrap_or(0)];
                let (xs, ws, os) = (shape4(&x_t.shape), shape4(&w_t.shape), shape4(&out_t.shape));
                let mut y = vec![0i8; n];
                let requant = Requant::PerChannel(multipliers);
                if matches!(op.kind, OpKind::Conv2d { .. }) {
                    int8::conv_2d(params, requant, xs, x, ws, w, b, os, &mut y)?;
                } else {
                    let m = os.0[3] / xs.0[3].max(1);
                    int8::depthwise_conv_2d(params, m, requant, xs, x, ws, w, b, os, &mut y)?;
                }
                Data::I8(y)
            }
            (OpKind::AveragePool2d { .. } | OpKind::MaxPool2d { .. }, Plan::Pool(p), Data::I8(x)) => {
                let (xs, os) = (shape4(&x_t.shape), shape4(&out_t.shape));
                let mut y = vec![0i8; n];
                if matches!(op.kind, OpKind::MaxPool2d { .. }) {
                    int8::max_pool(p, xs, x, os, &mut y)?;
                } else {
                    int8::average_pool(p, xs, x, os, &mut y)?;
                }
                Data::I8(y)
            }
            (OpKind::Softmax { .. }, Plan::Softmax(p), Data::I8(x)) => {
                let mut y = vec![0i8; n];
                int8::softmax(p, x_t.shape.last().copied().unwrap_or(1), x, &mut y)?;
                Data::I8(y)
            }
            (OpKind::Logistic | OpKind::Tanh, Plan::Lut(lut), Data::I8(x)) => {
                let mut y = vec![0i8; n];
                int8::lookup(lut, x, &mut y)?;
                Data::I8(y)
            }
            (OpKind::Add { .. }, Plan::Add(p), Data::I8(a)) => {
                let Data::I8(b) = get(1)? else { bail!("int8 input 1 expected") };
                let y_t = &g.tensors[op.input(1).unwrap_or(0)];
                if a.len() == n && b.len() == n {
                    let mut y = vec![0i8; n];
                    int8::add(p, a, b, &mut y)?;
                    Data::I8(y)
                } else {
                    let (ia, ib) = (broadcast_map(&out_t.shape, &x_t.shape), broadcast_map(&out_t.shape, &y_t.shape));
                    Data::I8(ia.iter().zip(&ib).map(|(&i, &j)| int8::add_one(p, a[i], b[j])).collect())
                }
            }
            _ => bail!("no kernel for {} on {}", op.kind.name(), x_t.dtype),
        })
    }
}

fn f32_opt(d: Option<&Data>) -> Result<Option<&[f32]>> {
    match d {
        None => Ok(None),
        Some(Data::F32(v)) => Ok(Some(v)),
        Some(_) => bail!("float32 bias expected"),
    }
}

fn i32_opt(d: Option<&Data>) -> Result<Option<&[i32]>> {
    match d {
        None => Ok(None),
        Some(Data::I32(v)) => Ok(Some(v)),
        Some(_) => bail!("int32 bias expected"),
    }
}

fn geometry(x: &Tensor, out: &Tensor, filter: &Tensor, window: Window) -> Geometry {
    let s4 = |s: &[usize]| shape4(s).0;
    Geometry { input: s4(&x.shape), output: s4(&out.shape), kh: filter.shape[1], kw: filter.shape[2], window }
}

fn pool_geometry(x: &Tensor, out: &Tensor, window: Window) -> Geometry {
    let s4 = |s: &[usize]| shape4(s).0;
    Geometry { input: s4(&x.shape), output: s4(&out.shape), kh: window.filter_h, kw: window.filter_w, window }
}

/// For each element of `out` (row-major), the index of the element of `input` that NumPy
/// broadcasting reads.
fn broadcast_map(out: &[usize], input: &[usize]) -> Vec<usize> {
    let rank = out.len();
    // Strides of the input, aligned right, 0 where it broadcasts.
    let mut strides = vec![0usize; rank];
    let mut stride = 1;
    for (k, &d) in input.iter().enumerate().rev() {
        let pos = rank - (input.len() - k);
        strides[pos] = if d == 1 { 0 } else { stride };
        stride *= d;
    }
    let total: usize = out.iter().product();
    let mut map = Vec::with_capacity(total);
    let mut idx = vec![0usize; rank];
    for _ in 0..total {
        map.push(idx.iter().zip(&strides).map(|(i, s)| i * s).sum());
        for k in (0..rank).rev() {
            idx[k] += 1;
            if idx[k] < out[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    map
}

/// The prepare-time constants of one operator, as TFLite's `Prepare` computes them.
fn prepare(g: &Graph, op: &Op) -> Result<Plan> {
    let x = &g.tensors[op.input(0).unwrap_or(0)];
    let out = &g.tensors[op.output()];
    if x.dtype == DType::F32 && out.dtype == DType::F32 {
        return Ok(Plan::None);
    }
    let (sx, zx) = qparams(x);
    let (so, zo) = qparams(out);
    Ok(match &op.kind {
        OpKind::Reshape => Plan::None,
        OpKind::Quantize if x.dtype == DType::F32 => Plan::Quantize { scale: so, zero_point: zo },
        OpKind::Quantize => Plan::Requantize {
            multiplier: QuantizedMultiplier::from_real(f64::from(sx) / f64::from(so)),
            input_zero_point: zx,
            output_zero_point: zo,
        },
        OpKind::Dequantize => Plan::Dequantize { scale: sx, zero_point: zx },
        OpKind::FullyConnected { activation, .. } => {
            let w = &g.tensors[op.input(1).unwrap_or(0)];
            let wq = w.quant.as_ref().map_or(&[][..], |q| &q.scale[..]);
            let (activation_min, activation_max) = int8::activation_range(fused(*activation), so, zo);
            let params = FullyConnectedParams {
                input_offset: -zx,
                weights_offset: 0,
                output_offset: zo,
                activation_min,
                activation_max,
            };
            Plan::FullyConnected { params, scales: wq.iter().map(|&sw| int8::effective_scale(sx, sw, so)).collect() }
        }
        OpKind::Conv2d { window, activation } | OpKind::DepthwiseConv2d { window, activation } => {
            let w = &g.tensors[op.input(1).unwrap_or(0)];
            let wq = w.quant.as_ref().map_or(&[][..], |q| &q.scale[..]);
            let (activation_min, activation_max) = int8::activation_range(fused(*activation), so, zo);
            let geo = geometry(x, out, w, *window);
            let (pad_height, pad_width) = geo.pads();
            let params = ConvParams {
                input_offset: -zx,
                output_offset: zo,
                stride_height: window.stride_h,
                stride_width: window.stride_w,
                dilation_height: window.dilation_h,
                dilation_width: window.dilation_w,
                pad_height,
                pad_width,
                activation_min,
                activation_max,
            };
            let mut multipliers = vec![QuantizedMultiplier::default(); out.shape.last().copied().unwrap_or(0)];
            int8::per_channel_multipliers(sx, wq, so, &mut multipliers)?;
            Plan::Conv { params, multipliers }
        }
        OpKind::AveragePool2d { window, activation } | OpKind::MaxPool2d { window, activation } => {
            let (activation_min, activation_max) = int8::activation_range(fused(*activation), so, zo);
            let (pad_height, pad_width) = pool_geometry(x, out, *window).pads();
            Plan::Pool(PoolParams {
                stride_height: window.stride_h,
                stride_width: window.stride_w,
                filter_height: window.filter_h,
                filter_width: window.filter_w,
                pad_height,
                pad_width,
                activation_min,
                activation_max,
            })
        }
        OpKind::Softmax { beta } => Plan::Softmax(SoftmaxParams::new(*beta, sx, so, zo)?),
        OpKind::Logistic => Plan::Lut(Box::new(int8::logistic_table(sx, zx, so, zo)?)),
        OpKind::Tanh => Plan::Lut(Box::new(int8::tanh_table(sx, zx, so, zo))),
        OpKind::Add { activation } => {
            let (s2, z2) = qparams(&g.tensors[op.input(1).unwrap_or(0)]);
            Plan::Add(AddParams::new(sx, zx, s2, z2, so, zo, fused(*activation))?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::broadcast_map;

    #[test]
    fn broadcasting_reads_the_right_elements() {
        assert_eq!(broadcast_map(&[2, 3], &[2, 3]), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(broadcast_map(&[2, 3], &[3]), vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(broadcast_map(&[2, 3], &[2, 1]), vec![0, 0, 0, 1, 1, 1]);
        assert_eq!(broadcast_map(&[2, 3], &[]), vec![0; 6]);
    }
}
