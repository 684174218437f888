//! The command line: misuse is one clear line on stderr and a non-zero exit, never a panic;
//! `train` and `eval` end with the accuracy line; saved weights evaluate to the same accuracy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{scratch, sim};

#[test]
fn unknown_model() {
    let run = sim(&["train", "resnet-152"]);
    run.assert_one_line_error("unknown model");
    assert!(run.stderr.contains("digits-mlp"), "the message lists the models: {}", run.stderr);
    assert_eq!(run.code, Some(2));
}

#[test]
fn bad_numbers() {
    sim(&["train", "xor", "--lr", "fast"]).assert_one_line_error("--lr");
    sim(&["train", "xor", "--lr", "-0.1"]).assert_one_line_error("positive");
    sim(&["train", "xor", "--batch", "0"]).assert_one_line_error("at least 1");
    sim(&["train", "xor", "--epochs", "many"]).assert_one_line_error("--epochs");
    sim(&["train", "xor", "--momentum", "1.5"]).assert_one_line_error("[0, 1)");
    sim(&["train", "xor", "--optimizer", "lbfgs"]).assert_one_line_error("lbfgs");
}

#[test]
fn arguments_that_do_not_go_together() {
    let run = sim(&["train", "digits-mlp", "--optimizer", "adam", "--momentum", "0.5"]);
    run.assert_one_line_error("--momentum");
    assert_eq!(run.code, Some(1));
}

#[test]
fn missing_arguments_and_subcommands() {
    sim(&["eval", "digits-mlp"]).assert_one_line_error("--weights");
    sim(&["fly"]).assert_one_line_error("fly");
}

#[test]
fn missing_weights_file() {
    let run = sim(&["eval", "xor", "--weights", "/nonexistent/dir/w.bin"]);
    run.assert_one_line_error("cannot read weights file /nonexistent/dir/w.bin");
}

#[test]
fn corrupt_and_foreign_weights_files() {
    let dir = scratch("cli-corrupt-weights");
    let path = dir.join("xor.bin");
    let p = path.to_str().unwrap();
    let run = sim(&["train", "xor", "--epochs", "5", "--save", p]);
    assert!(run.ok, "{}", run.stderr);

    let mut bytes = std::fs::read(&path).unwrap();
    bytes[30] ^= 0x40;
    let corrupt = dir.join("corrupt.bin");
    std::fs::write(&corrupt, &bytes).unwrap();
    let run = sim(&["eval", "xor", "--weights", corrupt.to_str().unwrap()]);
    run.assert_one_line_error("checksum mismatch");
    assert!(run.stderr.contains("corrupt.bin"), "{}", run.stderr);

    let cut = dir.join("cut.bin");
    std::fs::write(&cut, &bytes[..20]).unwrap();
    sim(&["eval", "xor", "--weights", cut.to_str().unwrap()]).assert_one_line_error("truncated");

    let junk = dir.join("junk.bin");
    std::fs::write(&junk, b"these are not the weights you are looking for").unwrap();
    sim(&["eval", "xor", "--weights", junk.to_str().unwrap()]).assert_one_line_error("bad magic");

    let run = sim(&["eval", "digits-mlp", "--weights", p]);
    run.assert_one_line_error("different network");
}

#[test]
fn unwritable_save_path() {
    let run = sim(&["train", "xor", "--epochs", "2", "--save", "/nonexistent/dir/w.bin"]);
    run.assert_one_line_error("cannot write /nonexistent/dir/w.bin");
}

#[test]
fn train_xor_converges() {
    let run = sim(&["train", "xor"]);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.last_line(), "test accuracy 1.0000 (4/4)", "{}", run.stdout);
    let loss: f32 = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("test loss "))
        .and_then(|v| v.parse().ok())
        .expect("a test loss line");
    assert!(loss < 0.01, "final MSE {loss}");
    assert_eq!(run.stdout.lines().filter(|l| l.starts_with("epoch ")).count(), 11, "every 100th epoch and the first");
}

#[test]
fn train_then_eval_print_the_same_accuracy() {
    let dir = scratch("cli-roundtrip");
    let weights = dir.join("digits.bin");
    let w = weights.to_str().unwrap();
    let train = sim(&["train", "digits-mlp", "--save", w]);
    assert!(train.ok, "{}", train.stderr);
    assert_eq!(train.stdout.lines().filter(|l| l.starts_with("epoch ")).count(), 30);
    assert!(train.stdout.contains("samples/s"), "{}", train.stdout);
    assert!(train.stdout.contains("dead_relu "), "{}", train.stdout);
    let eval = sim(&["eval", "digits-mlp", "--weights", w]);
    assert!(eval.ok, "{}", eval.stderr);
    assert!(train.last_line().starts_with("test accuracy 0."), "{}", train.stdout);
    assert_eq!(train.last_line(), eval.last_line());
}

#[test]
fn early_stopping_restores_the_best_weights() {
    let dir = scratch("cli-patience");
    let weights = dir.join("digits.bin");
    let w = weights.to_str().unwrap();
    let run = sim(&["train", "digits-mlp", "--epochs", "60", "--lr", "0.01", "--patience", "3", "--save", w]);
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stdout.contains("early stopping after epoch"), "{}", run.stdout);
    assert!(run.stdout.contains("restored the weights of epoch"), "{}", run.stdout);
    let eval = sim(&["eval", "digits-mlp", "--weights", w]);
    assert_eq!(run.last_line(), eval.last_line());
}

#[test]
fn every_optimizer_runs() {
    for opt in ["sgd", "momentum", "nesterov", "adam", "rmsprop", "adadelta"] {
        for keras in [false, true] {
            let mut args = vec!["train", "digits-mlp", "--epochs", "2", "--optimizer", opt, "--decay", "1e-4"];
            if keras {
                args.push("--keras");
            }
            let run = sim(&args);
            assert!(run.ok, "{opt}: {}", run.stderr);
            assert!(run.last_line().starts_with("test accuracy "), "{opt}: {}", run.stdout);
        }
    }
}

#[test]
fn summary_prints_the_budget() {
    let run = sim(&["summary", "digits-mlp"]);
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stdout.contains("Total params: 2,410"), "{}", run.stdout);
    assert!(run.stdout.contains("training (Adam)"), "{}", run.stdout);
    let run = sim(&["summary", "mnist-mlp", "--optimizer", "sgd"]);
    assert!(run.stdout.contains("Total params: 101,770") && run.stdout.contains("training (SGD)"), "{}", run.stdout);
}

#[test]
fn divergence_is_reported_and_an_unrecovered_run_fails() {
    let dir = scratch("cli-divergence");
    let weights = dir.join("w.ttw");
    std::fs::write(&weights, b"the user's previous weights").unwrap();
    let w = weights.to_str().unwrap();
    let log = dir.join("log.csv");
    let args = ["train", "digits-mlp", "--optimizer", "sgd", "--lr", "1e30", "--epochs", "2", "--save", w];
    let run = sim(&[&args[..], &["--log", log.to_str().unwrap()]].concat());
    assert!(run.stdout.contains("weights restored from the snapshot"), "{}", run.stdout);
    assert!(run.stdout.contains("rollbacks"), "{}", run.stdout);
    // Training ran to its end and reports, then says it never recovered, and saved nothing.
    assert!(run.last_line().starts_with("test accuracy "), "{}", run.stdout);
    run.assert_one_line_error("training diverged and never recovered");
    assert!(run.stderr.contains("not saved"), "{}", run.stderr);
    assert_eq!(std::fs::read(&weights).unwrap(), b"the user's previous weights");
    // The log of the failed run is kept: it is what tells what happened.
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 3);
}

#[test]
fn a_finite_explosion_is_caught_and_fails_the_run() {
    // Adam at 1e10 keeps every weight finite while the loss reaches 1e21.
    let run = sim(&["train", "digits-mlp", "--optimizer", "adam", "--lr", "1e10", "--epochs", "3"]);
    assert!(run.stdout.contains("exploded over its running value"), "{}", run.stdout);
    run.assert_one_line_error("training diverged and never recovered");
}

// Never lose a user's work: outputs are checked before any work, written whole or not at all.

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/pytorch").join(name)
}

#[test]
fn save_into_a_missing_directory_fails_before_training() {
    let dir = scratch("cli-save-missing-dir");
    let target = dir.join("no-such-dir").join("w.ttw");
    let start = std::time::Instant::now();
    // A million epochs would take hours: the refusal has to come before the first one.
    let run = sim(&["train", "digits-mlp", "--epochs", "1000000", "--save", target.to_str().unwrap()]);
    run.assert_one_line_error("does not exist");
    assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
    assert!(!run.stdout.contains("epoch "), "{}", run.stdout);
}

#[test]
fn save_onto_a_directory_or_a_dataset_file_is_refused() {
    let dir = scratch("cli-save-onto-dir");
    let run = sim(&["train", "digits-mlp", "--epochs", "1000000", "--save", dir.to_str().unwrap()]);
    run.assert_one_line_error("is a directory");
    assert!(dir.is_dir());

    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    for entry in std::fs::read_dir(common::data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_str().unwrap().starts_with("digits-") {
            std::fs::copy(&path, data.join(path.file_name().unwrap())).unwrap();
        }
    }
    let images = data.join("digits-train-images-idx3-ubyte.gz");
    let before = std::fs::read(&images).unwrap();
    let args = ["train", "digits-mlp", "--epochs", "1000000", "--data", data.to_str().unwrap(), "--save"];
    let run = sim(&[&args[..], &[images.to_str().unwrap()]].concat());
    run.assert_one_line_error("is the input");
    assert_eq!(std::fs::read(&images).unwrap(), before);
}

#[cfg(target_os = "linux")]
#[test]
fn save_into_a_directory_that_takes_no_files_is_refused() {
    // /proc refuses new files even to root, where permission bits would not.
    let run = sim(&["train", "digits-mlp", "--epochs", "1000000", "--save", "/proc/w.ttw"]);
    run.assert_one_line_error("cannot write /proc/w.ttw");
    assert!(!run.stdout.contains("epoch "), "{}", run.stdout);
}

#[test]
fn export_and_import_onto_their_own_input_are_refused() {
    let dir = scratch("cli-own-input");
    let weights = dir.join("xor.ttw");
    let w = weights.to_str().unwrap();
    assert!(sim(&["train", "xor", "--epochs", "2", "--save", w]).ok);
    let before = std::fs::read(&weights).unwrap();
    sim(&["export", "xor", "--weights", w, "--to", w]).assert_one_line_error("is the input");
    let dotted = dir.join(".").join("xor.ttw");
    sim(&["export", "xor", "--weights", w, "--to", dotted.to_str().unwrap()]).assert_one_line_error("is the input");
    assert_eq!(std::fs::read(&weights).unwrap(), before);

    let tensors = dir.join("digits.safetensors");
    std::fs::copy(fixture("digits-mlp.safetensors"), &tensors).unwrap();
    let before = std::fs::read(&tensors).unwrap();
    let t = tensors.to_str().unwrap();
    sim(&["import", "digits-mlp", t, "--to", t]).assert_one_line_error("is the input");
    sim(&["import", "digits-mlp", t, "--rust", t]).assert_one_line_error("is the input");
    let same = dir.join("same.out");
    let s = same.to_str().unwrap();
    sim(&["import", "digits-mlp", t, "--to", s, "--rust", s]).assert_one_line_error("also the output");
    assert_eq!(std::fs::read(&tensors).unwrap(), before);
    assert!(!same.exists());
}

#[test]
fn import_with_a_bad_rust_path_writes_nothing() {
    let dir = scratch("cli-import-bad-rust");
    let to = dir.join("d.ttw");
    let rust = dir.join("bad").join("x.rs");
    let file = fixture("digits-mlp.safetensors");
    let args = ["import", "digits-mlp", file.to_str().unwrap(), "--to", to.to_str().unwrap()];
    sim(&[&args[..], &["--rust", rust.to_str().unwrap()]].concat()).assert_one_line_error("does not exist");
    assert!(!to.exists(), "d.ttw must not be written when the command fails");

    // An existing file stays as it was, and nothing else is left in the directory.
    std::fs::write(&to, b"the user's previous weights").unwrap();
    sim(&[&args[..], &["--rust", rust.to_str().unwrap()]].concat()).assert_one_line_error("does not exist");
    assert_eq!(std::fs::read(&to).unwrap(), b"the user's previous weights");
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["d.ttw"]);

    // And a good command replaces it whole.
    let good = dir.join("x.rs");
    let run = sim(&[&args[..], &["--rust", good.to_str().unwrap()]].concat());
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(std::fs::read(&to).unwrap().len(), 24 + 4 * 2410 + 4);
}

#[test]
fn an_empty_data_directory_falls_back_to_the_shipped_data() {
    // mkdir -p p/data && cd p && tinytrain-sim train digits-mlp
    let dir = scratch("cli-empty-data-dir");
    std::fs::create_dir(dir.join("data")).unwrap();
    let run = common::sim_in(&dir, &["train", "digits-mlp", "--epochs", "1"]);
    assert!(run.ok, "{}", run.stderr);
    assert!(run.last_line().starts_with("test accuracy 0."), "{}", run.stdout);

    // A ./data that holds the files is used.
    let data = dir.join("data");
    for name in ["train-images", "train-labels", "test-images", "test-labels"] {
        let kind = if name.ends_with("images") { "idx3" } else { "idx1" };
        let file = format!("digits-{name}-{kind}-ubyte.gz");
        std::fs::copy(common::data_dir().join(&file), data.join(&file)).unwrap();
    }
    let run = common::sim_in(&dir, &["train", "digits-mlp", "--epochs", "1"]);
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stdout.contains("from data/digits-train-images-idx3-ubyte.gz"), "{}", run.stdout);
}

/// `bytes` with the weights file's CRC-32 recomputed, as a file written that way would be.
fn with_crc(mut bytes: Vec<u8>) -> Vec<u8> {
    let n = bytes.len();
    let crc = tinytrain::checkpoint::CRC32.checksum(&bytes[..n - 4]);
    bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

#[test]
fn each_bad_header_field_is_named() {
    let dir = scratch("cli-header-fields");
    let weights = dir.join("digits.ttw");
    assert!(sim(&["train", "digits-mlp", "--epochs", "1", "--save", weights.to_str().unwrap()]).ok);
    let file = std::fs::read(&weights).unwrap();
    let cases: [(usize, &[u8], &str); 7] = [
        (0, b"TTWX", "bad magic number"),
        (4, &3u16.to_le_bytes(), "unsupported format version 3"),
        (6, &28u16.to_le_bytes(), "the header length field is 28, expected 24"),
        (8, &0xDEAD_BEEFu32.to_le_bytes(), "different network (fingerprint 0xdeadbeef"),
        (12, &2411u32.to_le_bytes(), "wrong parameter count: file has 2411, network has 2410"),
        (16, &9644u32.to_le_bytes(), "the payload length field is 9644, expected 9640"),
        (20, &7u32.to_le_bytes(), "the reserved field is 7, expected 0"),
    ];
    for (at, value, message) in cases {
        let mut bad = file.clone();
        bad[at..at + value.len()].copy_from_slice(value);
        let path = dir.join(format!("field-{at}.ttw"));
        std::fs::write(&path, with_crc(bad)).unwrap();
        let run = sim(&["eval", "digits-mlp", "--weights", path.to_str().unwrap()]);
        run.assert_one_line_error(message);
    }
}

#[test]
fn train_log_is_a_csv_row_per_epoch() {
    let dir = scratch("cli-csv-log");
    let log = dir.join("log.csv");
    let l = log.to_str().unwrap();
    let run = sim(&["train", "digits-mlp", "--epochs", "3", "--log", l]);
    assert!(run.ok, "{}", run.stderr);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "epoch,loss,accuracy,val_loss,val_accuracy,lr,dead_relu_1");
    assert_eq!(lines.len(), 4, "{text}");
    for (i, row) in lines[1..].iter().enumerate() {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells.len(), 7, "{row}");
        assert_eq!(cells[0], (i + 1).to_string());
        assert!(cells[1..].iter().all(|c| c.parse::<f32>().is_ok_and(f32::is_finite)), "{row}");
    }
    // The epoch lines print the same numbers, rounded.
    let last: Vec<f32> = lines[3].split(',').map(|c| c.parse().unwrap()).collect();
    assert!(run.stdout.contains(&format!("epoch 3/3  loss {:.4}  acc {:.4}", last[1], last[2])), "{}", run.stdout);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file is left");

    // xor has no ReLU: no dead_relu column. Every epoch is a row, whatever --log-every says.
    let run = sim(&["train", "xor", "--epochs", "5", "--log-every", "100", "--log", l]);
    assert!(run.ok, "{}", run.stderr);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with("epoch,loss,accuracy,val_loss,val_accuracy,lr\n1,"), "{text}");
    assert_eq!(text.lines().count(), 6);

    // Checked before training like every output.
    let missing = dir.join("missing").join("log.csv");
    let run = sim(&["train", "digits-mlp", "--epochs", "1000000", "--log", missing.to_str().unwrap()]);
    run.assert_one_line_error("does not exist");
    sim(&["train", "xor", "--log", l, "--save", l]).assert_one_line_error("also the output");
}

#[test]
fn predict_reads_samples_as_csv_or_json_lines() {
    let dir = scratch("cli-predict-input");
    let weights = dir.join("xor.ttw");
    let w = weights.to_str().unwrap();
    assert!(sim(&["train", "xor", "--save", w]).ok);
    // The same four samples as the built-in set, in CSV and in JSON lines.
    let csv = dir.join("xor.csv");
    std::fs::write(&csv, "# x1,x2\n0,0\n0,1\n\n1,0\n1.0, 1.0\n").unwrap();
    let json = dir.join("xor.jsonl");
    std::fs::write(&json, "[0, 0]\n[0, 1]\n{\"input\": [1, 0]}\n[[1], [1]]\n").unwrap();
    let builtin = sim(&["predict", "xor", "--weights", w]);
    assert!(builtin.ok, "{}", builtin.stderr);
    // Same predictions and outputs; the label column is unknown.
    let expected: Vec<String> = builtin
        .stdout
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            format!("{} {} - {}", f[0], f[1], f[3..].join(" "))
        })
        .collect();
    for file in [&csv, &json] {
        let run = sim(&["predict", "xor", "--weights", w, "--input", file.to_str().unwrap()]);
        assert!(run.ok, "{}", run.stderr);
        let lines: Vec<&str> = run.stdout.lines().skip(1).collect();
        assert_eq!(lines, expected, "{}", run.stdout);
    }
    let run = sim(&["predict", "xor", "--weights", w, "--input", csv.to_str().unwrap(), "--json"]);
    assert!(run.stdout.lines().all(|l| l.contains("\"label\":null")), "{}", run.stdout);
    assert_eq!(run.stdout.lines().count(), 4);

    // From stdin.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tinytrain-sim"))
        .args(["predict", "xor", "--weights", w, "--input", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"1,0\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let line = String::from_utf8_lossy(&output.stdout).lines().nth(1).unwrap().to_owned();
    assert_eq!(line, format!("0 {}", expected[2].split_once(' ').unwrap().1));

    // Bad lines are named.
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "0,1\n0,1,1\n").unwrap();
    sim(&["predict", "xor", "--weights", w, "--input", bad.to_str().unwrap()])
        .assert_one_line_error("line 2: 3 values, the model takes 2");
    std::fs::write(&bad, "0,one\n").unwrap();
    sim(&["predict", "xor", "--weights", w, "--input", bad.to_str().unwrap()])
        .assert_one_line_error("line 1: \"one\" is not a number");
    std::fs::write(&bad, "0,NaN\n").unwrap();
    sim(&["predict", "xor", "--weights", w, "--input", bad.to_str().unwrap()]).assert_one_line_error("not finite");
}

#[test]
fn a_regression_reports_mse_and_mae_not_accuracy() {
    let dir = scratch("cli-regression");
    let weights = dir.join("sine.ttw");
    let w = weights.to_str().unwrap();
    let train = sim(&["train", "sine", "--epochs", "20", "--save", w]);
    assert!(train.ok, "{}", train.stderr);
    let last = train.last_line();
    assert!(last.starts_with("test mse ") && last.contains(" mae ") && last.ends_with("(200 samples)"), "{last}");
    assert!(!train.stdout.contains("test accuracy"), "{}", train.stdout);
    let mse: f32 = last.split(' ').nth(2).unwrap().parse().unwrap();
    let mae: f32 = last.split(' ').nth(4).unwrap().parse().unwrap();
    assert!(mse > 0.0 && mae > 0.0 && mae * mae <= mse * 1.0001, "MAE² ≤ MSE: {mse} {mae}");
    let eval = sim(&["eval", "sine", "--weights", w]);
    assert_eq!(eval.last_line(), last);
}
