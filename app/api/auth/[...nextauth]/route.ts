import NextAuth from "next-auth";
import { cookies } from "next/headers";
import type { NextRequest } from "next/server";
import { contextOf, withAuditContext } from "@/lib/audit/context";
import { callbackUrlProblem, unusableCallbackCookies } from "@/lib/auth/callback-url";
import { authOptions } from "@/lib/auth/options";
import { env } from "@/lib/env";
import { textWithin } from "@/lib/http/bounded-body";
import { MAX_BODY_BYTES, plainText } from "@/lib/http/plain";
import { isStorableText } from "@/lib/text";
import { limitAddress, rateLimit } from "@/lib/security/rate-limit";

// Options are built per request so configuration is read at run time, not at build time.
type Ctx = { params: Promise<{ nextauth: string[] }> };

async function handler(req: NextRequest, ctx: Ctx): Promise<Response> {
  // Behind a trusted identity-aware proxy Latchkey runs no sign-in of its own.
  if (env().LATCHKEY_AUTH_MODE === "trusted-proxy")
    return Response.json({ error: "Sign-in is handled by the identity-aware proxy in front of Latchkey." }, { status: 404 });
  // Text PostgreSQL cannot store (NUL, broken Unicode) never reaches next-auth or its adapter.
  for (const [key, value] of req.nextUrl.searchParams)
    if (!isStorableText(key) || !isStorableText(value)) return plainText(400, "Sign-in parameters must be plain text.");
  // next-auth would throw on a callbackUrl that is not a URL; refuse it with a message instead. Every value of the query counts: next-auth takes the last.
  const queried = req.nextUrl.searchParams
    .getAll("callbackUrl")
    .map(callbackUrlProblem)
    .find((p) => p !== null);
  if (queried) return plainText(400, queried);
  // Starting a sign-in and coming back from the IdP are limited per address, before any body is read.
  if (/^\/api\/auth\/(signin|callback)\//.test(req.nextUrl.pathname)) {
    const limit = await rateLimit(`signin:addr:${limitAddress(req.headers)}`, env().LATCHKEY_RATE_LIMIT_SIGNIN);
    if (!limit.ok)
      return plainText(429, `Too many sign-in attempts from this address; try again in ${limit.retryAfter} s.`, { "retry-after": String(limit.retryAfter) });
  }
  // A POST's body, as next-auth will read it: up to the routes' limit, and then only form fields or a JSON object of text
  // fields (JSON that does not parse, or a callbackUrl that is not text, next-auth answered with a 500). That also refuses
  // the JSON next-auth/react's session update() sends, which the portal does not use.
  const body = req.method === "POST" ? await bodyOf(req) : {};
  if (body === "too large") return plainText(413, `The body is larger than ${MAX_BODY_BYTES / 1024} KiB.`);
  if (body === null) return plainText(400, "A sign-in body must be form fields or a JSON object of text fields.");
  const posted = callbackUrlProblem(body.callbackUrl);
  if (posted) return plainText(400, posted);
  // next-auth reads its cookies through next/headers: a hand-written callback-url cookie it would answer with a 500 is deleted there.
  const jar = await cookies();
  for (const name of unusableCallbackCookies(jar.getAll())) jar.delete(name);
  // Sign-in and sign-out events carry the caller's address and user agent.
  return withAuditContext(
    contextOf(req.headers, `auth:${req.nextUrl.pathname.replace(/^\/api\/auth\//, "")}`),
    () => NextAuth(req as never, ctx as never, authOptions()) as Promise<Response>,
  );
}

/**
 * A POST's body as next-auth will read it (its getBody: JSON when the content type names JSON,
 * else a form when it names one, else nothing), from a copy so next-auth still reads the body
 * itself, and only up to the routes' limit ("too large" past it); null when it is JSON that
 * does not parse or is not an object of text fields.
 */
async function bodyOf(req: NextRequest): Promise<Record<string, unknown> | "too large" | null> {
  const type = req.headers.get("content-type") ?? "";
  const json = type.includes("application/json");
  if (!json && !type.includes("application/x-www-form-urlencoded")) return {};
  let text: string | null;
  try {
    text = await textWithin(req.clone());
  } catch {
    // The client went away mid-body.
    return null;
  }
  if (text === null) return "too large";
  if (!json) return Object.fromEntries(new URLSearchParams(text));
  try {
    const parsed: unknown = JSON.parse(text);
    const textFields = parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) && Object.values(parsed).every((v) => typeof v === "string");
    return textFields ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export { handler as GET, handler as POST };
