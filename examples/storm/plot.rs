//! The SVG figures, drawn with plotters.

use std::error::Error;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::landing::{Crowd, Landing, bin_start_ms};
use crate::occ::{Measure, Row, Strategy};
use crate::outage::{Load, Scenario, Setup};

type Result<T = ()> = std::result::Result<T, Box<dyn Error>>;

/// One colour per strategy, from the study's blues for the exponential family to orange for
/// decorrelated, red for no backoff at all.
fn strategy_colour(strategy: Strategy) -> RGBColor {
    match strategy {
        Strategy::None => RGBColor(214, 39, 40),
        Strategy::Exponential => RGBColor(8, 48, 107),
        Strategy::Equal => RGBColor(33, 113, 181),
        Strategy::Full => RGBColor(44, 160, 44),
        Strategy::Decorrelated => RGBColor(255, 127, 14),
    }
}

const FONT: &str = "sans-serif";

fn canvas(path: &Path, size: (u32, u32)) -> Result<DrawingArea<SVGBackend<'_>, Shift>> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    Ok(root)
}

/// Calls and completion time against the number of clients, one line per strategy, side by
/// side like the study's two charts.
pub fn storm(path: &Path, rows: &[Row]) -> Result {
    let root = canvas(path, (1200, 520))?;
    let panels = root.split_evenly((1, 2));
    let max_clients = rows.iter().map(|r| r.clients).max().unwrap_or(1) as f64;

    for (panel, measure) in panels.iter().zip(Measure::BOTH) {
        let top = rows.iter().map(|r| measure.of(r)).fold(1.0, f64::max) * 1.05;
        let title = format!("{}, mean per run", measure.title());
        let mut chart = ChartBuilder::on(panel)
            .caption(title, (FONT, 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..max_clients, 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc("clients")
            .y_desc(measure.title())
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;

        for strategy in Strategy::ALL {
            let colour = strategy_colour(strategy);
            let points = rows
                .iter()
                .filter(|r| r.strategy == strategy)
                .map(|r| (r.clients as f64, measure.of(r)));
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                .label(strategy.name())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// One histogram per jitter kind, stacked on a shared time axis.
pub fn landing(path: &Path, crowd: &Crowd, landings: &[Landing]) -> Result {
    let root = canvas(path, (1000, 220 * landings.len().max(1) as u32))?;
    let panels = root.split_evenly((landings.len().max(1), 1));
    let horizon = crowd.horizon.as_secs_f64() * 1_000.0;
    let width = crowd.bin.as_secs_f64() * 1_000.0;
    let top = landings.iter().map(Landing::peak).max().unwrap_or(1).max(1);

    for (panel, landing) in panels.iter().zip(landings) {
        let title = format!(
            "jitter: {} (busiest {} ms bin: {} of {} retries)",
            landing.jitter,
            width,
            landing.peak(),
            crowd.clients as u32 * crowd.retries,
        );
        let mut chart = ChartBuilder::on(panel)
            .caption(title, (FONT, 18))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..horizon, 0u32..top + top / 20)?;
        chart
            .configure_mesh()
            .x_desc("ms after the shared failure")
            .y_desc("retries")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()?;
        let bars = landing.bins.iter().enumerate().filter(|(_, n)| **n > 0);
        chart.draw_series(bars.map(|(i, &n)| {
            let x = bin_start_ms(crowd, i);
            Rectangle::new([(x, 0), (x + width, n)], RGBColor(33, 113, 181).filled())
        }))?;
    }
    root.present()?;
    Ok(())
}

/// Requests per second reaching the server through the outage: one column per scenario, one
/// row per setup, the outage shaded.
pub fn outage(path: &Path, scenarios: &[Scenario]) -> Result {
    let setups = scenarios
        .iter()
        .map(|s| s.loads.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let columns = scenarios.len().max(1);
    let root = canvas(path, (620 * columns as u32, 60 + 240 * setups as u32))?;
    let (header, body) = root.split_vertically(50);
    header.titled(
        "Requests per second at the server through an outage (shaded)",
        (FONT, 24),
    )?;
    let panels = body.split_evenly((setups, columns));

    for (column, scenario) in scenarios.iter().enumerate() {
        let top = scenario
            .loads
            .iter()
            .map(|l| l.peak_per_second(scenario.outage.bin))
            .fold(1.0, f64::max)
            * 1.1;
        for (row, load) in scenario.loads.iter().enumerate() {
            outage_panel(&panels[row * columns + column], scenario, load, top)?;
        }
    }
    root.present()?;
    Ok(())
}

fn outage_panel(
    panel: &DrawingArea<SVGBackend<'_>, Shift>,
    scenario: &Scenario,
    load: &Load,
    top: f64,
) -> Result {
    let outage = &scenario.outage;
    let seconds = outage.duration.as_secs_f64();
    let bin = outage.bin.as_secs_f64();
    let title = format!(
        "{}, {}: {:.2}x the offered load while down",
        scenario.name,
        load.setup.label(),
        load.amplification_down()
    );
    let mut chart = ChartBuilder::on(panel)
        .caption(title, (FONT, 16))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..seconds, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("requests / s")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    let down = [
        (outage.down_from.as_secs_f64(), 0.0),
        (outage.down_until.as_secs_f64(), top),
    ];
    chart.draw_series([Rectangle::new(
        down,
        RGBColor(200, 200, 200).mix(0.5).filled(),
    )])?;

    let colour = match load.setup {
        Setup::Retries => RGBColor(214, 39, 40),
        Setup::RetriesBreaker => RGBColor(33, 113, 181),
        Setup::RetriesBreakerJitter => RGBColor(44, 160, 44),
    };
    let bars = load.bins.iter().enumerate().filter(|(_, n)| **n > 0);
    chart.draw_series(bars.map(|(i, &n)| {
        let x = i as f64 * bin;
        Rectangle::new([(x, 0.0), (x + bin, f64::from(n) / bin)], colour.filled())
    }))?;
    Ok(())
}
