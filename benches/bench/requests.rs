//! Per-request overhead: sequential same-origin requests from a page of the
//! bench site, to a URL a rule matches and to one no rule matches, in three
//! browsers side by side taking turns: Tokenward, the minimal reference
//! extension holding the same browser rules, and the same browser with no
//! extension.

use fantoccini::wd::WindowHandle;
use serde_json::json;

use crate::browser::{Browser, Engine, WAIT};
use crate::config::Config;
use crate::core::engine_key;
use crate::fixtures::{self, call};
use crate::harness;
use crate::site::Site;
use crate::stats::Rows;
use crate::workload;

const TOKEN: &str = "request-bench-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    Tokenward,
    Reference,
    Bare,
}

impl Variant {
    pub(crate) fn key(self) -> &'static str {
        match self {
            Variant::Tokenward => "tokenward",
            Variant::Reference => "reference",
            Variant::Bare => "none",
        }
    }
}

/// One browser of the comparison, with a tab on the matched host, one on
/// the unmatched host, and (with an extension) one extension page.
#[derive(Debug)]
pub(crate) struct Contender {
    pub(crate) variant: Variant,
    pub(crate) browser: Browser,
    /// The unpacked extension it was launched with.
    pub(crate) dir: std::path::PathBuf,
    matched: WindowHandle,
    unmatched: WindowHandle,
    pub(crate) extension_page: Option<WindowHandle>,
}

async fn open_site_tab(browser: &Browser, url: &str) -> WindowHandle {
    let tab = browser.new_tab().await;
    browser.goto(url).await;
    browser
        .wait_js(
            "the bench site page's helpers",
            WAIT,
            "return typeof window.benchBatch === 'function';",
        )
        .await;
    tab
}

pub(crate) async fn launch(
    config: &Config,
    engine: Engine,
    variant: Variant,
    site: &Site,
) -> Contender {
    let dir = match variant {
        Variant::Tokenward => harness::extension_dir(engine),
        // The bare browser is launched with the reference extension, which
        // then uninstalls itself: same binary, flags and profile set-up.
        Variant::Reference | Variant::Bare => config.reference.join(engine.build_dir()),
    };
    let browser = Browser::launch(engine, &dir).await;
    let extension_page = browser.current_tab().await;
    let matched = open_site_tab(
        &browser,
        &format!("{}/site.html", site.origin("match.localhost")),
    )
    .await;
    let unmatched = open_site_tab(
        &browser,
        &format!("{}/site.html", site.origin("other.localhost")),
    )
    .await;
    let extension_page = match variant {
        Variant::Tokenward => {
            browser.switch_to(&extension_page).await;
            fixtures::open_bench_page(&browser).await;
            Some(extension_page)
        }
        Variant::Reference => Some(extension_page),
        Variant::Bare => {
            browser.switch_to(&extension_page).await;
            // No answer: the page goes away with the extension.
            let _ = browser
                .client
                .execute(
                    "(globalThis.browser ?? globalThis.chrome).management.uninstallSelf(); return null;",
                    vec![],
                )
                .await;
            browser.switch_to(&matched).await;
            browser
                .wait_js(
                    "the reference extension to be gone",
                    WAIT,
                    "return typeof (globalThis.browser ?? globalThis.chrome ?? {}).runtime === 'undefined' \
                     || !(globalThis.browser ?? globalThis.chrome).runtime.id;",
                )
                .await;
            None
        }
    };
    Contender {
        variant,
        browser,
        dir,
        matched,
        unmatched,
        extension_page,
    }
}

impl Contender {
    async fn install(&self, book: &tokenward_core::rules::RuleBook) {
        let Some(page) = &self.extension_page else {
            return;
        };
        self.browser.switch_to(page).await;
        match self.variant {
            Variant::Tokenward => fixtures::seed_tokenward(&self.browser, book).await,
            Variant::Reference => fixtures::seed_reference(&self.browser, book).await,
            Variant::Bare => {}
        }
    }

    async fn echo(&self, matched: bool) -> String {
        self.browser
            .switch_to(if matched {
                &self.matched
            } else {
                &self.unmatched
            })
            .await;
        call(&self.browser, "benchEcho", vec![])
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    async fn batch(&self, matched: bool, count: usize) -> f64 {
        self.browser
            .switch_to(if matched {
                &self.matched
            } else {
                &self.unmatched
            })
            .await;
        call(&self.browser, "benchBatch", vec![json!("/r"), json!(count)])
            .await
            .as_f64()
            .unwrap_or(f64::NAN)
    }
}

pub(crate) async fn run(config: &Config, contenders: &[Contender], site: &Site, rows: &mut Rows) {
    let Some(first) = contenders.first() else {
        return;
    };
    let engine = engine_key(first.browser.engine);
    let match_origin = site.origin("match.localhost");
    let turn = config.requests_per_batch / config.request_turns;
    let per_request = |ms: f64| ms / (turn * config.request_turns) as f64 * 1000.0;
    for &total in &config.request_counts {
        let fillers = workload::site_rules_for(total).saturating_sub(1);
        let book = fixtures::book(fillers, &[(&match_origin, TOKEN)]);
        for c in contenders {
            c.install(&book).await;
            let want = match c.variant {
                Variant::Bare => String::new(),
                _ => format!("Bearer {TOKEN}"),
            };
            assert_eq!(
                c.echo(true).await,
                want,
                "{} on the matched host",
                c.variant.key()
            );
            assert_eq!(
                c.echo(false).await,
                "",
                "{} on the unmatched host",
                c.variant.key()
            );
        }
        for matched in [true, false] {
            let kind = if matched { "matching" } else { "non-matching" };
            let kind_key = if matched { "match" } else { "nomatch" };
            // times[variant][rep], per request in µs. Each repetition's
            // requests go in short turns, so that a change in the machine's
            // load (other processes share its cores) falls on all three
            // alike instead of on whoever's long batch it hit.
            let mut times: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
            for rep in 0..=config.request_reps {
                let mut spent = vec![0.0; contenders.len()];
                for t in 0..config.request_turns {
                    // Rotate who goes first, so no variant always follows another.
                    for k in 0..contenders.len() {
                        let i = (k + rep + t) % contenders.len();
                        spent[i] += contenders[i].batch(matched, turn).await;
                    }
                }
                if rep > 0 {
                    for (i, ms) in spent.into_iter().enumerate() {
                        times[i].push(per_request(ms));
                    }
                }
            }
            for (c, t) in contenders.iter().zip(&times) {
                rows.push(
                    &format!("requests.{kind_key}.{total}.{}", c.variant.key()),
                    engine,
                    &format!("one {kind} request, {total} rules: {}", c.variant.key()),
                    "µs",
                    t,
                );
            }
            let index = |v: Variant| contenders.iter().position(|c| c.variant == v);
            if let Some(tw) = index(Variant::Tokenward) {
                for (base, name) in [(Variant::Reference, "reference"), (Variant::Bare, "none")] {
                    let Some(b) = index(base) else { continue };
                    let ratios: Vec<f64> = times[tw]
                        .iter()
                        .zip(&times[b])
                        .map(|(t, b)| t / b)
                        .collect();
                    rows.push(
                        &format!("requests.ratio_{name}.{kind_key}.{total}"),
                        engine,
                        &format!("{kind} request, {total} rules: Tokenward / {name}"),
                        "×",
                        &ratios,
                    );
                }
            }
        }
    }
    for c in contenders {
        c.install(&Default::default()).await;
    }
}
