//! Reporting: medians, ratios and the throughput table (the targets table is in `targets`).

use std::fmt::Write as _;

use crate::throughput::{Case, Imp, Sample};

/// The median of `values` (which it sorts), or NaN when there are none.
pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A sample's frames per second and MB (10^6 bytes) per second.
pub(crate) fn rate(sample: Sample) -> (f64, f64) {
    (sample.msgs as f64 / sample.secs, sample.bytes as f64 / sample.secs / 1e6)
}

/// A count with a `k` or `M` suffix.
pub(crate) fn fmt_count(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.2} M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

/// A ratio as `1.23×`, or `–` when there is none.
pub(crate) fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "–".into(), |r| format!("{r:.2}×"))
}

/// The best throughput among rows matching `pick`, with its name.
pub(crate) fn best(cases: &[Case], pick: impl Fn(&Case) -> bool) -> Option<(f64, String)> {
    cases
        .iter()
        .filter(|c| pick(c))
        .filter_map(|c| c.median().map(|m| (rate(m).1, c.name())))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// The median MB/s of the row `imp`, `frame`, `producers`, if it was measured.
pub(crate) fn mbps(cases: &[Case], imp: Imp, frame: usize, producers: usize) -> Option<f64> {
    cases
        .iter()
        .find(|c| c.imp == imp && c.frame == frame && c.producers == producers)
        .and_then(Case::median)
        .map(|m| rate(m).1)
}

/// The best peer (neither tidegate nor the ceiling) with the frame size and producers of
/// `case`: its throughput (median MB/s) and its row.
pub(crate) fn best_peer<'a>(cases: &'a [Case], case: &Case) -> Option<(f64, &'a Case)> {
    cases
        .iter()
        .filter(|c| c.frame == case.frame && c.producers == case.producers && c.imp.is_peer())
        .filter_map(|c| c.median().map(|m| (rate(m).1, c)))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// The producers column of a row: `1` for the single-thread rows, else its threads or tasks.
pub(crate) fn producers_label(case: &Case) -> String {
    let plural = if case.producers == 1 { "" } else { "s" };
    match case.imp {
        Imp::Ceiling | Imp::BufWriter => "1".to_string(),
        Imp::TokioMpsc | Imp::TidegateTokio | Imp::TidegateAsyncStd => {
            format!("{} task{plural}", case.producers)
        }
        _ => format!("{} thread{plural}", case.producers),
    }
}

/// The implementation column of a row: its name, in bold for tidegate's rows.
pub(crate) fn display_name(case: &Case) -> String {
    if case.imp.is_tidegate() {
        format!("**{}**", case.imp.name())
    } else {
        case.imp.name().to_string()
    }
}

/// The throughput table: every row's medians and its ratios to the rows it is compared with.
pub(crate) fn throughput_table(cases: &[Case]) -> String {
    let mut out = String::new();
    out.push_str(
        "| frame | producers | implementation | msgs/s | MB/s | spread | × BufWriter 1 thread \
         | × best channel, same producers | × best peer, same producers |\n",
    );
    out.push_str("|---:|---:|---|---:|---:|---:|---:|---:|---:|\n");
    for case in cases {
        let Some(m) = case.median() else { continue };
        let (msgs, mb) = rate(m);
        let same = |c: &Case| c.frame == case.frame && c.producers == case.producers;
        let ceiling = mbps(cases, Imp::BufWriter, case.frame, 1).map(|b| mb / b);
        let channel = best(cases, |c| same(c) && c.imp.is_channel()).map(|(b, _)| mb / b);
        let peer = best_peer(cases, case).map(|(b, _)| mb / b);
        let frame = if case.imp == Imp::Ceiling { "256 KiB".into() } else { fmt_size(case.frame) };
        let _ = writeln!(
            out,
            "| {frame} | {} | {} | {} | {mb:.0} | ±{:.0}% | {} | {} | {} |",
            producers_label(case),
            display_name(case),
            fmt_count(msgs),
            case.spread() * 50.0,
            if case.imp == Imp::Ceiling { "–".into() } else { fmt_ratio(ceiling) },
            fmt_ratio(channel),
            fmt_ratio(peer),
        );
    }
    out
}

/// A size in bytes as `64 B` or `1 KiB`.
pub(crate) fn fmt_size(bytes: usize) -> String {
    if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}
