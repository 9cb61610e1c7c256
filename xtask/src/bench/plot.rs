//! The plots, as SVG: the latency plot (one panel per latency series, a CDF
//! line per store) and the targets plot (per store, each target's measured
//! value over its goal: a bar at or below 1 meets it).
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
use super::targets::{Goal, Outcome};
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

/// How far a target is from its goal: measured / goal for an upper bound,
/// goal / measured for a lower bound, so that at most 1 always passes.
pub fn distance(outcome: &Outcome) -> Option<f64> {
    let v = outcome.measured.filter(|v| v.is_finite())?;
    let d = match outcome.target.goal {
        Goal::AtMost(limit) => v / limit,
        Goal::AtLeast(limit) if v > 0.0 => limit / v,
        Goal::AtLeast(_) => return None,
    };
    (d.is_finite() && d > 0.0).then_some(d)
}

/// Writes the targets plot of `runs` to `path`: a panel per store, a bar per
/// target (green when it meets its goal), log scale, the goal at 1.
pub fn targets(path: &Path, runs: &[StoreRun]) -> Result<()> {
    let size = (1240, 360 * runs.len().max(1) as u32 + TITLE_HEIGHT);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let body = root.titled("cargo xtask bench: measured / goal per target (at most 1 meets it; log scale)", ("sans-serif", 22))?;
        for (area, run) in body.split_evenly((runs.len().max(1), 1)).iter().zip(runs) {
            target_panel(area, run)?;
        }
        root.present()?;
    }
    fs::write(path, svg)?;
    Ok(())
}

fn target_panel(area: &DrawingArea<SVGBackend<'_>, Shift>, run: &StoreRun) -> Result<()> {
    let bars: Vec<(&str, Option<f64>)> = run.targets.iter().map(|o| (o.target.id, distance(o))).collect();
    let known = bars.iter().filter_map(|(_, d)| *d);
    let lo = known.clone().fold(0.1, f64::min) / 2.0;
    let hi = known.fold(10.0, f64::max) * 2.0;
    let ids: Vec<&str> = bars.iter().map(|(id, _)| *id).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{} store", run.store), ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        // An integer range is inclusive here: 0..n-1 holds the n segments.
        .build_cartesian_2d((0u32..bars.len().saturating_sub(1) as u32).into_segmented(), (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc("measured / goal")
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => ids.get(*i as usize).map_or(String::new(), |id| id.to_string()),
            _ => String::new(),
        })
        .x_labels(bars.len() + 1)
        .x_label_style(("sans-serif", 10))
        .y_label_formatter(&|v| format!("{v}"))
        .draw()?;
    let last = SegmentValue::Exact(bars.len() as u32);
    chart.draw_series(LineSeries::new([(SegmentValue::Exact(0), 1.0), (last, 1.0)], BLACK.stroke_width(1)))?;
    for (i, (_, d)) in bars.iter().enumerate() {
        let Some(d) = *d else { continue };
        let color = if d <= 1.0 { RGBColor(44, 160, 44) } else { RGBColor(214, 39, 40) };
        let (from, to) = (SegmentValue::Exact(i as u32), SegmentValue::Exact(i as u32 + 1));
        let mut bar = Rectangle::new([(from, lo), (to, d)], color.filled());
        bar.set_margin(0, 0, 12, 12);
        chart.draw_series([bar])?;
        chart.draw_series([Text::new(format!("{d:.2}"), (SegmentValue::CenterOf(i as u32), d * 1.6), ("sans-serif", 11))])?;
    }
    Ok(())
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
        let usage = || crate::bench::cpu::Usage { seconds: 1.0, per: Vec::new(), machine_busy_cores: None, wait_seconds: 0.0 };
        let profile = crate::bench::Profile { usage: usage(), idle: usage(), creates: 0, drain_seconds: 0.0, audited: 0, drained: true };
        let outcome = |id, goal, measured| Outcome {
            target: crate::bench::targets::Target { id, what: "", unit: "ms", goal, ceiling: None },
            measured,
            ceiling: None,
            note: String::new(),
        };
        let targets = vec![
            outcome("cpu_per_create", Goal::AtMost(6.0), Some(37.0 * scale)),
            outcome("create_8_clients", Goal::AtLeast(270.0), Some(300.0)),
            outcome("sse_p95_at_100", Goal::AtMost(100.0), None),
        ];
        StoreRun {
            store,
            quick: false,
            series,
            targets,
            ceilings: Vec::new(),
            profile,
            memory: Vec::new(),
            load: [None, None],
            seconds: 1.0,
        }
    }

    #[test]
    fn the_targets_plot_has_a_bar_per_measured_target() {
        let path = std::env::temp_dir().join(format!("bench-targets-test-{}.svg", std::process::id()));
        targets(&path, &[run(Store::Sqlite, 1.0), run(Store::Postgres, 2.0)]).unwrap();
        let svg = fs::read_to_string(&path).unwrap();
        fs::remove_file(&path).unwrap();
        assert!(svg.contains("cpu_per_create") && svg.contains("sqlite store") && svg.contains("postgres store"));
        assert_eq!(svg.matches("\nsse_p95_at_100\n").count(), 2, "every target is labelled, in each panel");
        assert!(svg.contains("6.17") && svg.contains("12.33"), "37/6 and 74/6 over the bars");
        assert!(svg.contains("0.90"), "a lower bound met: 270/300");
        let outcomes = run(Store::Sqlite, 1.0).targets;
        assert_eq!(distance(&outcomes[2]), None, "not measured: no bar");
        let zero = Outcome { measured: Some(0.0), ..outcomes[1].clone() };
        assert_eq!(distance(&zero), None, "no throughput at all is not a finite distance");
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
