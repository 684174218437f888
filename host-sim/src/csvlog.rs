//! `train --log FILE.csv`: one row per epoch with the columns of Keras's `CSVLogger`, the
//! learning rate and the dead-ReLU fractions, rewritten atomically after every epoch so that
//! the file always holds every finished epoch and never half a row.
//!
//! ```text
//! epoch,loss,accuracy,val_loss,val_accuracy,lr,dead_relu_1
//! 1,1.6620426,0.5706333,0.95478463,0.8333333,0.001,0
//! ```
//!
//! Epochs count from 1 (Keras counts from 0); numbers are the shortest decimal that reads back
//! as the same `f32`; `val_loss` and `val_accuracy` are empty without validation data; there is
//! one `dead_relu_K` column per ReLU layer (K from 1, in network order), none for a network
//! without ReLU.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use tinytrain::train::EpochStats;

/// The rows written so far and the file they go to.
#[derive(Debug)]
pub struct CsvLog {
    path: PathBuf,
    text: String,
}

impl CsvLog {
    /// A log that will be written to `path` (nothing is written before the first epoch).
    #[must_use]
    pub fn new(path: PathBuf) -> Self {
        CsvLog { path, text: String::new() }
    }

    /// The file's text so far.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Adds the row of `stats` and rewrites the file.
    ///
    /// # Errors
    /// When the file cannot be written (it then keeps its previous rows).
    pub fn epoch(&mut self, stats: &EpochStats) -> Result<()> {
        let dead = stats.dead.fractions();
        if self.text.is_empty() {
            self.text.push_str("epoch,loss,accuracy,val_loss,val_accuracy,lr");
            for k in 1..=dead.len() {
                let _ = write!(self.text, ",dead_relu_{k}");
            }
            self.text.push('\n');
        }
        let _ = write!(self.text, "{},{},{}", stats.epoch, stats.train_loss, stats.train_accuracy);
        match stats.val {
            Some(v) => {
                let _ = write!(self.text, ",{},{}", v.loss, v.accuracy);
            }
            None => self.text.push_str(",,"),
        }
        let _ = write!(self.text, ",{}", stats.lr);
        for d in dead {
            let _ = write!(self.text, ",{d}");
        }
        self.text.push('\n');
        crate::atomic::write_atomic(&self.path, self.text.as_bytes())
    }
}
