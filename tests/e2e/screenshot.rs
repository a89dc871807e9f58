//! Screenshots that cannot go stale: the e2e suite renders the popup and
//! the options page in fixed states and compares each with the PNG stored
//! under `tests/screenshots/<browser>/`, within a tolerance for
//! anti-aliasing. `TOKENWARD_UPDATE_SCREENSHOTS=1` rewrites them after a
//! change to the pages meant to change how they look (then look at them,
//! and commit them); a missing one fails unless that variable is set.

use std::path::PathBuf;

use crate::browser::Engine;

/// A pixel differs when a channel differs by more than this.
const CHANNEL_TOLERANCE: u8 = 40;
/// The share of differing pixels a screenshot may have.
const MAX_DIFFERING: f64 = 0.01;

fn stored_path(engine: Engine, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/screenshots")
        .join(engine.build_dir())
        .join(format!("{name}.png"))
}

/// RGBA8 pixels of a PNG, with its size.
fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(
        png::Transformations::normalize_to_color8() | png::Transformations::ALPHA,
    );
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a PNG size")];
    let info = reader.next_frame(&mut pixels).expect("a PNG frame");
    pixels.truncate(info.buffer_size());
    let channels = info.color_type.samples();
    // Gray+alpha or RGB+alpha to RGBA.
    let rgba: Vec<u8> = match channels {
        4 => pixels,
        2 => pixels
            .chunks(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        n => panic!("unexpected PNG layout with {n} channels"),
    };
    (info.width, info.height, rgba)
}

/// Compares `png` with the stored screenshot `name` (or stores it, see the
/// module doc). Returns the share of pixels that differ.
pub(crate) fn check(engine: Engine, name: &str, png: &[u8]) -> f64 {
    let path = stored_path(engine, name);
    let update = std::env::var_os("TOKENWARD_UPDATE_SCREENSHOTS").is_some();
    if update {
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("the screenshots folder");
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return 0.0;
    }
    let stored = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "no stored screenshot {} ({e}): run the test with TOKENWARD_UPDATE_SCREENSHOTS=1, look at it, commit it",
            path.display()
        )
    });
    let (w, h, now) = decode(png);
    let (sw, sh, then) = decode(&stored);
    assert_eq!(
        (w, h),
        (sw, sh),
        "{engine:?} {name}: the page is {w}×{h} px, the stored screenshot {sw}×{sh} px ({}); \
         if the change is meant, update it (TOKENWARD_UPDATE_SCREENSHOTS=1)",
        path.display()
    );
    let differing = now
        .chunks(4)
        .zip(then.chunks(4))
        .filter(|(a, b)| {
            a.iter()
                .zip(b.iter())
                .any(|(x, y)| x.abs_diff(*y) > CHANNEL_TOLERANCE)
        })
        .count();
    let share = differing as f64 / f64::from(w * h);
    if share > MAX_DIFFERING {
        let failed = path.with_extension("actual.png");
        let _ = std::fs::write(&failed, png);
        panic!(
            "{engine:?} {name}: {:.2}% of the pixels differ from {} (at most {:.0}%); this \
             run's is at {}; if the change is meant, update it (TOKENWARD_UPDATE_SCREENSHOTS=1)",
            share * 100.0,
            path.display(),
            MAX_DIFFERING * 100.0,
            failed.display()
        );
    }
    share
}
