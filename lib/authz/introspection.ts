import "server-only";
import { fromResponse, MAX_BODY_BYTES, plainJson, type IncomingCall, type PlainAnswer } from "../http/plain";
import { problemAnswer as problem } from "../http/problem";
import { authenticate } from "./caller";
import { verifyCredential } from "./verify";

/**
 * OAuth 2.0 Token Introspection (RFC 7662) for resource servers: is this Latchkey
 * credential active right now? The caller authenticates with a service token that has
 * the `introspect` scope. A revoked credential is inactive at once.
 */
export async function introspect(call: IncomingCall): Promise<PlainAnswer> {
  const auth = await authenticate(call);
  if ("refusal" in auth) return fromResponse(auth.refusal);
  if (!auth.who.via?.scopes.includes("introspect")) return problem(403, "insufficient_scope", "This token lacks the introspect scope.");
  if (!/^application\/x-www-form-urlencoded\s*(;|$)/i.test(call.headers.get("content-type") ?? "")) {
    return problem(415, "unsupported_media_type", "Send token=… as application/x-www-form-urlencoded (RFC 7662).");
  }
  const body = await call.text();
  if (Buffer.byteLength(body) > MAX_BODY_BYTES) return problem(413, "too_large", "The body is too large.");
  const token = new URLSearchParams(body).get("token");
  if (!token) return problem(400, "invalid_request", "The token parameter is missing.");
  const verified = await verifyCredential(token);
  if (!verified.ok) return plainJson(200, { active: false });
  const { claims } = verified;
  return plainJson(200, {
    active: true,
    token_type: "Bearer",
    username: verified.user.email,
    sub: claims.sub,
    aud: claims.aud,
    iss: claims.iss,
    jti: claims.jti,
    iat: claims.iat,
    nbf: claims.nbf,
    exp: claims.exp,
    target: claims.target,
    service: claims.service,
    environment: claims.environment,
    role: claims.role,
    request_id: verified.requestId,
  });
}
