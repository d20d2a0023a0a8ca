//! The targets: one table, [`TARGETS`], from which both the targets table printed at the end
//! and the target marks of the chart (`--chart`) are made, so the two cannot disagree.
//!
//! A throughput target is a ratio of two medians of the same run: a tidegate row's MB/s over
//! its reference's (the single-thread `BufWriter`, a named peer, or the best peer with the same
//! frame size and producers). The others bound a measurement beside throughput.

use crate::extras::{Extras, FLOOR};
use crate::many::{MANY_CONNS, MANY_IO_THREADS, MANY_PRODUCERS, ManyCase, ManyImp};
use crate::report::{best_peer, fmt_size, median, rate};
use crate::throughput::{Case, Imp};
use crate::{CAPACITY, TASKS};

/// What a throughput target divides a tidegate row by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reference {
    /// The single-thread `BufWriter` row with the same frame size.
    BufWriter,
    /// This peer's row with the same frame size and producers.
    Peer(Imp),
    /// The fastest peer (any implementation but tidegate and the loopback ceiling) with the
    /// same frame size and producers.
    BestPeer,
}

/// One target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Target {
    /// The throughput row `imp`, `frame`, `producers` is at least `factor` × `reference`.
    Throughput { imp: Imp, frame: usize, producers: usize, reference: Reference, factor: f64 },
    /// The many-connections row on an `IoGroup` fed by [`MANY_PRODUCERS`] producers, with
    /// `frame`-byte frames, is at least `factor` × a thread per connection.
    Many { frame: usize, factor: f64 },
    /// The same row's peak RSS growth is no higher than a thread per connection's.
    ManyRss { frame: usize },
    /// tidegate's peak RSS growth with `frame`-byte frames is at most its capacity + `slack`.
    Rss { frame: usize, slack: usize },
    /// The CPU tidegate uses while a sender is blocked is at most `ns_per_s`.
    BlockedCpu { ns_per_s: f64 },
    /// tidegate's wake latency p99 (room freed → send returns) is no higher than the best
    /// peer's.
    WakeP99,
    /// tidegate's wake latency p50 (room freed → send returns) is at most `factor` × the bare
    /// `thread::park` / `unpark` floor's.
    WakeP50 { factor: f64 },
    /// A parked async sender costs at most `bytes` of RSS beyond a bare parked task holding
    /// the same frame.
    Parked { bytes: f64 },
}

/// A throughput target on the `tidegate Client` row.
const fn client(frame: usize, producers: usize, reference: Reference, factor: f64) -> Target {
    Target::Throughput { imp: Imp::Tidegate, frame, producers, reference, factor }
}

/// Every target, in the order of the targets table.
pub(crate) const TARGETS: &[Target] = &[
    client(64, 1, Reference::BufWriter, 1.0),
    client(64, 1, Reference::Peer(Imp::MutexQueue), 2.0),
    client(64, 4, Reference::BufWriter, 1.0),
    client(64, 4, Reference::BestPeer, 2.0),
    client(1024, 1, Reference::BestPeer, 1.0),
    client(1024, 4, Reference::BestPeer, 1.0),
    client(64 * 1024, 1, Reference::BestPeer, 1.0),
    client(64 * 1024, 4, Reference::BestPeer, 1.0),
    Target::Throughput {
        imp: Imp::TidegateTokio,
        frame: 64,
        producers: TASKS,
        reference: Reference::BufWriter,
        factor: 0.5,
    },
    Target::Throughput {
        imp: Imp::TidegateAsyncStd,
        frame: 64,
        producers: TASKS,
        reference: Reference::BufWriter,
        factor: 0.5,
    },
    Target::Many { frame: 64, factor: 1.0 },
    Target::ManyRss { frame: 64 },
    Target::Many { frame: 1024, factor: 1.0 },
    Target::ManyRss { frame: 1024 },
    Target::Rss { frame: 1024, slack: 2 << 20 },
    Target::Rss { frame: 64 * 1024, slack: 2 << 20 },
    Target::BlockedCpu { ns_per_s: 1e6 },
    Target::WakeP99,
    Target::WakeP50 { factor: 2.0 },
    Target::Parked { bytes: 128.0 },
];

/// The rows the targets are measured on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rows<'a> {
    /// The throughput rows.
    pub(crate) cases: &'a [Case],
    /// The many-connections rows (empty when none ran).
    pub(crate) many: &'a [ManyCase],
}

/// A ratio target as measured: the two medians and the reference's row.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    /// The tidegate row's median MB/s.
    pub(crate) ours: f64,
    /// The reference's median MB/s.
    pub(crate) theirs: f64,
    /// The reference's row, in full.
    pub(crate) name: String,
    /// The reference's implementation, in short.
    pub(crate) short: String,
}

impl Measured {
    /// The tidegate row's throughput over the reference's.
    pub(crate) fn ratio(&self) -> f64 {
        self.ours / self.theirs
    }
}

/// `n` with a comma between each group of three digits.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The producers of a throughput row, in words: tasks for the async rows, else producers.
fn producers_words(imp: Imp, producers: usize) -> String {
    let task = matches!(imp, Imp::TidegateTokio | Imp::TidegateAsyncStd | Imp::TokioMpsc);
    let unit = if task { "task" } else { "producer" };
    let plural = if producers == 1 { "" } else { "s" };
    format!("{} {unit}{plural}", grouped(producers))
}

/// The median MB/s of the many-connections row `imp` with `frame`-byte frames, if it ran.
fn many_mbps(many: &[ManyCase], imp: ManyImp, frame: usize) -> Option<f64> {
    let case = many.iter().find(|c| c.imp == imp && c.frame == frame)?;
    Some(rate(case.median_sample()?).1)
}

impl Target {
    /// Whether this target is measured on the many-connections rows.
    fn is_many(&self) -> bool {
        matches!(self, Self::Many { .. } | Self::ManyRss { .. })
    }

    /// The least ratio a throughput target requires.
    pub(crate) fn factor(&self) -> Option<f64> {
        match *self {
            Self::Throughput { factor, .. } | Self::Many { factor, .. } => Some(factor),
            _ => None,
        }
    }

    /// The target's first column in the targets table.
    pub(crate) fn what(&self) -> String {
        match *self {
            Self::Throughput { imp, frame, producers, reference, .. } => {
                let async_rows =
                    if imp.is_tidegate() && producers == TASKS { "async " } else { "" };
                let reference = match reference {
                    Reference::BufWriter => "the single-thread BufWriter".to_string(),
                    Reference::Peer(peer) => {
                        format!("{}, {}", peer.name(), producers_words(peer, producers))
                    }
                    Reference::BestPeer => {
                        format!("the best peer, {}", producers_words(imp, producers))
                    }
                };
                format!(
                    "{async_rows}{}, {}: {} vs {reference}",
                    fmt_size(frame),
                    producers_words(imp, producers),
                    imp.name()
                )
            }
            Self::Many { frame, .. } => format!(
                "{} connections on an IoGroup of {MANY_IO_THREADS}, {MANY_PRODUCERS} producers, \
                 {}: throughput vs a thread per connection",
                grouped(MANY_CONNS),
                fmt_size(frame)
            ),
            Self::ManyRss { frame } => format!(
                "{} connections on an IoGroup of {MANY_IO_THREADS}, {MANY_PRODUCERS} producers, \
                 {}: peak RSS growth vs a thread per connection",
                grouped(MANY_CONNS),
                fmt_size(frame)
            ),
            Self::Rss { frame, .. } => format!("peak RSS growth, {} frames", fmt_size(frame)),
            Self::BlockedCpu { .. } => "CPU while blocked".into(),
            Self::WakeP99 => "wake latency p99 (room freed → send returns) vs the best peer".into(),
            Self::WakeP50 { .. } => {
                "wake latency p50 (room freed → send returns) vs the bare park/unpark floor".into()
            }
            Self::Parked { .. } => "bytes per parked async sender beyond a bare parked task".into(),
        }
    }

    /// The chart's group of a throughput target (a heading), and its bar's label.
    pub(crate) fn chart_label(&self) -> Option<(String, String)> {
        match *self {
            Self::Throughput { imp, frame, producers, reference, .. } => {
                let reference = match reference {
                    Reference::BufWriter => "BufWriter",
                    Reference::Peer(peer) => peer.short_name(),
                    Reference::BestPeer => "best peer",
                };
                Some((
                    format!("{} frames", fmt_size(frame)),
                    format!(
                        "{}, {} ÷ {reference}",
                        imp.short_name(),
                        producers_words(imp, producers)
                    ),
                ))
            }
            Self::Many { frame, .. } => Some((
                format!("{} connections", grouped(MANY_CONNS)),
                format!("IoGroup, {} ÷ a thread per connection", fmt_size(frame)),
            )),
            _ => None,
        }
    }

    /// The two medians of a throughput target, if both rows were measured.
    pub(crate) fn measure(&self, rows: Rows<'_>) -> Option<Measured> {
        match *self {
            Self::Throughput { imp, frame, producers, reference, .. } => {
                let row = rows
                    .cases
                    .iter()
                    .find(|c| c.imp == imp && c.frame == frame && c.producers == producers)?;
                let ours = rate(row.median()?).1;
                let (theirs, peer) = match reference {
                    Reference::BufWriter => {
                        let peer = rows
                            .cases
                            .iter()
                            .find(|c| c.imp == Imp::BufWriter && c.frame == frame)?;
                        (rate(peer.median()?).1, peer)
                    }
                    Reference::Peer(imp) => {
                        let peer = rows.cases.iter().find(|c| {
                            c.imp == imp && c.frame == frame && c.producers == producers
                        })?;
                        (rate(peer.median()?).1, peer)
                    }
                    Reference::BestPeer => best_peer(rows.cases, row)?,
                };
                // The single-thread row's frame size and producers go without saying.
                let name = if peer.imp == Imp::BufWriter {
                    peer.imp.name().to_string()
                } else {
                    peer.name()
                };
                Some(Measured { ours, theirs, name, short: peer.imp.short_name().to_string() })
            }
            Self::Many { frame, .. } => {
                let ours = many_mbps(rows.many, ManyImp::Group, frame)?;
                let theirs = many_mbps(rows.many, ManyImp::Threads, frame)?;
                Some(Measured {
                    ours,
                    theirs,
                    name: ManyImp::Threads.name().to_string(),
                    short: "a thread per connection".into(),
                })
            }
            _ => None,
        }
    }

    /// The target's line of the targets table, or `None` for a many-connections target when
    /// no many-connections row ran; `conns` is the connections those rows opened.
    fn line(&self, rows: Rows<'_>, conns: usize, extras: &Extras) -> Option<String> {
        if self.is_many() && rows.many.is_empty() {
            return None;
        }
        // What the many-connections rows measured with fewer connections than they state.
        let fewer = if self.is_many() && conns != MANY_CONNS {
            format!("; measured with {} connections", grouped(conns))
        } else {
            String::new()
        };
        // The required column, and the measured column with the verdict (or why not).
        let (required, measured): (String, Result<(String, bool), String>) = match *self {
            Self::Throughput { factor, .. } | Self::Many { factor, .. } => {
                let measured = self.measure(rows).ok_or_else(|| "not measured".to_string());
                let measured = measured.map(|m| {
                    let ratio = m.ratio();
                    let text = format!(
                        "{ratio:.2}× ({:.0} vs {:.0} MB/s, {}{fewer})",
                        m.ours, m.theirs, m.name
                    );
                    (text, ratio >= factor)
                });
                (format!("≥ {factor:.1}×"), measured)
            }
            Self::ManyRss { frame } => {
                let growth = |imp| {
                    let case = rows.many.iter().find(|c| c.imp == imp && c.frame == frame)?;
                    (!case.samples.is_empty()).then(|| case.median_of(|s| s.growth_kib) / 1024.0)
                };
                let measured = match (growth(ManyImp::Group), growth(ManyImp::Threads)) {
                    (Some(ours), Some(theirs)) => Ok((
                        format!("{ours:.1} vs {theirs:.1} MiB, {}{fewer}", ManyImp::Threads.name()),
                        ours <= theirs,
                    )),
                    _ => Err("not measured".into()),
                };
                ("no higher".into(), measured)
            }
            Self::Rss { frame, slack } => {
                let limit = (CAPACITY + slack) as f64;
                let growth = extras
                    .rss
                    .iter()
                    .find(|(n, f, _)| n.starts_with("tidegate") && *f == frame)
                    .map(|(_, _, v)| median(&mut v.clone()));
                let measured = growth.map(|g| (format!("{:.2} MiB", g / 1048576.0), g <= limit));
                (
                    format!("≤ capacity + {} MiB = {:.0} MiB", slack >> 20, limit / 1048576.0),
                    measured.ok_or_else(|| "not measured".into()),
                )
            }
            Self::BlockedCpu { ns_per_s } => {
                let cpu = extras
                    .cpu
                    .iter()
                    .find(|(n, _, _)| n.starts_with("tidegate"))
                    .map(|(_, v, _)| median(&mut v.clone()));
                let measured = cpu.map(|c| (format!("{:.1} µs/s", c / 1e3), c <= ns_per_s));
                (
                    format!("≤ {:.0} ms/s", ns_per_s / 1e6),
                    measured.ok_or_else(|| "not measured".into()),
                )
            }
            Self::WakeP99 => {
                let mut peers: Vec<(&str, f64)> = extras
                    .wake
                    .iter()
                    .filter(|(n, _)| n != FLOOR && !n.starts_with("tidegate"))
                    .map(|(n, _)| (n.as_str(), wake_median(extras, n, 1)))
                    .collect();
                peers.sort_by(|a, b| a.1.total_cmp(&b.1));
                let ours = extras
                    .wake
                    .iter()
                    .find(|(n, _)| n.starts_with("tidegate"))
                    .map(|(n, _)| wake_median(extras, n, 1));
                match (ours, peers.first()) {
                    (Some(ours), Some(&(name, theirs))) => (
                        format!("≤ {:.1} µs ({name})", theirs / 1e3),
                        Ok((format!("{:.1} µs", ours / 1e3), ours <= theirs)),
                    ),
                    _ => ("≤ the best peer's".into(), Err("not measured".into())),
                }
            }
            Self::WakeP50 { factor } => {
                let ours = extras
                    .wake
                    .iter()
                    .find(|(n, _)| n.starts_with("tidegate"))
                    .map(|(n, _)| wake_median(extras, n, 0));
                let floor = extras.wake.iter().any(|(n, _)| n == FLOOR);
                let measured = match (ours, floor.then(|| wake_median(extras, FLOOR, 0))) {
                    (Some(ours), Some(floor)) => {
                        let ratio = ours / floor;
                        Ok((
                            format!(
                                "{ratio:.2}× ({:.1} vs {:.1} µs, {FLOOR})",
                                ours / 1e3,
                                floor / 1e3
                            ),
                            ratio <= factor,
                        ))
                    }
                    _ => Err("not measured".into()),
                };
                (format!("≤ {factor:.1}×"), measured)
            }
            Self::Parked { bytes } => {
                let measured = if extras.parked.is_empty() {
                    let why = extras.parked_error.as_deref().unwrap_or("not run");
                    Err(format!("not measured: {why}"))
                } else {
                    let mut senders: Vec<f64> = extras.parked.iter().map(|p| p.0).collect();
                    let mut bare: Vec<f64> = extras.parked.iter().map(|p| p.1).collect();
                    let (sender, bare) = (median(&mut senders), median(&mut bare));
                    Ok((
                        format!(
                            "{:.0} B ({sender:.0} B per parked sender with its tokio task, \
                             {bare:.0} B per bare parked task, frames not counted)",
                            sender - bare
                        ),
                        sender - bare <= bytes,
                    ))
                };
                (format!("≤ {bytes:.0} B"), measured)
            }
        };
        let (measured, verdict) = match measured {
            Ok((text, holds)) => (text, if holds { "holds" } else { "**misses**" }),
            Err(why) => (why, "–"),
        };
        Some(format!("| {} | {required} | {measured} | {verdict} |\n", self.what()))
    }
}

/// The median over the runs of column `column` of the wake-latency row `name`, in ns.
fn wake_median(extras: &Extras, name: &str, column: usize) -> f64 {
    let mut values: Vec<f64> = extras
        .wake
        .iter()
        .filter(|(n, _)| n == name)
        .flat_map(|(_, runs)| runs.iter().map(|r| r[column]))
        .collect();
    median(&mut values)
}

/// The targets table: a line for each of [`TARGETS`] (the many-connections ones only when
/// those rows ran, with `conns` connections).
pub(crate) fn targets_table(rows: Rows<'_>, conns: usize, extras: &Extras) -> String {
    let mut out = String::new();
    out.push_str("\n| target | required | measured (medians) | verdict |\n|---|---:|---|---|\n");
    for target in TARGETS {
        if let Some(line) = target.line(rows, conns, extras) {
            out.push_str(&line);
        }
    }
    out
}
