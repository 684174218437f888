//! Finding and loading the image datasets: the shipped digits and MNIST subset, or a full
//! MNIST download.
//!
//! [`load`] looks in one directory for the train and test files of a [`DatasetKind`], under
//! the names the repository ships (`digits-train-images-idx3-ubyte.gz`, ...,
//! `mnist8k-train-...`, `mnist2k-test-...`) and, for MNIST, under the names of the original
//! download (`train-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, with or without `.gz`, and
//! the `train-images.idx3-ubyte` spelling of some mirrors). The shipped names win when both
//! are present. The bytes are owned by the returned [`ImageSet`]s and borrowed by
//! [`tinytrain::data::ByteImages`], which scales them on the fly (digits by 1/16, MNIST by
//! 1/255).
//!
//! ```no_run
//! use tinytrain_sim::datasets::{self, DatasetKind};
//! let data = datasets::load(DatasetKind::Digits, &datasets::default_data_dir()).unwrap();
//! let train = data.train.byte_images(10).unwrap();
//! assert_eq!(data.train.len(), 1437);
//! # let _ = train;
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use tinytrain::data::ByteImages;

use crate::idx;

/// A family of image datasets with its file names and pixel scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetKind {
    /// scikit-learn's 8x8 digits, pixels 0..16 (1437 train / 360 test as shipped).
    Digits,
    /// MNIST 28x28, pixels 0..255: the shipped 8000/2000 subset or the full 60000/10000.
    Mnist,
    /// The synthesised "waves" time series (`tools/make_waves.py`): 10 classes of one
    /// channel of 64 steps, stored as 1x64 IDX images, bytes 0..255 (2000 train / 1000 test).
    Waves,
}

/// The training or the test part of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Training data.
    Train,
    /// Test data (also the validation data during training, as in the baselines).
    Test,
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "training",
            Split::Test => "test",
        })
    }
}

/// The stem of an image file and the stem of its label file; each is tried with and
/// without `.gz`.
type NamePair = (&'static str, &'static str);

const DIGITS_TRAIN: &[NamePair] = &[("digits-train-images-idx3-ubyte", "digits-train-labels-idx1-ubyte")];
const DIGITS_TEST: &[NamePair] = &[("digits-test-images-idx3-ubyte", "digits-test-labels-idx1-ubyte")];
const MNIST_TRAIN: &[NamePair] = &[
    ("mnist8k-train-images-idx3-ubyte", "mnist8k-train-labels-idx1-ubyte"),
    ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("train-images.idx3-ubyte", "train-labels.idx1-ubyte"),
];
const WAVES_TRAIN: &[NamePair] = &[("waves-train-images-idx3-ubyte", "waves-train-labels-idx1-ubyte")];
const WAVES_TEST: &[NamePair] = &[("waves-test-images-idx3-ubyte", "waves-test-labels-idx1-ubyte")];
const MNIST_TEST: &[NamePair] = &[
    ("mnist2k-test-images-idx3-ubyte", "mnist2k-test-labels-idx1-ubyte"),
    ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    ("t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte"),
];

impl DatasetKind {
    /// Name for messages.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Digits => "digits",
            DatasetKind::Mnist => "MNIST",
            DatasetKind::Waves => "waves",
        }
    }

    /// The factor that maps a stored pixel to `[0, 1]`.
    #[must_use]
    pub fn scale(self) -> f32 {
        match self {
            DatasetKind::Digits => 1.0 / 16.0,
            DatasetKind::Mnist | DatasetKind::Waves => 1.0 / 255.0,
        }
    }

    /// Image size as `(rows, cols)`.
    #[must_use]
    pub fn image_shape(self) -> (usize, usize) {
        match self {
            DatasetKind::Digits => (8, 8),
            DatasetKind::Mnist => (28, 28),
            DatasetKind::Waves => (1, 64),
        }
    }

    /// Number of classes.
    #[must_use]
    pub fn classes(self) -> usize {
        10
    }

    fn names(self, split: Split) -> &'static [NamePair] {
        match (self, split) {
            (DatasetKind::Digits, Split::Train) => DIGITS_TRAIN,
            (DatasetKind::Digits, Split::Test) => DIGITS_TEST,
            (DatasetKind::Mnist, Split::Train) => MNIST_TRAIN,
            (DatasetKind::Mnist, Split::Test) => MNIST_TEST,
            (DatasetKind::Waves, Split::Train) => WAVES_TRAIN,
            (DatasetKind::Waves, Split::Test) => WAVES_TEST,
        }
    }
}

/// One split of a dataset, loaded and checked, with the files it came from.
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// The image file.
    pub images_path: PathBuf,
    /// The label file.
    pub labels_path: PathBuf,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// All pixels, image after image.
    pub pixels: Vec<u8>,
    /// One label per image, each below the number of classes.
    pub labels: Vec<u8>,
    /// Factor from a stored pixel to the network's input.
    pub scale: f32,
}

impl ImageSet {
    /// Number of images.
    #[must_use]
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// `true` when there are no images.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image.
    #[must_use]
    pub fn sample_len(&self) -> usize {
        self.rows * self.cols
    }

    /// A [`ByteImages`] view of the set, scaled.
    ///
    /// # Errors
    /// When the set cannot be viewed as images with labels below `classes`.
    pub fn byte_images(&self, classes: usize) -> Result<ByteImages<'_>> {
        ByteImages::new(&self.pixels, &self.labels, self.sample_len(), self.scale, classes)
            .with_context(|| self.images_path.display().to_string())
    }
}

/// The training and test splits of a dataset.
#[derive(Debug, Clone)]
pub struct TrainTest {
    /// Training split.
    pub train: ImageSet,
    /// Test split.
    pub test: ImageSet,
}

/// Finds the image and label files of `split` in `dir`.
///
/// # Errors
/// When no image file is found, or an image file is found without its label file; the
/// message lists the names tried.
pub fn find(kind: DatasetKind, split: Split, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let existing =
        |stem: &str| [format!("{stem}.gz"), stem.to_owned()].into_iter().map(|n| dir.join(n)).find(|p| p.is_file());
    for &(images, labels) in kind.names(split) {
        if let Some(images_path) = existing(images) {
            let Some(labels_path) = existing(labels) else {
                bail!(
                    "found {} but not its labels in {} (looked for {labels}.gz and {labels})",
                    images_path.display(),
                    dir.display()
                );
            };
            return Ok((images_path, labels_path));
        }
    }
    let tried: Vec<&str> = kind.names(split).iter().map(|(images, _)| *images).collect();
    bail!(
        "no {} {} images in {} (looked for {}, each with or without .gz)",
        kind.name(),
        split,
        dir.display(),
        tried.join(", ")
    )
}

/// Loads one split of `kind` from `dir` and checks the image size.
///
/// # Errors
/// As [`find`] and [`idx::read_pair`]; images of the wrong size or an empty set.
pub fn load_split(kind: DatasetKind, split: Split, dir: &Path) -> Result<ImageSet> {
    let (images_path, labels_path) = find(kind, split, dir)?;
    let (images, labels) = idx::read_pair(&images_path, &labels_path, kind.classes())?;
    let (rows, cols) = kind.image_shape();
    ensure!(
        (images.rows, images.cols) == (rows, cols),
        "{}: images are {}x{}, {} images are {rows}x{cols}",
        images_path.display(),
        images.rows,
        images.cols,
        kind.name()
    );
    ensure!(images.count > 0, "{}: the file holds no images", images_path.display());
    Ok(ImageSet { images_path, labels_path, rows, cols, pixels: images.pixels, labels, scale: kind.scale() })
}

/// Loads the training and test splits of `kind` from `dir`.
///
/// # Errors
/// As [`load_split`].
pub fn load(kind: DatasetKind, dir: &Path) -> Result<TrainTest> {
    Ok(TrainTest { train: load_split(kind, Split::Train, dir)?, test: load_split(kind, Split::Test, dir)? })
}

/// The dataset files of `kind` that [`find`] finds in `dir` (none without a dataset): the
/// inputs an output file must not overwrite.
#[must_use]
pub fn input_files(kind: Option<DatasetKind>, dir: &Path) -> Vec<PathBuf> {
    let Some(kind) = kind else { return Vec::new() };
    [Split::Train, Split::Test]
        .into_iter()
        .filter_map(|split| find(kind, split, dir).ok())
        .flat_map(|(images, labels)| [images, labels])
        .collect()
}

/// The data directory of the repository, where the shipped datasets are.
#[must_use]
pub fn workspace_data_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).join("data")
}

/// `data` under the current directory if it holds a complete dataset (the train and test
/// files of digits or MNIST), else the repository's data directory, so that `cargo run` works
/// from anywhere in the repository and an empty or unrelated `./data` does not hide the shipped
/// files.
#[must_use]
pub fn default_data_dir() -> PathBuf {
    let local = PathBuf::from("data");
    if [DatasetKind::Digits, DatasetKind::Mnist].into_iter().any(|kind| complete(kind, &local)) {
        local
    } else {
        workspace_data_dir()
    }
}

/// Where the data of a model reading `kind` is looked for without `--data`: `./data` if it
/// holds both splits of that dataset, else the repository's data directory (for a model
/// without a dataset, as [`default_data_dir`]).
#[must_use]
pub fn default_dir_for(kind: Option<DatasetKind>) -> PathBuf {
    let Some(kind) = kind else { return default_data_dir() };
    let local = PathBuf::from("data");
    if complete(kind, &local) { local } else { workspace_data_dir() }
}

fn complete(kind: DatasetKind, dir: &Path) -> bool {
    dir.is_dir() && [Split::Train, Split::Test].into_iter().all(|split| find(kind, split, dir).is_ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn loads_the_shipped_digits() {
        let data = load(DatasetKind::Digits, &workspace_data_dir()).unwrap();
        assert_eq!((data.train.len(), data.test.len()), (1437, 360));
        assert_eq!(data.train.sample_len(), 64);
        assert!(data.train.pixels.iter().all(|&p| p <= 16));
        assert_eq!(data.test.byte_images(10).unwrap().sample_len(), 64);
    }

    #[test]
    fn missing_files_list_the_names_tried() {
        let err = load(DatasetKind::Mnist, Path::new("no-such-dir")).unwrap_err().to_string();
        assert!(err.contains("mnist8k-train-images-idx3-ubyte") && err.contains("train-images-idx3-ubyte"), "{err}");
    }
}
