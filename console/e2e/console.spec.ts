// The console in a real Chromium against the real control plane, node,
// CloudNativePG, operator and dbaas-server (started by
// crates/e2e/tests/console.rs, which passes what it made in the environment).
import { expect, test, type Page } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through crates/e2e/tests/console.rs`);
  return value;
};
const NAMESPACE = env("DBAAS_CONSOLE_NAMESPACE");
const ADMIN_TOKEN = env("DBAAS_CONSOLE_ADMIN_TOKEN");
const READER_TOKEN = env("DBAAS_CONSOLE_READER_TOKEN");
const TEMPLATE = env("DBAAS_CONSOLE_TEMPLATE");
const SCREENSHOTS = process.env.DBAAS_CONSOLE_SCREENSHOTS;
const READY_TIMEOUT = 8 * 60 * 1000;

async function shot(page: Page, name: string) {
  if (!SCREENSHOTS) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

async function signIn(page: Page, token: string) {
  await page.goto("/console/");
  await expect(page.getByRole("heading", { name: "Sign in to dbaas" })).toBeVisible();
  await page.getByLabel("Bearer token").fill(token);
  await page.getByLabel("Namespace").fill(NAMESPACE);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Database clusters", exact: true })).toBeVisible();
}

test.describe.configure({ mode: "serial" });

test("a bad token is refused at sign-in with the API's message", async ({ page }) => {
  await page.goto("/console/");
  await shot(page, "sign-in");
  await page.getByLabel("Bearer token").fill("not-a-token");
  await page.getByLabel("Namespace").fill(NAMESPACE);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toContainText(/token/i);
  // Nothing was kept: a reload asks again.
  await page.reload();
  await expect(page.getByRole("heading", { name: "Sign in to dbaas" })).toBeVisible();
});

test("an SRE creates a PostgreSQL cluster through the wizard and uses it", async ({ page, context }) => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  await signIn(page, ADMIN_TOKEN);
  await expect(page.getByText(`No database clusters in ${NAMESPACE} yet`)).toBeVisible();
  // The token is in this tab's session storage, and in no cookie.
  expect(await page.evaluate(() => sessionStorage.getItem("dbaas.token"))).toBe(ADMIN_TOKEN);
  expect(await context.cookies()).toEqual([]);

  await page.getByRole("button", { name: "Create database cluster" }).click();
  await page.getByLabel("Name", { exact: true }).fill("shop");
  await expect(page.getByLabel("Engine", { exact: true })).toHaveValue("postgresql");
  await page.getByRole("button", { name: "Next" }).click();
  // The engine's default version is preselected; a version the engine does
  // not allow is typed to see the API refuse it at the field.
  const version = page.getByLabel("Version", { exact: true });
  const defaultVersion = await version.inputValue();
  expect(defaultVersion).not.toBe("");
  await version.fill("9.9");
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByLabel("Template").selectOption(TEMPLATE);
  await page.getByRole("button", { name: "Next" }).click();
  // The template sets CPU and memory: prefilled and locked.
  await expect(page.getByLabel("CPU per instance")).toBeDisabled();
  await expect(page.getByText(`Set by template ${TEMPLATE}`).first()).toBeVisible();
  await page.getByLabel("Instances").fill("0");
  for (const step of ["Proxy and exposure", "Backups", "Monitoring", "Review"]) {
    await page.getByRole("button", { name: "Next" }).click();
    await expect(page.getByRole("heading", { name: step })).toBeVisible();
  }
  const yaml = page.getByLabel("The cluster as YAML");
  await expect(yaml).toContainText("name: shop");
  await expect(yaml).toContainText(`dbaas.io/template-name: ${TEMPLATE}`);
  await expect(yaml).toContainText("clusterSize: 0");
  await shot(page, "wizard-review");

  // The version is refused first (the REST API checks it before the API server).
  await page.getByRole("button", { name: "Create", exact: true }).click();
  await expect(page.getByRole("heading", { name: "Version" })).toBeVisible();
  const versionError = page.locator(".field-error").filter({ has: page.getByLabel("Version", { exact: true }) });
  await expect(versionError.getByRole("alert")).toContainText('Unsupported value: "9.9"');
  await shot(page, "wizard-field-error");
  await version.fill(defaultVersion);

  // Then the size, by the API server's own validation.
  await page.getByRole("button", { name: /^8\. Review$/ }).click();
  await page.getByRole("button", { name: "Create", exact: true }).click();
  await expect(page.getByRole("heading", { name: "Size" })).toBeVisible();
  const sizeError = page.locator(".field-error").filter({ has: page.getByLabel("Instances") });
  await expect(sizeError.getByRole("alert")).toContainText("clusterSize");
  await page.getByLabel("Instances").fill("1");
  await page.getByRole("button", { name: /^8\. Review$/ }).click();
  await page.getByRole("button", { name: "Create", exact: true }).click();

  // The detail page follows the cluster until CloudNativePG has it running.
  await expect(page.getByRole("heading", { name: "shop", exact: true })).toBeVisible();
  const phase = page.locator(".page-head .badge");
  await expect(phase).toHaveAttribute("data-phase", "Ready", { timeout: READY_TIMEOUT });
  await expect(page.getByRole("cell", { name: "Ready", exact: true })).toBeVisible();
  await shot(page, "cluster-overview");

  // Connection details: the string is copied; the password only on a click.
  await page.getByRole("link", { name: "Connection" }).click();
  await page.getByRole("button", { name: "Copy connection string", exact: true }).click();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  expect(copied).toMatch(/^postgresql:\/\/shop-rw[.\w-]*:5432\/postgres$/);
  await page.getByRole("button", { name: "Show credentials" }).click();
  await expect(page.getByTestId("password")).toHaveText("••••••••");
  await page.getByRole("button", { name: "Reveal" }).click();
  await expect(page.getByTestId("password")).not.toHaveText("••••••••");
  await page.getByRole("button", { name: "Copy connection string with password" }).click();
  const withPassword = await page.evaluate(() => navigator.clipboard.readText());
  expect(withPassword).toMatch(/^postgresql:\/\/postgres:[^@]+@shop-rw/);
  await page.getByRole("button", { name: "Hide" }).click();
  await shot(page, "cluster-connection");

  // A restart as an OpsRequest, followed to its end.
  await page.getByRole("link", { name: "Operations" }).click();
  await page.getByRole("button", { name: "Restart", exact: true }).click();
  const operations = page.getByRole("table", { name: "Operations" });
  const restart = operations.getByRole("row").filter({ hasText: "Restart" });
  await expect(restart).toBeVisible();
  await expect(restart.locator(".badge")).toHaveAttribute("data-phase", "Succeeded", { timeout: READY_TIMEOUT });
  await shot(page, "cluster-operations");

  // An on-demand backup: created and shown with what the operator reports.
  await page.getByRole("link", { name: "Backups" }).click();
  await page.getByRole("button", { name: "Take a backup now" }).click();
  const backups = page.getByRole("table", { name: "Backups" });
  await expect(backups.getByRole("row").filter({ hasText: "shop-backup-" })).toBeVisible();
  await shot(page, "cluster-backups");

  // What the operator recorded about the cluster.
  await page.getByRole("link", { name: "Events" }).click();
  const events = page.getByRole("table", { name: "Events" });
  await expect(events.getByRole("row").filter({ hasText: "Ready" }).first()).toBeVisible();
  await shot(page, "cluster-events");

  // The list shows it Ready, and follows changes made elsewhere while it
  // is open (the watch stream; nothing reloads the page).
  await page.getByRole("link", { name: "Database clusters" }).click();
  const row = page.getByRole("row").filter({ hasText: "shop" });
  await expect(row.locator(".badge")).toHaveAttribute("data-phase", "Ready");
  await expect(page.locator(".live-live")).toHaveText("Live");
  const api = `/v1/namespaces/${NAMESPACE}/databaseclusters`;
  const auth = { Authorization: `Bearer ${ADMIN_TOKEN}` };
  const created = await page.request.post(api, {
    headers: auth,
    data: { metadata: { name: "elsewhere" }, spec: { engine: { type: "postgresql" }, storage: { size: "1Gi" } } },
  });
  expect(created.status()).toBe(201);
  await expect(page.getByRole("link", { name: "elsewhere", exact: true })).toBeVisible();
  expect((await page.request.delete(`${api}/elsewhere`, { headers: auth })).ok()).toBe(true);
  await expect(page.getByRole("link", { name: "elsewhere", exact: true })).toHaveCount(0);
  await shot(page, "clusters");

  // The narrow layout: nothing overflows a phone's width.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await shot(page, "clusters-narrow");
  await page.setViewportSize({ width: 1280, height: 900 });

  // Settings: the engine, and a BackupStorage written as YAML; the API's
  // schema refuses a bad one with its message.
  await page.getByRole("link", { name: "Settings" }).click();
  await expect(page.getByRole("table", { name: "Engines" }).getByRole("row").filter({ hasText: "postgresql" })).toBeVisible();
  const storages = page.getByRole("region", { name: "Backup storages" });
  await storages.getByRole("button", { name: "New" }).click();
  const yamlBox = page.getByLabel("BackupStorage as YAML");
  await expect(yamlBox).toHaveValue(/type: s3/);
  await yamlBox.fill((await yamlBox.inputValue()).replace("type: s3", "type: tape"));
  await page.getByRole("form", { name: "New BackupStorage" }).getByRole("button", { name: "Save" }).click();
  await expect(page.getByRole("form", { name: "New BackupStorage" }).getByRole("alert")).toContainText("spec.type: unknown variant `tape`");
  await yamlBox.fill((await yamlBox.inputValue()).replace("type: tape", "type: s3"));
  await page.getByRole("form", { name: "New BackupStorage" }).getByRole("button", { name: "Save" }).click();
  await expect(storages.getByText("s3-backups")).toBeVisible();
  await shot(page, "settings");

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("heading", { name: "Sign in to dbaas" })).toBeVisible();
});

test("a read-only user sees actions disabled and the API's 403 where they try anyway", async ({ page }) => {
  await signIn(page, READER_TOKEN);
  await expect(page.getByRole("button", { name: "Create database cluster" })).toBeDisabled();
  await page.getByRole("link", { name: "shop", exact: true }).click();
  await page.getByRole("link", { name: "Operations" }).click();
  await expect(page.getByRole("button", { name: "Restart", exact: true })).toBeDisabled();
  await expect(page.getByRole("button", { name: "Switchover" })).toBeDisabled();
  await page.getByRole("link", { name: "Connection" }).click();
  await expect(page.getByRole("button", { name: "Show credentials" })).toBeDisabled();
  await expect(page.getByText(`You may not read Secrets in ${NAMESPACE}.`)).toBeVisible();
  await shot(page, "read-only");

  // The wizard by its address: the API refuses, and the console says why.
  await page.goto("/console/#/clusters/new");
  await expect(page.getByText(`You may not create database clusters in ${NAMESPACE}`)).toBeVisible();
  await page.getByLabel("Name", { exact: true }).fill("not-allowed");
  await page.getByRole("button", { name: /^8\. Review$/ }).click();
  await page.getByRole("button", { name: "Create", exact: true }).click();
  const refusal = page.locator(".note-error");
  await expect(refusal).toContainText("cannot create databaseclusters.dbaas.io");
  await expect(refusal).toContainText("Ask your cluster administrator");
});
