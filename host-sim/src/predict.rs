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
//! With `--input FILE` (or `-` for stdin) the samples come from the file instead of the test
//! set, one per line, as the network's input values (pixels already scaled: digits / 16, MNIST
//! / 255), either comma-separated (CSV) or as a JSON array, optionally nested (`[[..],[..]]`
//! for an image) or inside an object (`{"input":[..]}`); empty lines and lines starting with
//! `#` are skipped. The label column is then `-` in text and `null` in JSON.
//!
//! `logits` are the network's outputs (the sigmoid output for `xor`), printed as the shortest
//! decimal that reads back as the same `f32`; a non-finite one is `NaN`/`inf` in text and
//! `null` in JSON.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
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
    /// Samples to predict instead of the test set: a file of CSV or JSON lines, `-` for stdin.
    pub input: Option<PathBuf>,
}

/// The values of one input line: CSV, or a JSON array (nested or inside an object).
///
/// # Errors
/// A value that is not a number, or a JSON line without an array.
pub fn parse_line(line: &str) -> Result<Vec<f32>> {
    let line = line.trim();
    let list = if line.starts_with('[') || line.starts_with('{') {
        let (Some(a), Some(b)) = (line.find('['), line.rfind(']')) else { bail!("no JSON array of numbers") };
        line[a..=b].replace(['[', ']'], " ")
    } else {
        line.to_owned()
    };
    list.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| v.parse::<f32>().map_err(|_| anyhow::anyhow!("{v:?} is not a number")))
        .collect()
}

/// Runs network `net` on every sample of `opts.input` and writes one line per sample.
fn predict_input<M: Layer>(
    net: &M,
    input: &std::path::Path,
    json: bool,
    class: impl Fn(&M::Output) -> usize,
    out: &mut dyn Write,
) -> Result<usize> {
    let text = if input.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("cannot read the samples from stdin")?;
        text
    } else {
        std::fs::read_to_string(input).with_context(|| format!("cannot read samples from {}", input.display()))?
    };
    let shown = input.display();
    let mut x: Box<M::Input> = Box::new(M::Input::ZERO);
    let mut acts: Box<M::Acts> = Box::new(M::Acts::ZERO);
    let mut y: Box<M::Output> = Box::new(M::Output::ZERO);
    let want = <M::Input as Tensor>::LEN;
    if !json {
        writeln!(out, "# index predicted label logits...")?;
    }
    let mut index = 0;
    for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l)) {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let values = parse_line(line).with_context(|| format!("{shown} line {number}"))?;
        if values.len() != want {
            bail!("{shown} line {number}: {} values, the model takes {want}", values.len());
        }
        if let Some(k) = values.iter().position(|v| !v.is_finite()) {
            bail!("{shown} line {number}: value {} is not finite", k + 1);
        }
        x.flat_mut().copy_from_slice(&values);
        net.predict(&x, &mut acts, &mut y);
        let outputs: Vec<String> = y.flat().iter().map(|&v| number_text(v, json)).collect();
        let predicted = class(&y);
        if json {
            writeln!(
                out,
                "{{\"index\":{index},\"predicted\":{predicted},\"label\":null,\"logits\":[{}]}}",
                outputs.join(",")
            )?;
        } else {
            writeln!(out, "{index} {predicted} - {}", outputs.join(" "))?;
        }
        index += 1;
    }
    out.flush()?;
    Ok(index)
}

fn number_text(v: f32, json: bool) -> String {
    if json && !v.is_finite() { "null".to_owned() } else { v.to_string() }
}

/// Loads the weights of `opts` into network `M`, runs every sample of `test` and writes one
/// line per sample to `out`; `label` and `class` turn a target and an output into class ids.
/// Returns the evaluation of the same pass (as `eval` computes it). With `opts.input` the
/// samples of that file are run instead (no labels: the evaluation's loss and accuracy are NaN).
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
    if let Some(input) = &opts.input {
        let n = predict_input(&*net, input, opts.json, class, out)?;
        return Ok(Eval { loss: f32::NAN, accuracy: f32::NAN, correct: 0, samples: n });
    }
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
        let values: Vec<String> = y.flat().iter().map(|&v| number_text(v, opts.json)).collect();
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
