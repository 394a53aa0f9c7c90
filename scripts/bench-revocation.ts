/**
 * npm run bench:revocation [-- --count 200]
 * How fast a revocation reaches the doors a credential opens: from the commit of a
 * revocation (by the person, by an admin, by expiry, by a directory change) to the first
 * refusal at forward-auth and at introspection, both through the lean listener, against
 * the production build. The revocations commit in this process; the listener is a process
 * of its own that held the credential's answer in memory, so what is measured is the
 * change feed, as another instance would see it.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { benchUser, percentile, saveResults, startBenchPortal } from "./support/bench-portal";

const { values } = parseArgs({ options: { count: { type: "string", default: "200" } } });
const COUNT = Number(values.count);
const PROXY_SECRET = randomBytes(24).toString("base64url");

const { freePort } = await import("./support/ports");
const authzPort = await freePort();
const portal = await startBenchPortal({ LATCHKEY_FORWARD_AUTH_PROXIES: `bench=${PROXY_SECRET}`, LATCHKEY_AUTHZ_PORT: String(authzPort) });
const lean = `http://localhost:${authzPort}`;
const { disconnectDb } = await import("../lib/db");
const engine = await import("../lib/approvals/engine");
const { createServiceToken } = await import("../lib/api/tokens");
const { createServiceIdentity } = await import("../lib/api/service-identities");
const { applyDirectoryChange } = await import("../lib/identity/directory");
type Principal = Awaited<ReturnType<typeof benchUser>>;

const bob = await benchUser("bob@bench.example.com", ["engineering-leads"]);
const dave = await benchUser("dave@bench.example.com", ["platform-admins"]);
const gateway = await createServiceIdentity(dave, { name: "bench-gateway", description: "resource server", groups: ["engineering"], requestOnly: true });
const introspector = (await createServiceToken(dave, gateway.service!.id, { name: "introspect", scopes: ["introspect"], expiresInDays: 1 })).secret;

async function forwardAuth(token: string): Promise<number> {
  const response = await fetch(`${lean}/api/forward-auth`, {
    headers: { "x-latchkey-proxy-secret": PROXY_SECRET, "x-forwarded-host": "payments.internal.example.com", "x-forwarded-uri": "/v1/payments", "x-forwarded-method": "GET", authorization: `Bearer ${token}` },
  });
  await response.arrayBuffer();
  return response.status;
}

async function introspectionActive(token: string): Promise<boolean> {
  const response = await fetch(`${lean}/api/oauth/introspect`, { method: "POST", headers: { authorization: `Bearer ${introspector}`, "content-type": "application/x-www-form-urlencoded" }, body: `token=${token}` });
  return ((await response.json()) as { active: boolean }).active;
}

/** Asks a door until it refuses; milliseconds from `since`. Gives up after 10 s (counted as a failure). */
async function firstRefusal(since: number, refused: () => Promise<boolean>): Promise<number> {
  while (performance.now() - since < 10_000) if (await refused()) return performance.now() - since;
  return Number.POSITIVE_INFINITY;
}

interface Grant {
  requestId: string;
  token: string;
  holder: Principal;
}

async function grantFor(holder: Principal, i: number): Promise<Grant> {
  const r = await engine.createRequest(holder, "temporary-access", { targetId: "payments-api-production", role: "read", durationMinutes: 60, justification: `bench revocation ${i}` });
  await engine.decide(bob, { requestId: r.id, decision: "approve", comment: "bench" });
  return { requestId: r.id, token: (await engine.revealCredential(holder, r.id)).token, holder };
}

type Kind = "person" | "admin" | "expiry" | "directory";
const revoke: Record<Kind, (g: Grant) => Promise<unknown>> = {
  person: (g) => engine.revokeGrant(g.holder, { requestId: g.requestId, reason: "bench: by the person" }),
  admin: (g) => engine.revokeGrant(dave, { requestId: g.requestId, reason: "bench: by an admin" }),
  // What the worker's expiry job runs, with the clock past the grant's end.
  expiry: (g) => engine.expireGrant(g.requestId, new Date(Date.now() + 2 * 3600_000)),
  directory: (g) => applyDirectoryChange({ userId: g.holder.id, groups: ["audit"], source: "scim" }),
};

const summary = (ms: number[]) => {
  const done = ms.filter(Number.isFinite).sort((a, b) => a - b);
  return { p50Ms: +percentile(done, 50).toFixed(2), p99Ms: +percentile(done, 99).toFixed(2), maxMs: +(done.at(-1) ?? NaN).toFixed(2), notRefusedWithin10s: ms.length - done.length };
};

console.log(`[bench] ${COUNT} revocations of each kind; doors: forward-auth and introspection through the lean listener (a process of its own)\n`);
const results: Record<string, { forwardAuth: ReturnType<typeof summary>; introspection: ReturnType<typeof summary> }> = {};
const shared = await benchUser("alice@bench.example.com", ["engineering"]);
for (const kind of ["person", "admin", "expiry", "directory"] as Kind[]) {
  const grants: Grant[] = [];
  for (let i = 0; i < COUNT; i++) {
    // A directory change ends everything the person holds: one person per grant.
    const holder = kind === "directory" ? await benchUser(`dir-${i}@bench.example.com`, ["engineering"]) : shared;
    grants.push(await grantFor(holder, i));
  }
  const forward: number[] = [];
  const inspect: number[] = [];
  for (const g of grants) {
    // Both doors have just let it through, so the listener holds the answer in memory.
    if ((await forwardAuth(g.token)) !== 200 || !(await introspectionActive(g.token))) throw new Error(`a valid credential was refused before its ${kind} revocation`);
    await revoke[kind](g);
    const committed = performance.now();
    const [f, n] = await Promise.all([firstRefusal(committed, async () => (await forwardAuth(g.token)) === 401), firstRefusal(committed, async () => !(await introspectionActive(g.token)))]);
    forward.push(f);
    inspect.push(n);
  }
  results[kind] = { forwardAuth: summary(forward), introspection: summary(inspect) };
  const r = results[kind]!;
  console.log(`${kind.padEnd(10)} forward-auth p50 ${r.forwardAuth.p50Ms} ms, p99 ${r.forwardAuth.p99Ms} ms   introspection p50 ${r.introspection.p50Ms} ms, p99 ${r.introspection.p99Ms} ms   not refused: ${r.forwardAuth.notRefusedWithin10s + r.introspection.notRefusedWithin10s}`);
}
saveResults("revocation", { count: COUNT, doors: ["forward-auth (lean listener)", "introspection (lean listener)"], notMeasured: ["HAProxy route", "PostgreSQL login and its open session"], results });
await disconnectDb();
await portal.stop();
