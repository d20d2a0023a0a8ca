//! The chart of `--chart PATH`: an SVG bar chart of each tidegate row's ratio to the best peer
//! with the same producers (the last column of the throughput table), grouped by frame size,
//! with a line at 1.0× and a mark at the target where one applies.

use std::io;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::other;
use crate::report::{best_peer, fmt_size, peer_target, producers_label, rate};
use crate::throughput::Case;

/// Width of the image, in pixels.
const WIDTH: u32 = 1100;
/// Height of one bar's band, in pixels.
const BAND: u32 = 30;
/// Room left of the plot for the rows' names, in pixels.
const LABELS: u32 = 300;
/// The bars' colours, one per frame size, in the order of the groups.
const COLOURS: [RGBColor; 3] =
    [RGBColor(66, 114, 196), RGBColor(84, 160, 84), RGBColor(150, 90, 170)];
/// The colour of the targets' marks.
const TARGET: RGBColor = RGBColor(204, 40, 40);

/// One bar: a tidegate row against its best peer.
#[derive(Debug, Clone)]
struct Bar {
    frame: usize,
    label: String,
    ratio: f64,
    peer: String,
    target: Option<f64>,
}

/// The bars of every tidegate row measured, with a peer of the same frame and producers.
fn bars(cases: &[Case]) -> Vec<Bar> {
    cases
        .iter()
        .filter(|c| c.imp.is_tidegate())
        .filter_map(|case| {
            let ours = rate(case.median()?).1;
            let (theirs, peer) = best_peer(cases, case)?;
            Some(Bar {
                frame: case.frame,
                label: format!("{}, {}", case.imp.short_name(), producers_label(case)),
                ratio: ours / theirs,
                peer: peer.imp.short_name().to_string(),
                target: peer_target(case, peer.imp),
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

/// Writes the chart of `cases` to `path` with the caption `caption`, and returns how many bars
/// it has; writes nothing and returns 0 when no tidegate row has a peer to compare with.
pub(crate) fn write_chart(path: &Path, cases: &[Case], caption: &str) -> io::Result<usize> {
    let bars = bars(cases);
    if bars.is_empty() {
        return Ok(0);
    }
    let mut lines = Vec::new();
    let mut frames: Vec<usize> = Vec::new();
    for bar in &bars {
        if !frames.contains(&bar.frame) {
            frames.push(bar.frame);
            lines.push(Line::Heading(format!("{} frames", fmt_size(bar.frame))));
            lines.extend(bars.iter().filter(|b| b.frame == bar.frame).cloned().map(Line::Bar));
        }
    }
    let top = bars.iter().flat_map(|b| [b.ratio, b.target.unwrap_or(0.0)]).fold(1.0, f64::max);
    // Room right of the longest bar for its value.
    let x_max = (top * 1.45 * 2.0).ceil() / 2.0;
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
        .x_desc("throughput ÷ the best peer's with the same frame size and producers (medians)")
        .draw()
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
                let group = frames.iter().position(|f| *f == bar.frame).unwrap_or(0);
                let colour = COLOURS[group % COLOURS.len()];
                chart
                    .draw_series([Rectangle::new(
                        [(0.0, y - 0.35), (bar.ratio, y + 0.35)],
                        colour.filled(),
                    )])
                    .map_err(other)?;
                let target = bar.target.map_or_else(String::new, |t| format!(", target ≥ {t:.1}×"));
                let value = format!("{:.2}× vs {}{target}", bar.ratio, bar.peer);
                // Right of the bar, and of its target's mark.
                let at = bar.ratio.max(bar.target.unwrap_or(0.0)) + x_max * 0.01;
                chart.draw_series([Text::new(value, (at, y), left.clone())]).map_err(other)?;
                if let Some(t) = bar.target {
                    chart
                        .draw_series([PathElement::new(
                            vec![(t, y - 0.48), (t, y + 0.48)],
                            TARGET.stroke_width(3),
                        )])
                        .map_err(other)?;
                }
            }
        }
    }
    chart
        .draw_series([PathElement::new(vec![(1.0, 0.0), (1.0, n)], BLACK.stroke_width(1))])
        .map_err(other)?;
    // The legend, under the axis's description.
    let (x0, _) = chart.backend_coord(&(0.0, 0.0));
    let y = i32::try_from(height).map_err(other)? - 20;
    let key = |x: i32, colour: RGBColor, width: u32, text: &str| {
        root.draw(&PathElement::new(vec![(x, y - 7), (x, y + 7)], colour.stroke_width(width)))?;
        root.draw(&Text::new(text.to_string(), (x + 8, y), left.clone()))
    };
    key(x0, BLACK, 1, "1.0×: as fast as the best peer").map_err(other)?;
    if bars.iter().any(|b| b.target.is_some()) {
        key(
            x0 + 260,
            TARGET,
            3,
            "target: the ratio the targets table requires, where it compares with the same peer",
        )
        .map_err(other)?;
    }
    root.present().map_err(other)?;
    Ok(bars.len())
}
