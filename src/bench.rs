//! The core benchmark in the browser: the same workload as the native bench
//! (`tokenward_core::testing::workload`), exported to JavaScript. Built only with
//! the cargo feature `bench`, by `cargo xtask bench`, into its own target
//! directory; store builds never contain it.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use tokenward_core::testing::workload;

/// Runs one case (`{"case": "compile/5000", "reps": 7, "min_sample_ms": 20}`)
/// and answers its samples as JSON text, timed with `performance.now()`.
#[wasm_bindgen]
pub fn bench_core(request: &str) -> Result<String, JsValue> {
    let performance = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("performance"))?;
    let now_fn: js_sys::Function =
        js_sys::Reflect::get(&performance, &JsValue::from_str("now"))?.dyn_into()?;
    let now = || {
        now_fn
            .call0(&performance)
            .ok()
            .and_then(|v| v.as_f64())
            .unwrap_or(f64::NAN)
    };
    workload::run_json(request, &now).map_err(|e| JsValue::from_str(&e))
}
