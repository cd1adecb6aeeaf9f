// Drives Debian's chromium through a built capsule site, as a reader would.
//   node drive.js SITE_DIR SCREENSHOT_DIR
// Prints one JSON report on stdout; exits 1 on any failed step, console error or
// executed canary script.
"use strict";
const path = require("path");
const fs = require("fs");
const { chromium } = require("playwright-core");

const site = path.resolve(process.argv[2]);
const shots = path.resolve(process.argv[3]);
const url = (p) => "file://" + path.join(site, p);
fs.mkdirSync(shots, { recursive: true });
const profile = fs.mkdtempSync(path.join(require("os").tmpdir(), "capsule-chromium-"));

(async () => {
  const report = { steps: [], consoleErrors: [], pageErrors: [], dialogs: [], pwned: [] };
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1200, height: 900 },
  });
  const page = context.pages()[0] || await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") report.consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => report.pageErrors.push(String(e)));
  page.on("dialog", async (d) => { report.dialogs.push(d.message()); await d.dismiss(); });
  page.on("request", (r) => {
    const u = r.url();
    if (!u.startsWith("file://") && !u.startsWith("data:")) report.consoleErrors.push("request to " + u);
  });
  const step = async (name, fn) => {
    try {
      await fn();
      report.steps.push({ name, ok: true });
    } catch (e) {
      report.steps.push({ name, ok: false, error: String(e) });
    }
    await page.screenshot({ path: path.join(shots, report.steps.length + "-" + name + ".png"), fullPage: false });
    const pwned = await page.evaluate(() => window.__pwned).catch(() => undefined);
    if (pwned !== undefined) report.pwned.push({ step: name, value: pwned });
  };
  const expectText = async (selector, text) => {
    const got = await page.locator(selector).first().innerText({ timeout: 5000 });
    if (!got.includes(text)) throw new Error(`${selector}: expected "${text}", got "${got}"`);
  };

  await step("home", async () => {
    await page.goto(url("index.html"));
    await expectText("h1", "");
    await expectText("#latest", "Latest records");
  });
  await step("listing-to-record", async () => {
    await page.getByRole("link", { name: "Records", exact: true }).click();
    await expectText("h1", "All records");
    await page.locator("a.record-title", { hasText: "Higgs" }).first().click();
    await expectText("h1", "Higgs");
    await expectText("#versions", "Version 2");
  });
  await step("switch-version", async () => {
    await page.locator("#versions a", { hasText: "Version 1" }).click();
    await expectText(".banner.old", "You are looking at version 1");
    await page.getByRole("link", { name: /See the latest version/ }).click();
    await expectText("#versions strong", "Version 2");
  });
  await step("diff", async () => {
    await page.getByRole("link", { name: "Changes from the previous version" }).first().click();
    await expectText("h1", "Changes from version 1 to version 2");
    await expectText("table.diff", "Status");
  });
  await step("search", async () => {
    await page.fill("#site-q", "higgs");
    await page.press("#site-q", "Enter");
    await page.waitForSelector("#search-results li a", { timeout: 10000 });
    await page.fill("#q", "four lept");
    await page.waitForFunction(() => /match/.test(document.getElementById("search-status").textContent), null, { timeout: 10000 });
    await page.locator("#search-results li a").first().click();
    await expectText("h1", "Higgs");
  });
  await step("canary", async () => {
    await page.goto(url("search/index.html?q=canary"));
    await page.waitForSelector("#search-results li a", { timeout: 10000 });
    await page.locator("#search-results li a").first().click();
    await expectText("h1", "Canary <script>");
    await page.waitForTimeout(300);
  });
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
  const failed = report.steps.some((s) => !s.ok) || report.consoleErrors.length || report.pageErrors.length ||
    report.dialogs.length || report.pwned.length;
  process.stdout.write(JSON.stringify(report, null, 2) + "\n");
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.log(JSON.stringify({ fatal: String(e) })); process.exit(1); });
