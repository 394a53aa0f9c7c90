/**
 * npm run bench:authz [-- --seconds 20 --concurrency 32]   (or LATCHKEY_BENCH_SECONDS=20)
 * Forward-auth and token-introspection decisions per second and their p50/p99, against the
 * production build over HTTP, each with a real credential of an active grant: through the
 * lean listener, flat out and paced to about 5,000 calls a second, and through the portal's
 * own routes (Next.js). With the same load generator, connections, calls and duration, a
 * minimal Node.js server answering a constant (scripts/support/constant-server.ts) gives the
 * limit for a Node listener on this machine in the same run; the listener's figures are
 * printed and kept as ratios to it and to the portal's routes.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { benchNumber, loadAverage, ratio } from "./support/bench-figures";
import { benchUser, percentile, saveResults, startBenchPortal } from "./support/bench-portal";
import { startConstantServer } from "./support/constant-server";

const { values } = parseArgs({ options: { seconds: { type: "string" }, concurrency: { type: "string" } } });
const SECONDS = benchNumber(values.seconds, "LATCHKEY_BENCH_SECONDS", 20);
const CONCURRENCY = benchNumber(values.concurrency, "LATCHKEY_BENCH_CONCURRENCY", 32);
const PROXY_SECRET = randomBytes(24).toString("base64url");
const loadAtStart = loadAverage();

const { freePort } = await import("./support/ports");
const authzPort = await freePort();
const portal = await startBenchPortal({ LATCHKEY_FORWARD_AUTH_PROXIES: `bench=${PROXY_SECRET}`, LATCHKEY_AUTHZ_PORT: String(authzPort) });
const lean = `http://localhost:${authzPort}`;
const { disconnectDb } = await import("../lib/db");
const engine = await import("../lib/approvals/engine");
const { createServiceToken } = await import("../lib/identity/tokens");
const { createServiceIdentity } = await import("../lib/identity/service-identities");

const alice = await benchUser("alice@bench.example.com", ["engineering"]);
const bob = await benchUser("bob@bench.example.com", ["engineering-leads"]);
const dave = await benchUser("dave@bench.example.com", ["platform-admins"]);
const gateway = await createServiceIdentity(dave, { name: "bench-gateway", description: "resource server", groups: ["engineering"], requestOnly: true });
const introspector = (await createServiceToken(dave, gateway.service!.id, { name: "introspect", scopes: ["introspect"], expiresInDays: 1 })).secret;
const credentials: string[] = [];
for (let i = 0; i < 20; i++) {
  const r = await engine.createRequest(alice, "temporary-access", {
    targetId: "payments-api-production",
    role: "read",
    durationMinutes: 60,
    justification: `bench credential ${i}`,
  });
  await engine.decide(bob, { requestId: r.id, decision: "approve", comment: "bench" });
  credentials.push((await engine.revealCredential(alice, r.id)).token);
}

type Result = { decisionsPerSecond: number; p50Ms: number; p99Ms: number; errors: number };

function report(name: string, result: Result): Result {
  console.log(
    `${name.padEnd(42)} ${String(result.decisionsPerSecond).padStart(6)}/s   p50 ${result.p50Ms} ms   p99 ${result.p99Ms} ms   errors ${result.errors}`,
  );
  return result;
}

/** The load, from wrk (a C load generator, Debian's package) when installed: Node's own client would take the CPU it measures. */
const WRK = spawnSync("which", ["wrk"]).status === 0;

interface Call {
  url: string;
  method: "GET" | "POST";
  headers: Record<string, string>;
  /** The credential goes here: "authorization" header or the form body. */
  credentialIn: "bearer" | "form";
}

/** Pacing waits this much less than the period, about the time an answer takes, so the paced rate is reached. */
const ANSWER_MS = 0.6;

/** `rate`: paced to about this many calls per second in all (latency at a given load); unset: as fast as answers come. */
async function run(name: string, call: Call, rate?: number): Promise<Result> {
  return report(name, WRK ? runWrk(call, rate) : await runNode(call, rate));
}

function runWrk(call: Call, rate?: number): Result {
  const dir = mkdtempSync(path.join(os.tmpdir(), "latchkey-wrk-"));
  const script = path.join(dir, "rotate.lua");
  writeFileSync(
    script,
    `local tokens = { ${credentials.map((t) => JSON.stringify(t)).join(", ")} }
local i = 0
wrk.method = "${call.method}"
${Object.entries(call.headers)
  .map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)
  .join("\n")}
${rate ? `delay = function() return ${Math.max(0, (CONCURRENCY / rate) * 1000 - ANSWER_MS).toFixed(3)} end` : ""}
request = function()
  i = i + 1
  local token = tokens[(i % #tokens) + 1]
  ${call.credentialIn === "bearer" ? 'wrk.headers["authorization"] = "Bearer " .. token; return wrk.format(nil)' : 'return wrk.format(nil, nil, nil, "token=" .. token)'}
end
`,
  );
  const out = execFileSync("wrk", ["-t1", `-c${CONCURRENCY}`, `-d${SECONDS}s`, "--latency", "-s", script, call.url], { encoding: "utf8" });
  rmSync(dir, { recursive: true, force: true });
  const ms = (label: string) => {
    const m = out.match(new RegExp(`${label}%\\s+([\\d.]+)(us|ms|s)\\b`));
    if (!m) return NaN;
    const value = Number(m[1]);
    return +(m[2] === "us" ? value / 1000 : m[2] === "s" ? value * 1000 : value).toFixed(2);
  };
  const non2xx = Number(out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
  const socket =
    out
      .match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/)
      ?.slice(1)
      .reduce((a, b) => a + Number(b), 0) ?? 0;
  return {
    decisionsPerSecond: Math.round(Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? NaN)),
    p50Ms: ms("50"),
    p99Ms: ms("99"),
    errors: non2xx + socket,
  };
}

async function runNode(call: Call, rate?: number): Promise<Result> {
  const latencies: number[] = [];
  let errors = 0;
  const deadline = Date.now() + SECONDS * 1000;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, w) => {
      let i = w;
      while (Date.now() < deadline) {
        const token = credentials[i++ % credentials.length]!;
        if (rate) await new Promise((r) => setTimeout(r, (CONCURRENCY / rate) * 1000));
        const t0 = performance.now();
        const response = await fetch(call.url, {
          method: call.method,
          headers: call.credentialIn === "bearer" ? { ...call.headers, authorization: `Bearer ${token}` } : call.headers,
          body: call.credentialIn === "form" ? `token=${token}` : undefined,
        });
        await response.arrayBuffer();
        latencies.push(performance.now() - t0);
        if (response.status !== 200) errors += 1;
      }
    }),
  );
  const elapsed = (Date.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    decisionsPerSecond: Math.round(latencies.length / elapsed),
    p50Ms: +percentile(latencies, 50).toFixed(2),
    p99Ms: +percentile(latencies, 99).toFixed(2),
    errors,
  };
}

console.log(
  `[bench] ${CONCURRENCY} concurrent clients for ${SECONDS} s each (production build), load from ${WRK ? "wrk" : "Node's fetch (install wrk for figures the client does not limit)"}: a Node.js server answering a constant, the lean listener (LATCHKEY_AUTHZ_PORT) and the portal's routes\n`,
);
const forward = (base: string): Call => ({
  url: `${base}/api/forward-auth`,
  method: "GET",
  headers: {
    "x-latchkey-proxy-secret": PROXY_SECRET,
    "x-forwarded-host": "payments.internal.example.com",
    "x-forwarded-uri": "/v1/payments",
    "x-forwarded-method": "GET",
  },
  credentialIn: "bearer",
});
const inspect = (base: string): Call => ({
  url: `${base}/api/oauth/introspect`,
  method: "POST",
  headers: { authorization: `Bearer ${introspector}`, "content-type": "application/x-www-form-urlencoded" },
  credentialIn: "form",
});
// A decision must be right: a sample of each kind is checked before the load.
for (const call of [forward(portal.url), inspect(portal.url), forward(lean), inspect(lean)]) {
  const token = credentials[0]!;
  const response = await fetch(call.url, {
    method: call.method,
    headers: call.credentialIn === "bearer" ? { ...call.headers, authorization: `Bearer ${token}` } : call.headers,
    body: call.credentialIn === "form" ? `token=${token}` : undefined,
  });
  const text = await response.text();
  const right =
    response.status === 200 &&
    (call.credentialIn === "bearer"
      ? response.headers.get("x-latchkey-user") === alice.email
      : (JSON.parse(text) as { active?: boolean; username?: string }).username === alice.email);
  if (!right) throw new Error(`${call.url} did not grant a valid credential: ${response.status} ${text.slice(0, 200)}`);
}
// Each kind of call through the constant server, the lean listener and the portal back to back, so the three meet the same load on the machine.
const constant = await startConstantServer();
const PACED = 5000;
const nodeConstant = {} as Record<"forwardAuth" | "introspection" | "forwardAuthAt5000" | "introspectionAt5000", Result>;
const lean_ = {} as typeof nodeConstant;
const portalRoutes = {} as Record<"forwardAuth" | "introspection", Result>;
for (const [kind, shape] of [
  ["forwardAuth", forward],
  ["introspection", inspect],
] as const) {
  const label = kind === "forwardAuth" ? "forward-auth" : "introspection";
  nodeConstant[kind] = await run(`${label}: Node.js constant`, shape(constant.url));
  lean_[kind] = await run(`${label}: lean listener`, shape(lean));
  portalRoutes[kind] = await run(`${label}: portal route (Next.js)`, shape(portal.url));
}
// The same clients paced to the target load: the latency a proxy sees at 5,000 decisions a second.
for (const [kind, shape] of [
  ["forwardAuthAt5000", forward],
  ["introspectionAt5000", inspect],
] as const) {
  const label = kind === "forwardAuthAt5000" ? "forward-auth" : "introspection";
  nodeConstant[kind] = await run(`${label} at ${PACED}/s: Node.js constant`, shape(constant.url), PACED);
  lean_[kind] = await run(`${label} at ${PACED}/s: lean listener`, shape(lean), PACED);
}
constant.stop();

const ratiosOf = (flat: "forwardAuth" | "introspection", paced: "forwardAuthAt5000" | "introspectionAt5000") => ({
  leanOverNodeConstant: ratio(lean_[flat].decisionsPerSecond, nodeConstant[flat].decisionsPerSecond),
  leanOverPortalRoute: ratio(lean_[flat].decisionsPerSecond, portalRoutes[flat].decisionsPerSecond, 2),
  pacedP99LeanOverNodeConstant: ratio(lean_[paced].p99Ms, nodeConstant[paced].p99Ms, 2),
});
const ratios = { forwardAuth: ratiosOf("forwardAuth", "forwardAuthAt5000"), introspection: ratiosOf("introspection", "introspectionAt5000") };
console.log(`
ratios (same run)                            forward-auth   introspection
  lean ÷ Node.js constant (calls/s)          ${String(ratios.forwardAuth.leanOverNodeConstant).padEnd(14)} ${ratios.introspection.leanOverNodeConstant}
  lean ÷ portal route (calls/s)              ${String(ratios.forwardAuth.leanOverPortalRoute).padEnd(14)} ${ratios.introspection.leanOverPortalRoute}
  paced p99: lean ÷ Node.js constant         ${String(ratios.forwardAuth.pacedP99LeanOverNodeConstant).padEnd(14)} ${ratios.introspection.pacedP99LeanOverNodeConstant}`);
const errors = [...Object.values(nodeConstant), ...Object.values(lean_), ...Object.values(portalRoutes)].reduce((n, r) => n + r.errors, 0);
if (errors) console.log(`\n${errors} calls failed (answers other than 200, or wrk's socket errors and timeouts)`);
saveResults("authz", {
  concurrency: CONCURRENCY,
  seconds: SECONDS,
  loadGenerator: WRK ? "wrk" : "node-fetch",
  forwardAuth: portalRoutes.forwardAuth,
  introspection: portalRoutes.introspection,
  leanListener: lean_,
  nodeConstant,
  ratios,
  errors,
  loadAverage: { atStart: loadAtStart, atEnd: loadAverage() },
});
await disconnectDb();
await portal.stop();
