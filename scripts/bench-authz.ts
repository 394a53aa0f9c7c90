/**
 * npm run bench:authz [-- --seconds 20 --concurrency 32]
 * Forward-auth and token-introspection decisions per second and their p50/p99, against the
 * production build over HTTP, each with a real credential of an active grant.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { benchUser, percentile, saveResults, startBenchPortal } from "./support/bench-portal";

const { values } = parseArgs({ options: { seconds: { type: "string", default: "20" }, concurrency: { type: "string", default: "32" } } });
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);
const PROXY_SECRET = randomBytes(24).toString("base64url");

const { freePort } = await import("./support/ports");
const authzPort = await freePort();
const portal = await startBenchPortal({ LATCHKEY_FORWARD_AUTH_PROXIES: `bench=${PROXY_SECRET}`, LATCHKEY_AUTHZ_PORT: String(authzPort) });
const lean = `http://localhost:${authzPort}`;
const { db, disconnectDb } = await import("../lib/db");
const engine = await import("../lib/approvals/engine");
const { createServiceToken } = await import("../lib/api/tokens");
const { createServiceIdentity } = await import("../lib/api/service-identities");

const alice = await benchUser("alice@bench.example.com", ["engineering"]);
const bob = await benchUser("bob@bench.example.com", ["engineering-leads"]);
const dave = await benchUser("dave@bench.example.com", ["platform-admins"]);
const gateway = await createServiceIdentity(dave, { name: "bench-gateway", description: "resource server", groups: ["engineering"], requestOnly: true });
const introspector = (await createServiceToken(dave, gateway.id, { name: "introspect", scopes: ["introspect"], expiresInDays: 1 })).secret;
const credentials: string[] = [];
for (let i = 0; i < 20; i++) {
  const r = await engine.createRequest(alice, "temporary-access", { targetId: "payments-api-production", role: "read", durationMinutes: 60, justification: `bench credential ${i}` });
  await engine.decide(bob, { requestId: r.id, decision: "approve", comment: "bench" });
  credentials.push((await engine.revealCredential(alice, r.id)).token);
}

async function run(name: string, call: (token: string) => Promise<Response>, ok: (r: Response) => boolean) {
  const latencies: number[] = [];
  let errors = 0;
  const deadline = Date.now() + SECONDS * 1000;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, w) => {
      let i = w;
      while (Date.now() < deadline) {
        const t0 = performance.now();
        const response = await call(credentials[i++ % credentials.length]!);
        await response.arrayBuffer();
        latencies.push(performance.now() - t0);
        if (!ok(response)) errors += 1;
      }
    }),
  );
  const elapsed = (Date.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const result = { decisionsPerSecond: Math.round(latencies.length / elapsed), p50Ms: +percentile(latencies, 50).toFixed(2), p99Ms: +percentile(latencies, 99).toFixed(2), errors };
  console.log(`${name.padEnd(14)} ${String(result.decisionsPerSecond).padStart(6)}/s   p50 ${result.p50Ms} ms   p99 ${result.p99Ms} ms   errors ${errors}`);
  return result;
}

console.log(`[bench] ${CONCURRENCY} concurrent clients for ${SECONDS} s each (production build): the portal's routes, then the lean listener (LATCHKEY_AUTHZ_PORT)\n`);
const forward = (base: string) => (token: string) =>
  fetch(`${base}/api/forward-auth`, { headers: { authorization: `Bearer ${token}`, "x-latchkey-proxy-secret": PROXY_SECRET, "x-forwarded-host": "payments.internal.example.com", "x-forwarded-uri": "/v1/payments", "x-forwarded-method": "GET" } });
const inspect = (base: string) => (token: string) =>
  fetch(`${base}/api/oauth/introspect`, { method: "POST", headers: { authorization: `Bearer ${introspector}`, "content-type": "application/x-www-form-urlencoded" }, body: `token=${token}` });
const ok = (r: Response) => r.status === 200;
const forwardAuth = await run("forward-auth", forward(portal.url), ok);
const introspection = await run("introspection", inspect(portal.url), ok);
const forwardAuthLean = await run("forward-auth*", forward(lean), ok);
const introspectionLean = await run("introspection*", inspect(lean), ok);
console.log("  * the lean listener");
saveResults("authz", { concurrency: CONCURRENCY, seconds: SECONDS, forwardAuth, introspection, leanListener: { forwardAuth: forwardAuthLean, introspection: introspectionLean } });
await disconnectDb();
await portal.stop();
