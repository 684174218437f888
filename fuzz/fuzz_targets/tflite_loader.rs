//! Any bytes given to the `.tflite` loader: an error with a one-line message, never a panic. A
//! graph that loads is prepared and, if small, run once on zeros, which must not panic either.
//! `.ci/fuzz` seeds the corpus with the small fixture models.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinytrain_sim::tflite::{self, DType, Data, Interpreter};

fuzz_target!(|data: &[u8]| {
    let graph = match tflite::load(data) {
        Ok(g) => g,
        Err(e) => {
            assert!(!format!("{e:#}").contains('\n'));
            return;
        }
    };
    let _ = tflite::summary(&graph, "fuzz");
    let Ok(interpreter) = Interpreter::new(&graph) else { return };
    let activations: usize = graph.tensors.iter().filter(|t| !t.is_const()).map(tflite::Tensor::bytes).sum();
    if tflite::macs(&graph) > 2_000_000 || activations > 4 << 20 {
        return;
    }
    let inputs: Vec<Data> = graph
        .inputs
        .iter()
        .map(|&i| match graph.tensors[i].dtype {
            DType::F32 => Data::F32(vec![0.0; graph.tensors[i].len()]),
            _ => Data::I8(vec![0; graph.tensors[i].len()]),
        })
        .collect();
    if let Err(e) = interpreter.run(&inputs) {
        assert!(!format!("{e:#}").contains('\n'));
    }
});
