import { createRequire } from "node:module";
import path from "node:path";
import type { AuthOptions } from "next-auth";

/** next-auth's core handler, as its route handlers call it (its package exports do not list it). */
interface RequestInternal {
  method: string;
  action: string;
  providerId?: string;
  cookies?: Record<string, string>;
  headers?: Record<string, string>;
  query?: Record<string, string>;
  body?: Record<string, string>;
}
interface ResponseInternal {
  redirect?: string;
  body?: unknown;
  cookies?: { name: string; value: string; options?: { maxAge?: number; expires?: Date } }[];
}
const { AuthHandler } = createRequire(import.meta.url)(path.join(process.cwd(), "node_modules/next-auth/core/index.js")) as {
  AuthHandler: (params: { req: RequestInternal; options: AuthOptions }) => Promise<ResponseInternal>;
};

/**
 * A whole OpenID Connect sign-in without a browser: next-auth's own handler (the one the
 * portal's route runs) starts it, the real local provider's login form is posted, and the
 * code comes back to next-auth's callback, which exchanges it, runs Latchkey's callbacks
 * and makes the database session. What a returning person goes through is next-auth's
 * real path (it hands the callback the stored user), which a direct callback call skips.
 */
export interface SignInResult {
  /** Where next-auth sends the browser at the end (an error page names the refusal). */
  redirect: string;
  /** The database session's token, when one was made. */
  sessionToken?: string;
}

type Jar = Map<string, string>;

function keep(jar: Jar, cookies: { name: string; value: string; options?: { maxAge?: number; expires?: Date } }[] | undefined) {
  for (const c of cookies ?? []) {
    if (c.options?.maxAge === 0 || (c.options?.expires && c.options.expires.getTime() < Date.now()) || c.value === "") jar.delete(c.name);
    else jar.set(c.name, c.value);
  }
}

function keepSetCookie(jar: Jar, response: Response) {
  for (const line of response.headers.getSetCookie()) {
    const [pair] = line.split(";");
    const at = pair!.indexOf("=");
    jar.set(pair!.slice(0, at).trim(), pair!.slice(at + 1).trim());
  }
}

const cookieHeader = (jar: Jar) => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");

export async function signInThroughIdp(options: AuthOptions, portalUrl: string, email: string, password = "latchkey"): Promise<SignInResult> {
  const host = new URL(portalUrl).host;
  const headers = { host, "x-forwarded-proto": "http" };
  const auth = (req: Omit<RequestInternal, "headers">) => AuthHandler({ req: { ...req, headers }, options });
  const portal: Jar = new Map();

  const csrf = await auth({ action: "csrf", method: "GET", cookies: {} });
  keep(portal, csrf.cookies);
  const started = await auth({
    action: "signin",
    providerId: "oidc",
    method: "POST",
    cookies: Object.fromEntries(portal),
    body: { csrfToken: (csrf.body as { csrfToken: string }).csrfToken, callbackUrl: `${portalUrl}/` },
  });
  keep(portal, started.cookies);
  if (!started.redirect?.includes("/auth?")) throw new Error(`sign-in did not go to the provider: ${started.redirect}`);

  // At the provider: follow its redirects, post the login form when it shows it.
  const idp: Jar = new Map();
  let url = started.redirect;
  for (let hop = 0; hop < 20 && !url.startsWith(portalUrl); hop++) {
    let response = await fetch(url, { redirect: "manual", headers: { cookie: cookieHeader(idp) } });
    keepSetCookie(idp, response);
    if (response.status === 200 && /\/interaction\//.test(url)) {
      response = await fetch(`${url}/login`, {
        method: "POST",
        redirect: "manual",
        headers: { cookie: cookieHeader(idp), "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ email, password }).toString(),
      });
      keepSetCookie(idp, response);
    }
    const location = response.headers.get("location");
    if (!location) throw new Error(`the provider answered ${response.status} without a redirect: ${(await response.text()).slice(0, 200)}`);
    url = new URL(location, url).toString();
  }
  const back = new URL(url);
  if (!back.pathname.endsWith("/api/auth/callback/oidc")) throw new Error(`the provider sent the browser to ${url}`);
  const done = await auth({
    action: "callback",
    providerId: "oidc",
    method: "GET",
    cookies: Object.fromEntries(portal),
    query: Object.fromEntries(back.searchParams),
  });
  keep(portal, done.cookies);
  return { redirect: done.redirect ?? "", sessionToken: portal.get("next-auth.session-token") };
}
