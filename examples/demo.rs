//! `cargo xtask demo`: the provider stand-ins and a Chromium with the built
//! extension, driven through a login, a token list, a new token and a
//! protected page, printing what happened. With a display (`DISPLAY` set)
//! the browser is shown and stays open until Enter is pressed.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use accounts::{World, CALL_WAIT};
use browser::{Engine, WAIT};
use tokenward_standin::{Service, DEPLOYMENT_OK};
use tokenward_testkit::{accounts, browser};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let headed = std::env::var_os("DISPLAY").is_some();
    if headed {
        // Read by browser.rs when it starts Chromium, below.
        std::env::set_var("TOKENWARD_HEADED", "1");
    }
    let w = World::start(Engine::Chromium).await;
    let seeds = w.s.seeds().clone();
    println!("Stand-ins on loopback:");
    println!("  BentoCloud   {}", seeds.bentocloud.url);
    println!("  Jina AI      {}", seeds.jina.url);
    println!("  Nuclia       {}", seeds.nuclia.url);
    println!("  Hugging Face {}", seeds.huggingface.url);
    println!("  deployment   {}", seeds.deployment.example_url);
    println!(
        "Chromium {} with the test build of the extension.",
        if headed { "(shown)" } else { "(headless)" }
    );

    let b = &w.h.browser;
    let deployment = seeds
        .deployment
        .example_url
        .trim_end_matches('/')
        .to_owned();
    b.goto(&format!("{deployment}/")).await;
    let text = page_text(&w).await;
    println!(
        "\n1. Without Tokenward's rule the deployment answers: {}",
        first_line(&text)
    );

    w.open_popup().await;
    // The harness chose convenience, as a test would; a user who follows
    // the popup's recommendation protects the tokens with a passphrase.
    b.fill("#protect-passphrase", "demo passphrase, not a real one")
        .await;
    b.fill("#protect-confirm", "demo passphrase, not a real one")
        .await;
    b.click("#protect-submit").await;
    let summary = b
        .wait_js(
            "the vault panel to read protected",
            std::time::Duration::from_secs(30),
            "const v = document.querySelector('#vault'); \
             return v.getAttribute('data-mode') === 'protected' \
               && v.getAttribute('data-locked') === 'false' \
               && document.getElementById('vault-summary').textContent;",
        )
        .await;
    println!(
        "   Popup, Protect with a passphrase: {}",
        summary.as_str().unwrap_or_default()
    );
    let notice = w
        .log_in(
            "bentoCloud",
            None,
            &seeds.bentocloud.url,
            &seeds.bentocloud.token,
        )
        .await;
    match notice {
        Ok(n) => println!("2. Popup, Log in to BentoCloud with a pasted token: {n}"),
        Err(e) => println!("2. Popup, Log in to BentoCloud refused: {e}"),
    }
    let login = w.credential_id("bentoCloud").await;
    let names = w.open_tokens(&login).await;
    println!("3. Tokens of the account, as BentoCloud lists them: {names:?}");

    b.fill("#create-name", "demo").await;
    b.click("#create-submit").await;
    b.wait_visible("#new-secret", CALL_WAIT).await;
    println!("4. Created the token \"demo\"; the popup shows it once, then keeps it.");
    b.click("#dismiss-new-secret").await;
    b.click("#tokens-close").await;
    b.wait_js(
        "the new credential",
        CALL_WAIT,
        "return document.querySelectorAll('#credentials li').length === 2;",
    )
    .await;
    let new_id = b
        .exec("return document.querySelectorAll('#credentials li')[1].getAttribute('data-credential-id');")
        .await;
    let new_id = new_id.as_str().unwrap().to_owned();
    w.click_credential(&new_id, "use").await;
    b.wait_for_css("#use[data-loaded]", CALL_WAIT).await;
    b.fill("#use-pattern", &deployment).await;
    b.click("#use-save").await;
    b.wait_js(
        "the rule",
        CALL_WAIT,
        "return document.getElementById('use').hidden;",
    )
    .await;
    println!("5. Used it on {deployment} with Authorization: Bearer.");

    let mut opened = false;
    for _ in 0..50 {
        b.goto(&format!("{deployment}/?demo")).await;
        if page_text(&w).await.contains(DEPLOYMENT_OK) {
            opened = true;
            break;
        }
    }
    let got =
        w.s.requests(Service::Deployment)
            .into_iter()
            .rev()
            .find_map(|r| {
                r.header("authorization")
                    .map(|v| v.split(' ').next().unwrap_or("").to_owned())
            });
    println!(
        "6. The deployment now answers: {} (it received an Authorization header: {})",
        if opened {
            "200, the protected page"
        } else {
            "still 401"
        },
        got.map_or("none".to_owned(), |scheme| format!("{scheme} •••"))
    );
    if headed {
        println!("\nThe browser stays open: try the popup (the extension page is {}). Press Enter to quit.", b.extension_url("popup.html"));
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
    if !opened {
        std::process::exit(1);
    }
}

async fn page_text(w: &World) -> String {
    w.h.browser
        .wait_js(
            "the page",
            WAIT,
            "return document.readyState === 'complete' && document.body ? document.body.innerText || ' ' : '';",
        )
        .await
        .as_str()
        .unwrap_or("")
        .to_owned()
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim()
}
