//! IDX files, the format of MNIST, plain or gzipped.
//!
//! An IDX file is a 4-byte magic number (`0x00000803` for images, `0x00000801` for labels:
//! two zero bytes, the data type `0x08` = unsigned byte, the number of dimensions), one
//! big-endian `u32` per dimension, then the bytes, row-major. A file that starts with the gzip
//! magic `1f 8b` is decompressed first, whatever its name.
//!
//! Everything is checked before it is used: the magic, the dimensions, that the data is
//! exactly as long as the header says, that every label is a class of the model, and that a
//! pair of files holds as many labels as images. Errors name the file and the problem.
//!
//! ```
//! use tinytrain_sim::idx;
//! let mut file = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
//! file.extend([1, 2, 3, 4]);
//! let images = idx::parse_images(&file).unwrap();
//! assert_eq!((images.count, images.rows, images.cols), (2, 1, 2));
//! assert_eq!(images.pixels, [1, 2, 3, 4]);
//!
//! let bad_label = [0, 0, 8, 1, 0, 0, 0, 1, 12];
//! let err = idx::parse_labels(&bad_label, 10).unwrap_err();
//! assert!(err.to_string().contains("label 12"));
//! ```

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use flate2::read::MultiGzDecoder;

/// Magic number of an IDX file of unsigned-byte images (3 dimensions).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned-byte labels (1 dimension).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// The first two bytes of every gzip stream.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The images of an IDX image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count · rows · cols` pixels, image by image, row by row.
    pub pixels: Vec<u8>,
}

impl Images {
    /// Pixels per image.
    #[must_use]
    pub fn sample_len(&self) -> usize {
        self.rows * self.cols
    }
}

/// The largest data an IDX header may declare: 1 GiB (the full MNIST training images are
/// 47 MB). A larger declaration is refused before anything is inflated.
pub const MAX_PAYLOAD: u64 = 1 << 30;

/// Trailing bytes counted exactly in messages.
const TRAILING_SHOWN: u64 = 1 << 16;

/// Bytes per element of an IDX data type code (`0x08` unsigned byte, ..., `0x0E` double).
fn element_size(code: u8) -> u64 {
    match code {
        0x0B => 2,
        0x0C | 0x0D => 4,
        0x0E => 8,
        _ => 1,
    }
}

/// Reads from `reader` until `out` holds `n` bytes or the stream ends.
fn fill(reader: &mut impl Read, out: &mut Vec<u8>, n: usize) -> std::io::Result<()> {
    let missing = n.saturating_sub(out.len());
    reader.take(missing as u64).read_to_end(out).map(drop)
}

/// Reads an IDX file from `reader`, bounded by its header: the magic and the dimensions
/// first, then at most the data they declare, and then up to 64 KiB more to report trailing
/// data. A declaration over [`MAX_PAYLOAD`] is refused after the header; a stream that is
/// not IDX stops after its first four bytes (the parser names the bad magic).
fn read_bounded(mut reader: impl Read) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    fill(&mut reader, &mut out, 4)?;
    let Some(&[zero0, zero1, code, ndim]) = out.first_chunk::<4>() else { return Ok(out) };
    if (zero0, zero1) != (0, 0) {
        return Ok(out);
    }
    let header_len = 4 + 4 * usize::from(ndim);
    fill(&mut reader, &mut out, header_len)?;
    let Some(dims) = out.get(4..header_len) else { return Ok(out) };
    let dims: Vec<u64> =
        dims.chunks_exact(4).map(|c| u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))).collect();
    let declared = dims.iter().try_fold(element_size(code), |n, &d| n.checked_mul(d));
    let shown: Vec<String> = dims.iter().map(u64::to_string).collect();
    match declared {
        Some(n) if n <= MAX_PAYLOAD => {
            reader.by_ref().take(header_len as u64 + n - out.len() as u64).read_to_end(&mut out)?;
            let mut rest = Vec::new();
            reader.take(TRAILING_SHOWN + 1).read_to_end(&mut rest)?;
            match rest.len() as u64 {
                0 => Ok(out),
                k if k <= TRAILING_SHOWN => {
                    bail!("{k} trailing bytes after the {n} bytes of data the header announces")
                }
                _ => {
                    bail!("more than {TRAILING_SHOWN} trailing bytes after the {n} bytes of data the header announces")
                }
            }
        }
        _ => bail!(
            "the header declares {} bytes of data ({}), more than the {} bytes (1 GiB) this loader accepts: refused before reading the data",
            declared.map_or_else(|| "over 2^64".to_owned(), |n| crate::text::thousands(n as usize)),
            shown.join(" x "),
            crate::text::thousands(MAX_PAYLOAD as usize)
        ),
    }
}

/// Returns `bytes` decompressed if they start with the gzip magic, unchanged otherwise.
/// Inflation is bounded by the IDX header at the start of the data: at most the bytes it
/// declares (and one more) are inflated, and a header declaring more than [`MAX_PAYLOAD`]
/// is refused as soon as it has been read, so a small gzip bomb costs no memory or time.
///
/// # Errors
/// When the gzip stream is corrupt or cut short, or the header declares too much data.
pub fn decompress(bytes: Vec<u8>) -> Result<Vec<u8>> {
    if !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(bytes);
    }
    decompress_bounded(MultiGzDecoder::new(bytes.as_slice()))
}

fn decompress_bounded(decoder: impl Read) -> Result<Vec<u8>> {
    read_bounded(decoder).map_err(|e| match e.downcast::<std::io::Error>() {
        Ok(io) => anyhow::Error::new(io).context("corrupt gzip data"),
        Err(other) => other,
    })
}

/// Reads an IDX file, decompressing it if it is gzipped; reading is bounded by the header
/// as in [`decompress`], and the file is streamed, not read whole first.
///
/// # Errors
/// When the file cannot be read, its gzip data is corrupt, or its header declares more than
/// [`MAX_PAYLOAD`]; the message names the file.
pub fn read_raw(path: &Path) -> Result<Vec<u8>> {
    let cannot_read = || format!("cannot read {}", path.display());
    let mut file = std::io::BufReader::new(std::fs::File::open(path).with_context(cannot_read)?);
    let gzipped = std::io::BufRead::fill_buf(&mut file).with_context(cannot_read)?.starts_with(&GZIP_MAGIC);
    let raw = if gzipped { decompress_bounded(MultiGzDecoder::new(file)) } else { read_bounded(file) };
    raw.with_context(|| path.display().to_string())
}

/// Checks the magic and returns the dimensions and the data that follows them.
fn header<'a>(bytes: &'a [u8], magic: u32, what: &str) -> Result<(Vec<usize>, &'a [u8])> {
    let Some(head) = bytes.first_chunk::<4>() else {
        bail!("truncated: {} bytes, shorter than the 4-byte IDX magic number", bytes.len());
    };
    let found = u32::from_be_bytes(*head);
    if found != magic {
        let hint = match found {
            IMAGES_MAGIC => " (this is an IDX image file)",
            LABELS_MAGIC => " (this is an IDX label file)",
            _ if head[..2] == GZIP_MAGIC => " (gzip data)",
            _ => "",
        };
        bail!("bad magic number {found:#010x}{hint}: expected {magic:#010x} for IDX {what}");
    }
    let ndim = usize::from(head[3]);
    let dims_end = 4 + 4 * ndim;
    let Some(dim_bytes) = bytes.get(4..dims_end) else {
        bail!("truncated: {} bytes, shorter than the {dims_end}-byte header", bytes.len());
    };
    let dims = dim_bytes.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    Ok((dims, &bytes[dims_end..]))
}

/// Checks that `data` holds exactly `expected` bytes.
fn check_len(data: &[u8], expected: usize, what: &str) -> Result<()> {
    if data.len() < expected {
        bail!("truncated: the header announces {expected} bytes of {what}, the file has {}", data.len());
    }
    if data.len() > expected {
        bail!("{} trailing bytes after the {expected} bytes of {what} the header announces", data.len() - expected);
    }
    Ok(())
}

/// Parses a decompressed IDX image file (magic `0x00000803`, dimensions `N, rows, cols`).
///
/// # Errors
/// Bad magic, truncated header or data, trailing bytes, or a zero image dimension.
pub fn parse_images(bytes: &[u8]) -> Result<Images> {
    let (dims, data) = header(bytes, IMAGES_MAGIC, "images")?;
    let &[count, rows, cols] = dims.as_slice() else { bail!("expected 3 dimensions, found {}", dims.len()) };
    ensure!(rows > 0 && cols > 0, "images of {rows}x{cols} pixels: both dimensions must be at least 1");
    let expected = count
        .checked_mul(rows)
        .and_then(|n| n.checked_mul(cols))
        .with_context(|| format!("dimensions {count} x {rows} x {cols} are too large"))?;
    check_len(data, expected, "pixels")?;
    Ok(Images { count, rows, cols, pixels: data.to_vec() })
}

/// Parses a decompressed IDX label file (magic `0x00000801`, one dimension) whose labels
/// must all be below `classes`.
///
/// # Errors
/// Bad magic, truncated header or data, trailing bytes, or a label `>= classes`.
pub fn parse_labels(bytes: &[u8], classes: usize) -> Result<Vec<u8>> {
    let (dims, data) = header(bytes, LABELS_MAGIC, "labels")?;
    let &[count] = dims.as_slice() else { bail!("expected 1 dimension, found {}", dims.len()) };
    check_len(data, count, "labels")?;
    if let Some((index, &label)) = data.iter().enumerate().find(|&(_, &l)| usize::from(l) >= classes) {
        bail!("label {label} at index {index} is out of range: expected 0..={}", classes.saturating_sub(1));
    }
    Ok(data.to_vec())
}

/// Reads an IDX image file, gzipped or not.
///
/// # Errors
/// As [`read_raw`] and [`parse_images`], with the file name in front.
pub fn read_images(path: &Path) -> Result<Images> {
    let raw = read_raw(path)?;
    parse_images(&raw).with_context(|| path.display().to_string())
}

/// Reads an IDX label file, gzipped or not, with labels below `classes`.
///
/// # Errors
/// As [`read_raw`] and [`parse_labels`], with the file name in front.
pub fn read_labels(path: &Path, classes: usize) -> Result<Vec<u8>> {
    let raw = read_raw(path)?;
    parse_labels(&raw, classes).with_context(|| path.display().to_string())
}

/// Reads an image file and its label file and checks that they hold as many items.
///
/// # Errors
/// As [`read_images`] and [`read_labels`], or a count mismatch naming both files.
pub fn read_pair(images: &Path, labels: &Path, classes: usize) -> Result<(Images, Vec<u8>)> {
    let imgs = read_images(images)?;
    let labs = read_labels(labels, classes)?;
    ensure!(
        imgs.count == labs.len(),
        "{} holds {} images but {} holds {} labels: the counts must agree",
        images.display(),
        imgs.count,
        labels.display(),
        labs.len()
    );
    Ok((imgs, labs))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn idx(magic: [u8; 4], dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = magic.to_vec();
        dims.iter().for_each(|d| v.extend(d.to_be_bytes()));
        v.extend(data);
        v
    }

    #[test]
    fn parses_images_and_labels() {
        let f = idx([0, 0, 8, 3], &[2, 2, 1], &[1, 2, 3, 4]);
        assert_eq!(parse_images(&f).unwrap().pixels, [1, 2, 3, 4]);
        let l = idx([0, 0, 8, 1], &[3], &[0, 9, 5]);
        assert_eq!(parse_labels(&l, 10).unwrap(), [0, 9, 5]);
    }

    #[test]
    fn reports_each_problem() {
        let msg = |r: Result<Images>| format!("{:#}", r.unwrap_err());
        assert!(msg(parse_images(&idx([0, 0, 8, 1], &[2], &[0, 0]))).contains("bad magic number 0x00000801"));
        assert!(msg(parse_images(&idx([0, 0, 8, 3], &[2, 2, 2], &[0; 7]))).contains("truncated"));
        assert!(msg(parse_images(&idx([0, 0, 8, 3], &[2, 2, 2], &[0; 9]))).contains("1 trailing bytes"));
        assert!(msg(parse_images(&[0, 0, 8, 3, 0, 0])).contains("header"));
        assert!(msg(parse_images(&[0, 0])).contains("truncated"));
        let labels = parse_labels(&idx([0, 0, 8, 1], &[2], &[3, 10]), 10).unwrap_err();
        assert!(labels.to_string().contains("label 10 at index 1"));
    }

    #[test]
    fn gzip_is_detected_by_magic() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let plain = idx([0, 0, 8, 1], &[1], &[7]);
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&plain).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(decompress(gz.clone()).unwrap(), plain);
        assert_eq!(decompress(plain.clone()).unwrap(), plain);
        let cut = gz[..gz.len() - 6].to_vec();
        assert!(format!("{:#}", decompress(cut).unwrap_err()).contains("corrupt gzip data"));
    }
}
