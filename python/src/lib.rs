//! Python bindings of tinytrain: the module `tinytrain`.
//!
//! Every model of the simulator's registry (`tinytrain-sim models`) as a `tinytrain.Model`,
//! trained on numpy arrays with the very code of the CLI, so that the same seed and settings
//! give the same weights, bit for bit, as `tinytrain-sim train`. The work is done by
//! [`tinytrain_sim::session`]; this crate converts arrays and errors.
//!
//! ```python
//! import tinytrain
//! (x, y), (x_test, y_test) = tinytrain.load_dataset("digits")
//! m = tinytrain.Model("digits-mlp", seed=0)
//! history = m.fit(x, y, epochs=30, batch_size=32, optimizer="adam", lr=1e-3, seed=0)
//! loss, accuracy = m.evaluate(x_test, y_test)
//! names = [name for name, _ in m.get_weights()]   # fc1.weight (32, 64), fc1.bias, ...
//! ```
//!
//! Errors of the arrays (shape, dtype, NaN), of the settings and of files raise `ValueError`
//! (`OSError` for files that cannot be read or written) with the Rust error's message.

// PyO3 hands arguments over by value (`PathBuf`, `Bound`); taking them by reference is not
// an option for #[pymethods].
#![allow(clippy::needless_pass_by_value)]

use std::path::PathBuf;

use ::tinytrain::prelude::Eval;
use numpy::{PyArray1, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods, dtype};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use tinytrain_sim::datasets::{self, DatasetKind, Split};
use tinytrain_sim::models::{self, Model as Registered};
use tinytrain_sim::optimizers::{OptimizerKind, Overrides};
use tinytrain_sim::session::{FitOptions, NamedTensor, Samples, Session, Targets};

fn value_error(e: &anyhow::Error) -> PyErr {
    PyValueError::new_err(format!("{e:#}"))
}

/// Float32 values of a numpy array, with its shape.
fn f32_values(what: &str, array: &Bound<'_, PyAny>) -> PyResult<(Vec<f32>, Vec<usize>)> {
    let py = array.py();
    let untyped = array
        .cast::<PyUntypedArray>()
        .map_err(|_| PyValueError::new_err(format!("{what} must be a numpy array of float32")))?;
    if !untyped.dtype().is_equiv_to(&dtype::<f32>(py)) {
        return Err(PyValueError::new_err(format!(
            "{what} must be a numpy array of float32, not {}",
            untyped.dtype().str()?
        )));
    }
    let typed = array.cast::<PyArrayDyn<f32>>().map_err(|e| PyValueError::new_err(format!("{what}: {e}")))?;
    let shape = untyped.shape().to_vec();
    let values = typed.readonly().as_array().iter().copied().collect();
    Ok((values, shape))
}

/// Class labels of a numpy array of integers, one per sample.
fn labels(array: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
    let untyped = array
        .cast::<PyUntypedArray>()
        .map_err(|_| PyValueError::new_err("y must be a numpy array of integer labels"))?;
    let kind = untyped.dtype().kind();
    if kind != b'i' && kind != b'u' {
        return Err(PyValueError::new_err(format!(
            "y must be a numpy array of integer labels, not {}",
            untyped.dtype().str()?
        )));
    }
    if untyped.ndim() != 1 {
        return Err(PyValueError::new_err(format!("y must be one label per sample, got shape {:?}", untyped.shape())));
    }
    let wide = array.call_method1("astype", ("int64",))?;
    let typed = wide.cast::<PyArrayDyn<i64>>().map_err(|e| PyValueError::new_err(format!("y: {e}")))?;
    let values: Vec<i64> = typed.readonly().as_array().iter().copied().collect();
    values
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            usize::try_from(l).map_err(|_| PyValueError::new_err(format!("label {l} of sample {i} is negative")))
        })
        .collect()
}

/// The inputs of `x`: `(n, *input_shape)` or `(n, input_len)`.
fn inputs(session: &dyn Session, x: &Bound<'_, PyAny>) -> PyResult<Vec<f32>> {
    let (values, shape) = f32_values("x", x)?;
    let input = session.input_shape();
    let len: usize = input.iter().product();
    let fits = shape.len() >= 2 && (shape[1..] == input[..] || shape[1..] == [len]);
    if !fits {
        return Err(PyValueError::new_err(format!(
            "x has shape {shape:?}; model {} takes (n, {}){}",
            session.spec().name,
            len,
            if input.len() > 1 {
                format!(" or (n, {})", input.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
            } else {
                String::new()
            }
        )));
    }
    Ok(values)
}

/// Owned targets, borrowed as [`Targets`].
enum OwnedTargets {
    Classes(Vec<usize>),
    Values(Vec<f32>),
}

impl OwnedTargets {
    fn as_targets(&self) -> Targets<'_> {
        match self {
            OwnedTargets::Classes(c) => Targets::Classes(c),
            OwnedTargets::Values(v) => Targets::Values(v),
        }
    }
}

/// Labels for classification models, float32 values (one row of outputs per sample) for the
/// others.
fn targets(session: &dyn Session, y: &Bound<'_, PyAny>) -> PyResult<OwnedTargets> {
    if matches!(session.spec().data, tinytrain_sim::spec::Data::Images(_)) {
        return Ok(OwnedTargets::Classes(labels(y)?));
    }
    let (values, shape) = f32_values("y", y)?;
    let out = session.output_len();
    let fits = (shape.len() == 2 && shape[1] == out) || (shape.len() == 1 && out == 1);
    if !fits {
        return Err(PyValueError::new_err(format!(
            "y has shape {shape:?}; model {} takes float32 targets of shape (n, {out})",
            session.spec().name
        )));
    }
    Ok(OwnedTargets::Values(values))
}

fn eval_tuple(e: Eval) -> (f32, f32) {
    (e.loss, e.accuracy)
}

/// A model of the registry, in memory: `Model("digits-mlp", seed=0)`.
///
/// The weights are initialised as `tinytrain-sim train --seed SEED` initialises them (the
/// model's default initialiser). `fit` starts each call with fresh optimizer state.
#[pyclass(module = "tinytrain")]
struct Model {
    registered: &'static Registered,
    session: Box<dyn Session>,
}

#[pymethods]
impl Model {
    #[new]
    #[pyo3(signature = (name, seed = 0))]
    fn new(name: &str, seed: u64) -> PyResult<Self> {
        let registered = models::find(name)
            .ok_or_else(|| PyValueError::new_err(format!("no model {name}; the models are {}", models::names())))?;
        Ok(Model { registered, session: registered.session(seed) })
    }

    /// Initialises the weights again from `seed`.
    fn init(&mut self, seed: u64) {
        self.session.init(seed);
    }

    /// The model's name.
    #[getter]
    fn name(&self) -> &'static str {
        self.registered.name
    }

    /// Shape of one input sample.
    #[getter]
    fn input_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.session.input_shape())
    }

    /// Outputs per sample.
    #[getter]
    fn output_size(&self) -> usize {
        self.session.output_len()
    }

    /// Number of parameters.
    #[getter]
    fn num_params(&self) -> usize {
        self.session.num_params()
    }

    /// The model's default training settings (its baseline's), as a dict.
    #[getter]
    fn defaults<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = &self.registered.defaults;
        let dict = PyDict::new(py);
        dict.set_item("optimizer", d.optimizer.name())?;
        dict.set_item("lr", d.lr)?;
        dict.set_item("momentum", d.momentum)?;
        dict.set_item("batch_size", d.batch_size)?;
        dict.set_item("epochs", d.epochs)?;
        dict.set_item("init", format!("{:?}", d.init))?;
        Ok(dict)
    }

    /// Trains on `x` (float32, `(n, *input_shape)` or `(n, input_len)`) and `y` (integer labels
    /// for classifiers, float32 `(n, outputs)` for the regression models). Unset settings are
    /// the model's defaults, as for `tinytrain-sim train`. Returns one dict per epoch.
    #[pyo3(signature = (x, y, epochs = None, batch_size = None, optimizer = None, lr = None, seed = 0, momentum = None, decay = None, validation_data = None, shuffle = true, keras = false))]
    fn fit<'py>(
        &mut self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        epochs: Option<u32>,
        batch_size: Option<usize>,
        optimizer: Option<&str>,
        lr: Option<f32>,
        seed: u64,
        momentum: Option<f32>,
        decay: Option<f32>,
        validation_data: Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
        shuffle: bool,
        keras: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let d = &self.registered.defaults;
        let kind = match optimizer {
            None => d.optimizer,
            Some(name) => <OptimizerKind as clap::ValueEnum>::from_str(name, true).map_err(|_| {
                PyValueError::new_err(format!(
                    "no optimizer {name}; the optimizers are sgd, momentum, nesterov, adam, rmsprop, adadelta"
                ))
            })?,
        };
        let mut opts = FitOptions::defaults(&self.registered.spec);
        opts.optimizer =
            d.optimizer_with(kind, keras, Overrides { lr, momentum, decay }).map_err(|e| value_error(&e))?;
        opts.fit.epochs = epochs.unwrap_or(d.epochs);
        opts.fit.batch_size = batch_size.unwrap_or(d.batch_size);
        opts.fit.seed = seed;
        opts.fit.shuffle = shuffle;
        let session = &*self.session;
        let x = inputs(session, x)?;
        let y = targets(session, y)?;
        let val = match &validation_data {
            Some((vx, vy)) => Some((inputs(session, vx)?, targets(session, vy)?)),
            None => None,
        };
        let session = &mut self.session;
        let fitted = py.detach(|| {
            let train = Samples { x: &x, targets: y.as_targets() };
            let val = val.as_ref().map(|(vx, vy)| Samples { x: vx, targets: vy.as_targets() });
            session.fit(&train, val.as_ref(), &opts)
        });
        let fitted = fitted.map_err(|e| value_error(&e))?;
        let history = PyList::empty(py);
        for e in &fitted.history {
            let dict = PyDict::new(py);
            dict.set_item("epoch", e.epoch)?;
            dict.set_item("loss", e.train_loss)?;
            dict.set_item("accuracy", e.train_accuracy)?;
            if let Some(v) = e.val {
                dict.set_item("val_loss", v.loss)?;
                dict.set_item("val_accuracy", v.accuracy)?;
            }
            dict.set_item("lr", e.lr)?;
            dict.set_item("skipped_steps", e.skipped_steps)?;
            history.append(dict)?;
        }
        Ok(history)
    }

    /// Mean loss and accuracy over `x`, `y`: `(loss, accuracy)`.
    fn evaluate(&mut self, py: Python<'_>, x: &Bound<'_, PyAny>, y: &Bound<'_, PyAny>) -> PyResult<(f32, f32)> {
        let x = inputs(&*self.session, x)?;
        let y = targets(&*self.session, y)?;
        let session = &mut self.session;
        let e = py.detach(|| session.evaluate(&Samples { x: &x, targets: y.as_targets() }));
        e.map(eval_tuple).map_err(|e| value_error(&e))
    }

    /// The outputs (logits for classifiers) of every sample of `x`: float32 `(n, outputs)`.
    fn predict<'py>(&mut self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let x = inputs(&*self.session, x)?;
        let session = &mut self.session;
        let out = py.detach(|| session.predict(&x)).map_err(|e| value_error(&e))?;
        let n = out.len() / self.session.output_len().max(1);
        let array = PyArray1::<f32>::from_vec(py, out);
        Ok(array.reshape(vec![n, self.session.output_len()])?.into_any())
    }

    /// Every tensor as `(name, float32 array)`, PyTorch names, shapes and order
    /// (`fc1.weight` of shape `(32, 64)`, `fc1.bias`, ...).
    fn get_weights<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let tensors = self.session.weights().map_err(|e| value_error(&e))?;
        let list = PyList::empty(py);
        for t in tensors {
            let array = PyArray1::<f32>::from_vec(py, t.values).reshape(t.shape)?;
            list.append((t.name, array))?;
        }
        Ok(list)
    }

    /// Sets every tensor from a list in the order of `get_weights`: `(name, array)` pairs, whose
    /// names must match, or arrays alone. Float32 arrays of the PyTorch shapes; nothing changes
    /// when one is wrong.
    fn set_weights(&mut self, weights: &Bound<'_, PyAny>) -> PyResult<()> {
        let expected = self.session.weights().map_err(|e| value_error(&e))?;
        let mut tensors = Vec::with_capacity(expected.len());
        for (i, item) in weights.try_iter()?.enumerate() {
            let item = item?;
            let (name, array) = match item.cast::<PyTuple>() {
                Ok(pair) if pair.len() == 2 => (pair.get_item(0)?.extract::<String>()?, pair.get_item(1)?),
                _ => (expected.get(i).map_or_else(|| format!("tensor {i}"), |t| t.name.clone()), item),
            };
            let (values, shape) = f32_values(&format!("tensor {name}"), &array)?;
            tensors.push(NamedTensor { name, shape, values });
        }
        self.session.set_weights(&tensors).map_err(|e| value_error(&e))
    }

    /// The Keras-like summary with the memory budget of training with `optimizer` (default:
    /// the model's).
    #[pyo3(signature = (optimizer = None))]
    fn summary(&self, optimizer: Option<&str>) -> PyResult<String> {
        let kind = match optimizer {
            None => self.registered.defaults.optimizer,
            Some(name) => <OptimizerKind as clap::ValueEnum>::from_str(name, true)
                .map_err(|_| PyValueError::new_err(format!("no optimizer {name}")))?,
        };
        Ok(self.registered.summary(kind))
    }

    /// Writes the weights file (the format of `tinytrain-sim train --save`).
    fn save(&self, path: PathBuf) -> PyResult<()> {
        let bytes = self.session.save().map_err(|e| value_error(&e))?;
        std::fs::write(&path, bytes).map_err(|e| PyOSError::new_err(format!("cannot write {}: {e}", path.display())))
    }

    /// Loads a weights file; nothing changes when it is not valid for this model.
    fn load(&mut self, path: PathBuf) -> PyResult<()> {
        let bytes =
            std::fs::read(&path).map_err(|e| PyOSError::new_err(format!("cannot read {}: {e}", path.display())))?;
        self.session.load(&bytes).map_err(|e| value_error(&e.context(path.display().to_string())))
    }

    /// The weights file as bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        let bytes = self.session.save().map_err(|e| value_error(&e))?;
        Ok(pyo3::types::PyBytes::new(py, &bytes))
    }

    fn __repr__(&self) -> String {
        format!("tinytrain.Model({:?}) with {} parameters", self.registered.name, self.session.num_params())
    }
}

/// The names of the models.
#[pyfunction]
#[pyo3(name = "models")]
fn model_names() -> Vec<&'static str> {
    models::MODELS.iter().map(|m| m.name).collect()
}

/// A shipped dataset scaled as the CLI scales it: `((x_train, y_train), (x_test, y_test))`,
/// float32 images `(n, rows·cols)` and uint8 labels. `name`: `digits` or `mnist`; `data_dir`:
/// a directory with the IDX files (default: the repository's `data/`).
#[pyfunction]
#[pyo3(signature = (name, data_dir = None))]
fn load_dataset<'py>(py: Python<'py>, name: &str, data_dir: Option<PathBuf>) -> PyResult<Bound<'py, PyTuple>> {
    let kind = match name {
        "digits" => DatasetKind::Digits,
        "mnist" => DatasetKind::Mnist,
        _ => return Err(PyValueError::new_err(format!("no dataset {name}; the datasets are digits, mnist"))),
    };
    let dir = data_dir.unwrap_or_else(datasets::default_data_dir);
    let mut parts = Vec::new();
    for split in [Split::Train, Split::Test] {
        let set = datasets::load_split(kind, split, &dir).map_err(|e| value_error(&e))?;
        let n = set.len();
        let x: Vec<f32> = set.pixels.iter().map(|&p| f32::from(p) * set.scale).collect();
        let x = PyArray1::<f32>::from_vec(py, x).reshape(vec![n, set.sample_len()])?;
        let y = PyArray1::<u8>::from_vec(py, set.labels).reshape(vec![n])?;
        parts.push(PyTuple::new(py, [x.into_any(), y.into_any()])?);
    }
    PyTuple::new(py, parts)
}

/// The module.
#[pymodule]
#[pyo3(name = "tinytrain")]
fn tinytrain_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(model_names, m)?)?;
    m.add_function(wrap_pyfunction!(load_dataset, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
