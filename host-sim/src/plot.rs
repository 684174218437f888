//! Training curves as the course draws them: training and validation loss and accuracy per
//! epoch, the early-stopping epoch marked, as an SVG file (`train --plot FILE.svg`).
//!
//! ```
//! use tinytrain::train::{DeadUnits, EpochStats, Eval};
//! let epoch = |e: u32, l: f32| EpochStats {
//!     epoch: e,
//!     train_loss: l,
//!     train_accuracy: 1.0 - l,
//!     val: Some(Eval { loss: l + 0.1, accuracy: 0.9 - l, correct: 0, samples: 10 }),
//!     lr: 1e-3,
//!     skipped_steps: 0,
//!     dead: DeadUnits::default(),
//! };
//! let svg = tinytrain_sim::plot::svg("digits-mlp", &[epoch(1, 0.5), epoch(2, 0.3)], Some(2)).unwrap();
//! assert!(svg.starts_with("<svg") && svg.contains("val_loss"));
//! ```

use anyhow::{Result, anyhow};
use plotters::prelude::*;
use tinytrain::train::EpochStats;

/// Picks the training and the validation value of one curve from an epoch's figures.
type Pick = fn(&EpochStats) -> (f32, Option<f32>);

/// The figure: loss on the left, accuracy on the right, training in blue, validation in red,
/// and a dashed line at `best` (the epoch early stopping restored).
///
/// # Errors
/// No epochs, or a drawing error.
pub fn svg(title: &str, epochs: &[EpochStats], best: Option<u32>) -> Result<String> {
    let last = epochs.last().ok_or_else(|| anyhow!("no epoch to plot"))?.epoch;
    let first = epochs.first().map_or(1, |e| e.epoch);
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (960, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(|e| anyhow!("{e}"))?;
        let (left, right) = root.split_horizontally(480);
        let finite = |v: f32| v.is_finite().then_some(f64::from(v));
        let losses: Vec<f64> =
            epochs.iter().flat_map(|e| [finite(e.train_loss), e.val.and_then(|v| finite(v.loss))]).flatten().collect();
        let top = losses.iter().copied().fold(0.0f64, f64::max).max(1e-6) * 1.05;
        let x_range = f64::from(first)..f64::from(last).max(f64::from(first) + 1.0);
        let panels: [(&DrawingArea<_, _>, &str, f64, Pick); 2] = [
            (&left, "loss", top, |e| (e.train_loss, e.val.map(|v| v.loss))),
            (&right, "accuracy", 1.0, |e| (e.train_accuracy, e.val.map(|v| v.accuracy))),
        ];
        for (area, what, top, pick) in panels {
            let mut chart = ChartBuilder::on(area)
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(52)
                .build_cartesian_2d(x_range.clone(), 0.0..top)
                .map_err(|e| anyhow!("{e}"))?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc(what)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
            let train: Vec<(f64, f64)> =
                epochs.iter().filter_map(|e| finite(pick(e).0).map(|v| (f64::from(e.epoch), v))).collect();
            let val: Vec<(f64, f64)> =
                epochs.iter().filter_map(|e| pick(e).1.and_then(finite).map(|v| (f64::from(e.epoch), v))).collect();
            chart
                .draw_series(LineSeries::new(train, BLUE.stroke_width(2)))
                .map_err(|e| anyhow!("{e}"))?
                .label(what.to_owned())
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
            chart
                .draw_series(LineSeries::new(val, RED.stroke_width(2)))
                .map_err(|e| anyhow!("{e}"))?
                .label(format!("val_{what}"))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
            if let Some(b) = best {
                let x = f64::from(b);
                chart
                    .draw_series(DashedLineSeries::new(vec![(x, 0.0), (x, top)], 6, 4, BLACK.stroke_width(1)))
                    .map_err(|e| anyhow!("{e}"))?
                    .label(format!("best epoch {b}"))
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(1)));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(if what == "loss" {
                    SeriesLabelPosition::UpperRight
                } else {
                    SeriesLabelPosition::LowerRight
                })
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
        }
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    Ok(text)
}
