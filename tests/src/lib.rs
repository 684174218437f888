//! Helpers shared by the integration tests: reading the golden JSON files in `tests/golden/`,
//! comparing with explicit tolerances, flat access to a network's parameters, and the
//! finite-difference gradient checker ([`gradcheck`]).
//!
//! A golden tensor is `{"shape": [..], "data": [..]}` with `data` in row-major order; every
//! number is read as `f64` and rounded to `f32`, which gives the stored `f32` exactly (the
//! golden README says so, and [`tests::every_number_reads_as_its_own_f32`] checks it).
//!
//! ```
//! let g = tinytrain_tests::Golden::open("dense.json");
//! let w = g.at("cases/batch1/weight").tensor();
//! assert_eq!(w.shape, [3, 5]);
//! let w: [[f32; 5]; 3] = w.matrix();
//! assert_eq!(w[0][0], 0.309_017_66);
//! ```
// A malformed or missing golden file is a broken test fixture: fail loudly, with the path.
#![allow(clippy::panic, clippy::expect_used)]

pub mod gradcheck;

use serde_json::Value;
use tinytrain::Layer;

/// Directory of the golden files, inside this crate.
pub const GOLDEN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/golden");

/// Tolerances suggested by the golden README.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tol {
    /// Absolute part.
    pub abs: f64,
    /// Relative part (times |expected|).
    pub rel: f64,
}

impl Tol {
    /// Layers, losses and the backprop slide: abs 1e-5 + rel 1e-4.
    pub const LAYER: Tol = Tol { abs: 1e-5, rel: 1e-4 };
    /// Optimizer trajectories: abs 1e-5.
    pub const TRAJECTORY: Tol = Tol { abs: 1e-5, rel: 0.0 };
    /// XOR after 2000 steps: abs 1e-4.
    pub const XOR: Tol = Tol { abs: 1e-4, rel: 0.0 };

    /// Whether `actual` is within the tolerance of `expected` (never for a non-finite value).
    #[must_use]
    pub fn accepts(self, actual: f32, expected: f32) -> bool {
        let (a, e) = (f64::from(actual), f64::from(expected));
        a.is_finite() && (a - e).abs() <= self.abs + self.rel * e.abs()
    }
}

/// Panics with the worst element unless every `actual[i]` is within `tol` of `expected[i]`
/// and the lengths agree.
#[track_caller]
pub fn assert_close(what: &str, actual: &[f32], expected: &[f32], tol: Tol) {
    assert_eq!(actual.len(), expected.len(), "{what}: {} values, expected {}", actual.len(), expected.len());
    let mut worst: Option<(usize, f64)> = None;
    let mut failures = 0;
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        if !tol.accepts(a, e) {
            failures += 1;
            let excess = (f64::from(a) - f64::from(e)).abs() - tol.rel * f64::from(e).abs();
            if worst.is_none_or(|(_, w)| excess.is_nan() || excess > w) {
                worst = Some((i, excess));
            }
        }
    }
    if let Some((i, _)) = worst {
        panic!(
            "{what}: {failures} of {} values outside abs {:e} + rel {:e}; worst at [{i}]: got {:e}, expected {:e} \
             (diff {:e})",
            actual.len(),
            tol.abs,
            tol.rel,
            actual[i],
            expected[i],
            f64::from(actual[i]) - f64::from(expected[i])
        );
    }
}

/// [`assert_close`] for one value.
#[track_caller]
pub fn assert_close_scalar(what: &str, actual: f32, expected: f32, tol: Tol) {
    assert_close(what, &[actual], &[expected], tol);
}

/// A tensor read from a golden file.
#[derive(Debug, Clone, PartialEq)]
pub struct GTensor {
    /// Dimensions, outermost first; empty for a scalar.
    pub shape: Vec<usize>,
    /// Elements in row-major order.
    pub data: Vec<f32>,
    /// Whether the file marks it as an integer tensor (class labels).
    pub is_int: bool,
}

impl GTensor {
    /// Number of rows: the first dimension (1 for a scalar or a vector read as one row).
    #[must_use]
    pub fn rows(&self) -> usize {
        if self.shape.len() <= 1 { 1 } else { self.shape[0] }
    }

    /// Elements per row.
    #[must_use]
    pub fn row_len(&self) -> usize {
        self.data.len() / self.rows()
    }

    /// Row `i` of a tensor whose first dimension is the batch.
    #[must_use]
    pub fn row(&self, i: usize) -> &[f32] {
        let n = self.row_len();
        &self.data[i * n..(i + 1) * n]
    }

    /// The whole tensor as a fixed array.
    #[must_use]
    pub fn array<const N: usize>(&self) -> [f32; N] {
        self.data.as_slice().try_into().unwrap_or_else(|_| panic!("tensor of shape {:?} is not [{N}]", self.shape))
    }

    /// Row `i` as a fixed array.
    #[must_use]
    pub fn row_array<const N: usize>(&self, i: usize) -> [f32; N] {
        self.row(i).try_into().unwrap_or_else(|_| panic!("row of tensor {:?} is not [{N}]", self.shape))
    }

    /// The tensor as `R` rows of `C` (a `[out, in]` weight, say).
    #[must_use]
    pub fn matrix<const C: usize, const R: usize>(&self) -> [[f32; C]; R] {
        assert_eq!(self.data.len(), R * C, "tensor of shape {:?} is not [{R}, {C}]", self.shape);
        core::array::from_fn(|r| core::array::from_fn(|c| self.data[r * C + c]))
    }

    /// The single value of a scalar (or one-element) tensor.
    #[must_use]
    pub fn scalar(&self) -> f32 {
        assert_eq!(self.data.len(), 1, "tensor of shape {:?} is not a scalar", self.shape);
        self.data[0]
    }

    /// Class labels of an integer tensor.
    #[must_use]
    pub fn labels(&self) -> Vec<usize> {
        assert!(self.is_int, "tensor of shape {:?} is not an integer tensor", self.shape);
        self.data.iter().map(|&v| v as usize).collect()
    }
}

/// A node of a golden JSON file, with its path for error messages.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    file: &'a str,
    value: &'a Value,
}

fn number(v: &Value, what: &str) -> f32 {
    let x = v.as_f64().unwrap_or_else(|| panic!("{what}: {v} is not a number"));
    // Shortest decimal of an f32 -> nearest f64 -> nearest f32 is the stored f32 (README).
    x as f32
}

impl<'a> Node<'a> {
    /// The node at `path` below this one; `path` is keys separated by `/`.
    #[must_use]
    pub fn at(&self, path: &str) -> Node<'a> {
        let mut v = self.value;
        for key in path.split('/').filter(|k| !k.is_empty()) {
            v = v.get(key).unwrap_or_else(|| panic!("{}: no key {key:?} (in {path:?})", self.file));
        }
        Node { file: self.file, value: v }
    }

    /// Whether the node has `key`.
    #[must_use]
    pub fn has(&self, key: &str) -> bool {
        self.value.get(key).is_some()
    }

    /// Keys of an object node, in file order.
    #[must_use]
    pub fn keys(&self) -> Vec<&'a str> {
        let obj = self.value.as_object().unwrap_or_else(|| panic!("{}: not an object", self.file));
        obj.keys().map(String::as_str).collect()
    }

    /// The node as a tensor `{"shape": [..], "data": [..]}`.
    #[must_use]
    pub fn tensor(&self) -> GTensor {
        let f = self.file;
        let shape: Vec<usize> = self
            .value
            .get("shape")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{f}: tensor without a shape: {}", self.value))
            .iter()
            .map(|d| d.as_u64().unwrap_or_else(|| panic!("{f}: bad dimension {d}")) as usize)
            .collect();
        let data: Vec<f32> = self
            .value
            .get("data")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{f}: tensor without data"))
            .iter()
            .map(|v| number(v, f))
            .collect();
        let is_int = self.value.get("dtype").and_then(Value::as_str) == Some("int");
        let expected: usize = shape.iter().product();
        assert_eq!(data.len(), expected, "{f}: shape {shape:?} but {} values", data.len());
        GTensor { shape, data, is_int }
    }

    /// A plain number, or a scalar tensor.
    #[must_use]
    pub fn f32(&self) -> f32 {
        if self.value.is_object() { self.tensor().scalar() } else { number(self.value, self.file) }
    }

    /// An array of plain numbers.
    #[must_use]
    pub fn f32s(&self) -> Vec<f32> {
        let arr = self.value.as_array().unwrap_or_else(|| panic!("{}: not an array", self.file));
        arr.iter().map(|v| number(v, self.file)).collect()
    }

    /// A string.
    #[must_use]
    pub fn str(&self) -> &'a str {
        self.value.as_str().unwrap_or_else(|| panic!("{}: not a string", self.file))
    }

    /// The concatenation of the tensors at `keys` (parameters in visiting order).
    #[must_use]
    pub fn concat(&self, keys: &[&str]) -> Vec<f32> {
        keys.iter().flat_map(|k| self.at(k).tensor().data).collect()
    }
}

/// A parsed golden file.
#[derive(Debug)]
pub struct Golden {
    name: &'static str,
    value: Value,
}

impl Golden {
    /// Reads `tests/golden/<name>`.
    #[must_use]
    pub fn open(name: &'static str) -> Golden {
        let path = format!("{GOLDEN_DIR}/{name}");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read golden file {name}: {e}"));
        let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("golden file {name} is not JSON: {e}"));
        Golden { name, value }
    }

    /// The root node.
    #[must_use]
    pub fn root(&self) -> Node<'_> {
        Node { file: self.name, value: &self.value }
    }

    /// The node at `path` (keys separated by `/`).
    #[must_use]
    pub fn at(&self, path: &str) -> Node<'_> {
        self.root().at(path)
    }
}

/// Every stored value of `model` (trainable, frozen, buffers), flattened in
/// [`Params::visit`](tinytrain::Params::visit) order.
#[must_use]
pub fn flat_params<M: Layer>(model: &M) -> Vec<f32> {
    let mut out = Vec::with_capacity(M::STORED_LEN);
    model.visit(&mut |_, p| out.extend_from_slice(p));
    out
}

/// The trainable values of `model`, in visiting order (the order of its gradients).
#[must_use]
pub fn flat_trainable<M: Layer>(model: &M) -> Vec<f32> {
    let mut out = Vec::with_capacity(M::NUM_PARAMS);
    model.visit(&mut |d, p| {
        if d.role == tinytrain::params::Role::Trainable {
            out.extend_from_slice(p);
        }
    });
    out
}

/// The gradients `grads` of network `M`, flattened in visiting order.
#[must_use]
pub fn flat_grads<M: Layer>(grads: &M::Grads) -> Vec<f32> {
    let mut out = Vec::with_capacity(M::NUM_PARAMS);
    M::visit_grads(grads, &mut |g| out.extend_from_slice(g));
    out
}

/// The bit patterns of all parameters, for bit-exact comparisons.
#[must_use]
pub fn param_bits<M: Layer>(model: &M) -> Vec<u32> {
    flat_params(model).iter().map(|v| v.to_bits()).collect()
}

/// Sets every stored value of `model` from `values`, in visiting order.
#[track_caller]
pub fn set_flat_params<M: Layer>(model: &mut M, values: &[f32]) {
    assert_eq!(values.len(), M::STORED_LEN, "{} values for a model of {} values", values.len(), M::STORED_LEN);
    let mut at = 0;
    model.visit_mut(&mut |_, slot| {
        if let tinytrain::params::Slot::Mut(p) = slot {
            p.copy_from_slice(&values[at..at + p.len()]);
            at += p.len();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every numeric literal of every golden file, parsed directly as `f32`, equals what the
    /// reader gives (the f64 route).
    #[test]
    fn every_number_reads_as_its_own_f32() {
        let mut checked = 0;
        for entry in std::fs::read_dir(GOLDEN_DIR).expect("golden dir") {
            let path = entry.expect("entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read");
            // Numbers are the maximal runs of number characters outside strings.
            let (mut in_string, mut escaped, mut token) = (false, false, String::new());
            for ch in text.chars() {
                if in_string {
                    match (escaped, ch) {
                        (true, _) => escaped = false,
                        (false, '\\') => escaped = true,
                        (false, '"') => in_string = false,
                        _ => {}
                    }
                    continue;
                }
                if ch.is_ascii_digit() || matches!(ch, '-' | '+' | '.' | 'e' | 'E') {
                    token.push(ch);
                    continue;
                }
                if token.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
                    let direct: f32 = token.parse().expect("number");
                    let via_f64 = token.parse::<f64>().expect("number") as f32;
                    assert_eq!(direct.to_bits(), via_f64.to_bits(), "{token} in {}", path.display());
                    checked += 1;
                }
                token.clear();
                in_string = ch == '"';
            }
        }
        assert!(checked > 1000, "only {checked} numbers found");
    }

    #[test]
    fn tolerance_rejects_what_it_should() {
        assert!(Tol::LAYER.accepts(1.0 + 1e-5, 1.0));
        assert!(!Tol::LAYER.accepts(1.0 + 2e-4, 1.0));
        assert!(!Tol::TRAJECTORY.accepts(f32::NAN, 0.0));
        assert!(std::panic::catch_unwind(|| assert_close("x", &[1.0, 2.0], &[1.0, 2.1], Tol::LAYER)).is_err());
        assert!(std::panic::catch_unwind(|| assert_close("x", &[1.0], &[1.0, 2.0], Tol::LAYER)).is_err());
    }
}
