//! What to measure and how often: the full run, or `--quick` (few
//! repetitions, small counts: it checks that the harness works, not the
//! budgets).

use std::path::PathBuf;

use crate::browser::Engine;

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) quick: bool,
    pub(crate) out: PathBuf,
    pub(crate) engines: Vec<Engine>,
    pub(crate) sections: Vec<String>,
    /// Unpacked reference extension: `chrome/` and `firefox/`.
    pub(crate) reference: PathBuf,
    /// wasm-bindgen output of the `bench` feature build.
    pub(crate) core_wasm: Option<PathBuf>,

    /// Rule-set sizes for compile and diff, in browser rules.
    pub(crate) core_sizes: Vec<usize>,
    /// Matcher runs: (URLs, browser rules in the book).
    pub(crate) match_cases: Vec<(usize, usize)>,
    pub(crate) core_reps: usize,
    pub(crate) min_sample_ms: f64,

    /// Credentials stored when the popup opens.
    pub(crate) popup_counts: Vec<usize>,
    /// Site rules the popup is also opened with (the "1,000 rules":
    /// the user's rules, each one to three browser rules).
    pub(crate) popup_rules: Vec<usize>,
    pub(crate) popup_reps: usize,

    /// Browser rules stored and applied in one go.
    pub(crate) apply_rules: usize,
    pub(crate) apply_reps: usize,

    /// Browser rules installed in total while one rule is saved and disabled.
    pub(crate) update_counts: Vec<usize>,
    pub(crate) update_reps: usize,

    pub(crate) request_counts: Vec<usize>,
    /// Requests each browser makes per repetition and request kind…
    pub(crate) requests_per_batch: usize,
    /// …in this many turns, the three browsers taking turns.
    pub(crate) request_turns: usize,
    pub(crate) request_reps: usize,

    pub(crate) background_reps: usize,
}

/// Every section, in the order they run.
pub(crate) const SECTIONS: [&str; 6] =
    ["core", "popup", "apply", "update", "requests", "background"];

impl Config {
    pub(crate) fn from_args() -> Result<Config, String> {
        let mut quick = false;
        let mut out = None;
        let mut engines = vec![Engine::Chromium, Engine::Firefox];
        let mut sections: Vec<String> = SECTIONS.iter().map(|s| (*s).to_owned()).collect();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => quick = true,
                "--out" => out = args.next().map(PathBuf::from),
                "--engines" => {
                    let list = args.next().ok_or("--engines needs a list")?;
                    engines = list
                        .split(',')
                        .map(|e| match e {
                            "chromium" => Ok(Engine::Chromium),
                            "firefox" => Ok(Engine::Firefox),
                            other => Err(format!("unknown engine {other}")),
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--sections" => {
                    let list = args.next().ok_or("--sections needs a list")?;
                    sections = list.split(',').map(str::to_owned).collect();
                    if let Some(bad) = sections.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
                        return Err(format!("unknown section {bad}; known: {SECTIONS:?}"));
                    }
                }
                // `cargo bench` passes --bench to harness = false targets.
                "--bench" => {}
                other => return Err(format!("unknown argument {other}")),
            }
        }
        let out = out.ok_or("--out <results.json> is required")?;
        let reference = std::env::var_os("TOKENWARD_BENCH_REFERENCE")
            .map(PathBuf::from)
            .ok_or("TOKENWARD_BENCH_REFERENCE must name the reference extension build")?;
        let core_wasm = std::env::var_os("TOKENWARD_BENCH_CORE_WASM").map(PathBuf::from);
        let base = Config {
            quick,
            out,
            engines,
            sections,
            reference,
            core_wasm,
            core_sizes: vec![10, 1000, 5000],
            match_cases: vec![(100_000, 10), (5_000, 1000)],
            core_reps: 9,
            min_sample_ms: 20.0,
            popup_counts: vec![0, 10, 200],
            popup_rules: vec![1000],
            popup_reps: 15,
            apply_rules: 5000,
            apply_reps: 7,
            update_counts: vec![2, 1000, 5000],
            update_reps: 7,
            request_counts: vec![2, 1000, 5000],
            requests_per_batch: 2000,
            request_turns: 10,
            request_reps: 7,
            background_reps: 10,
        };
        Ok(if quick {
            Config {
                core_sizes: vec![10, 200],
                match_cases: vec![(2_000, 10), (200, 200)],
                core_reps: 2,
                min_sample_ms: 2.0,
                popup_counts: vec![0, 10],
                popup_rules: vec![100],
                popup_reps: 2,
                apply_rules: 200,
                apply_reps: 2,
                update_counts: vec![2, 200],
                update_reps: 1,
                request_counts: vec![2, 200],
                requests_per_batch: 100,
                request_turns: 2,
                request_reps: 2,
                background_reps: 2,
                ..base
            }
        } else {
            base
        })
    }

    pub(crate) fn runs(&self, section: &str) -> bool {
        self.sections.iter().any(|s| s == section)
    }
}
