//! The latency plot: one panel per latency series, a CDF line per store, as SVG.
//!
//! Only plotters' SVG backend is used, without font loading: it writes text as
//! SVG `<text>` for the viewer to render, so no system font is needed (its
//! label layout is an estimate, which is enough here).

use std::fs;
use std::path::Path;

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::report::series_names;
use super::{Series, StoreRun};

const PANEL: (u32, u32) = (620, 300);
const COLUMNS: usize = 2;
const TITLE_HEIGHT: u32 = 50;
/// One color per store, in run order.
const COLORS: [RGBColor; 2] = [RGBColor(31, 119, 180), RGBColor(214, 39, 40)];

/// Writes the plot of every latency series of `runs` to `path`.
pub fn write(path: &Path, runs: &[StoreRun]) -> Result<()> {
    let names: Vec<String> =
        series_names(runs).into_iter().filter(|name| runs.iter().flat_map(|r| &r.series).any(|s| &s.name == name && s.latency)).collect();
    let rows = names.len().div_ceil(COLUMNS).max(1);
    let size = (PANEL.0 * COLUMNS as u32, PANEL.1 * rows as u32 + TITLE_HEIGHT);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let stores: Vec<String> = runs.iter().map(|r| r.store.to_string()).collect();
        let title = format!("cargo xtask bench: latency CDF per series ({}); x in ms, log scale", stores.join(" vs "));
        let body = root.titled(&title, ("sans-serif", 22))?;
        for (area, name) in body.split_evenly((rows, COLUMNS)).iter().zip(&names) {
            let per_store: Vec<(String, &Series)> =
                runs.iter().filter_map(|r| r.series.iter().find(|s| &s.name == name).map(|s| (r.store.to_string(), s))).collect();
            panel(area, name, &per_store)?;
        }
        root.present()?;
    }
    fs::write(path, svg)?;
    Ok(())
}

/// One series: the CDF of each store's samples.
fn panel(area: &DrawingArea<SVGBackend<'_>, Shift>, name: &str, per_store: &[(String, &Series)]) -> Result<()> {
    let (lo, hi) = decades(per_store.iter().flat_map(|(_, s)| s.millis.iter().copied()));
    let mut chart = ChartBuilder::on(area)
        .caption(name, ("sans-serif", 16))
        .margin(12)
        .margin_right(30)
        .x_label_area_size(32)
        .y_label_area_size(44)
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..1f64)?;
    chart
        .configure_mesh()
        .x_desc("ms")
        .y_desc("fraction <= x")
        .x_label_formatter(&|v| format!("{v}"))
        .y_label_formatter(&|v| format!("{v:.1}"))
        .max_light_lines(4)
        .draw()?;
    for (i, (store, series)) in per_store.iter().enumerate() {
        let style = COLORS[i % COLORS.len()].stroke_width(2);
        chart
            .draw_series(LineSeries::new(cdf(&series.millis, lo), style))?
            .label(store.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// The whole decades around the positive samples (at least one decade).
fn decades(samples: impl Iterator<Item = f64>) -> (f64, f64) {
    let positive: Vec<f64> = samples.filter(|v| *v > 0.0 && v.is_finite()).collect();
    let min = positive.iter().copied().reduce(f64::min).unwrap_or(1.0);
    let max = positive.iter().copied().reduce(f64::max).unwrap_or(1.0);
    let lo = 10f64.powf(min.log10().floor());
    let hi = 10f64.powf(max.log10().ceil()).max(lo * 10.0);
    (lo, hi)
}

/// The empirical CDF as a step line; samples below `floor` (an early
/// reminder's negative lateness) are drawn at `floor`.
fn cdf(millis: &[f64], floor: f64) -> Vec<(f64, f64)> {
    let mut sorted: Vec<f64> = millis.iter().map(|v| v.max(floor)).collect();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let n = sorted.len() as f64;
    sorted.iter().enumerate().flat_map(|(i, &v)| [(v, i as f64 / n), (v, (i + 1) as f64 / n)]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::Store;

    fn run(store: Store, scale: f64) -> StoreRun {
        let millis = |base: f64| (1..=200).map(|i| base * scale * (1.0 + f64::from(i) / 50.0)).collect::<Vec<f64>>();
        let series = vec![
            Series::latency("create at 20 req/s", millis(10.0), ""),
            Series::latency("reminder lateness (fired_at - remind_at)", [vec![-3.0], millis(2.0)].concat(), ""),
            Series { latency: false, ..Series::latency("idle CPU", vec![250.0], "") },
        ];
        StoreRun { store, series, memory: Vec::new(), seconds: 1.0 }
    }

    #[test]
    fn plots_each_latency_series_for_each_store() {
        let path = std::env::temp_dir().join(format!("bench-plot-test-{}.svg", std::process::id()));
        write(&path, &[run(Store::Sqlite, 1.0), run(Store::Postgres, 1.5)]).unwrap();
        let svg = fs::read_to_string(&path).unwrap();
        fs::remove_file(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("create at 20 req/s") && svg.contains("reminder lateness"));
        assert!(!svg.contains("idle CPU"), "a series that is not a latency is not plotted");
        assert_eq!(svg.matches("\npostgres\n").count(), 2, "one legend entry per panel");
    }

    #[test]
    fn decades_cover_the_positive_samples() {
        assert_eq!(decades([-2.0, 3.0, 45.0].into_iter()), (1.0, 100.0));
        assert_eq!(decades([10.0].into_iter()), (10.0, 100.0));
        assert_eq!(cdf(&[5.0, -1.0], 1.0), vec![(1.0, 0.0), (1.0, 0.5), (5.0, 0.5), (5.0, 1.0)]);
    }
}
