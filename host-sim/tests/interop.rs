//! Interchange with PyTorch and Keras: models trained in PyTorch (`tools/pytorch_reference.py`,
//! fixtures in `tests/fixtures/pytorch/`), the MLPs and the CNNs, give PyTorch's logits here
//! within 1e-5 and the same accuracy; export and import are exact round trips in both layouts; a file that does not fit
//! is refused naming the tensor; the generated Rust source compiles and computes the same
//! outputs; `predict` agrees with `eval`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::{data_dir, scratch, sim};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use tinytrain::prelude::*;
use tinytrain::tensor::argmax;
use tinytrain::{checkpoint, zoo};
use tinytrain_sim::datasets::{self, DatasetKind, Split};
use tinytrain_sim::interop::{self, Layout};
use tinytrain_sim::models::{self, Model};
use tinytrain_sim::predict::PredictOptions;
use tinytrain_sim::run::{EvalOptions, TrainOptions};

/// The generated source of `tinytrain-sim import digits-mlp digits-mlp.safetensors --rust`,
/// committed; [`generated_source_is_up_to_date`] checks that it is what import writes today.
mod generated {
    include!("../../tests/fixtures/pytorch/digits-mlp.rs");
}

const TOLERANCE: f32 = 1e-5;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/pytorch").join(name)
}

fn model(name: &str) -> &'static Model {
    models::find(name).unwrap()
}

fn f32s(view: &TensorView<'_>) -> Vec<f32> {
    assert_eq!(view.dtype(), Dtype::F32);
    view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// PyTorch's test-set logits, rows of 10, and its count of correct predictions.
fn torch_logits(name: &str) -> (Vec<[f32; 10]>, usize) {
    let bytes = std::fs::read(fixture(&format!("{name}-logits.safetensors"))).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let correct = meta.metadata().as_ref().unwrap()["correct"].parse().unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let logits = file.tensor("logits").unwrap();
    assert_eq!(logits.shape()[1], 10);
    (f32s(&logits).chunks_exact(10).map(|c| c.try_into().unwrap()).collect(), correct)
}

/// Logits of `net` on the test images of `kind`, and the labels.
fn tinytrain_logits<M>(net: &M, kind: DatasetKind) -> (Vec<[f32; 10]>, Vec<usize>)
where
    M: Layer<Output = [f32; 10]>,
{
    let set = datasets::load_split(kind, Split::Test, &data_dir()).unwrap();
    let images = set.byte_images(10).unwrap();
    let mut x = Box::new(M::Input::ZERO);
    let mut acts = Box::new(M::Acts::ZERO);
    let (mut logits, mut labels) = (Vec::new(), Vec::new());
    for i in 0..Dataset::<M::Input, usize>::len(&images) {
        let mut label = 0usize;
        images.get(i, &mut *x, &mut label).unwrap();
        let mut y = [0.0f32; 10];
        net.predict(&x, &mut acts, &mut y);
        logits.push(y);
        labels.push(label);
    }
    (logits, labels)
}

/// Imports the PyTorch fixture of `name` into network `M` (on the heap: a network can be big).
#[allow(clippy::unnecessary_box_returns)]
fn import_torch<M: Layer>(name: &str) -> Box<M> {
    let bytes = std::fs::read(fixture(&format!("{name}.safetensors"))).unwrap();
    interop::import::<M>(model(name).tensors, &bytes, Layout::Pytorch).unwrap().0
}

fn max_abs_diff(a: &[[f32; 10]], b: &[[f32; 10]]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Imports PyTorch's `name` and checks its logits on the test set against PyTorch's, within
/// `tolerance`, and its accuracy (also through import, save and `eval`).
fn pytorch_model_gives_pytorch_logits<M: Layer<Output = [f32; 10]>>(name: &str, kind: DatasetKind, tolerance: f32) {
    let net = import_torch::<M>(name);
    let (ours, labels) = tinytrain_logits(&*net, kind);
    let (theirs, torch_correct) = torch_logits(name);
    let diff = max_abs_diff(&ours, &theirs);
    let largest = theirs.iter().flatten().fold(0.0f32, |m, x| m.max(x.abs()));
    println!(
        "{name}: max |tinytrain - PyTorch| logit difference {diff:e} over {} samples (largest |logit| {largest})",
        ours.len()
    );
    assert!(diff <= tolerance, "{name}: logits differ from PyTorch's by {diff}");
    let correct = ours.iter().zip(&labels).filter(|(y, l)| argmax(&y[..]) == **l).count();
    let torch_argmax_correct = theirs.iter().zip(&labels).filter(|(y, l)| argmax(&y[..]) == **l).count();
    assert_eq!(torch_argmax_correct, torch_correct, "{name}: the fixture's metadata");
    assert_eq!(correct, torch_correct, "{name}: accuracy differs from PyTorch's");

    // The same through the command line's path: import, save, eval.
    let dir = scratch(&format!("torch-{name}"));
    let weights = dir.join("weights.ttw");
    let imported =
        model(name).import(&std::fs::read(fixture(&format!("{name}.safetensors"))).unwrap(), Layout::Pytorch, false);
    std::fs::write(&weights, imported.unwrap().weights).unwrap();
    let eval = model(name).eval(&EvalOptions { weights, data_dir: data_dir() }, &mut Vec::new()).unwrap();
    assert_eq!(eval.correct, torch_correct, "{name}: eval");
}

#[test]
fn digits_mlp_from_pytorch_matches_pytorch() {
    pytorch_model_gives_pytorch_logits::<zoo::DigitsMlp>("digits-mlp", DatasetKind::Digits, TOLERANCE);
}

#[test]
fn mnist_mlp_from_pytorch_matches_pytorch() {
    pytorch_model_gives_pytorch_logits::<zoo::MnistMlp>("mnist-mlp", DatasetKind::Mnist, TOLERANCE);
}

#[test]
fn trained_model_round_trips_bit_exactly_in_both_layouts() {
    let m = model("digits-mlp");
    let dir = scratch("round-trip");
    let saved = dir.join("trained.ttw");
    let mut opts = TrainOptions::defaults(m);
    opts.fit.epochs = 2;
    opts.data_dir = data_dir();
    opts.save = Some(saved.clone());
    opts.progress = false;
    m.train(&opts, &mut Vec::new()).unwrap();
    let original = std::fs::read(&saved).unwrap();

    for layout in [Layout::Pytorch, Layout::Keras] {
        let file = m.export(&original, layout).unwrap();
        let back = m.import(&file, layout, false).unwrap();
        assert_eq!(back.weights, original, "{layout}: the weights file changed");
        let path = dir.join(format!("{layout}.ttw"));
        std::fs::write(&path, &back.weights).unwrap();
        let predict = |weights: &Path| {
            let mut out = Vec::new();
            let opts = PredictOptions { weights: weights.to_owned(), data_dir: data_dir(), json: false, input: None };
            m.predict(&opts, &mut out).unwrap();
            out
        };
        assert_eq!(predict(&path), predict(&saved), "{layout}: predictions differ");
    }

    // Keras kernels are the transposes of PyTorch weights, under Keras names.
    let torch = m.export(&original, Layout::Pytorch).unwrap();
    let keras = m.export(&original, Layout::Keras).unwrap();
    let (torch, keras) = (SafeTensors::deserialize(&torch).unwrap(), SafeTensors::deserialize(&keras).unwrap());
    let mut names = keras.names();
    names.sort_unstable();
    assert_eq!(names, ["dense/bias", "dense/kernel", "dense_1/bias", "dense_1/kernel"]);
    let (w, k) = (torch.tensor("fc2.weight").unwrap(), keras.tensor("dense_1/kernel").unwrap());
    assert_eq!((w.shape(), k.shape()), (&[10, 32][..], &[32, 10][..]));
    let (w, k) = (f32s(&w), f32s(&k));
    for o in 0..10 {
        for i in 0..32 {
            assert_eq!(w[o * 32 + i].to_bits(), k[i * 10 + o].to_bits());
        }
    }
    assert_eq!(f32s(&torch.tensor("fc1.bias").unwrap()), f32s(&keras.tensor("dense/bias").unwrap()));
}

#[test]
fn pytorch_file_round_trips_through_keras_layout() {
    let m = model("mnist-mlp");
    let torch = std::fs::read(fixture("mnist-mlp.safetensors")).unwrap();
    let weights = m.import(&torch, Layout::Pytorch, false).unwrap().weights;
    let keras = m.export(&weights, Layout::Keras).unwrap();
    assert_eq!(m.import(&keras, Layout::Keras, false).unwrap().weights, weights);
    // Exporting again in the PyTorch layout gives the same tensors as PyTorch wrote.
    let again = m.export(&weights, Layout::Pytorch).unwrap();
    let (a, b) = (SafeTensors::deserialize(&torch).unwrap(), SafeTensors::deserialize(&again).unwrap());
    for name in ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"] {
        let (x, y) = (a.tensor(name).unwrap(), b.tensor(name).unwrap());
        assert_eq!((x.shape(), x.data()), (y.shape(), y.data()), "{name}");
    }
}

/// A safetensors file of `tensors` (name, dtype, shape, bytes).
fn safetensors_file(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let views: Vec<(String, TensorView<'_>)> =
        tensors.iter().map(|(n, d, s, b)| ((*n).to_owned(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize(views, None).unwrap()
}

fn zeros(n: usize) -> Vec<u8> {
    vec![0; 4 * n]
}

/// The four tensors of the digits MLP, with `change` applied.
fn digits_tensors(change: impl FnOnce(&mut Vec<(&'static str, Dtype, Vec<usize>, Vec<u8>)>)) -> Vec<u8> {
    let mut t = vec![
        ("fc1.weight", Dtype::F32, vec![32, 64], zeros(32 * 64)),
        ("fc1.bias", Dtype::F32, vec![32], zeros(32)),
        ("fc2.weight", Dtype::F32, vec![10, 32], zeros(320)),
        ("fc2.bias", Dtype::F32, vec![10], zeros(10)),
    ];
    change(&mut t);
    safetensors_file(&t)
}

fn refusal(file: &[u8]) -> String {
    let err = model("digits-mlp").import(file, Layout::Pytorch, true).unwrap_err();
    let text = format!("{err:#}");
    assert!(!text.contains('\n'), "one line: {text}");
    text
}

#[test]
fn tensors_that_do_not_fit_are_refused_by_name() {
    assert!(model("digits-mlp").import(&digits_tensors(|_| {}), Layout::Pytorch, false).is_ok());

    let missing = refusal(&digits_tensors(|t| {
        t.remove(3);
    }));
    assert!(missing.contains("missing tensor fc2.bias"), "{missing}");

    let extra = refusal(&digits_tensors(|t| t.push(("fc3.weight", Dtype::F32, vec![2], zeros(2)))));
    assert!(extra.contains("unexpected tensor fc3.weight"), "{extra}");

    let transposed = refusal(&digits_tensors(|t| t[0].2 = vec![64, 32]));
    assert!(transposed.contains("tensor fc1.weight has shape [64, 32], expected [32, 64]"), "{transposed}");

    let double = refusal(&digits_tensors(|t| t[2] = ("fc2.weight", Dtype::F64, vec![10, 32], vec![0; 8 * 320])));
    assert!(double.contains("tensor fc2.weight is F64, expected F32"), "{double}");

    let half = refusal(&digits_tensors(|t| t[1] = ("fc1.bias", Dtype::F16, vec![32], vec![0; 64])));
    assert!(half.contains("tensor fc1.bias is F16"), "{half}");

    let nan = refusal(&digits_tensors(|t| t[3].3[8..12].copy_from_slice(&f32::NAN.to_le_bytes())));
    assert!(nan.contains("tensor fc2.bias holds NaN at element 2"), "{nan}");

    let keras = model("digits-mlp")
        .export(
            &model("digits-mlp").import(&digits_tensors(|_| {}), Layout::Pytorch, false).unwrap().weights,
            Layout::Keras,
        )
        .unwrap();
    // A Keras file read as PyTorch is recognised by its names and read in its own layout.
    let read = model("digits-mlp").import(&keras, Layout::Pytorch, false).unwrap();
    assert_eq!(read.mapping, "Keras names and layout (asked for PyTorch)");
    let side_by_side = refusal(&digits_tensors(|t| t[0].2 = vec![64, 32]));
    assert!(side_by_side.contains("fc1.weight [32, 64] | fc1.weight [64, 32]"), "{side_by_side}");

    assert!(refusal(b"not a safetensors file").contains("not a safetensors file"));
}

#[test]
fn command_line_refusal_is_one_line_naming_the_tensor() {
    let dir = scratch("cli-refusal");
    let file = dir.join("bad.safetensors");
    std::fs::write(&file, digits_tensors(|t| t[2].2 = vec![32, 10])).unwrap();
    let to = dir.join("w.ttw");
    let run = sim(&["import", "digits-mlp", file.to_str().unwrap(), "--to", to.to_str().unwrap()]);
    run.assert_one_line_error("tensor fc2.weight has shape [32, 10], expected [10, 32]");
    assert!(!to.exists(), "nothing is written when the file is refused");
    sim(&["import", "digits-mlp", file.to_str().unwrap()]).assert_one_line_error("--to");
}

#[test]
fn command_line_export_import_predict() {
    let dir = scratch("cli-interop");
    let torch = fixture("digits-mlp.safetensors");
    let (weights, rust, keras) = (dir.join("w.ttw"), dir.join("net.rs"), dir.join("keras.safetensors"));
    let p = |p: &Path| p.to_str().unwrap().to_owned();
    let run = sim(&["import", "digits-mlp", &p(&torch), "--to", &p(&weights), "--rust", &p(&rust)]);
    assert!(run.ok, "{}", run.stderr);
    let run = sim(&["export", "digits-mlp", "--weights", &p(&weights), "--to", &p(&keras), "--layout", "keras"]);
    assert!(run.ok && run.stdout.contains("dense/kernel [64, 32]"), "{}{}", run.stdout, run.stderr);
    let again = dir.join("again.ttw");
    let run = sim(&["import", "digits-mlp", &p(&keras), "--layout", "keras", "--to", &p(&again)]);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&weights).unwrap());
    let run = sim(&["predict", "digits-mlp", "--weights", &p(&again), "--data", &p(&data_dir()), "--json"]);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 360);
    assert_eq!(std::fs::read_to_string(&rust).unwrap(), std::fs::read_to_string(fixture("digits-mlp.rs")).unwrap());
}

#[test]
fn generated_source_is_up_to_date() {
    let bytes = std::fs::read(fixture("digits-mlp.safetensors")).unwrap();
    let imported = model("digits-mlp").import(&bytes, Layout::Pytorch, true).unwrap();
    let committed = std::fs::read_to_string(fixture("digits-mlp.rs")).unwrap();
    assert!(
        imported.rust.as_deref() == Some(committed.as_str()),
        "tests/fixtures/pytorch/digits-mlp.rs is stale: run `tinytrain-sim import digits-mlp \
         tests/fixtures/pytorch/digits-mlp.safetensors --rust tests/fixtures/pytorch/digits-mlp.rs`"
    );
}

#[test]
fn generated_static_computes_what_the_weights_file_computes() {
    // The committed source compiled into this test: the same parameters, bit for bit...
    let net = import_torch::<zoo::DigitsMlp>("digits-mlp");
    assert_eq!(generated::NET, *net);
    // ...and the same outputs on every test image, from the static as it is.
    let (from_static, _) = tinytrain_logits(&generated::NET, DatasetKind::Digits);
    let (from_file, _) = tinytrain_logits(&*net, DatasetKind::Digits);
    let bits = |v: &[[f32; 10]]| v.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&from_static), bits(&from_file));
    // The weights file for include_bytes! + checkpoint::load holds the same network.
    let file = interop::weights_file(&generated::NET).unwrap();
    let mut loaded = zoo::DigitsMlp::ZERO;
    checkpoint::load(&mut loaded, &file).unwrap();
    assert_eq!(loaded, generated::NET);
}

#[test]
fn generated_source_for_every_model_has_one_row_per_layer() {
    for m in models::MODELS {
        let specs = m.tensor_specs(Layout::Pytorch).unwrap();
        let keras = m.tensor_specs(Layout::Keras).unwrap();
        assert_eq!(specs.len(), keras.len(), "{}", m.name);
        let zeros = safetensors_file(
            &specs.iter().map(|s| (s.name.as_str(), Dtype::F32, s.shape.clone(), zeros(s.len()))).collect::<Vec<_>>(),
        );
        let imported = m.import(&zeros, Layout::Pytorch, true).unwrap();
        let rust = imported.rust.unwrap();
        assert!(rust.contains(&format!("pub static NET: {} =", m.type_path)), "{}", m.name);
        // One `weight` per layer with tensors (a BatchNorm has four tensors, the others two).
        let layers = specs.iter().filter(|s| s.local == "weight").count();
        assert_eq!(rust.matches("weight:").count(), layers, "{}", m.name);
    }
}

/// One line of `predict --json`.
struct Line {
    index: usize,
    predicted: usize,
    label: usize,
    logits: Vec<f32>,
}

fn parse_json(text: &str) -> Vec<Line> {
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let logits = v["logits"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
            let int = |k: &str| usize::try_from(v[k].as_u64().unwrap()).unwrap();
            Line { index: int("index"), predicted: int("predicted"), label: int("label"), logits }
        })
        .collect()
}

#[test]
fn predict_agrees_with_eval() {
    let m = model("digits-mlp");
    let dir = scratch("predict");
    let weights = dir.join("w.ttw");
    let bytes = std::fs::read(fixture("digits-mlp.safetensors")).unwrap();
    std::fs::write(&weights, m.import(&bytes, Layout::Pytorch, false).unwrap().weights).unwrap();
    let eval = m.eval(&EvalOptions { weights: weights.clone(), data_dir: data_dir() }, &mut Vec::new()).unwrap();

    let run = |json| {
        let mut out = Vec::new();
        let opts = PredictOptions { weights: weights.clone(), data_dir: data_dir(), json, input: None };
        let e = m.predict(&opts, &mut out).unwrap();
        assert_eq!(e, eval, "predict's own evaluation");
        String::from_utf8(out).unwrap()
    };
    let json = parse_json(&run(true));
    let text = run(false);
    let net = import_torch::<zoo::DigitsMlp>("digits-mlp");
    let (logits, labels) = tinytrain_logits(&*net, DatasetKind::Digits);

    assert_eq!(json.len(), eval.samples);
    assert_eq!(json.iter().filter(|l| l.predicted == l.label).count(), eval.correct);
    let mut text_lines = text.lines();
    assert!(text_lines.next().unwrap().starts_with('#'));
    for (i, line) in json.iter().enumerate() {
        assert_eq!((line.index, line.label), (i, labels[i]));
        assert_eq!(line.predicted, argmax(&logits[i]));
        // Printed as the shortest decimal that reads back as the same f32.
        assert_eq!(line.logits, logits[i]);
        let fields: Vec<&str> = text_lines.next().unwrap().split(' ').collect();
        assert_eq!(fields[..3], [i.to_string(), line.predicted.to_string(), line.label.to_string()]);
        let parsed: Vec<f32> = fields[3..].iter().map(|f| f.parse().unwrap()).collect();
        assert_eq!(parsed, logits[i]);
    }

    let xor = dir.join("xor.ttw");
    let xor_bytes = model("xor").import(
        &safetensors_file(&[
            ("fc1.weight", Dtype::F32, vec![4, 2], zeros(8)),
            ("fc1.bias", Dtype::F32, vec![4], zeros(4)),
            ("fc2.weight", Dtype::F32, vec![1, 4], zeros(4)),
            ("fc2.bias", Dtype::F32, vec![1], zeros(1)),
        ]),
        Layout::Pytorch,
        false,
    );
    std::fs::write(&xor, xor_bytes.unwrap().weights).unwrap();
    let mut out = Vec::new();
    model("xor")
        .predict(&PredictOptions { weights: xor, data_dir: data_dir(), json: true, input: None }, &mut out)
        .unwrap();
    let lines = parse_json(&String::from_utf8(out).unwrap());
    let labels: Vec<usize> = lines.iter().map(|l| l.label).collect();
    assert_eq!(labels, [0, 1, 1, 0]);
    assert!(lines.iter().all(|l| l.predicted == 1 && l.logits == [0.5]), "sigmoid(0) = 0.5 rounds to 1");
}

// The CNNs match PyTorch as closely as the MLPs, the 9216-input dense layer of mnist-cnn
// included: measured max |tinytrain - PyTorch| over the 2000 test images' logits, 7.6e-6 for
// mnist-cnn-tiny (logits up to 41.9 in magnitude, where one f32 step is 3.8e-6) and 1.9e-6 for
// mnist-cnn after its one epoch (logits up to 11.7, one step 9.5e-7): a couple of roundings
// from summing in another order, well inside the 1e-5 of the MLPs. Same accuracies as
// PyTorch: 0.9695 (1939/2000) and 0.8990 (1798/2000).

#[test]
fn mnist_cnn_tiny_from_pytorch_matches_pytorch() {
    pytorch_model_gives_pytorch_logits::<zoo::MnistCnnTiny>("mnist-cnn-tiny", DatasetKind::Mnist, TOLERANCE);
}

#[test]
fn mnist_cnn_from_pytorch_matches_pytorch() {
    pytorch_model_gives_pytorch_logits::<zoo::MnistCnn>("mnist-cnn", DatasetKind::Mnist, TOLERANCE);
}

#[test]
fn pytorch_cnns_round_trip_bit_exactly_in_both_layouts() {
    for name in ["mnist-cnn-tiny", "mnist-cnn"] {
        let m = model(name);
        let torch = std::fs::read(fixture(&format!("{name}.safetensors"))).unwrap();
        let weights = m.import(&torch, Layout::Pytorch, false).unwrap().weights;
        for layout in [Layout::Pytorch, Layout::Keras] {
            let file = m.export(&weights, layout).unwrap();
            assert_eq!(
                m.import(&file, layout, false).unwrap().weights,
                weights,
                "{name}, {layout}: the weights file changed"
            );
        }
        // Exporting in the PyTorch layout gives back the tensors PyTorch wrote, bit for bit.
        let again = m.export(&weights, Layout::Pytorch).unwrap();
        let (a, b) = (SafeTensors::deserialize(&torch).unwrap(), SafeTensors::deserialize(&again).unwrap());
        let (mut names, mut names_again) = (a.names(), b.names());
        names.sort_unstable();
        names_again.sort_unstable();
        assert_eq!(names, names_again, "{name}");
        for tensor in names {
            let (x, y) = (a.tensor(tensor).unwrap(), b.tensor(tensor).unwrap());
            assert_eq!((x.shape(), x.data()), (y.shape(), y.data()), "{name}: {tensor}");
        }
    }

    // The same on the command line: import, export, import gives the same weights file.
    let dir = scratch("cli-cnn-round-trip");
    let p = |p: &Path| p.to_str().unwrap().to_owned();
    let torch = fixture("mnist-cnn-tiny.safetensors");
    let (weights, exported, again) = (dir.join("w.ttw"), dir.join("w.safetensors"), dir.join("again.ttw"));
    let run = sim(&["import", "mnist-cnn-tiny", &p(&torch), "--to", &p(&weights)]);
    assert!(run.ok, "{}", run.stderr);
    let run = sim(&["export", "mnist-cnn-tiny", "--weights", &p(&weights), "--to", &p(&exported)]);
    assert!(run.ok && run.stdout.contains("conv2.weight [24, 6, 3, 3]"), "{}{}", run.stdout, run.stderr);
    let run = sim(&["import", "mnist-cnn-tiny", &p(&exported), "--to", &p(&again)]);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&weights).unwrap());
}

// Models with batch normalisation (tools/bn_reference.py): the BatchNorm layers' weight, bias,
// running_mean and running_var come in through the same import, by the names the layers give
// them; tinytrain computes PyTorch's eval() logits.

#[test]
fn digits_bn_mlp_from_pytorch_matches_pytorch() {
    pytorch_model_gives_pytorch_logits::<zoo::DigitsBnMlp>("digits-bn-mlp", DatasetKind::Digits, TOLERANCE);
}

#[test]
fn mnist_bn_cnn_from_pytorch_matches_pytorch() {
    pytorch_model_gives_pytorch_logits::<zoo::MnistBnCnn>("mnist-bn-cnn", DatasetKind::Mnist, TOLERANCE);
}

#[test]
fn batchnorm_tensors_round_trip_under_keras_names() {
    let m = model("mnist-bn-cnn");
    let torch = std::fs::read(fixture("mnist-bn-cnn.safetensors")).unwrap();
    let weights = m.import(&torch, Layout::Pytorch, false).unwrap().weights;
    let keras = m.export(&weights, Layout::Keras).unwrap();
    let file = SafeTensors::deserialize(&keras).unwrap();
    let mut names = file.names();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "batch_normalization/beta",
            "batch_normalization/gamma",
            "batch_normalization/moving_mean",
            "batch_normalization/moving_variance",
            "conv2d/bias",
            "conv2d/kernel",
            "dense/bias",
            "dense/kernel",
        ]
    );
    assert_eq!(m.import(&keras, Layout::Keras, false).unwrap().weights, weights);
    let again = SafeTensors::deserialize(&torch).unwrap();
    let back = m.export(&weights, Layout::Pytorch).unwrap();
    let back = SafeTensors::deserialize(&back).unwrap();
    for name in ["bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"] {
        let (x, y) = (again.tensor(name).unwrap(), back.tensor(name).unwrap());
        assert_eq!((x.shape(), x.data()), (y.shape(), y.data()), "{name}");
    }
}

/// PyTorch's int64 `num_batches_tracked` is not a tensor of tinytrain's BatchNorm: a
/// state_dict that still holds it is refused, naming it (tools/bn_reference.py drops it).
#[test]
fn num_batches_tracked_is_refused_by_name() {
    let m = model("digits-bn-mlp");
    let bytes = std::fs::read(fixture("digits-bn-mlp.safetensors")).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> =
        file.tensors().into_iter().map(|(n, t)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec())).collect();
    let mut tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> =
        owned.iter().map(|(n, d, s, b)| (n.as_str(), *d, s.clone(), b.clone())).collect();
    tensors.push(("bn1.num_batches_tracked", Dtype::I64, vec![], 1350i64.to_le_bytes().to_vec()));
    let err = m.import(&safetensors_file(&tensors), Layout::Pytorch, false).unwrap_err().to_string();
    assert!(err.contains("unexpected tensor bn1.num_batches_tracked"), "{err}");
}

/// The 1-D reference model trained in PyTorch (`tools/pytorch_reference.py waves-cnn1d`):
/// Conv1d, MaxPool1d and the mean over time imported and computed as PyTorch does. Its
/// logits reach 118 in magnitude, where one f32 step is 7.6e-6: measured max difference
/// 2.3e-5 (3 steps, 1.9e-7 relative, from summing in another order), so the bound here is
/// 4 steps at 118, 3e-5, rather than the 1e-5 of the models with logits below 42.
#[test]
fn waves_cnn1d_from_pytorch_matches_pytorch() {
    pytorch_model_gives_pytorch_logits::<zoo::WavesCnn1d>("waves-cnn1d", DatasetKind::Waves, 3e-5);
}
