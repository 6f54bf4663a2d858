// Cold loads of the console's cluster list in Debian's Chromium: from
// navigation to the first page's rows on screen, and the list request's own
// time inside the same load. Run by `bench console` (crates/bench), which
// starts the control plane, the clusters and dbaas-server, and passes:
//   DBAAS_CONSOLE_URL, DBAAS_CONSOLE_TOKEN, DBAAS_CONSOLE_NAMESPACE,
//   DBAAS_CONSOLE_ROUNDS, DBAAS_CHROMIUM
// Prints one JSON line: {"renderMs": [...], "requestMs": [...], "rows": n, "pager": "..."}.
import { chromium } from "playwright-core";

const url = process.env.DBAAS_CONSOLE_URL;
const token = process.env.DBAAS_CONSOLE_TOKEN;
const namespace = process.env.DBAAS_CONSOLE_NAMESPACE;
const rounds = Number(process.env.DBAAS_CONSOLE_ROUNDS ?? "5");
if (!url || !token || !namespace) {
  console.error("DBAAS_CONSOLE_URL, DBAAS_CONSOLE_TOKEN and DBAAS_CONSOLE_NAMESPACE must be set");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.DBAAS_CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const renderMs = [];
const requestMs = [];
let rows = 0;
let pager = "";
try {
  for (let round = 0; round < rounds; round++) {
    // A new context each round: no cached script, a cold load.
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.addInitScript(([t, ns]) => {
      sessionStorage.setItem("dbaas.token", t);
      sessionStorage.setItem("dbaas.namespace", ns);
    }, [token, namespace]);
    const page = await context.newPage();
    const started = performance.now();
    await page.goto(`${url}/console/#/clusters`);
    await page.waitForSelector("tbody tr");
    renderMs.push(performance.now() - started);
    const request = await page.evaluate(
      () => performance.getEntriesByType("resource").find((e) => e.name.includes("/databaseclusters?"))?.duration,
    );
    requestMs.push(request ?? Number.NaN);
    rows = await page.locator("tbody tr").count();
    pager = (await page.locator(".pager span").textContent()) ?? "";
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify({ renderMs, requestMs, rows, pager }));
