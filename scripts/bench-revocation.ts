/**
 * npm run bench:revocation [-- --count 200]
 * How fast a revocation reaches the doors a credential opens: from the commit of a
 * revocation (by the person, by an admin, by expiry, by a directory change) to the first
 * refusal at forward-auth and at introspection, both through the lean listener, against
 * the production build. The revocations commit in this process; the listener is a process
 * of its own that held the credential's answer in memory, so what is measured is the
 * change feed, as another instance would see it. Then the two doors the portal's worker
 * closes: a route through real HAProxy (deploy/haproxy), and a PostgreSQL login, both its
 * new logins and the session it had open (`--slow-count` of each kind, as those grants are
 * set up by the worker one at a time).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { benchUser, percentile, saveResults, startBenchPortal } from "./support/bench-portal";

const { values } = parseArgs({ options: { count: { type: "string", default: "200" }, "slow-count": { type: "string", default: "200" } } });
const COUNT = Number(values.count);
const SLOW_COUNT = Number(values["slow-count"]);
const PROXY_SECRET = randomBytes(24).toString("base64url");

const { freePort } = await import("./support/ports");
const authzPort = await freePort();
// The portal's worker opens and closes HAProxy routes and PostgreSQL logins: it gets their addresses.
const scratch = await mkdtemp(path.join(os.tmpdir(), "latchkey-bench-doors-"));
const mapFile = path.join(scratch, "routes.map");
await writeFile(mapFile, "");
let ledgerUrl = "";
const portal = await startBenchPortal((server) => {
  const ledger = new URL(server);
  ledger.pathname = "/latchkey_bench_ledger";
  ledgerUrl = ledger.toString();
  return {
    LATCHKEY_FORWARD_AUTH_PROXIES: `bench=${PROXY_SECRET}`,
    LATCHKEY_AUTHZ_PORT: String(authzPort),
    LATCHKEY_HAPROXY_SOCKET: path.join(scratch, "haproxy.sock"),
    LATCHKEY_HAPROXY_MAP: mapFile,
    LATCHKEY_DB_LEDGER_URL: ledgerUrl,
  };
});
const lean = `http://localhost:${authzPort}`;
const { disconnectDb } = await import("../lib/db");
const engine = await import("../lib/approvals/engine");
const { createServiceToken } = await import("../lib/identity/tokens");
const { createServiceIdentity } = await import("../lib/identity/service-identities");
const { applyDirectoryChange } = await import("../lib/identity/directory");
type Principal = Awaited<ReturnType<typeof benchUser>>;

const bob = await benchUser("bob@bench.example.com", ["engineering-leads"]);
const dave = await benchUser("dave@bench.example.com", ["platform-admins"]);
const gateway = await createServiceIdentity(dave, { name: "bench-gateway", description: "resource server", groups: ["engineering"], requestOnly: true });
const introspector = (await createServiceToken(dave, gateway.service!.id, { name: "introspect", scopes: ["introspect"], expiresInDays: 1 })).secret;

async function forwardAuth(token: string): Promise<number> {
  const response = await fetch(`${lean}/api/forward-auth`, {
    headers: {
      "x-latchkey-proxy-secret": PROXY_SECRET,
      "x-forwarded-host": "payments.internal.example.com",
      "x-forwarded-uri": "/v1/payments",
      "x-forwarded-method": "GET",
      authorization: `Bearer ${token}`,
    },
  });
  await response.arrayBuffer();
  return response.status;
}

async function introspectionActive(token: string): Promise<boolean> {
  const response = await fetch(`${lean}/api/oauth/introspect`, {
    method: "POST",
    headers: { authorization: `Bearer ${introspector}`, "content-type": "application/x-www-form-urlencoded" },
    body: `token=${token}`,
  });
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
  const r = await engine.createRequest(holder, "temporary-access", {
    targetId: "payments-api-production",
    role: "read",
    durationMinutes: 60,
    justification: `bench revocation ${i}`,
  });
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
  return {
    p50Ms: +percentile(done, 50).toFixed(2),
    p99Ms: +percentile(done, 99).toFixed(2),
    maxMs: +(done.at(-1) ?? NaN).toFixed(2),
    notRefusedWithin10s: ms.length - done.length,
  };
};

const loadAtStart = os.loadavg().map((l) => +l.toFixed(1));
console.log(`[bench] load average ${loadAtStart.join(", ")}`);
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
    if ((await forwardAuth(g.token)) !== 200 || !(await introspectionActive(g.token)))
      throw new Error(`a valid credential was refused before its ${kind} revocation`);
    await revoke[kind](g);
    const committed = performance.now();
    const [f, n] = await Promise.all([
      firstRefusal(committed, async () => (await forwardAuth(g.token)) === 401),
      firstRefusal(committed, async () => !(await introspectionActive(g.token))),
    ]);
    forward.push(f);
    inspect.push(n);
  }
  results[kind] = { forwardAuth: summary(forward), introspection: summary(inspect) };
  const r = results[kind]!;
  console.log(
    `${kind.padEnd(10)} forward-auth p50 ${r.forwardAuth.p50Ms} ms, p99 ${r.forwardAuth.p99Ms} ms   introspection p50 ${r.introspection.p50Ms} ms, p99 ${r.introspection.p99Ms} ms   not refused: ${r.forwardAuth.notRefusedWithin10s + r.introspection.notRefusedWithin10s}`,
  );
}
const fast = results;

// The doors the worker closes. HAProxy checks the credential's signature itself and routes
// only what the map holds; the revocation's clean-up job removes the route. The database
// login is refused and its open session ended by the same job.
const { startHaproxy } = await import("../tests/helpers/haproxy");
const { publishedKeyPems } = await import("../lib/credentials/keys");
const { writeKeyDirectory } = await import("../lib/credentials/key-files");
const { db } = await import("../lib/db");
const keyDir = path.join(scratch, "keys");
await writeKeyDirectory(keyDir, await publishedKeyPems());
const haproxy = await startHaproxy(scratch, { keyDir, mapFile });
{
  const admin = new pg.Client({ connectionString: portal.adminUrl });
  await admin.connect();
  await admin.query("DROP DATABASE IF EXISTS latchkey_bench_ledger WITH (FORCE)");
  await admin.query("CREATE DATABASE latchkey_bench_ledger");
  await admin.end();
  const ledger = new pg.Client({ connectionString: ledgerUrl });
  await ledger.connect();
  await ledger.query("CREATE TABLE entries (id serial PRIMARY KEY, amount int); INSERT INTO entries (amount) VALUES (7);");
  await ledger.end();
}

/** Approved, then set up by the portal's worker; the credential once it is active. */
async function workerGrant(holder: Principal, i: number, workflow: "open-route" | "database-access"): Promise<Grant> {
  const input =
    workflow === "open-route"
      ? { targetId: "admin-console", durationMinutes: 60, justification: `bench route ${i}` }
      : { targetId: "ledger-db", role: "read", durationMinutes: 60, justification: `bench login ${i}` };
  const r = await engine.createRequest(holder, workflow, input);
  await engine.decide(workflow === "open-route" ? bob : dave, { requestId: r.id, decision: "approve", comment: "bench" });
  const since = Date.now();
  for (;;) {
    const { status, failureReason } = await db.accessRequest.findUniqueOrThrow({ where: { id: r.id } });
    if (status === "active") break;
    if (status !== "executing" || Date.now() - since > 60_000)
      throw new Error(`the worker did not set up ${workflow} ${r.id}: ${status} ${failureReason ?? ""}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { requestId: r.id, token: (await engine.revealCredential(holder, r.id)).token, holder };
}

async function routeStatus(token: string): Promise<number> {
  const response = await fetch(`${haproxy.url}/app1/status`, { headers: { authorization: `Bearer ${token}` } });
  await response.arrayBuffer();
  return response.status;
}

async function loginRefused(connectionString: string): Promise<boolean> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 5_000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.end();
    return false;
  } catch {
    await client.end().catch(() => undefined);
    return true;
  }
}

const slow: Record<
  string,
  { haproxyRoute: ReturnType<typeof summary>; postgresLogin: ReturnType<typeof summary>; postgresOpenSession: ReturnType<typeof summary> }
> = {};
console.log(
  `\n[bench] ${SLOW_COUNT} revocations of each kind; doors: a route through HAProxy, a PostgreSQL login and its open session (closed by the portal's worker)\n`,
);
const routeHolder = await benchUser("route@bench.example.com", ["engineering"]);
for (const kind of ["person", "admin", "expiry", "directory"] as Kind[]) {
  const route: number[] = [];
  const login: number[] = [];
  const session: number[] = [];
  for (let i = 0; i < SLOW_COUNT; i++) {
    const holder = kind === "directory" ? await benchUser(`dir-route-${i}@bench.example.com`, ["engineering"]) : routeHolder;
    const g = await workerGrant(holder, i, "open-route");
    if ((await routeStatus(g.token)) !== 200) throw new Error(`HAProxy refused an open route before its ${kind} revocation`);
    await revoke[kind](g);
    const committed = performance.now();
    route.push(await firstRefusal(committed, async () => (await routeStatus(g.token)) === 403));
  }
  for (let i = 0; i < SLOW_COUNT; i++) {
    const holder = kind === "directory" ? await benchUser(`dir-db-${i}@bench.example.com`, ["engineering"]) : routeHolder;
    const g = await workerGrant(holder, i, "database-access");
    const open = new pg.Client({ connectionString: g.token });
    open.on("error", () => undefined);
    await open.connect();
    await open.query("SELECT amount FROM entries");
    await revoke[kind](g);
    const committed = performance.now();
    const [l, s] = await Promise.all([
      firstRefusal(committed, () => loginRefused(g.token)),
      firstRefusal(committed, () =>
        open.query("SELECT 1").then(
          () => false,
          () => true,
        ),
      ),
    ]);
    await open.end().catch(() => undefined);
    login.push(l);
    session.push(s);
  }
  slow[kind] = { haproxyRoute: summary(route), postgresLogin: summary(login), postgresOpenSession: summary(session) };
  const r = slow[kind]!;
  console.log(
    `${kind.padEnd(10)} HAProxy route p50 ${r.haproxyRoute.p50Ms} ms, p99 ${r.haproxyRoute.p99Ms} ms   PostgreSQL login p50 ${r.postgresLogin.p50Ms} ms, p99 ${r.postgresLogin.p99Ms} ms   open session p50 ${r.postgresOpenSession.p50Ms} ms, p99 ${r.postgresOpenSession.p99Ms} ms`,
  );
}
const merged = Object.fromEntries(Object.entries(fast).map(([kind, r]) => [kind, { ...r, ...slow[kind] }]));
saveResults("revocation", {
  count: COUNT,
  slowCount: SLOW_COUNT,
  loadAverage: { atStart: loadAtStart, atEnd: os.loadavg().map((l) => +l.toFixed(1)) },
  doors: [
    "forward-auth (lean listener)",
    "introspection (lean listener)",
    "HAProxy route (real HAProxy, deploy/haproxy)",
    "PostgreSQL login",
    "PostgreSQL open session",
  ],
  results: merged,
});
await haproxy.stop();
await disconnectDb();
await portal.stop();
await rm(scratch, { recursive: true, force: true });
