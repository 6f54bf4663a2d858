//! Runs the web console's Playwright tests (`console/e2e`) in Debian's
//! Chromium against a server a test started. The console's npm packages
//! are installed by `hack/ensure-console.sh` (hack/test.sh runs it).

use std::path::PathBuf;
use std::process::Command;

/// Why the browser tests could not run or did not pass.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the console's npm packages are missing ({0}): run `bash hack/ensure-console.sh` first"
    )]
    NotInstalled(PathBuf),
    #[error("Chromium is missing ({0}): run `bash hack/ensure-console.sh` first")]
    NoChromium(PathBuf),
    #[error("starting Playwright: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("the browser tests failed ({status}); their output is above")]
    Failed { status: std::process::ExitStatus },
}

/// The console's source folder.
pub fn console_dir() -> PathBuf {
    dbaas_testkit::repo_root().join("console")
}

/// The Chromium the tests drive: `$DBAAS_CHROMIUM` or Debian's.
pub fn chromium() -> PathBuf {
    std::env::var_os("DBAAS_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Runs `npx playwright test <spec>` in `console/` with `env` added; its
/// output goes to this process's output.
pub fn playwright(spec: &str, env: &[(&str, String)]) -> Result<(), Error> {
    let dir = console_dir();
    let runner = dir.join("node_modules/.bin/playwright");
    if !runner.exists() {
        return Err(Error::NotInstalled(runner));
    }
    let browser = chromium();
    if !browser.exists() {
        return Err(Error::NoChromium(browser));
    }
    let status = Command::new(runner)
        .arg("test")
        .arg(spec)
        .current_dir(&dir)
        .env("DBAAS_CHROMIUM", browser)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .status()
        .map_err(Error::Spawn)?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Failed { status })
    }
}
