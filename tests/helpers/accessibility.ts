// WCAG 2.2 AA checks with axe-core run inside the page, and a record of console errors and
// hydration warnings, so the e2e suite fails on either.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { expect } from "vitest";

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/** Runs axe-core in the page (through the debugging protocol, so the page's CSP stays as it is) and returns its violations. */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, opts: unknown) => Promise<{ violations: { id: string; impact: string | null; help: string; nodes: { target: string[]; failureSummary?: string }[] }[] }> } }).axe;
    const result = await axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] }, resultTypes: ["violations"] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(" ")}: ${n.failureSummary ?? ""}`) }));
  });
}

/** Console errors, uncaught errors and React hydration warnings seen in any page of the context. */
export const consoleProblems: string[] = [];

// A page left open whose session an admin ended, or whose viewer lost a role at the identity provider, gets one
// refusal from its live endpoint and then stops polling; the browser logs that refusal. Only those endpoints, only 401/403.
const POLLED = /\/api\/(inbox|live\/)/;
const expected = (text: string, url: string) => /Failed to load resource: the server responded with a status of 40[13]/.test(text) && POLLED.test(url);

export function watchConsole(context: BrowserContext, who: string): void {
  const watch = (page: Page) => {
    page.on("console", (msg) => {
      const text = msg.text();
      const hydration = /hydrat|did not match|Minified React error #(418|423|425)/i.test(text);
      if ((msg.type() === "error" && !expected(text, msg.location().url)) || (msg.type() === "warning" && hydration)) consoleProblems.push(`${who} ${page.url()}: [${msg.type()}] ${text}`);
    });
    page.on("pageerror", (error) => {
      const test = expect.getState().currentTestName ?? "outside a test";
      consoleProblems.push(`${who} ${page.url()} during "${test}": [uncaught] ${error.message}`);
      // A production build's React names a hydration mismatch only by number: keep the page as the browser had it, to compare with the server's HTML.
      if (/#41[89]|#42[35]/.test(error.message)) void keepPage(page, `${who}-${consoleProblems.length}`);
    });
  };
  context.pages().forEach(watch);
  context.on("page", watch);
}

async function keepPage(page: Page, name: string): Promise<void> {
  const dir = path.join(process.cwd(), "tests/.artifacts/console");
  await mkdir(dir, { recursive: true });
  const html = await page.content().catch((e: Error) => `(page gone: ${e.message})`);
  await writeFile(path.join(dir, `${name}.html`), `<!-- ${page.url()} -->\n${html}`);
}
