// WCAG 2.2 AA checks with axe-core run inside the page, and a record of console errors and
// hydration warnings, so the e2e suite fails on either.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { BrowserContext, Page } from "playwright-core";

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

// A page left open whose session an admin ended keeps polling its live endpoints until it moves on; the browser logs those refusals.
const EXPECTED = [/Failed to load resource: the server responded with a status of 401/];

export function watchConsole(context: BrowserContext, who: string): void {
  const watch = (page: Page) => {
    page.on("console", (msg) => {
      const text = msg.text();
      const hydration = /hydrat|did not match|Minified React error #(418|423|425)/i.test(text);
      if ((msg.type() === "error" && !EXPECTED.some((re) => re.test(text))) || (msg.type() === "warning" && hydration)) consoleProblems.push(`${who} ${page.url()}: [${msg.type()}] ${text}`);
    });
    page.on("pageerror", (error) => consoleProblems.push(`${who} ${page.url()}: [uncaught] ${error.message}`));
  };
  context.pages().forEach(watch);
  context.on("page", watch);
}
