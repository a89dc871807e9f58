//! Medians with min and max, and the rows the bench writes for
//! `cargo xtask bench` to judge against the budgets and render.

use serde_json::{json, Value};

/// Median, min and max of `samples` (NaNs dropped).
pub(crate) fn summary(samples: &[f64]) -> Option<(f64, f64, f64)> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Some((median, sorted[0], sorted[n - 1]))
}

/// Every figure of one bench run, as a flat list of rows. A row is one
/// metric in one engine (`native`, `chromium`, `firefox`): its id (what the
/// budgets name), a label for the table, a unit, and either samples
/// (summarised as median, min, max) or a reason it could not be measured.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    rows: Vec<Value>,
}

impl Rows {
    pub(crate) fn push(
        &mut self,
        id: &str,
        engine: &str,
        label: &str,
        unit: &str,
        samples: &[f64],
    ) {
        let row = match summary(samples) {
            Some((median, min, max)) => json!({
                "id": id, "engine": engine, "label": label, "unit": unit,
                "median": median, "min": min, "max": max, "n": samples.len(),
            }),
            None => json!({
                "id": id, "engine": engine, "label": label, "unit": unit,
                "missing": "no valid sample",
            }),
        };
        println!("bench: {engine:9} {label}: {}", describe(&row));
        self.rows.push(row);
    }

    /// A metric that could not be measured in `engine`, and why.
    pub(crate) fn missing(&mut self, id: &str, engine: &str, label: &str, unit: &str, why: &str) {
        println!("bench: {engine:9} {label}: not measured: {why}");
        self.rows.push(json!({
            "id": id, "engine": engine, "label": label, "unit": unit, "missing": why,
        }));
    }

    /// The median of row `id` in `engine`, if it was measured.
    pub(crate) fn median(&self, id: &str, engine: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r["id"] == json!(id) && r["engine"] == json!(engine))
            .and_then(|r| r["median"].as_f64())
    }

    /// A row holding `numerator`'s median over `denominator`'s, both
    /// measured in this run: for figures taken in different browsers (or
    /// pages), where repetitions do not pair up.
    pub(crate) fn push_ratio_of_medians(
        &mut self,
        id: &str,
        engine: &str,
        label: &str,
        (numerator, denominator): (&str, &str),
    ) {
        match (
            self.median(numerator, engine),
            self.median(denominator, engine),
        ) {
            (Some(n), Some(d)) if d > 0.0 => self.push(id, engine, label, "×", &[n / d]),
            // A floor of 0: faster than the clock can tell (Firefox's is
            // 1 ms in these pages). Measured, but no ratio can be taken.
            (Some(_), Some(_)) => {
                self.missing(
                    id,
                    engine,
                    label,
                    "×",
                    "the floor is under the clock's resolution",
                );
                if let Some(row) = self.rows.last_mut() {
                    row["under_resolution"] = json!(true);
                }
            }
            _ => self.missing(id, engine, label, "×", "one of the two was not measured"),
        }
    }

    pub(crate) fn into_json(self) -> Value {
        Value::Array(self.rows)
    }
}

fn describe(row: &Value) -> String {
    let unit = row["unit"].as_str().unwrap_or("");
    match (
        row["median"].as_f64(),
        row["min"].as_f64(),
        row["max"].as_f64(),
    ) {
        (Some(median), Some(min), Some(max)) => {
            format!(
                "{median:.3} {unit} (min {min:.3}, max {max:.3}, n {})",
                row["n"]
            )
        }
        _ => format!("missing: {}", row["missing"]),
    }
}
