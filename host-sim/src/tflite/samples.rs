//! `predict model.tflite --input FILE`: samples in, one line each, outputs out, one line each.
//!
//! A sample is the input tensor's values as a JSON array (nested arrays are flattened, so
//! `[[1, 2], [3, 4]]` is four values) or comma-separated: integers in -128..=127 for an int8
//! input, numbers for a float32 one. Empty lines and lines starting with `#` are skipped.
//! Each output line is a JSON array of the output tensor's values in the model's own type:
//! integers for int8, the shortest decimal that reads back as the same `f32` for float32 (a
//! non-finite value is `null`); a model with several outputs prints an array of arrays.
//!
//! ```
//! use tinytrain_sim::tflite::{DType, Data, samples};
//! assert_eq!(samples::parse_sample("[[1, -2], [3, 4]]", DType::I8, 4).unwrap(), Data::I8(vec![1, -2, 3, 4]));
//! assert!(samples::parse_sample("[300]", DType::I8, 1).is_err());
//! assert_eq!(samples::output_json(&Data::F32(vec![0.5, f32::NAN])), "[0.5,null]");
//! ```

use std::io::Write;

use anyhow::{Context, Result, bail};

use super::graph::{DType, Data};
use super::interp::Interpreter;

/// The values of one sample line for an input of `dtype` with `len` elements.
///
/// # Errors
/// A value that is not a number (an integer in int8's range, for int8), or the wrong count.
pub fn parse_sample(line: &str, dtype: DType, len: usize) -> Result<Data> {
    let text = line.trim();
    let text = if text.starts_with('[') {
        if !text.ends_with(']') || text.matches('[').count() != text.matches(']').count() {
            bail!("unbalanced brackets");
        }
        text.replace(['[', ']'], " ")
    } else {
        text.to_owned()
    };
    let values: Vec<&str> = text.split(',').map(str::trim).filter(|v| !v.is_empty()).collect();
    if values.len() != len {
        bail!("{} values; the input takes {len}", values.len());
    }
    let show = |v: &str| v.chars().take(20).collect::<String>();
    Ok(match dtype {
        DType::I8 => Data::I8(
            values
                .iter()
                .map(|v| match v.parse::<i64>() {
                    Ok(n) => i8::try_from(n).map_err(|_| anyhow::anyhow!("{n} is outside int8 (-128..=127)")),
                    Err(_) => bail!("{:?} is not an integer", show(v)),
                })
                .collect::<Result<_>>()?,
        ),
        DType::F32 => Data::F32(
            values
                .iter()
                .map(|v| match v.parse::<f32>() {
                    Ok(x) => Ok(x),
                    Err(_) => bail!("{:?} is not a number", show(v)),
                })
                .collect::<Result<_>>()?,
        ),
        other => bail!("tinytrain reads int8 or float32 inputs, not {other}"),
    })
}

/// One output tensor as a JSON array.
#[must_use]
pub fn output_json(d: &Data) -> String {
    let items: Vec<String> = match d {
        Data::I8(v) => v.iter().map(ToString::to_string).collect(),
        Data::I32(v) => v.iter().map(ToString::to_string).collect(),
        Data::I64(v) => v.iter().map(ToString::to_string).collect(),
        Data::F32(v) => v.iter().map(|x| if x.is_finite() { format!("{x:?}") } else { "null".to_owned() }).collect(),
    };
    format!("[{}]", items.join(","))
}

/// Runs every sample of `text` and writes one output line per sample; returns the number of
/// samples.
///
/// # Errors
/// A sample that does not parse or does not fit the input (with its line number), or a model
/// with more than one input.
pub fn predict(interpreter: &Interpreter<'_>, text: &str, out: &mut dyn Write) -> Result<usize> {
    let g = interpreter.graph();
    let [input] = g.inputs[..] else { bail!("the model has {} inputs; predict feeds models with one", g.inputs.len()) };
    let t = &g.tensors[input];
    let mut count = 0;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let x = parse_sample(line, t.dtype, t.len())
            .with_context(|| format!("line {}: input {} {}", n + 1, t.name, t.type_and_shape()))?;
        let y = interpreter.run(&[x]).with_context(|| format!("line {}", n + 1))?;
        let text = match y.as_slice() {
            [one] => output_json(one),
            many => format!("[{}]", many.iter().map(output_json).collect::<Vec<_>>().join(",")),
        };
        writeln!(out, "{text}")?;
        count += 1;
    }
    Ok(count)
}
