//! Picks the board's `memory.x` and bakes the digits data set and a slice of MNIST into flash.
//!
//! The shipped IDX files (`../data/digits-*.gz`) are decompressed and packed with the app's
//! own packer (a non-zero mask and one nibble per non-zero pixel, see
//! `tinytrain_firmware_app::digits`) into `OUT_DIR/digits-{train,test}.ttdp`, which
//! `src/lib.rs` includes. The first `CNN_TRAIN_IMAGES` and `CNN_TEST_IMAGES` images of the
//! shipped MNIST subset (`../data/mnist8k-train-*`, `../data/mnist2k-test-*`) are packed the
//! same way (a non-zero mask and one byte per non-zero pixel, `tinytrain_firmware_app::mnist`)
//! into `OUT_DIR/mnist-{train,test}.ttmp`; only the `qemu_cnn` binary links them. The fine-tuning
//! stream (`finetune::STREAM_IMAGES` training images from `finetune::STREAM_FIRST`) and test
//! slice go to `OUT_DIR/finetune-{stream,test}.ttmp` for the `qemu_finetune*` binaries. The host simulator packs the same files with the same code, so both
//! train on the same bytes.

use std::env;
use std::error::Error;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use tinytrain_firmware_app::digits::{idx_payload, pack, packed_len};
use tinytrain_firmware_app::{
    CNN_TEST_IMAGES, CNN_TRAIN_IMAGES, WAVES_TEST_SIGNALS, WAVES_TRAIN_SIGNALS, finetune, mnist, waves,
};

fn gunzip(path: &Path) -> Result<Vec<u8>, Box<dyn Error>> {
    let mut bytes = Vec::new();
    GzDecoder::new(fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes)
}

fn pack_split(data: &Path, split: &str, out: &Path) -> Result<(), Box<dyn Error>> {
    let images_path = data.join(format!("digits-{split}-images-idx3-ubyte.gz"));
    let labels_path = data.join(format!("digits-{split}-labels-idx1-ubyte.gz"));
    println!("cargo:rerun-if-changed={}", images_path.display());
    println!("cargo:rerun-if-changed={}", labels_path.display());
    let images = gunzip(&images_path)?;
    let labels = gunzip(&labels_path)?;
    let (pixels, n) = idx_payload(&images, 3).map_err(|e| format!("{}: {e}", images_path.display()))?;
    let (labels, m) = idx_payload(&labels, 1).map_err(|e| format!("{}: {e}", labels_path.display()))?;
    if n != m {
        return Err(format!("digits-{split}: {n} images but {m} labels").into());
    }
    let mut packed = vec![0u8; packed_len(pixels, n)?];
    pack(pixels, labels, &mut packed)?;
    fs::write(out.join(format!("digits-{split}.ttdp")), packed)?;
    Ok(())
}

fn pack_mnist_slice(data: &Path, file: &str, split: &str, count: usize, out: &Path) -> Result<(), Box<dyn Error>> {
    pack_mnist_range(data, file, &format!("mnist-{split}"), 0, count, out)
}

/// Packs images `first..first + count` of `file` into `OUT_DIR/{name}.ttmp`.
fn pack_mnist_range(
    data: &Path,
    file: &str,
    name: &str,
    first: usize,
    count: usize,
    out: &Path,
) -> Result<(), Box<dyn Error>> {
    let images_path = data.join(format!("{file}-images-idx3-ubyte.gz"));
    let labels_path = data.join(format!("{file}-labels-idx1-ubyte.gz"));
    println!("cargo:rerun-if-changed={}", images_path.display());
    println!("cargo:rerun-if-changed={}", labels_path.display());
    let images = gunzip(&images_path)?;
    let labels = gunzip(&labels_path)?;
    let (pixels, n) = idx_payload(&images, 3).map_err(|e| format!("{}: {e}", images_path.display()))?;
    let (labels, m) = idx_payload(&labels, 1).map_err(|e| format!("{}: {e}", labels_path.display()))?;
    if n != m || n < first + count || pixels.len() != n * mnist::PIXELS {
        return Err(format!(
            "{file}: {n} images of {} bytes and {m} labels, need {} of 784",
            pixels.len() / n.max(1),
            first + count
        )
        .into());
    }
    let (pixels, labels) =
        (&pixels[first * mnist::PIXELS..(first + count) * mnist::PIXELS], &labels[first..first + count]);
    let mut packed = vec![0u8; mnist::packed_len(pixels, count)?];
    mnist::pack(pixels, labels, &mut packed)?;
    fs::write(out.join(format!("{name}.ttmp")), packed)?;
    Ok(())
}

fn pack_waves(data: &Path, split: &str, count: usize, out: &Path) -> Result<(), Box<dyn Error>> {
    let images_path = data.join(format!("waves-{split}-images-idx3-ubyte.gz"));
    let labels_path = data.join(format!("waves-{split}-labels-idx1-ubyte.gz"));
    println!("cargo:rerun-if-changed={}", images_path.display());
    println!("cargo:rerun-if-changed={}", labels_path.display());
    let (images, labels) = (gunzip(&images_path)?, gunzip(&labels_path)?);
    let (signals, n) = idx_payload(&images, 3).map_err(|e| format!("{}: {e}", images_path.display()))?;
    let (labels, m) = idx_payload(&labels, 1).map_err(|e| format!("{}: {e}", labels_path.display()))?;
    if n != m || n < count || signals.len() != n * waves::SAMPLES {
        return Err(format!("waves-{split}: {n} signals and {m} labels, need {count} of {}", waves::SAMPLES).into());
    }
    let mut packed = vec![0u8; waves::packed_len(count)];
    waves::pack(&signals[..count * waves::SAMPLES], &labels[..count], &mut packed)?;
    fs::write(out.join(format!("waves-{split}.ttwv")), packed)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let out = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR not set")?);
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR not set")?);

    let qemu = env::var_os("CARGO_FEATURE_QEMU").is_some();
    let stm32 = env::var_os("CARGO_FEATURE_STM32F411").is_some();
    if qemu && stm32 {
        return Err("features `qemu` and `stm32f411` are exclusive: build the STM32F411 binary with \
                    `--no-default-features --features stm32f411`"
            .into());
    }
    let memory = if stm32 { "memory-stm32f411.x" } else { "memory.x" };
    fs::copy(root.join(memory), out.join("memory.x"))?;
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=memory-stm32f411.x");
    println!("cargo:rerun-if-changed=build.rs");

    let data = root.join("..").join("data");
    pack_split(&data, "train", &out)?;
    pack_split(&data, "test", &out)?;
    pack_mnist_slice(&data, "mnist8k-train", "train", CNN_TRAIN_IMAGES, &out)?;
    pack_mnist_slice(&data, "mnist2k-test", "test", CNN_TEST_IMAGES, &out)?;
    let (first, stream, test) = (finetune::STREAM_FIRST, finetune::STREAM_IMAGES, finetune::TEST_IMAGES);
    pack_mnist_range(&data, "mnist8k-train", "finetune-stream", first, stream, &out)?;
    pack_mnist_range(&data, "mnist2k-test", "finetune-test", 0, test, &out)?;
    pack_waves(&data, "train", WAVES_TRAIN_SIGNALS, &out)?;
    pack_waves(&data, "test", WAVES_TEST_SIGNALS, &out)?;
    Ok(())
}
