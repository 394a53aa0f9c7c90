import NextAuth from "next-auth";
import { cookies } from "next/headers";
import type { NextRequest } from "next/server";
import { contextOf, withAuditContext } from "@/lib/audit/context";
import { callbackUrlProblem, unusableCallbackCookies } from "@/lib/auth/callback-url";
import { authOptions } from "@/lib/auth/options";
import { env } from "@/lib/env";
import { plainText } from "@/lib/http/plain";
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
  // next-auth reads a POST's body as JSON or as a form, as its content type says; JSON it cannot parse, or fields that are not text, it would answer with a 500.
  const body = req.method === "POST" ? await bodyOf(req) : {};
  if (body === null) return plainText(400, "A sign-in body must be form fields or a JSON object of text fields.");
  // next-auth would throw on a callbackUrl that is not a URL; refuse it with a message instead. Every value of the query counts: next-auth takes the last.
  const problem = [...req.nextUrl.searchParams.getAll("callbackUrl"), body.callbackUrl].map(callbackUrlProblem).find((p) => p !== null);
  if (problem) return plainText(400, problem);
  // Starting a sign-in and coming back from the IdP are limited per address.
  if (/^\/api\/auth\/(signin|callback)\//.test(req.nextUrl.pathname)) {
    const limit = await rateLimit(`signin:addr:${limitAddress(req.headers)}`, env().LATCHKEY_RATE_LIMIT_SIGNIN);
    if (!limit.ok)
      return plainText(429, `Too many sign-in attempts from this address; try again in ${limit.retryAfter} s.`, { "retry-after": String(limit.retryAfter) });
  }
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
 * A POST's body as next-auth will read it (its getBody: JSON when the content type mentions
 * JSON, else a form when it mentions one, else nothing), from a copy so next-auth still reads
 * the body itself; null when it is JSON that does not parse or is not an object of text fields.
 */
async function bodyOf(req: NextRequest): Promise<Record<string, unknown> | null> {
  const type = req.headers.get("content-type") ?? "";
  try {
    if (type.includes("application/json")) {
      const parsed: unknown = JSON.parse(await req.clone().text());
      const textFields = parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) && Object.values(parsed).every((v) => typeof v === "string");
      return textFields ? (parsed as Record<string, unknown>) : null;
    }
    if (type.includes("application/x-www-form-urlencoded")) return Object.fromEntries(new URLSearchParams(await req.clone().text()));
  } catch {
    return null;
  }
  return {};
}

export { handler as GET, handler as POST };
