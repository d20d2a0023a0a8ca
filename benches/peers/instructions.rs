//! Instructions per frame (`--instructions`): each selected 64 B row is run again in a child
//! process (this program) under `valgrind --tool=callgrind`, restricted to that row, at two byte
//! counts; the difference of the two totals over the difference of the frames is what one more
//! frame costs, with process start, dynamic loading and connection set-up cancelled out.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::Opts;
use crate::duplex::duplex_cases;
use crate::many::many_cases;
use crate::other;
use crate::report::{display_name, fmt_size, producers_label};
use crate::throughput::{Case, Imp, cases};

/// The fractions of the normal bytes the two runs of a row send (`--scale`): 1/64 and 1/16,
/// that is 4 MiB and 16 MiB of 64 B frames, far past the 1 MiB bounds so that both runs spend
/// most of their frames in the steady state.
pub(crate) const SCALES: [u64; 2] = [64, 16];

/// The program run as `valgrind`.
const VALGRIND: &str = "valgrind";

/// Whether `case` gets an instruction count: every 64 B row with one producer, and the
/// 4-producer rows of the tidegate `Client` and of `Mutex+Condvar`.
pub(crate) fn counted(case: &Case) -> bool {
    case.frame == 64
        && (case.producers == 1
            || case.producers == 4 && matches!(case.imp, Imp::Tidegate | Imp::MutexQueue))
}

/// One counted row: frames and total instructions of its two runs.
#[derive(Debug, Clone)]
struct Counted {
    case: Case,
    /// `(frames, Ir)` of the run at each of [`SCALES`].
    runs: Vec<(u64, u64)>,
}

impl Counted {
    /// Instructions per extra frame between the small and the big run.
    fn per_frame(&self) -> Option<f64> {
        let (&(frames_small, ir_small), &(frames_big, ir_big)) =
            (self.runs.first()?, self.runs.last()?);
        (frames_big > frames_small)
            .then(|| (ir_big as f64 - ir_small as f64) / (frames_big - frames_small) as f64)
    }
}

/// Why instruction counts cannot be taken on this machine, if they cannot: `valgrind` must run.
fn valgrind_missing() -> Option<String> {
    match Command::new(VALGRIND).arg("--version").output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!("`{VALGRIND} --version` exited with {}", out.status)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Some(format!("`{VALGRIND}` is not installed (not found on PATH)"))
        }
        Err(e) => Some(format!("`{VALGRIND} --version` could not be run: {e}")),
    }
}

/// Checks that `--filter name` selects the one throughput row `name` and nothing else.
fn check_exact(name: &str) -> io::Result<()> {
    let rows = cases().iter().filter(|c| c.name().contains(name)).count();
    let others = many_cases().iter().filter(|c| c.name().contains(name)).count()
        + duplex_cases().iter().filter(|c| c.name().contains(name)).count();
    if rows == 1 && others == 0 {
        Ok(())
    } else {
        Err(other(format!("--filter {name:?} selects {rows} throughput rows and {others} others")))
    }
}

/// The total `Ir` of a callgrind output file: its `summary:` line, else its `totals:` line.
pub(crate) fn total_ir(path: &Path) -> io::Result<u64> {
    let text = std::fs::read_to_string(path)?;
    let field = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    field("summary:")
        .or_else(|| field("totals:"))
        .ok_or_else(|| other(format!("no summary: or totals: line in {}", path.display())))
}

/// Runs the row `case` alone in a child process under callgrind with 1/`scale` of the bytes,
/// and returns the frames it sent and the instructions the whole process executed.
fn count_one(case: &Case, scale: u64, opts: &Opts) -> io::Result<(u64, u64)> {
    let name = case.name();
    let out_file: PathBuf = std::env::temp_dir().join(format!(
        "peers-callgrind-{}-{}-{}-{}.out",
        std::process::id(),
        case.imp.name().replace([' ', ',', '+', '/'], "_"),
        case.producers,
        scale
    ));
    let exe = std::env::current_exe()?;
    let out = Command::new(VALGRIND)
        .arg("--tool=callgrind")
        .arg("-q")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(&exe)
        .args(["--runs", "1", "--throughput-only", "--scale", &scale.to_string()])
        .args(["--filter", &name])
        .output()?;
    let ir = total_ir(&out_file);
    // A missing file (the child failed early) is reported through the status below.
    let _ = std::fs::remove_file(&out_file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(other(format!(
            "the child under callgrind {}:\n{}",
            out.status,
            tail.join("\n")
        )));
    }
    // The child logs `<name>: <rate> msgs/s` once it has run the row.
    if !stderr.contains(&format!("] {name}: ")) {
        return Err(other("the child under callgrind did not run the row"));
    }
    let per = case.per_producer(&Opts { scale: Some(scale), ..opts.clone() });
    Ok((per * case.producers as u64, ir?))
}

/// Counts the instructions per frame of each selected row that [`counted`] picks, and returns
/// the report section: a markdown table, or a line saying why nothing was counted. A row whose
/// count fails is logged and added to `failures`.
pub(crate) fn instructions_section(
    opts: &Opts,
    cases: &[Case],
    failures: &mut Vec<String>,
    log: &mut impl FnMut(String),
) -> String {
    let rows: Vec<&Case> = cases.iter().filter(|c| counted(c)).collect();
    if rows.is_empty() {
        return "\nInstructions per frame: no selected row has 64 B frames and 1 producer \
                (or 4, for tidegate Client and Mutex+Condvar); nothing counted.\n"
            .into();
    }
    if let Some(why) = valgrind_missing() {
        log(format!("instructions per frame: skipped: {why}"));
        return format!("\nInstructions per frame: skipped, since {why}.\n");
    }
    let mut counts = Vec::new();
    for case in rows {
        let name = case.name();
        let mut runs = Vec::new();
        for scale in SCALES {
            let started = Instant::now();
            let result = check_exact(&name).and_then(|()| count_one(case, scale, opts));
            match result {
                Ok((frames, ir)) => {
                    log(format!(
                        "instructions: {name}: 1/{scale} of the bytes, {frames} frames: \
                         {ir} Ir ({:.1} s under callgrind)",
                        started.elapsed().as_secs_f64()
                    ));
                    runs.push((frames, ir));
                }
                Err(e) => {
                    log(format!("instructions: {name}: FAILED: {e}"));
                    failures.push(format!("instructions: {name}: {e}"));
                    break;
                }
            }
        }
        if runs.len() == SCALES.len() {
            counts.push(Counted { case: case.clone(), runs });
        }
    }
    instructions_table(&counts)
}

/// The markdown table of the counted rows, with each row's ratio to the `BufWriter` row.
fn instructions_table(counts: &[Counted]) -> String {
    let mut out = String::new();
    let Some(first) = counts.first() else {
        out.push_str("\nInstructions per frame: every count failed (see the failures).\n");
        return out;
    };
    let (frames_small, frames_big) = (first.runs[0].0, first.runs[first.runs.len() - 1].0);
    let _ = writeln!(
        out,
        "\nInstructions per frame under callgrind, counted over all threads of the process \
         (producers, writer or I/O driver, sink): the difference of the totals at 1/{} and \
         1/{} of the bytes ({frames_big} and {frames_small} frames) over the difference of the \
         frames.\n",
        SCALES[1], SCALES[0]
    );
    out.push_str(
        "| frame | producers | implementation | instructions per frame (all threads) \
         | × BufWriter |\n|---:|---:|---|---:|---:|\n",
    );
    let bufwriter =
        counts.iter().find(|c| c.case.imp == Imp::BufWriter).and_then(|c| c.per_frame());
    for count in counts {
        let per_frame = count.per_frame();
        let ratio =
            per_frame.zip(bufwriter).map_or_else(|| "–".into(), |(p, b)| format!("{:.2}×", p / b));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {ratio} |",
            fmt_size(count.case.frame),
            producers_label(&count.case),
            display_name(&count.case),
            per_frame.map_or_else(|| "–".into(), |p| format!("{p:.0}")),
        );
    }
    out.push_str(
        "\ncallgrind runs one thread at a time: these are instruction counts, not a speed \
         (waits, cache misses and contention do not show).\n",
    );
    out
}
