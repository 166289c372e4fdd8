#!/usr/bin/env node
// Opens each reconciliation report (HTML) from file:// in headless Chromium and fails on anything
// a bookkeeper would trip over: console errors or warnings, page errors, any network request
// (the page must be self-contained), a Content-Security-Policy that blocks the page's own inline
// style or script, a missing h1 / summary table / category section, or tables that do not sort.
//
//   node check.mjs FILE.html [FILE2.html ...] [--screenshot OUT.png]
//
// --screenshot takes a full-page PNG of each file before the sort is exercised (with several
// files, OUT-1.png, OUT-2.png, ...). Chromium: $CHROMIUM_PATH, else /usr/bin/chromium.
// Exit status: 0 all files pass, 1 a check failed, 2 usage error.

import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

// The page says how many category sections it has (<main data-categories>): 8 in the
// reconciliation report, 6 in the go-live preview.
const DEFAULT_CATEGORY_COUNT = 8;

function usage(message) {
  if (message) console.error(`report-check: ${message}`);
  console.error("usage: node check.mjs FILE.html [FILE.html ...] [--screenshot OUT.png]");
  process.exit(2);
}

function parseArgs(argv) {
  const files = [];
  let screenshot = null;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--screenshot") {
      screenshot = argv[++i];
      if (!screenshot) usage("--screenshot needs a file name");
    } else if (arg.startsWith("--screenshot=")) {
      screenshot = arg.slice("--screenshot=".length);
    } else if (arg === "-h" || arg === "--help") {
      usage();
    } else if (arg.startsWith("-")) {
      usage(`unknown option ${arg}`);
    } else {
      files.push(arg);
    }
  }
  if (files.length === 0) usage("no HTML file given");
  return { files, screenshot };
}

function screenshotPath(base, index, total) {
  if (!base || total === 1) return base;
  const ext = path.extname(base) || ".png";
  return `${base.slice(0, base.length - path.extname(base).length)}-${index + 1}${ext}`;
}

// The hashes a CSP needs for the file's inline <style> and <script> blocks, compared with the
// ones its <meta http-equiv="Content-Security-Policy"> lists: a stale hash is named precisely.
function cspProblems(html) {
  const problems = [];
  const meta = /<meta\s+http-equiv="Content-Security-Policy"\s+content="([^"]*)"/i.exec(html);
  if (!meta) return ["no <meta http-equiv=\"Content-Security-Policy\"> in the page"];
  const policy = meta[1].replace(/&#x27;|&#39;/g, "'");
  const directive = (name) => {
    const m = new RegExp(`(?:^|;)\\s*${name}\\s+([^;]*)`).exec(policy);
    return m ? m[1].trim().split(/\s+/) : null;
  };
  for (const [tag, name] of [["style", "style-src"], ["script", "script-src"]]) {
    const sources = directive(name) ?? directive("default-src") ?? [];
    if (sources.includes("'unsafe-inline'") && !sources.some((s) => /^'(sha|nonce)/.test(s))) continue;
    const re = new RegExp(`<${tag}(\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, "gi");
    for (const m of html.matchAll(re)) {
      if (/\bsrc=/.test(m[1] ?? "")) continue;
      const hash = `'sha256-${createHash("sha256").update(m[2], "utf8").digest("base64")}'`;
      if (!sources.includes(hash)) {
        problems.push(`inline <${tag}> is not allowed by ${name}: add ${hash} (CSP lists: ${sources.join(" ") || "nothing"})`);
      }
    }
  }
  return problems;
}

async function checkFile(browser, file, shot) {
  const failures = [];
  const notes = [];
  const fail = (msg) => failures.push(msg);
  const abs = path.resolve(file);
  if (!existsSync(abs)) return { failures: [`no such file: ${abs}`], notes };
  const url = pathToFileURL(abs).href;
  const html = readFileSync(abs, "utf8");
  for (const p of cspProblems(html)) fail(`CSP: ${p}`);

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-AU" });
  const page = await context.newPage();
  page.on("console", (msg) => {
    const type = msg.type();
    if (type === "error" || type === "warning") {
      const loc = msg.location();
      const where = loc && loc.url ? ` (${loc.url}${loc.lineNumber ? `:${loc.lineNumber}` : ""})` : "";
      fail(`console ${type}: ${msg.text()}${where}`);
    }
  });
  page.on("pageerror", (err) => fail(`page error: ${err.message}`));
  page.on("requestfailed", (req) => fail(`request failed: ${req.url()} (${req.failure()?.errorText ?? "unknown"})`));
  page.on("request", (req) => {
    if (req.url() !== url) fail(`the page fetched ${req.url()}: it must be self-contained`);
  });
  page.on("response", (res) => {
    if (res.status() >= 400) fail(`HTTP ${res.status()} for ${res.url()}`);
  });

  try {
    await page.goto(url, { waitUntil: "load" });
    // Let late console messages and script errors arrive.
    await page.waitForTimeout(200);

    const facts = await page.evaluate((expected) => {
      const text = (el) => (el ? el.textContent.replace(/\s+/g, " ").trim() : "");
      const h1s = [...document.querySelectorAll("h1")];
      const summary = document.querySelector("table#summary, table.summary");
      const sections = [...document.querySelectorAll("section[data-category]")];
      const summaryLinks = summary ? [...summary.querySelectorAll('tbody a[href^="#"]')] : [];
      const inlineHandlers = [];
      for (const el of document.querySelectorAll("*")) {
        for (const attr of el.attributes) {
          if (/^on/i.test(attr.name)) inlineHandlers.push(`<${el.localName} ${attr.name}>`);
        }
      }
      const sortable = [...document.querySelectorAll("table[data-sortable]")];
      return {
        lang: document.documentElement.getAttribute("lang"),
        title: document.title,
        h1: h1s.map(text),
        verdict: text(document.getElementById("verdict")),
        summaryRows: summary ? summary.tBodies[0]?.rows.length ?? 0 : -1,
        summaryHasScope: summary ? summary.querySelectorAll('thead th[scope="col"]').length > 0 : false,
        brokenLinks: [...new Set(summaryLinks.map((a) => decodeURIComponent(a.getAttribute("href").slice(1))))].filter(
          (id) => !document.getElementById(id),
        ),
        sections: sections.map((s) => ({
          key: s.getAttribute("data-category"),
          id: s.id,
          heading: text(s.querySelector("h2, h3")),
          rows: s.querySelector("table") ? s.querySelector("table").tBodies[0]?.rows.length ?? 0 : 0,
          hasTable: Boolean(s.querySelector("table")),
          saysNone: /\bNone\.?/.test(text(s.querySelector("p.none")) || ""),
          columns: s.querySelector("table")
            ? [...s.querySelector("table").tHead.rows[0].cells].map(text)
            : [],
        })),
        inlineHandlers,
        sortableTables: sortable.length,
        headersWithoutButton: sortable.reduce(
          (n, t) =>
            n +
            [...t.tHead.rows[0].cells].filter((th) => !th.hasAttribute("data-nosort") && !th.querySelector("button"))
              .length,
          0,
        ),
        expected: Number(document.querySelector("main")?.dataset.categories ?? expected),
      };
    }, DEFAULT_CATEGORY_COUNT);
    const CATEGORY_COUNT = facts.expected;

    if (facts.lang !== "en") fail(`<html lang> is ${JSON.stringify(facts.lang)}, expected "en"`);
    if (!facts.title) fail("the page has no <title>");
    if (facts.h1.length !== 1 || !facts.h1[0]) fail(`expected one non-empty h1, found ${facts.h1.length}`);
    if (!facts.verdict) fail("no verdict (#verdict) in the summary");
    if (facts.summaryRows < 0) fail("no summary table (table#summary)");
    else if (facts.summaryRows !== CATEGORY_COUNT) {
      fail(`the summary table has ${facts.summaryRows} category rows, expected ${CATEGORY_COUNT}`);
    }
    if (facts.summaryRows >= 0 && !facts.summaryHasScope) fail("summary table headers lack scope=\"col\"");
    for (const id of facts.brokenLinks) fail(`summary links to #${id}, which is not on the page`);
    if (facts.sections.length !== CATEGORY_COUNT) {
      fail(`found ${facts.sections.length} category sections (section[data-category]), expected ${CATEGORY_COUNT}`);
    }
    for (const s of facts.sections) {
      if (!s.heading) fail(`section ${s.key} has no heading`);
      if (s.id !== s.key) fail(`section ${s.key} has id "${s.id}", expected "${s.key}" for #links`);
      if (s.hasTable && s.rows === 0) fail(`section ${s.key} has an empty table; it should say "None."`);
      if (!s.hasTable && !s.saysNone) fail(`section ${s.key} has neither a table nor "None."`);
      if (s.hasTable && s.columns.length !== 7) {
        fail(`section ${s.key} table has ${s.columns.length} columns (${s.columns.join(", ")}), expected 7`);
      }
    }
    if (facts.inlineHandlers.length) {
      fail(`inline event handler attributes (break under CSP): ${facts.inlineHandlers.slice(0, 5).join(", ")}`);
    }
    if (facts.sortableTables === 0) fail("no sortable table (table[data-sortable])");
    if (facts.headersWithoutButton > 0) {
      fail(`${facts.headersWithoutButton} sortable column headers have no <button> (the sort script did not run?)`);
    }
    notes.push(
      `h1 "${facts.h1[0] ?? ""}"; verdict "${facts.verdict}"; ` +
        `${facts.sections.length} sections, ${facts.sections.reduce((n, s) => n + s.rows, 0)} rows`,
    );

    if (shot) {
      await page.screenshot({ path: shot, fullPage: true });
      notes.push(`screenshot ${shot}`);
    }

    // Sorting: prefer a category table, else any sortable table, with at least two rows.
    const target = await page.evaluateHandle(() => {
      const ok = (t) => t.tBodies[0] && t.tBodies[0].rows.length >= 2;
      const tables = [...document.querySelectorAll("table[data-sortable]")];
      return tables.find((t) => t.closest("section[data-category]") && ok(t)) ?? tables.find(ok) ?? null;
    });
    const table = target.asElement();
    if (!table) {
      fail("no sortable table with two or more rows to exercise sorting");
    } else {
      const state = () =>
        table.evaluate((t) => ({
          name: t.getAttribute("data-title") || t.id || "table",
          order: [...t.tBodies[0].rows].map((r) => r.textContent.replace(/\s+/g, " ").trim()),
          sort: [...t.tHead.rows[0].cells].map((th) => th.getAttribute("aria-sort")),
        }));
      const before = await state();
      const button = await table.$("thead th button");
      const column = await table.evaluate((t) => {
        const b = t.tHead.querySelector("th button");
        return b ? b.closest("th").cellIndex : -1;
      });
      if (!button) {
        fail(`${before.name}: no column header has a sort button`);
      } else {
        await button.click();
        const afterClick = await state();
        const orderChanged = afterClick.order.join("\n") !== before.order.join("\n");
        const sortChanged = afterClick.sort.join() !== before.sort.join();
        if (!orderChanged && !sortChanged) {
          fail(`${before.name}: clicking the first sortable column header changed neither the row order nor aria-sort`);
        } else if (!["ascending", "descending"].includes(afterClick.sort[column])) {
          fail(`${before.name}: after a click the header's aria-sort is ${JSON.stringify(afterClick.sort[column])}`);
        }
        // The same header from the keyboard reverses the order.
        await button.focus();
        await page.keyboard.press("Enter");
        const afterKey = await state();
        if (afterKey.sort[column] === afterClick.sort[column]) {
          fail(`${before.name}: Enter on the focused header did not change aria-sort (${afterKey.sort[column]})`);
        }
        if (afterClick.order.length !== before.order.length || afterKey.order.length !== before.order.length) {
          fail(`${before.name}: sorting lost or added rows`);
        }
        notes.push(
          `sorted "${before.name}" (${before.order.length} rows) by column ${column + 1}: ` +
            `click -> aria-sort ${afterClick.sort[column]}${orderChanged ? ", order changed" : ""}; ` +
            `Enter -> aria-sort ${afterKey.sort[column]}`,
        );
      }
    }
    // Anything logged while sorting counts too.
    await page.waitForTimeout(100);
  } catch (err) {
    fail(`could not check the page: ${err.message}`);
  } finally {
    await context.close();
  }
  if (failures.some((f) => f.startsWith("console") && /Content Security Policy/i.test(f))) {
    notes.push("hint: a CSP violation usually means a stale sha256 hash in the template's <meta> CSP");
  }
  return { failures, notes };
}

async function main() {
  const { files, screenshot } = parseArgs(process.argv.slice(2));
  const executablePath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
  if (!existsSync(executablePath)) {
    console.error(`report-check: Chromium not found at ${executablePath} (install Debian's chromium or set CHROMIUM_PATH)`);
    process.exit(1);
  }
  const browser = await chromium.launch({ executablePath, headless: true });
  let failed = 0;
  try {
    for (const [i, file] of files.entries()) {
      const { failures, notes } = await checkFile(browser, file, screenshotPath(screenshot, i, files.length));
      if (failures.length) {
        failed++;
        console.log(`FAIL ${file}`);
        for (const f of failures) console.log(`  - ${f}`);
        for (const n of notes) console.log(`    ${n}`);
      } else {
        console.log(`ok   ${file}`);
        for (const n of notes) console.log(`     ${n}`);
      }
    }
  } finally {
    await browser.close();
  }
  console.log(`report-check: ${files.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  console.error(`report-check: ${err.stack || err}`);
  process.exit(1);
});
