fn main() {
    for name in ["hello_world_int8","hello_world_float","micro_speech_quantized","person_detect","own_cnn","own_mlp_add","own_float_io"] {
        let p = format!("{}/../tests/fixtures/tflite/{name}.tflite", env!("CARGO_MANIFEST_DIR"));
        let b = std::fs::read(&p).unwrap();
        match tinytrain_sim::tflite::load(&b) {
            Ok(g) => print!("{}", tinytrain_sim::tflite::summary(&g, name)),
            Err(e) => println!("{name}: ERROR {e:#}"),
        }
    }
}
