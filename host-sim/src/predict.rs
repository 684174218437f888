//! `predict`: every test sample's index, predicted class, label and outputs, one line each, so
//! that results can be compared with another tool sample by sample.
//!
//! Text (the default), after one `#` header line:
//!
//! ```text
//! # index predicted label logits...
//! 0 0 0 9.874193 -6.1046085 ...
//! ```
//!
//! JSON lines with `--json`:
//!
//! ```text
//! {"index":0,"predicted":0,"label":0,"logits":[9.874193,-6.1046085,...]}
//! ```
//!
//! `logits` are the network's outputs (the sigmoid output for `xor`), printed as the shortest
//! decimal that reads back as the same `f32`; a non-finite one is `NaN`/`inf` in text and
//! `null` in JSON.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use tinytrain::loss::Loss;
use tinytrain::prelude::*;

use crate::spec::ModelSpec;

/// What `predict` needs besides the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictOptions {
    /// The weights file.
    pub weights: PathBuf,
    /// Directory with the dataset files.
    pub data_dir: PathBuf,
    /// JSON lines instead of text.
    pub json: bool,
}

fn number(v: f32, json: bool) -> String {
    if json && !v.is_finite() { "null".to_owned() } else { v.to_string() }
}

/// Loads the weights of `opts` into network `M`, runs every sample of `test` and writes one
/// line per sample to `out`; `label` and `class` turn a target and an output into class ids.
/// Returns the evaluation of the same pass (as `eval` computes it).
///
/// # Errors
/// An unreadable or invalid weights file, invalid data, or output that cannot be written.
pub fn predict<M, L, V>(
    model: &ModelSpec,
    opts: &PredictOptions,
    loss: &L,
    test: &V,
    label: impl Fn(&L::Target) -> usize,
    class: impl Fn(&M::Output) -> usize,
    out: &mut dyn Write,
) -> Result<Eval>
where
    M: Layer,
    L: Loss<M::Output>,
    L::Target: Zero,
    V: Dataset<M::Input, L::Target> + ?Sized,
{
    let path = &opts.weights;
    let mut net: Box<M> = Box::new(M::ZERO);
    crate::run::load_weights(&mut *net, path, model.name)?;
    let mut x: Box<M::Input> = Box::new(M::Input::ZERO);
    let mut acts: Box<M::Acts> = Box::new(M::Acts::ZERO);
    let mut y: Box<M::Output> = Box::new(M::Output::ZERO);
    let mut target = L::Target::ZERO;
    if !opts.json {
        writeln!(out, "# index predicted label logits...")?;
    }
    let (mut sum, mut correct) = (0.0f64, 0usize);
    for i in 0..test.len() {
        test.get(i, &mut x, &mut target).with_context(|| format!("reading sample {i}"))?;
        net.predict(&x, &mut acts, &mut y);
        sum += f64::from(loss.loss(&y, &target)?);
        correct += usize::from(loss.correct(&y, &target));
        let values: Vec<String> = y.flat().iter().map(|&v| number(v, opts.json)).collect();
        let (predicted, label) = (class(&y), label(&target));
        if opts.json {
            writeln!(
                out,
                "{{\"index\":{i},\"predicted\":{predicted},\"label\":{label},\"logits\":[{}]}}",
                values.join(",")
            )?;
        } else {
            writeln!(out, "{i} {predicted} {label} {}", values.join(" "))?;
        }
    }
    out.flush()?;
    let n = test.len();
    Ok(Eval { loss: (sum / n.max(1) as f64) as f32, accuracy: correct as f32 / n.max(1) as f32, correct, samples: n })
}
