//! The browsers the tests drive, and installing them from Debian's packages.

use std::path::Path;
use std::process::Command;

use crate::process;
use crate::Error;

/// A browser and its WebDriver, at the paths Debian's packages install them.
#[derive(Debug)]
pub(crate) struct Browser {
    pub(crate) name: &'static str,
    /// The real binary: Debian's /usr/bin/chromium is a wrapper script that
    /// WebDriver should not go through.
    pub(crate) binary: &'static str,
    pub(crate) driver: &'static str,
    pub(crate) packages: &'static [&'static str],
}

/// Chromium drives both the wasm tests and the Chrome end-to-end tests.
pub(crate) const CHROMIUM: Browser = Browser {
    name: "chromium",
    binary: "/usr/lib/chromium/chromium",
    driver: "/usr/bin/chromedriver",
    packages: &["chromium", "chromium-driver"],
};

/// Every browser the test suite needs. Issue 3 (Firefox) adds its entry here,
/// e.g. firefox-esr with geckodriver, and passes it to the e2e step in suite.rs.
pub(crate) const BROWSERS: &[Browser] = &[CHROMIUM];

/// Installs any missing browser with apt as root; otherwise stops with the
/// command a person needs to run.
pub(crate) fn ensure_installed() -> Result<(), Error> {
    let missing: Vec<&Browser> = BROWSERS
        .iter()
        .filter(|b| !Path::new(b.binary).is_file() || !Path::new(b.driver).is_file())
        .collect();
    if missing.is_empty() {
        for browser in BROWSERS {
            println!(
                "browsers: {} and {} present",
                browser.binary, browser.driver
            );
        }
        return Ok(());
    }
    let packages: Vec<&str> = missing
        .iter()
        .flat_map(|b| b.packages.iter().copied())
        .collect();
    let install = format!(
        "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y {}",
        packages.join(" ")
    );

    let uid = process::stdout(Command::new("id").arg("-u"))?;
    if uid.trim() != "0" {
        return Err(
            format!("browsers missing; install them with:\n  sudo sh -c '{install}'").into(),
        );
    }
    println!("browsers: installing {}", packages.join(" "));
    process::run(Command::new("apt-get").arg("update"))?;
    process::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y"])
            .args(&packages),
    )?;
    for browser in &missing {
        if !Path::new(browser.binary).is_file() || !Path::new(browser.driver).is_file() {
            return Err(format!(
                "{} still missing after `{install}`: expected {} and {}",
                browser.name, browser.binary, browser.driver
            )
            .into());
        }
    }
    Ok(())
}
