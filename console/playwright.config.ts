import { defineConfig } from "@playwright/test";

// The browser tests run Debian's Chromium (no browser download) against a
// running dbaas-server; crates/e2e/tests/console.rs starts the real
// control plane, node, CloudNativePG, operator and server, then runs them.
export default defineConfig({
  testDir: "e2e",
  timeout: 15 * 60 * 1000,
  expect: { timeout: 20_000 },
  workers: 1,
  reporter: [["list"]],
  outputDir: process.env.DBAAS_CONSOLE_ARTIFACTS ?? "test-results",
  use: {
    baseURL: process.env.DBAAS_CONSOLE_URL,
    viewport: { width: 1280, height: 900 },
    trace: "off",
    launchOptions: {
      executablePath: process.env.DBAAS_CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
});
