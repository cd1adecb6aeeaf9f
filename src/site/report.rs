//! What a build tells: its progress while it runs, its report at the end.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::search::SearchStats;

/// Where a long build reports how far it got (the CLI draws a bar; tests ignore it).
pub trait Progress: Sync {
    fn begin(&self, _total: u64) {}
    fn advance(&self, _n: u64) {}
    fn end(&self) {}
}

/// Progress that goes nowhere.
pub struct Quiet;
impl Progress for Quiet {}

/// What a build did.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub out: PathBuf,
    pub rev: String,
    pub internal: bool,
    pub incremental: bool,
    /// Records (and drafts) on the site.
    pub records: usize,
    pub drafts: usize,
    /// Records rendered in this build (the rest were unchanged).
    pub rendered_records: usize,
    /// Deposits with record tags that this build may not show.
    pub excluded_records: usize,
    /// Files written by this build, and their size.
    pub files_written: usize,
    pub bytes_written: u64,
    /// Pages (HTML) and files in the whole site, and its size.
    pub pages: usize,
    pub files: usize,
    pub bytes: u64,
    pub search: Option<SearchStats>,
    pub theme_overrides: Vec<String>,
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub elapsed: Duration,
    /// The whole build and each of its steps, for `--json` and the benchmarks.
    pub seconds: f64,
    pub phases: Phases,
}

/// How long each step of a build took, in order; serialised as a map from the step's
/// name to milliseconds.
#[derive(Debug, Clone)]
pub struct Phases {
    last: Instant,
    steps: Vec<(&'static str, Duration)>,
}

impl Phases {
    pub fn start() -> Phases {
        Phases {
            last: Instant::now(),
            steps: Vec::new(),
        }
    }

    /// Ends the step called `name`, which began where the previous one ended.
    pub fn end(&mut self, name: &'static str) {
        let now = Instant::now();
        self.steps.push((name, now - self.last));
        self.last = now;
    }
}

impl Serialize for Phases {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            self.steps
                .iter()
                .map(|(name, d)| (name, (d.as_secs_f64() * 10_000.0).round() / 10.0)),
        )
    }
}
