//! Pre-training and int8 quantisation of the backbone, and the head reordered for its features.

use super::emit::packed;
#[allow(clippy::wildcard_imports)]
use super::*;

/// One quantised convolution with fused ReLU, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantConv {
    /// Filters, OHWI, int8.
    pub weight: Vec<i8>,
    /// Per-channel filter scales.
    pub weight_scales: Vec<f32>,
    /// Biases in accumulator units.
    pub bias: Vec<i32>,
    /// Per-channel multipliers.
    pub multipliers: Vec<QuantizedMultiplier>,
    /// `-input_zero_point`.
    pub input_offset: i32,
    /// Output scale.
    pub output_scale: f32,
    /// `output_zero_point`.
    pub output_offset: i32,
    /// Clamp (the fused ReLU).
    pub activation: (i32, i32),
}

/// The int8 backbone and the pre-trained head, owned (what the generated statics hold).
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// Quantised pixel values.
    pub input_lut: [i8; 256],
    /// Input scale and zero point.
    pub input_quant: (f32, i32),
    /// conv 1.
    pub conv1: QuantConv,
    /// conv 2.
    pub conv2: QuantConv,
    /// The head, its columns in the backbone's NHWC feature order.
    pub head: Box<Head>,
    /// Test accuracy of the f32 network on the pre-training classes of the test set.
    pub float_accuracy: f32,
}

/// Asymmetric int8 parameters for values in `[lo, hi]` widened to hold 0 (TFLite's converter).
#[must_use]
pub fn activation_quant(lo: f32, hi: f32) -> (f32, i32) {
    let (lo, hi) = (f64::from(lo.min(0.0)), f64::from(hi.max(0.0)));
    let scale = if hi - lo > 1e-12 { (hi - lo) / 255.0 } else { 1.0 / 255.0 };
    let zero_point = (-128.0 - lo / scale).round().clamp(-128.0, 127.0);
    (scale as f32, zero_point as i32)
}

/// Symmetric per-channel int8 weights of `rows` rows.
fn quantize_weights(w: &[f32], rows: usize) -> (Vec<i8>, Vec<f32>) {
    let per_row = w.len() / rows.max(1);
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(rows);
    for row in w.chunks(per_row.max(1)) {
        let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 / 127.0 };
        q.extend(row.iter().map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8));
        scales.push(scale);
    }
    (q, scales)
}

/// Quantises a convolution `[co][ci][k][k]` with input `(s_in, zp_in)`, output range `range`
/// (after the fused ReLU) and the mean of each input channel (bias correction).
fn quantize_conv(
    w: &[f32],
    b: &[f32],
    co: usize,
    ci: usize,
    k: usize,
    (s_in, zp_in): (f32, i32),
    range: (f32, f32),
    channel_mean: &[f64],
) -> QuantConv {
    let (q, scales) = quantize_weights(w, co);
    let per_row = ci * k * k;
    // Bias correction: the mean error the rounding puts into each output.
    let bias: Vec<f32> = b
        .iter()
        .enumerate()
        .map(|(o, &bias)| {
            let err: f64 = (0..per_row)
                .map(|t| {
                    let at = o * per_row + t;
                    (f64::from(q[at]) * f64::from(scales[o]) - f64::from(w[at])) * channel_mean[t / (k * k)]
                })
                .sum();
            (f64::from(bias) - err) as f32
        })
        .collect();
    let (s_out, zp_out) = activation_quant(range.0, range.1);
    let qbias = bias
        .iter()
        .zip(&scales)
        .map(|(&v, &s)| (f64::from(v) / (f64::from(s_in) * f64::from(s))).round() as i32)
        .collect();
    let multipliers = scales.iter().map(|&s| QuantizedMultiplier::from_real(effective_scale(s_in, s, s_out))).collect();
    // [O, C, KH, KW] -> [O, KH, KW, C].
    let mut ohwi = Vec::with_capacity(q.len());
    for o in 0..co {
        for y in 0..k {
            for x in 0..k {
                for c in 0..ci {
                    ohwi.push(q[((o * ci + c) * k + y) * k + x]);
                }
            }
        }
    }
    QuantConv {
        weight: ohwi,
        weight_scales: scales,
        bias: qbias,
        multipliers,
        input_offset: -zp_in,
        output_scale: s_out,
        output_offset: zp_out,
        activation: activation_range(FusedActivation::Relu, s_out, zp_out),
    }
}

/// The images of the first `n` of `set` whose label is below `classes`.
fn select(set: &ImageSet, range: std::ops::Range<usize>, classes: u8) -> (Vec<u8>, Vec<u8>) {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for i in range {
        if set.labels[i] < classes {
            pixels.extend_from_slice(&set.pixels[i * PIXELS..(i + 1) * PIXELS]);
            labels.push(set.labels[i]);
        }
    }
    (pixels, labels)
}

/// Pre-trains `mnist-cnn-tiny` on the classes below `classes` of the first
/// [`PRETRAIN_IMAGES`] training images: He uniform init, Adam lr 2e-3, batch 32,
/// [`PRETRAIN_EPOCHS`] epochs, seed [`PRETRAIN_SEED`] (the registry's defaults but the epochs).
///
/// # Errors
/// Training errors.
pub fn pretrain(train: &ImageSet, classes: u8) -> Result<Box<MnistCnnTiny>> {
    type Opt = Adam<{ <MnistCnnTiny as Layer>::NUM_PARAMS }>;
    let (pixels, labels) = select(train, 0..PRETRAIN_IMAGES.min(train.len()), classes);
    let data = ByteImages::new(&pixels, &labels, PIXELS, mnist::SCALE, usize::from(classes))?;
    let mut t: Box<Trainer<MnistCnnTiny, Opt>> = Box::new(Trainer::ZERO);
    t.model.init_with(Init::HeUniform, &mut Rng::new(PRETRAIN_SEED));
    let adam = AdamConfig { lr: Schedule::Constant(2e-3), ..AdamConfig::default() };
    t.fit(&adam, &CrossEntropy, &data).epochs(PRETRAIN_EPOCHS).batch_size(32).seed(PRETRAIN_SEED).run()?;
    let mut net = Box::new(MnistCnnTiny::ZERO);
    net.copy_from(&t.model);
    Ok(net)
}

/// Quantises the convolutional part of `net` and reorders its head for the backbone's NHWC
/// features, calibrating on the first [`CALIBRATION_IMAGES`] of `calibration` (pixels).
///
/// # Errors
/// No calibration images.
pub fn quantize_backbone(net: &MnistCnnTiny, calibration: &[u8]) -> Result<Prepared> {
    let n = (calibration.len() / PIXELS).min(CALIBRATION_IMAGES);
    ensure!(n > 0, "no calibration images");
    // Ranges and means of the input and of the two ReLU outputs.
    let (mut r1, mut r2) = ((f32::INFINITY, f32::NEG_INFINITY), (f32::INFINITY, f32::NEG_INFINITY));
    let (mut mean_in, mut mean1) = (0f64, [0f64; 6]);
    let mut x = Box::new([[[0f32; 28]; 28]; 1]);
    let mut acts = Box::new(<MnistCnnTiny as Layer>::Acts::ZERO);
    let mut y = [0f32; 10];
    let mut input_range = (f32::INFINITY, f32::NEG_INFINITY);
    for image in calibration.chunks_exact(PIXELS).take(n) {
        for (xv, &p) in x.as_flattened_mut().as_flattened_mut().iter_mut().zip(image) {
            *xv = f32::from(p) * mnist::SCALE;
            input_range = (input_range.0.min(*xv), input_range.1.max(*xv));
            mean_in += f64::from(*xv);
        }
        net.predict(&x, &mut acts, &mut y);
        let mut k = 0;
        <MnistCnnTiny as Layer>::visit_outputs(&acts, &y, &mut |_, out| {
            match k {
                1 => {
                    for (c, plane) in out.chunks(169).enumerate() {
                        mean1[c] += plane.iter().map(|&v| f64::from(v)).sum::<f64>() / 169.0;
                    }
                    r1 = out.iter().fold(r1, |r, &v| (r.0.min(v), r.1.max(v)));
                }
                3 => r2 = out.iter().fold(r2, |r, &v| (r.0.min(v), r.1.max(v))),
                _ => {}
            }
            k += 1;
        });
    }
    mean_in /= (n * PIXELS) as f64;
    mean1.iter_mut().for_each(|m| *m /= n as f64);
    let input_quant = activation_quant(input_range.0, input_range.1);
    let mut input_lut = [0i8; 256];
    for (p, q) in input_lut.iter_mut().enumerate() {
        let v = p as f32 * mnist::SCALE;
        *q = ((v / input_quant.0).round() as i32 + input_quant.1).clamp(-128, 127) as i8;
    }
    let conv1 = quantize_conv(
        net.a.weight.as_flattened().as_flattened().as_flattened(),
        &net.a.bias,
        6,
        1,
        4,
        input_quant,
        r1,
        &[mean_in],
    );
    let c2 = &net.b.b.a;
    let conv2 = quantize_conv(
        c2.weight.as_flattened().as_flattened().as_flattened(),
        &c2.bias,
        24,
        6,
        3,
        (conv1.output_scale, conv1.output_offset),
        r2,
        &mean1,
    );
    // The head: Flatten<24, 3, 3> is channel-major, the int8 features are NHWC.
    let dense = &net.b.b.b.b.b.b.b;
    let mut head = Box::new(Head::ZERO);
    for (o, row) in dense.weight.iter().enumerate() {
        for c in 0..24 {
            for s in 0..9 {
                head.weight[o][s * 24 + c] = row[c * 9 + s];
            }
        }
    }
    head.bias = dense.bias;
    Ok(Prepared { input_lut, input_quant, conv1, conv2, head, float_accuracy: f32::NAN })
}

/// Pre-trains and quantises the scenario's backbone from the data in `data_dir`.
///
/// # Errors
/// Missing data, training errors.
pub fn prepare(data_dir: &Path, scenario: Scenario) -> Result<Prepared> {
    let data = datasets::load(DatasetKind::Mnist, data_dir)?;
    ensure!(
        data.train.len() >= PRETRAIN_IMAGES + STREAM_IMAGES,
        "{}: {} images, fine-tuning needs {}",
        data.train.images_path.display(),
        data.train.len(),
        PRETRAIN_IMAGES + STREAM_IMAGES
    );
    let classes = scenario.pretrain_classes();
    let net = pretrain(&data.train, classes)?;
    let (calib, _) = select(&data.train, 0..PRETRAIN_IMAGES, classes);
    let mut prepared = quantize_backbone(&net, &calib)?;
    // The f32 network's accuracy on the test images of its classes.
    let (pixels, labels) = select(&data.test, 0..data.test.len(), classes);
    let test = ByteImages::new(&pixels, &labels, PIXELS, mnist::SCALE, usize::from(classes))?;
    let mut t: Box<Trainer<MnistCnnTiny, Sgd>> = Box::new(Trainer::ZERO);
    t.model.copy_from(&net);
    prepared.float_accuracy = t.evaluate(&CrossEntropy, &test)?.accuracy;
    Ok(prepared)
}

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

fn array<T: Copy + Default, const N: usize>(v: &[T]) -> Result<[T; N]> {
    <[T; N]>::try_from(v).map_err(|_| anyhow!("expected {N} values, got {}", v.len()))
}

impl Prepared {
    /// The backbone as the firmware's statics would hold it, leaked for a `'static` borrow.
    ///
    /// # Errors
    /// Tensors of the wrong size (not from [`quantize_backbone`]).
    pub fn leak(&self) -> Result<&'static MnistBackbone<'static>> {
        type Conv<const CO: usize, const K: usize, const KP: usize> =
            (&'static [[[u32; KP]; K]; CO], &'static [i32; CO], &'static [QuantizedMultiplier; CO]);
        fn conv<const CO: usize, const K: usize, const KP: usize>(c: &QuantConv) -> Result<Conv<CO, K, KP>> {
            let mut w = [[[0u32; KP]; K]; CO];
            ensure!(c.weight.len() == CO * K * 2 * KP, "conv weight of {} values", c.weight.len());
            for (d, &v) in w.as_flattened_mut().as_flattened_mut().iter_mut().zip(&packed(&c.weight)) {
                *d = v;
            }
            Ok((leak(w), leak(array::<i32, CO>(&c.bias)?), leak(array::<QuantizedMultiplier, CO>(&c.multipliers)?)))
        }
        let (w1, b1, m1) = conv::<6, 4, 2>(&self.conv1)?;
        let (w2, b2, m2) = conv::<24, 3, 9>(&self.conv2)?;
        let c1 = &self.conv1;
        let c2 = &self.conv2;
        let backbone: MnistBackbone<'static> = Backbone {
            layers: Int8Chain {
                first: Int8Chain {
                    first: Int8Conv2dValid {
                        weight: w1,
                        bias: b1,
                        multipliers: m1,
                        input_offset: c1.input_offset,
                        output_offset: c1.output_offset,
                        activation_min: c1.activation.0,
                        activation_max: c1.activation.1,
                    },
                    second: Int8Conv2dValid {
                        weight: w2,
                        bias: b2,
                        multipliers: m2,
                        input_offset: c2.input_offset,
                        output_offset: c2.output_offset,
                        activation_min: c2.activation.0,
                        activation_max: c2.activation.1,
                    },
                },
                second: Pool::default(),
            },
            input_lut: leak(self.input_lut),
            feature_scale: c2.output_scale,
            feature_zero_point: c2.output_offset,
        };
        Ok(leak(backbone))
    }
}
