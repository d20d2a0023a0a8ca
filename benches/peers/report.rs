//! Reporting: medians, ratios and the tables printed at the end.

use std::fmt::Write as _;

use crate::extras::{Extras, FLOOR};
use crate::throughput::{Case, Imp, Sample};
use crate::{CAPACITY, TASKS};

pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

pub(crate) fn rate(sample: Sample) -> (f64, f64) {
    (sample.msgs as f64 / sample.secs, sample.bytes as f64 / sample.secs / 1e6)
}

pub(crate) fn fmt_count(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.2} M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

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

pub(crate) fn fmt_size(bytes: usize) -> String {
    if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

pub(crate) fn verdict(holds: bool) -> &'static str {
    if holds { "holds" } else { "**misses**" }
}

/// A line of the targets table for "tidegate row ≥ factor × reference".
pub(crate) fn ratio_target(
    out: &mut String,
    what: &str,
    ours: Option<f64>,
    reference: Option<(f64, String)>,
    factor: f64,
) {
    match (ours, reference) {
        (Some(ours), Some((theirs, name))) => {
            let ratio = ours / theirs;
            let _ = writeln!(
                out,
                "| {what} | ≥ {factor:.1}× | {ratio:.2}× ({ours:.0} vs {theirs:.0} MB/s, {name}) | {} |",
                verdict(ratio >= factor)
            );
        }
        _ => {
            let _ = writeln!(out, "| {what} | ≥ {factor:.1}× | not measured | – |");
        }
    }
}

/// The target of [`targets_table`] for the tidegate row `case` whose reference is the row's
/// best peer with the same producers, `peer`, if there is one: the least ratio required.
pub(crate) fn peer_target(case: &Case, peer: Imp) -> Option<f64> {
    match (case.imp, case.frame, case.producers) {
        (Imp::Tidegate, 64, 1) if peer == Imp::BufWriter => Some(0.8),
        (Imp::Tidegate, 64, 1) if peer.is_channel() => Some(3.0),
        (Imp::Tidegate, 64, 4) if peer.is_channel() => Some(1.5),
        (Imp::Tidegate, 1024, 1 | 4) => Some(1.0),
        (Imp::Tidegate, frame, 1 | 4) if frame == 64 * 1024 => Some(1.0),
        (Imp::TidegateTokio | Imp::TidegateAsyncStd, 64, TASKS) if peer == Imp::TokioMpsc => {
            Some(1.5)
        }
        _ => None,
    }
}

pub(crate) fn targets_table(cases: &[Case], extras: &mut Extras) -> String {
    let mut out = String::new();
    out.push_str("\n| target | required | measured (medians) | verdict |\n|---|---:|---|---|\n");
    let ours = |imp, frame, producers| mbps(cases, imp, frame, producers);
    let channel = |frame, producers| {
        best(cases, |c| c.frame == frame && c.producers == producers && c.imp.is_channel())
    };
    let peer = |frame, producers| {
        best(cases, |c| c.frame == frame && c.producers == producers && c.imp.is_peer())
    };
    let bufwriter =
        mbps(cases, Imp::BufWriter, 64, 1).map(|b| (b, Imp::BufWriter.name().to_string()));
    ratio_target(
        &mut out,
        "64 B, 1 producer vs the single-thread BufWriter",
        ours(Imp::Tidegate, 64, 1),
        bufwriter,
        0.8,
    );
    ratio_target(
        &mut out,
        "64 B, 1 producer vs the fastest channel peer",
        ours(Imp::Tidegate, 64, 1),
        channel(64, 1),
        3.0,
    );
    for frame in [1024, 64 * 1024] {
        for producers in [1, 4] {
            ratio_target(
                &mut out,
                &format!("{}, {producers} producer(s) vs the fastest peer", fmt_size(frame)),
                ours(Imp::Tidegate, frame, producers),
                peer(frame, producers),
                1.0,
            );
        }
    }
    ratio_target(
        &mut out,
        "64 B, 4 producers vs the fastest channel peer",
        ours(Imp::Tidegate, 64, 4),
        channel(64, 4),
        1.5,
    );
    let mpsc =
        mbps(cases, Imp::TokioMpsc, 64, TASKS).map(|b| (b, Imp::TokioMpsc.name().to_string()));
    ratio_target(
        &mut out,
        "async 64 B, 1,000 tasks on tokio vs tokio mpsc",
        ours(Imp::TidegateTokio, 64, TASKS),
        mpsc.clone(),
        1.5,
    );
    ratio_target(
        &mut out,
        "async 64 B, 1,000 tasks on async-std vs tokio mpsc",
        ours(Imp::TidegateAsyncStd, 64, TASKS),
        mpsc,
        1.5,
    );
    for (name, frame, v) in &mut extras.rss {
        if name.starts_with("tidegate") {
            let growth = median(v);
            let limit = (CAPACITY + (2 << 20)) as f64;
            let _ = writeln!(
                out,
                "| peak RSS growth, {} frames | ≤ capacity + 2 MiB = {:.0} MiB | {:.2} MiB | {} |",
                fmt_size(*frame),
                limit / 1048576.0,
                growth / 1048576.0,
                verdict(growth <= limit)
            );
        }
    }
    if let Some((_, v, _)) = extras.cpu.iter_mut().find(|(n, _, _)| n.starts_with("tidegate")) {
        let cpu = median(v);
        let _ = writeln!(
            out,
            "| CPU while blocked | ≤ 1 ms/s | {:.1} µs/s | {} |",
            cpu / 1e3,
            verdict(cpu <= 1e6)
        );
    }
    let mut wake: Vec<(String, f64)> = extras
        .wake
        .iter()
        .map(|(n, runs)| (n.clone(), median(&mut runs.iter().map(|r| r[1]).collect::<Vec<_>>())))
        .collect();
    wake.retain(|(n, _)| n != FLOOR);
    if let Some(i) = wake.iter().position(|(n, _)| n.starts_with("tidegate")) {
        let (_, ours) = wake.remove(i);
        if let Some((name, theirs)) = wake.into_iter().min_by(|a, b| a.1.total_cmp(&b.1)) {
            let _ = writeln!(
                out,
                "| wake latency p99 (room freed → send returns) vs the best peer | \
                 ≤ {:.1} µs ({name}) | {:.1} µs | {} |",
                theirs / 1e3,
                ours / 1e3,
                verdict(ours <= theirs)
            );
        }
    }
    if extras.parked.is_empty() {
        let why = extras.parked_error.clone().unwrap_or_else(|| "not run".into());
        let _ = writeln!(
            out,
            "| bytes per parked async sender beside its frame | ≤ 256 B | not measured: {why} | – |"
        );
    } else {
        let mut senders: Vec<f64> = extras.parked.iter().map(|p| p.0).collect();
        let mut bare: Vec<f64> = extras.parked.iter().map(|p| p.1).collect();
        let (sender, bare) = (median(&mut senders), median(&mut bare));
        let _ = writeln!(
            out,
            "| bytes per parked async sender beside its frame | ≤ 256 B | {sender:.0} B with its tokio task; {:.0} B beyond a bare parked task ({bare:.0} B) | {} |",
            sender - bare,
            verdict(sender - bare <= 256.0)
        );
    }
    out
}
