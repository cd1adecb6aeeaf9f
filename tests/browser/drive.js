// Drives Debian's chromium through a built capsule site, as a reader would.
//   node drive.js SITE_DIR SCREENSHOT_DIR [SERVE_URL]
// SERVE_URL: a `capsule serve` of the same archive, whose record `evil` has files
// with scripts (evil.html, evil.svg). Prints one JSON report on stdout (with the
// layout measurements at 390 and 1280 px); exits 1 on any failed step, console error
// or executed canary script.
"use strict";
const path = require("path");
const fs = require("fs");
const { chromium } = require("playwright-core");

const site = path.resolve(process.argv[2]);
const shots = path.resolve(process.argv[3]);
const served = process.argv[4] || null;
const http = require("http");
const url = (p) => "file://" + path.join(site, p);
fs.mkdirSync(shots, { recursive: true });
const profile = fs.mkdtempSync(path.join(require("os").tmpdir(), "capsule-chromium-"));

(async () => {
  const report = { steps: [], consoleErrors: [], pageErrors: [], dialogs: [], pwned: [], layout: {}, shots: [] };
  // The site under a sub-path of a plain static server that answers every missing
  // page with 404.html, as web servers are set up to.
  const sub = await new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      const u = decodeURIComponent(req.url.split("?")[0]);
      let file = u.startsWith("/sub/") ? path.join(site, u.slice(5)) : null;
      if (file && !file.startsWith(site)) file = null;
      if (file && fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, "index.html");
      const type = (f) => ({ ".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml" })[path.extname(f)] || "application/octet-stream";
      if (file && fs.existsSync(file)) {
        res.writeHead(200, { "Content-Type": type(file) });
        res.end(fs.readFileSync(file));
      } else {
        res.writeHead(404, { "Content-Type": "text/html" });
        res.end(fs.readFileSync(path.join(site, "404.html")));
      }
    });
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
  const subUrl = "http://127.0.0.1:" + sub.address().port + "/sub/";
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1200, height: 900 },
  });
  const page = context.pages()[0] || await context.newPage();
  // A 404 on purpose (the not-found page) and a download on purpose are not errors.
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of 404/.test(m.text())) report.consoleErrors.push(m.text());
  });
  let downloads = 0;
  page.on("download", () => { downloads += 1; });
  page.on("pageerror", (e) => report.pageErrors.push(String(e)));
  page.on("dialog", async (d) => { report.dialogs.push(d.message()); await d.dismiss(); });
  page.on("request", (r) => {
    const u = r.url();
    if (!u.startsWith("file://") && !u.startsWith("data:") && !u.startsWith(subUrl) && !(served && u.startsWith(served))) {
      report.consoleErrors.push("request to " + u);
    }
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
  // Tables and the page at a phone's width and a desktop's: measured, and kept as
  // full-page screenshots for a person to look at.
  const measure = () => page.evaluate(() => {
    const doc = document.documentElement;
    const cells = Array.from(document.querySelectorAll("td, th"));
    const broken = [];
    const anywhere = [];
    for (const cell of cells) {
      if (getComputedStyle(cell).overflowWrap === "anywhere") anywhere.push(cell.textContent.slice(0, 40));
      // Every word of a cell (tokens apart) must sit on one line: a word drawn in two
      // boxes on two lines was broken.
      const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (node.parentElement.closest(".token, code")) continue;
        const re = /[^\s\-\/]+/g;
        let m;
        while ((m = re.exec(node.data))) {
          const range = document.createRange();
          range.setStart(node, m.index);
          range.setEnd(node, m.index + m[0].length);
          const tops = new Set(Array.from(range.getClientRects()).map((r) => Math.round(r.top)));
          if (tops.size > 1) broken.push(m[0]);
        }
      }
    }
    const widths = cells.map((c) => c.getBoundingClientRect().width);
    return {
      viewport: window.innerWidth,
      bodyOverflow: doc.scrollWidth - doc.clientWidth,
      cells: cells.length,
      narrowestCell: Math.floor(Math.min(...widths)),
      brokenWords: broken,
      anywhereCells: anywhere,
    };
  });
  for (const width of [390, 1280]) {
    await step("record-at-" + width, async () => {
      await page.setViewportSize({ width, height: 900 });
      await page.goto(url("records/higgs/index.html"));
      await expectText("h1", "Higgs");
      const shot = path.join(shots, "record-" + width + "px.png");
      await page.screenshot({ path: shot, fullPage: true });
      report.shots.push(shot);
      report.layout[width] = await measure();
      // Dates as people read them, the publish message apart from the date.
      const published = await page.locator(".meta time").first().innerText();
      if (!/^\d{1,2} [A-Z][a-z]+ \d{4}$/.test(published)) throw new Error("date shown as " + published);
      report.layout[width].date = published;
      report.layout[width].message = await page.locator(".meta .message").first().innerText();
    });
  }
  await page.setViewportSize({ width: 1200, height: 900 });

  // The citation downloads are data: URLs in the page: a click saves the file, named
  // after the record and version, from disk as from a server.
  await step("citation-download", async () => {
    await page.goto(url("records/higgs/index.html"));
    report.citation = {};
    for (const name of ["BibTeX", "CSL-JSON"]) {
      const [download] = await Promise.all([
        page.waitForEvent("download", { timeout: 5000 }),
        page.getByRole("link", { name, exact: true }).click(),
      ]);
      const text = fs.readFileSync(await download.path(), "utf8");
      report.citation[name] = { file: download.suggestedFilename(), start: text.slice(0, 6) };
    }
  });

  // The not-found page: where it lies (file://), and in place of a missing page
  // deep under a sub-path.
  await step("404-from-disk", async () => {
    await page.goto(url("404.html"));
    await expectText("h1", "Page not found");
    await page.getByRole("link", { name: "Go to the home page" }).click();
    await expectText("#latest", "Latest records");
  });
  await step("404-under-a-sub-path", async () => {
    const response = await page.goto(subUrl + "records/no-such-record/v9/");
    if (response.status() !== 404) throw new Error("status " + response.status());
    await expectText("h1", "Page not found");
    const styled = await page.evaluate(() => getComputedStyle(document.querySelector("header.site")).borderBottomStyle);
    if (styled !== "solid") throw new Error("the stylesheet did not load");
    const home = await page.getByRole("link", { name: "Go to the home page" }).evaluate((a) => a.href);
    if (home !== subUrl + "index.html") throw new Error("home link is " + home);
    await page.getByRole("link", { name: "Go to the home page" }).click();
    await expectText("#latest", "Latest records");
    report.notFoundHome = home;
  });

  // A deposit's files opened from the served site: downloads, and their scripts never
  // run in the site's origin (they would set localStorage, a cookie and the title).
  if (served) {
    await step("deposit-files-do-not-run", async () => {
      await page.goto(served);
      await expectText("#latest", "Latest records");
      for (const file of ["evil.html", "evil.svg"]) {
        await page.goto(served + "files/evil/v1/" + file).catch(() => {});
        await page.waitForTimeout(300);
      }
      await page.goto(served + "records/evil/index.html");
      await page.locator("a[download]", { hasText: "evil.html" }).click();
      await page.waitForTimeout(300);
      await page.goto(served);
      report.sandbox = await page.evaluate(() => ({
        localStorage: localStorage.getItem("pwned"),
        cookie: document.cookie,
        title: document.title,
      }));
      report.sandbox.downloads = downloads;
    });
  }
  sub.close();
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
  const failed = report.steps.some((s) => !s.ok) || report.consoleErrors.length || report.pageErrors.length ||
    report.dialogs.length || report.pwned.length;
  process.stdout.write(JSON.stringify(report, null, 2) + "\n");
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.log(JSON.stringify({ fatal: String(e) })); process.exit(1); });
