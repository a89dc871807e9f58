//! The browsers the tests drive: each from Debian's packages, with its
//! WebDriver from Debian (chromedriver) or built from crates.io (geckodriver).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process;
use crate::tools::{self, CrateTool};
use crate::workspace::Workspace;
use crate::Error;

/// A browser, where Debian's packages install it, and the environment
/// variables that hand it to the end-to-end tests (tests/e2e/main.rs reads them).
#[derive(Debug)]
pub(crate) struct Browser {
    pub(crate) name: &'static str,
    /// The real binary, not a wrapper script: Debian's /usr/bin/chromium is a
    /// shell script, and /usr/bin/firefox-esr a symlink to this one.
    pub(crate) binary: &'static str,
    pub(crate) packages: &'static [&'static str],
    pub(crate) driver: Driver,
    /// A file of the German interface, which the e2e tests start the
    /// browser in (Debian packages each language apart: `packages` lists
    /// it).
    pub(crate) german: &'static str,
    /// Holds the absolute path of `binary` for the e2e tests.
    pub(crate) binary_env: &'static str,
    /// Holds the absolute path of the WebDriver for the e2e tests.
    pub(crate) driver_env: &'static str,
}

/// Where a browser's WebDriver comes from.
#[derive(Debug)]
pub(crate) enum Driver {
    /// Installed by the browser's own apt packages, at this path.
    Debian(&'static str),
    /// Not packaged by Debian: `cargo install`ed at an exact version.
    Crate(CrateTool),
}

/// Chromium drives the wasm tests and the Chrome end-to-end tests.
pub(crate) const CHROMIUM: Browser = Browser {
    name: "chromium",
    binary: "/usr/lib/chromium/chromium",
    packages: &["chromium", "chromium-driver", "chromium-l10n"],
    driver: Driver::Debian(CHROMEDRIVER),
    german: "/usr/lib/chromium/locales/de.pak",
    binary_env: "TOKENWARD_CHROMIUM",
    driver_env: "CHROMEDRIVER",
};

/// chromedriver from Debian's chromium-driver, always the browser's own version.
pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Firefox ESR drives the Firefox end-to-end tests. Debian ships the ESR
/// (153 on bookworm), which is above the extension's `strict_min_version`.
pub(crate) const FIREFOX: Browser = Browser {
    name: "firefox-esr",
    binary: "/usr/lib/firefox-esr/firefox-esr",
    packages: &["firefox-esr", "firefox-esr-l10n-de"],
    driver: Driver::Crate(GECKODRIVER),
    german: "/usr/lib/firefox-esr/browser/extensions/langpack-de@firefox-esr.mozilla.org.xpi",
    binary_env: "TOKENWARD_FIREFOX",
    driver_env: "GECKODRIVER",
};

/// Mozilla publishes geckodriver on crates.io; Debian has no package. A
/// geckodriver release drives every Firefox from its stated minimum up (128
/// ESR since 0.36, per geckodriver's "Supported platforms" table), so the ESR
/// Debian ships is covered. Check for newer releases with `cargo info geckodriver`.
pub(crate) const GECKODRIVER: CrateTool = CrateTool {
    krate: "geckodriver",
    version: "0.37.1",
    bin: "geckodriver",
};

/// Every browser the test suite needs; the e2e step gets each one's variables.
pub(crate) const BROWSERS: &[Browser] = &[CHROMIUM, FIREFOX];

/// A browser found on this machine, with the absolute paths of both programs.
#[derive(Debug)]
pub(crate) struct Located {
    pub(crate) browser: &'static Browser,
    pub(crate) binary: PathBuf,
    pub(crate) driver: PathBuf,
}

/// Installs any missing browser with apt (as root; otherwise stops with the
/// command a person needs to run), then any crates.io WebDriver into `.tools`.
pub(crate) fn ensure_installed(workspace: &Workspace) -> Result<Vec<Located>, Error> {
    ensure_packages()?;
    let mut located = Vec::new();
    for browser in BROWSERS {
        let driver = match &browser.driver {
            Driver::Debian(path) => PathBuf::from(path),
            Driver::Crate(tool) => tools::ensure_crate_tool(workspace, tool)?,
        };
        println!(
            "browsers: {} is {}; its WebDriver {} is {}",
            browser.binary,
            version_of(Path::new(browser.binary)),
            driver.display(),
            version_of(&driver)
        );
        located.push(Located {
            browser,
            binary: PathBuf::from(browser.binary),
            driver,
        });
    }
    Ok(located)
}

fn version_of(program: &Path) -> String {
    process::version_line(program).unwrap_or_else(|| "of unknown version".to_owned())
}

/// Every file the apt packages must provide: the binaries, and the drivers
/// that come from Debian too.
fn packaged_files(browser: &Browser) -> Vec<&'static str> {
    let mut files = vec![browser.binary];
    if let Driver::Debian(driver) = browser.driver {
        files.push(driver);
    }
    files.push(browser.german);
    files
}

fn is_present(browser: &Browser) -> bool {
    packaged_files(browser)
        .iter()
        .all(|file| Path::new(file).is_file())
}

/// The one command that installs `packages`, as README and the error say it.
pub(crate) fn apt_command(packages: &[&str]) -> String {
    format!(
        "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y {}",
        packages.join(" ")
    )
}

fn ensure_packages() -> Result<(), Error> {
    let missing: Vec<&Browser> = BROWSERS.iter().filter(|b| !is_present(b)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing
        .iter()
        .flat_map(|b| b.packages.iter().copied())
        .collect();
    let install = apt_command(&packages);

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
        if !is_present(browser) {
            return Err(format!(
                "{} still missing after `{install}`: expected {}",
                browser.name,
                packaged_files(browser).join(" and ")
            )
            .into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_browser_has_distinct_e2e_variables() {
        let mut names: Vec<&str> = BROWSERS
            .iter()
            .flat_map(|b| [b.binary_env, b.driver_env])
            .collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "{names:?}");
    }

    #[test]
    fn the_e2e_variables_are_the_ones_the_tests_read() {
        let pairs: Vec<(&str, &str)> = BROWSERS
            .iter()
            .map(|b| (b.binary_env, b.driver_env))
            .collect();
        assert_eq!(
            pairs,
            [
                ("TOKENWARD_CHROMIUM", "CHROMEDRIVER"),
                ("TOKENWARD_FIREFOX", "GECKODRIVER")
            ]
        );
    }

    #[test]
    fn apt_installs_debian_drivers_but_not_crates() {
        assert_eq!(
            packaged_files(&CHROMIUM),
            [
                "/usr/lib/chromium/chromium",
                "/usr/bin/chromedriver",
                "/usr/lib/chromium/locales/de.pak"
            ]
        );
        assert_eq!(
            packaged_files(&FIREFOX),
            [
                "/usr/lib/firefox-esr/firefox-esr",
                "/usr/lib/firefox-esr/browser/extensions/langpack-de@firefox-esr.mozilla.org.xpi"
            ]
        );
    }

    #[test]
    fn the_install_command_names_every_package() {
        assert_eq!(
            apt_command(&["chromium", "chromium-driver", "firefox-esr"]),
            "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
             chromium chromium-driver firefox-esr"
        );
    }
}
