import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApiServer } from "../helpers/api-server";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { askAgainAfterIdle, h2cRequest, rawExchange, statusLines } from "../helpers/raw-http";
import type { Principal } from "@/lib/policy/evaluate";

/**
 * Clients Latchkey did not choose: HTTP/1.1 clients that ask to upgrade to h2c (the JDK's
 * default HttpClient) against the lean authorization listener, and the JVM verifier example
 * from the docs run with the JDK's own `java`.
 */
const PROXY_SECRET = randomBytes(24).toString("base64url");
const JAVA = "/usr/bin/java";

let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
let lean: { url: string; close: () => Promise<void> };
let engine: typeof import("@/lib/approvals/engine");
let alice: Principal;
let bob: Principal;
let introspector: string;

beforeAll(async () => {
  fx = await engineFixture({ LATCHKEY_FORWARD_AUTH_PROXIES: `edge=${PROXY_SECRET}` });
  engine = await import("@/lib/approvals/engine");
  alice = await fx.user("alice@example.com", ["engineering"]);
  bob = await fx.user("bob@example.com", ["engineering-leads"]);
  const dave = await fx.user("dave@example.com", ["platform-admins"]);
  const services = await import("@/lib/identity/service-identities");
  const tokens = await import("@/lib/identity/tokens");
  const gateway = await services.createServiceIdentity(dave, {
    name: "jvm-gateway",
    description: "A Java resource server",
    groups: ["engineering"],
    requestOnly: true,
  });
  introspector = (await tokens.createServiceToken(dave, gateway.service!.id, { name: "introspection", scopes: ["introspect"], expiresInDays: 30 })).secret;
  const { startAuthzListener } = await import("@/lib/authz/listener");
  lean = await startAuthzListener(0, "127.0.0.1");
  api = await startApiServer();
});
afterAll(async () => {
  await lean?.close();
  await api?.close();
  await fx?.close();
});

async function grant(overrides: Record<string, unknown> = {}) {
  const request = await engine.createRequest(alice, "temporary-access", validInput(overrides));
  await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "ok" });
  return { requestId: request.id, token: (await engine.revealCredential(alice, request.id)).token };
}

describe("idle keep-alive connections on the lean authorization listener", () => {
  it("stay open past Node.js's default 5 s, so a proxy's next request on one is answered, not reset", async () => {
    // Past 5 s, Node.js's default keep-alive time-out, the server would have closed it (checked: without the setting it does).
    expect(await askAgainAfterIdle(lean.url, "/api/health", 6_000)).toEqual({ first: "HTTP/1.1 200 OK", second: "HTTP/1.1 200 OK" });
  });
});

describe("h2c upgrade requests on the lean authorization listener", () => {
  it("forward-auth answers in HTTP/1.1, and the connection stays open for the next request", async () => {
    const { requestId, token } = await grant();
    const forward = {
      "X-Forwarded-Host": "payments.staging.test",
      "X-Forwarded-Uri": "/invoices",
      "X-Latchkey-Proxy-Secret": PROXY_SECRET,
      Authorization: `Bearer ${token}`,
    };
    const second = ["GET /api/forward-auth HTTP/1.1", "Host: lean", "Connection: close", ...Object.entries(forward).map(([k, v]) => `${k}: ${v}`)].join("\r\n");
    const answer = await rawExchange(lean.url, `${h2cRequest("GET", "/api/forward-auth", "lean", forward)}${second}\r\n\r\n`);
    expect(statusLines(answer)).toEqual(["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"]);
    expect(answer).not.toMatch(/101 Switching Protocols/i);
    expect(answer.match(/^x-latchkey-grant: (.*)$/gim)).toEqual([`x-latchkey-grant: ${requestId}`, `x-latchkey-grant: ${requestId}`]);
  });

  it("introspection reads the body of an upgrade request; refusals are ordinary answers too", async () => {
    const { token } = await grant();
    const body = new URLSearchParams({ token }).toString();
    const headers = { Authorization: `Bearer ${introspector}`, "Content-Type": "application/x-www-form-urlencoded", Connection: "close" };
    // h2cRequest already says "Connection: Upgrade, HTTP2-Settings"; a second Connection header is how some clients add close.
    const answer = await rawExchange(lean.url, h2cRequest("POST", "/api/oauth/introspect", "lean", headers, body));
    expect(statusLines(answer)).toEqual(["HTTP/1.1 200 OK"]);
    expect(JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4))).toMatchObject({ active: true, sub: "alice@example.com" });

    const refused = await rawExchange(
      lean.url,
      h2cRequest("GET", "/api/forward-auth", "lean", { "X-Latchkey-Proxy-Secret": "not-the-secret-at-all", Connection: "close" }),
    );
    expect(statusLines(refused)).toEqual(["HTTP/1.1 403 Forbidden"]);
  });
});

describe("the JVM verifier example (docs/examples/LatchkeyVerifier.java), run by the JDK", () => {
  it("verifies Latchkey's credentials from JWKS with the JDK alone, across a rotation, and refuses forgeries", { timeout: 120_000 }, async () => {
    if (!existsSync(JAVA)) throw new Error(`The JDK is not installed at ${JAVA}: apt-get install -y openjdk-17-jdk-headless (npm test does this as root).`);
    const keys = await import("@/lib/credentials/keys");
    const before = await grant();
    await keys.rotateSigningKey({ type: "human", id: bob.id, email: bob.email }, "rotation seen by a JVM service");
    const after = await grant();
    expect(decodeProtectedHeader(after.token).kid).not.toBe(decodeProtectedHeader(before.token).kid);

    const [header, , signature] = before.token.split(".");
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...decodeJwt(before.token), sub: "mallory@example.com" })).toString("base64url")}.${signature}`;
    const foreignKey = await generateKeyPair("RS256");
    const foreign = await new SignJWT({ ...decodeJwt(before.token) })
      .setProtectedHeader({ alg: "RS256", kid: decodeProtectedHeader(before.token).kid! })
      .sign(foreignKey.privateKey);
    const none = `${Buffer.from(JSON.stringify({ alg: "none", kid: decodeProtectedHeader(before.token).kid })).toString("base64url")}.${before.token.split(".")[1]}.`;
    const unknownKid = await new SignJWT({ ...decodeJwt(before.token) })
      .setProtectedHeader({ alg: "RS256", kid: "not-a-latchkey-key" })
      .sign(foreignKey.privateKey);

    const child = execFile(JAVA, ["docs/examples/LatchkeyVerifier.java", `${api.url}/.well-known/jwks.json`, "http://localhost:3999", "payments-api-staging"], {
      timeout: 90_000,
    });
    const output = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      let stdout = "";
      let stderr = "";
      child.stdout!.on("data", (c) => (stdout += c));
      child.stderr!.on("data", (c) => (stderr += c));
      child.on("exit", (code) => resolve({ code, stdout, stderr }));
    });
    child.stdin!.end([before.token, after.token, forged, foreign, none, unknownKid].join("\n"));
    const { code, stdout, stderr } = await output;
    const lines = stdout.trim().split("\n");
    expect(lines, stderr).toHaveLength(6);
    expect(lines[0]).toMatch(/^verified .*"sub":"alice@example.com"/);
    expect(lines[1]).toMatch(/^verified .*"sub":"alice@example.com"/);
    expect(lines.slice(2)).toEqual([
      "refused: signature does not verify",
      "refused: signature does not verify",
      "refused: not signed with RS256",
      "refused: signed by a key Latchkey does not publish",
    ]);
    expect(code).toBe(1);
  });
});
