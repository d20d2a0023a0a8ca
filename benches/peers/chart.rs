//! The chart of `--chart PATH`: an SVG bar chart of the throughput targets, one bar per target
//! of [`TARGETS`] that compares throughputs and was measured, grouped by frame size (and the
//! many-connections targets apart). A bar is the measured ratio of the tidegate row's median
//! MB/s to its reference's, exactly as the targets table prints it; a red mark on it is the
//! ratio the target requires, and a line runs at 1.0×.
//!
//! One bar per target, rather than one per tidegate row against its best peer: a target may
//! compare a row with a reference other than the best peer (the single-thread `BufWriter`,
//! `Mutex+Condvar`), and a row may have two targets, so bars per row could only mark the
//! targets that happened to share their peer. Drawn per target, every bar has its mark and the
//! chart answers what the targets table does, at a glance. The ratios of the rows without a
//! target (`send_batch`, behind a `BufWriter`) are in the throughput table.

use std::io;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::other;
use crate::targets::{Rows, TARGETS};

/// Width of the image, in pixels.
const WIDTH: u32 = 1150;
/// Height of one bar's band, in pixels.
const BAND: u32 = 30;
/// Room left of the plot for the bars' labels, in pixels.
const LABELS: u32 = 340;
/// The bars' colours, one per group, in the order of the groups.
const COLOURS: [RGBColor; 4] =
    [RGBColor(66, 114, 196), RGBColor(84, 160, 84), RGBColor(150, 90, 170), RGBColor(200, 130, 40)];
/// The colour of the targets' marks.
const TARGET: RGBColor = RGBColor(204, 40, 40);

/// One bar: a throughput target as measured.
#[derive(Debug, Clone)]
struct Bar {
    /// The heading of its group.
    group: String,
    /// The row and what it is divided by.
    label: String,
    /// The measured ratio.
    ratio: f64,
    /// The reference's implementation.
    peer: String,
    /// The least ratio the target requires.
    target: f64,
}

/// The bars of every throughput target whose two rows were measured, in the order of
/// [`TARGETS`].
fn bars(rows: Rows<'_>) -> Vec<Bar> {
    TARGETS
        .iter()
        .filter_map(|target| {
            let (group, label) = target.chart_label()?;
            let measured = target.measure(rows)?;
            Some(Bar {
                group,
                label,
                ratio: measured.ratio(),
                peer: measured.short,
                target: target.factor()?,
            })
        })
        .collect()
}

/// A line of the chart from the top down: a group's heading or a bar.
#[derive(Debug, Clone)]
enum Line {
    Heading(String),
    Bar(Bar),
}

/// Writes the chart of the throughput targets measured on `rows` to `path` with the caption
/// `caption`, and returns how many bars it has; writes nothing and returns 0 when no throughput
/// target was measured.
pub(crate) fn write_chart(path: &Path, rows: Rows<'_>, caption: &str) -> io::Result<usize> {
    let bars = bars(rows);
    if bars.is_empty() {
        return Ok(0);
    }
    let mut lines = Vec::new();
    let mut groups: Vec<&str> = Vec::new();
    for bar in &bars {
        if !groups.contains(&bar.group.as_str()) {
            groups.push(&bar.group);
            lines.push(Line::Heading(bar.group.clone()));
            lines.extend(bars.iter().filter(|b| b.group == bar.group).cloned().map(Line::Bar));
        }
    }
    let top = bars.iter().flat_map(|b| [b.ratio, b.target]).fold(1.0, f64::max);
    // Room right of the longest bar for its value.
    let x_max = (top * 1.7 * 2.0).ceil() / 2.0;
    let n = lines.len() as f64;
    let height = 150 + BAND * lines.len() as u32;
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(other)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .margin_bottom(40)
        .x_label_area_size(45)
        .y_label_area_size(LABELS)
        .build_cartesian_2d(0f64..x_max, 0f64..n)
        .map_err(other)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .y_labels(0)
        .x_labels(10)
        .x_label_formatter(&|x| format!("{x:.1}×"))
        .x_desc("throughput ÷ the target's reference's (medians of the same run)")
        .draw()
        .map_err(other)?;
    // Under the bars and the targets' marks.
    chart
        .draw_series([PathElement::new(vec![(1.0, 0.0), (1.0, n)], BLACK.stroke_width(1))])
        .map_err(other)?;
    let font = TextStyle::from(("sans-serif", 13).into_font());
    let left = font.pos(Pos::new(HPos::Left, VPos::Center));
    let right = font.pos(Pos::new(HPos::Right, VPos::Center));
    let heading = TextStyle::from(("sans-serif", 14).into_font().style(FontStyle::Bold));
    let heading = heading.pos(Pos::new(HPos::Right, VPos::Center));
    for (i, line) in lines.iter().enumerate() {
        // The first line on top.
        let y = n - i as f64 - 0.5;
        let (px, py) = chart.backend_coord(&(0.0, y));
        match line {
            Line::Heading(text) => {
                root.draw(&Text::new(text.clone(), (px - 8, py), heading.clone()))
                    .map_err(other)?;
            }
            Line::Bar(bar) => {
                root.draw(&Text::new(bar.label.clone(), (px - 8, py), right.clone()))
                    .map_err(other)?;
                let group = groups.iter().position(|g| *g == bar.group).unwrap_or(0);
                let colour = COLOURS[group % COLOURS.len()];
                chart
                    .draw_series([Rectangle::new(
                        [(0.0, y - 0.35), (bar.ratio, y + 0.35)],
                        colour.filled(),
                    )])
                    .map_err(other)?;
                let verdict = if bar.ratio >= bar.target { "holds" } else { "misses" };
                let value = format!(
                    "{:.2}× vs {}; target ≥ {:.1}×: {verdict}",
                    bar.ratio, bar.peer, bar.target
                );
                // Right of the bar, and of its target's mark.
                let at = bar.ratio.max(bar.target) + x_max * 0.01;
                chart.draw_series([Text::new(value, (at, y), left.clone())]).map_err(other)?;
                chart
                    .draw_series([PathElement::new(
                        vec![(bar.target, y - 0.48), (bar.target, y + 0.48)],
                        TARGET.stroke_width(3),
                    )])
                    .map_err(other)?;
            }
        }
    }
    // The legend, under the axis's description.
    let (x0, _) = chart.backend_coord(&(0.0, 0.0));
    let y = i32::try_from(height).map_err(other)? - 20;
    let key = |x: i32, colour: RGBColor, width: u32, text: &str| {
        root.draw(&PathElement::new(vec![(x, y - 7), (x, y + 7)], colour.stroke_width(width)))?;
        root.draw(&Text::new(text.to_string(), (x + 8, y), left.clone()))
    };
    key(x0, BLACK, 1, "1.0×: as fast as the reference").map_err(other)?;
    key(x0 + 260, TARGET, 3, "target: the least ratio the targets table requires")
        .map_err(other)?;
    root.present().map_err(other)?;
    Ok(bars.len())
}
