import { NextResponse, type NextRequest } from "next/server";
import { unusableCallbackCookies } from "./lib/auth/callback-url";
import { checkActionPost } from "./lib/http/server-action-guard";
import { REQUEST_ID_PATTERN } from "./lib/observability/request-id";

/**
 * For pages: a Content-Security-Policy with a fresh nonce (Next.js puts it on its own
 * scripts), and the requested path for server components, so that a visitor sent to sign
 * in comes back to the page they asked for. Posts (server actions) are checked here before
 * they run: origin, size and shape (lib/http/server-action-guard.ts). Authentication
 * itself happens in each page, action and route (lib/auth/session.ts), never here.
 */
export async function middleware(request: NextRequest) {
  const headers = new Headers(request.headers);
  // One id per request, for its log lines and audit events: a proxy's well-formed X-Request-Id is kept, else a new one.
  const given = request.headers.get("x-request-id");
  const requestId = given && REQUEST_ID_PATTERN.test(given) ? given : crypto.randomUUID();
  headers.set("x-request-id", requestId);
  const fromProxy = await fromConfiguredProxy(request.headers.get("x-latchkey-proxy-secret"));
  // Next.js trusts X-Forwarded-Host for its own origin check; only a configured proxy may set it.
  if (!fromProxy) headers.delete("x-forwarded-host");
  headers.delete("x-latchkey-proxy-secret");
  // next-auth fails every session lookup (so every page) on a hand-written callback-url cookie it cannot parse: drop it.
  const bad = new Set(unusableCallbackCookies(request.cookies.getAll()));
  if (bad.size > 0)
    headers.set(
      "cookie",
      (request.headers.get("cookie") ?? "")
        .split(";")
        .filter((part) => !bad.has(part.split("=")[0]!.trim()))
        .join(";"),
    );

  const refusal = await checkActionPost(
    { method: request.method, headers: request.headers, body: () => request.text() },
    {
      fromProxy,
      allowedOrigins: (process.env.LATCHKEY_ALLOWED_ORIGINS ?? "")
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    },
  );
  if (refusal)
    return new NextResponse(`${refusal.message}\n`, {
      status: refusal.status,
      headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", "x-request-id": requestId },
    });

  const nonce = btoa(crypto.randomUUID());
  const dev = process.env.NODE_ENV === "development";
  const csp = [
    "default-src 'self'",
    `script-src 'self' 'nonce-${nonce}' 'strict-dynamic'${dev ? " 'unsafe-eval'" : ""}`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
  headers.set("x-latchkey-path", `${request.nextUrl.pathname}${request.nextUrl.search}`);
  headers.set("x-nonce", nonce);
  headers.set("content-security-policy", csp);
  const response = NextResponse.next({ request: { headers } });
  response.headers.set("content-security-policy", csp);
  response.headers.set("x-request-id", requestId);
  return response;
}

/**
 * Whether the request carries the secret of a proxy configured in
 * LATCHKEY_FORWARD_AUTH_PROXIES (middleware runs apart from lib/env.ts, so it reads the
 * variable itself). Digests are compared so the time taken does not depend on the secret.
 */
async function fromConfiguredProxy(secret: string | null): Promise<boolean> {
  if (!secret) return false;
  const digest = async (text: string) => new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  const given = await digest(secret);
  let match = false;
  for (const pair of (process.env.LATCHKEY_FORWARD_AUTH_PROXIES ?? "").split(",")) {
    const at = pair.indexOf("=");
    if (at < 1) continue;
    const expected = await digest(pair.slice(at + 1).trim());
    let difference = 0;
    for (let i = 0; i < expected.length; i++) difference |= expected[i]! ^ given[i]!;
    if (difference === 0) match = true;
  }
  return match;
}

export const config = { matcher: ["/((?!api/|scim/|_next/|\\.well-known/|favicon.ico).*)"] };
