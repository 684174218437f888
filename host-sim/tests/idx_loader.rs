//! The IDX loader refuses bad files with a message that names the file and the problem, and
//! the command line reports them in one line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{gzip, idx, scratch, sim};
use tinytrain_sim::datasets::{self, DatasetKind, Split};
use tinytrain_sim::idx::{self as loader, IMAGES_MAGIC, LABELS_MAGIC};

/// Writes a digits dataset (8x8) into `dir` under the shipped names, gzipped, with `n` images.
fn write_digits(dir: &Path, n: u32) {
    for split in ["train", "test"] {
        let pixels: Vec<u8> = common::noise(64 * n as usize, 7).iter().map(|p| p % 17).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let images = gzip(&idx(IMAGES_MAGIC, &[n, 8, 8], &pixels));
        std::fs::write(dir.join(format!("digits-{split}-images-idx3-ubyte.gz")), images).unwrap();
        let labels = gzip(&idx(LABELS_MAGIC, &[n], &labels));
        std::fs::write(dir.join(format!("digits-{split}-labels-idx1-ubyte.gz")), labels).unwrap();
    }
}

fn error_of(r: anyhow::Result<impl std::fmt::Debug>) -> String {
    format!("{:#}", r.unwrap_err())
}

#[test]
fn a_valid_synthetic_set_loads() {
    let dir = scratch("valid");
    write_digits(&dir, 20);
    let data = datasets::load(DatasetKind::Digits, &dir).unwrap();
    assert_eq!((data.train.len(), data.test.len(), data.train.sample_len()), (20, 20, 64));
}

#[test]
fn bad_magic_is_named() {
    let dir = scratch("bad-magic");
    let path = dir.join("images");
    std::fs::write(&path, idx(LABELS_MAGIC, &[2], &[0, 1])).unwrap();
    let msg = error_of(loader::read_images(&path));
    assert!(msg.contains("bad magic number 0x00000801") && msg.contains("0x00000803"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");

    std::fs::write(&path, b"hello world, not an idx file").unwrap();
    let msg = error_of(loader::read_labels(&path, 10));
    assert!(msg.contains("bad magic number") && msg.contains("labels"), "{msg}");
}

#[test]
fn truncated_files_are_named() {
    let dir = scratch("truncated");
    let path = dir.join("images.gz");
    std::fs::write(&path, gzip(&idx(IMAGES_MAGIC, &[3, 8, 8], &[0; 150]))).unwrap();
    let msg = error_of(loader::read_images(&path));
    assert!(msg.contains("truncated") && msg.contains("192") && msg.contains("150"), "{msg}");
    assert!(msg.contains("images.gz"), "{msg}");

    std::fs::write(&path, [0, 0, 8, 3, 0, 0]).unwrap();
    let msg = error_of(loader::read_images(&path));
    assert!(msg.contains("truncated") && msg.contains("header"), "{msg}");

    std::fs::write(&path, idx(IMAGES_MAGIC, &[1, 2, 2], &[0; 5])).unwrap();
    assert!(error_of(loader::read_images(&path)).contains("1 trailing bytes"));
}

#[test]
fn count_mismatch_names_both_files() {
    let dir = scratch("count");
    let images = dir.join("i.gz");
    let labels = dir.join("l.gz");
    std::fs::write(&images, gzip(&idx(IMAGES_MAGIC, &[3, 8, 8], &[0; 192]))).unwrap();
    std::fs::write(&labels, gzip(&idx(LABELS_MAGIC, &[2], &[0, 1]))).unwrap();
    let msg = error_of(loader::read_pair(&images, &labels, 10));
    assert!(msg.contains("3 images") && msg.contains("2 labels"), "{msg}");
    assert!(msg.contains("i.gz") && msg.contains("l.gz"), "{msg}");
}

#[test]
fn label_out_of_range_is_named() {
    let dir = scratch("label");
    let path = dir.join("labels");
    std::fs::write(&path, idx(LABELS_MAGIC, &[4], &[1, 2, 10, 3])).unwrap();
    let msg = error_of(loader::read_labels(&path, 10));
    assert!(msg.contains("label 10 at index 2 is out of range"), "{msg}");
}

#[test]
fn corrupt_gzip_is_named() {
    let dir = scratch("gzip");
    let path = dir.join("images.gz");
    let mut gz = gzip(&idx(IMAGES_MAGIC, &[2, 8, 8], &common::noise(128, 3)));
    let mid = gz.len() / 2;
    gz[mid] ^= 0xFF;
    gz[mid + 1] ^= 0x55;
    std::fs::write(&path, &gz).unwrap();
    let msg = error_of(loader::read_images(&path));
    assert!(msg.contains("corrupt gzip data") && msg.contains("images.gz"), "{msg}");

    let cut = gzip(&idx(IMAGES_MAGIC, &[2, 8, 8], &[1; 128]));
    std::fs::write(&path, &cut[..cut.len() - 10]).unwrap();
    assert!(error_of(loader::read_images(&path)).contains("corrupt gzip data"));
}

#[test]
fn images_of_the_wrong_size_are_refused() {
    let dir = scratch("size");
    std::fs::write(dir.join("digits-train-images-idx3-ubyte"), idx(IMAGES_MAGIC, &[1, 28, 28], &[0; 784])).unwrap();
    std::fs::write(dir.join("digits-train-labels-idx1-ubyte"), idx(LABELS_MAGIC, &[1], &[0])).unwrap();
    let msg = error_of(datasets::load_split(DatasetKind::Digits, Split::Train, &dir));
    assert!(msg.contains("28x28") && msg.contains("8x8"), "{msg}");
}

#[test]
fn the_command_line_reports_a_bad_dataset_in_one_line() {
    let dir = scratch("cli-bad-data");
    write_digits(&dir, 10);
    let labels = dir.join("digits-train-labels-idx1-ubyte.gz");
    std::fs::write(&labels, gzip(&idx(LABELS_MAGIC, &[10], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 42]))).unwrap();
    let run = sim(&["train", "digits-mlp", "--epochs", "1", "--data", dir.to_str().unwrap()]);
    run.assert_one_line_error("label 42 at index 9 is out of range");
    assert!(run.stderr.contains("digits-train-labels-idx1-ubyte.gz"), "{}", run.stderr);

    let empty = scratch("cli-no-data");
    let run = sim(&["eval", "digits-mlp", "--weights", "w.bin", "--data", empty.to_str().unwrap()]);
    run.assert_one_line_error("no digits test images");
}

#[test]
fn a_synthetic_set_trains_end_to_end() {
    let dir = scratch("cli-synthetic");
    write_digits(&dir, 30);
    let run = sim(&["train", "digits-mlp", "--epochs", "2", "--data", dir.to_str().unwrap()]);
    assert!(run.ok, "{}", run.stderr);
    assert!(run.last_line().starts_with("test accuracy ") && run.last_line().ends_with("/30)"), "{}", run.stdout);
}

/// A gzip stream of `header` followed by `zeros` zero bytes, compressed as it is written.
fn gzip_with_zeros(header: &[u8], zeros: usize) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(header).unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..zeros / chunk.len() {
        enc.write_all(&chunk).unwrap();
    }
    enc.finish().unwrap()
}

#[test]
fn a_gzip_bomb_is_refused_after_its_header() {
    let dir = scratch("gzip-bomb");
    // 175,000,000 images of 28x28: the header declares 137 GB.
    let header = idx(IMAGES_MAGIC, &[175_000_000, 28, 28], &[]);
    let mut bomb = gzip_with_zeros(&header, 64 << 20);
    // Cut the gzip trailer: a loader that inflated past the header would report corrupt data.
    bomb.truncate(bomb.len() - 8);
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    let path = dir.join("digits-train-images-idx3-ubyte.gz");
    std::fs::write(&path, &bomb).unwrap();
    let start = std::time::Instant::now();
    let msg = error_of(loader::read_images(&path));
    let took = start.elapsed();
    assert!(msg.contains("declares 137,200,000,000 bytes") && msg.contains("1 GiB"), "{msg}");
    assert!(msg.contains("175000000 x 28 x 28") && !msg.contains("corrupt"), "{msg}");
    assert!(took.as_millis() < 2000, "took {took:?}");
    // The same through decompress, and on the command line in one line.
    let msg = error_of(loader::decompress(bomb));
    assert!(msg.contains("declares 137,200,000,000 bytes"), "{msg}");
    std::fs::write(dir.join("digits-train-labels-idx1-ubyte.gz"), gzip(&idx(LABELS_MAGIC, &[1], &[0]))).unwrap();
    let run = sim(&["train", "digits-mlp", "--data", dir.to_str().unwrap()]);
    run.assert_one_line_error("1 GiB");
}

#[test]
fn inflation_stops_after_the_declared_data() {
    let dir = scratch("gzip-trailing");
    // 4 bytes declared, 16 MiB of zeros after them.
    let header = idx(IMAGES_MAGIC, &[1, 2, 2], &[]);
    let path = dir.join("images.gz");
    std::fs::write(&path, gzip_with_zeros(&header, 16 << 20)).unwrap();
    let msg = error_of(loader::read_images(&path));
    assert!(msg.contains("more than 65536 trailing bytes after the 4 bytes"), "{msg}");
    std::fs::write(&path, gzip(&idx(IMAGES_MAGIC, &[1, 2, 2], &[0; 7]))).unwrap();
    assert!(error_of(loader::read_images(&path)).contains("3 trailing bytes after the 4 bytes"));
}
