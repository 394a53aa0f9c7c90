import { forwardAuth, proxyNamed } from "@/lib/credentials/forward-auth";
import { plainText } from "@/lib/http/plain";

export const dynamic = "force-dynamic";

const SESSION_COOKIES = ["__Secure-next-auth.session-token", "next-auth.session-token"];

function cookie(request: Request, name: string): string | undefined {
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const at = part.indexOf("=");
    if (at > 0 && part.slice(0, at).trim() === name) {
      try {
        return decodeURIComponent(part.slice(at + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/**
 * Answers a proxy's sub-request: 2xx with identity headers, 401 (no valid identity) or
 * 403 (an identity without a grant for this host and path). Only configured proxies,
 * which send their shared secret in X-Latchkey-Proxy-Secret, may ask.
 */
async function handle(request: Request): Promise<Response> {
  const proxy = proxyNamed(request.headers.get("x-latchkey-proxy-secret"));
  if (!proxy) return plainText(403, "Only a proxy configured in LATCHKEY_FORWARD_AUTH_PROXIES may call forward-auth.");
  const h = request.headers;
  const bearer = h.get("authorization")?.match(/^Bearer\s+(\S+)$/i)?.[1];
  const answer = await forwardAuth(
    { method: h.get("x-forwarded-method") ?? "GET", host: h.get("x-forwarded-host") ?? "", uri: h.get("x-forwarded-uri") ?? "/" },
    { credential: bearer, sessionToken: SESSION_COOKIES.map((n) => cookie(request, n)).find(Boolean) },
  );
  if (answer.status === 200) return plainText(200, "ok", answer.headers);
  return plainText(answer.status, answer.reason, answer.status === 401 ? { "www-authenticate": 'Bearer realm="latchkey"' } : {});
}

export const GET = handle;
export const HEAD = handle;
export const POST = handle;
