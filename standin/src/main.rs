//! `standin`: starts every stand-in on 127.0.0.1, prints one JSON line with
//! their URLs and seeded credentials ([`tokenward_standin::Seeds`]), then
//! serves until killed.
//!
//! ```sh
//! cargo run -p tokenward-standin --bin standin
//! {"bentocloud":{"url":"http://127.0.0.1:41234","token":"…",…},"jina":{…},…}
//! ```

use std::io::Write as _;

use tokenward_standin::StandIns;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let standins = StandIns::start().await?;
    let line = serde_json::to_string(standins.seeds()).map_err(std::io::Error::other)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    drop(out);
    std::future::pending::<()>().await;
    drop(standins);
    Ok(())
}
