import { mkdirSync } from "node:fs";
import path from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { watchConsole } from "./accessibility";

/** Debian's Chromium driven by playwright-core; browsers cannot be downloaded here. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const SCREENSHOTS = path.join(process.cwd(), "tests/.artifacts/screenshots");

export async function launchBrowser(): Promise<Browser> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Real OIDC sign-in: Latchkey → local provider's login form → back to Latchkey. */
export async function signIn(
  browser: Browser,
  baseUrl: string,
  email: string,
  shotPrefix?: string,
  landing = "/catalog",
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 860 }, baseURL: baseUrl, acceptDownloads: true });
  watchConsole(context, email);
  const page = await context.newPage();
  await page.goto(landing);
  await page.waitForURL(/\/signin/);
  if (shotPrefix) await screenshot(page, `${shotPrefix}-signin`);
  await page.getByRole("button", { name: /Sign in with/ }).click();
  await page.waitForURL(/\/interaction\//);
  if (shotPrefix) await screenshot(page, `${shotPrefix}-idp-login`);
  await page.fill("#email", email);
  await page.fill("#password", "latchkey");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${baseUrl}${landing}`);
  return { context, page };
}
