import { spawnSync } from "node:child_process";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { startApiServer } from "../helpers/api-server";

const METRICS_TOKEN = "metrics-token-for-the-test-0123456789";
let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
let alice: Awaited<ReturnType<Awaited<ReturnType<typeof engineFixture>>["user"]>>;

beforeAll(async () => {
  fx = await engineFixture({ LATCHKEY_METRICS_TOKEN: METRICS_TOKEN });
  const engine = await import("@/lib/approvals/engine");
  alice = await fx.user("alice@example.com", ["engineering"]);
  const bob = await fx.user("bob@example.com", ["engineering-leads"]);
  for (let i = 0; i < 3; i++) await engine.createRequest(alice, "temporary-access", validInput());
  const approved = await engine.createRequest(alice, "temporary-access", validInput());
  await engine.decide(bob, { requestId: approved.id, decision: "approve", comment: "ok" });
  api = await startApiServer();
});
afterAll(async () => {
  await api?.close();
  await fx?.close();
});

describe("production endpoints", () => {
  it("serves the cluster-wide figures from the database to the holder of the metrics token only", async () => {
    for (const path of ["/api/metrics", "/api/metrics/cluster"]) {
      expect((await fetch(`${api.url}${path}`)).status).toBe(401);
      expect((await fetch(`${api.url}${path}`, { headers: { authorization: "Bearer wrong-token-0123456789" } })).status).toBe(401);
    }
    const read = async () => {
      const response = await fetch(`${api.url}/api/metrics/cluster`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
      return response.text();
    };
    const text = await read();
    expect(text).toContain('latchkey_requests{state="pending",workflow="temporary-access"} 3');
    expect(text).toContain('latchkey_requests{state="active",workflow="temporary-access"} 1');
    expect(text).toContain('latchkey_approval_latency_seconds_bucket{le="60"} 1');
    expect(text).toContain('latchkey_approval_latency_seconds_bucket{le="+Inf"} 1');
    expect(text).toContain("latchkey_approval_latency_seconds_count 1");
    expect(text).toMatch(/^latchkey_queue_depth\{queue="grant-expire",state="created"\} 1$/m);
    expect(text).toContain("latchkey_execution_failures_total 0");
    expect(text).toContain("latchkey_revocations_pending 0");
    // Never walked: said by a gauge of its own, not by a -1 inside the 0/1 one.
    expect(text).toContain("latchkey_audit_chain_verified 0");
    expect(text).not.toMatch(/latchkey_audit_chain_intact|-1$/m);
    for (const line of text.trim().split("\n")) expect(line).toMatch(/^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? [\d.e+]+)$/);

    const { verifyAuditChain } = await import("@/lib/audit/verify");
    const before = Math.floor(Date.now() / 1000);
    await verifyAuditChain("manual");
    const after = await read();
    expect(after).toContain("latchkey_audit_chain_verified 1");
    expect(after).toContain("latchkey_audit_chain_intact 1");
    const at = Number(after.match(/^latchkey_audit_chain_last_verified_timestamp_seconds (\d+)$/m)?.[1]);
    expect(at).toBeGreaterThanOrEqual(before - 1);
    expect(at).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
  });

  it("serves this instance's own series: process metrics, HTTP durations by route, decision latency", async () => {
    const read = async () => (await fetch(`${api.url}/api/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    const count = (text: string, series: string) => Number(text.match(new RegExp(`^${series.replace(/[{}"+]/g, "\\$&")} (\\d+)$`, "m"))?.[1] ?? 0);
    const before = await read();
    const { createPersonalToken } = await import("@/lib/identity/tokens");
    const token = (await createPersonalToken(alice, { name: "metrics-test", scopes: ["requests:read"], expiresInDays: 1 })).secret;
    const answer = await fetch(`${api.url}/api/v1/requests`, { headers: { authorization: `Bearer ${token}` } });
    expect(answer.status).toBe(200);
    expect(answer.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const after = await read();
    expect(after).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(after).toMatch(/^nodejs_heap_size_used_bytes \d/m);
    expect(after).toContain("# TYPE latchkey_http_request_duration_seconds histogram");
    const series = 'latchkey_http_request_duration_seconds_count{route="requests.list",method="GET",status="200"}';
    expect(count(after, series)).toBe(count(before, series) + 1);
    // The decision made in beforeAll was observed here, where it was recorded.
    expect(after).toMatch(/^latchkey_decision_latency_seconds_count\{decision="approve"\} 1$/m);
    // Nothing database-derived here: summing this endpoint over instances stays right.
    expect(after).not.toMatch(/^latchkey_(requests|queue_depth|audit_chain)/m);
  });

  it("labels a signed-in page's routes by name, so requests to made-up addresses never mint new series", async () => {
    const read = async () => (await fetch(`${api.url}/api/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    // Summed over statuses: outside Next.js this harness cannot read a session, so the route answers 500 here (the e2e
    // route matrix checks its 401 on the real build); what is under test is the label.
    const count = (text: string) =>
      [...text.matchAll(/^latchkey_http_request_duration_seconds_count\{route="live\.request",method="GET",status="\d+"\} (\d+)$/gm)].reduce(
        (n, m) => n + Number(m[1]),
        0,
      );
    const before = await read();
    const made = Array.from({ length: 5 }, (_, i) => `madeup${"x".repeat(i + 1)}path`);
    for (const id of made) await (await fetch(`${api.url}/api/live/requests/${id}`)).arrayBuffer();
    const after = await read();
    expect(count(after)).toBe(count(before) + 5);
    for (const id of made) expect(after).not.toContain(id);
  });

  it("reports readiness with each check named", async () => {
    const response = await fetch(`${api.url}/api/ready`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ready", checks: { database: "ok", migrations: "ok", writes: "ok", encryptionKey: "ok", policy: "ok" } });
    expect(await (await fetch(`${api.url}/api/health`)).json()).toEqual({ status: "ok" });
  });
});

describe("request ids", () => {
  it("are answered on every API call and recorded in the audit events the call made, a proxy's well-formed id kept", async () => {
    const { createPersonalToken } = await import("@/lib/identity/tokens");
    const token = (await createPersonalToken(alice, { name: "request-id-test", scopes: ["requests:write"], expiresInDays: 1 })).secret;
    const post = (headers: Record<string, string>) =>
      fetch(`${api.url}/api/v1/requests`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
        body: JSON.stringify({ workflowId: "temporary-access", input: validInput() }),
      });
    const kept = await post({ "x-request-id": "proxy-4711-abcdef" });
    expect(kept.status).toBe(201);
    expect(kept.headers.get("x-request-id")).toBe("proxy-4711-abcdef");
    const created = (await kept.json()) as { id: string };
    const event = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: created.id, action: "request.created" } });
    expect(event.httpRequestId).toBe("proxy-4711-abcdef");

    // Text that does not look like an id is not written anywhere: a new id replaces it.
    const replaced = await post({ "x-request-id": "evil\tid with spaces" });
    const fresh = replaced.headers.get("x-request-id")!;
    expect(fresh).toMatch(/^[0-9a-f-]{36}$/);
    const second = await fx.db.auditEvent.findFirstOrThrow({ where: { requestId: ((await replaced.json()) as { id: string }).id, action: "request.created" } });
    expect(second.httpRequestId).toBe(fresh);

    // The id is chained with the event: changing it afterwards breaks the chain.
    const { walkChain } = await import("@/lib/audit/verify");
    expect((await walkChain()).ok).toBe(true);
    // As someone editing the database by hand would: a superuser connection past the append-only triggers.
    const edit = async (value: string) => {
      const client = new pg.Client({ connectionString: fx.url });
      await client.connect();
      try {
        await client.query("SET session_replication_role = replica");
        await client.query(`UPDATE "AuditEvent" SET "httpRequestId" = $1 WHERE id = $2`, [value, event.id]);
      } finally {
        await client.end();
      }
    };
    await edit("forged-0000000");
    expect(await walkChain()).toMatchObject({ ok: false, firstBadSeq: event.seq });
    await edit("proxy-4711-abcdef");
    expect((await walkChain()).ok).toBe(true);
  });
});

describe("structured logs", () => {
  it("write what LATCHKEY_LOG_LEVEL lets through", () => {
    const script = 'import { logger } from "./lib/log"; const l = logger("t"); l.debug("d"); l.info("i"); l.warn("w"); l.error("e");';
    const levels = (level: string | undefined) => {
      const run = spawnSync(path.join(process.cwd(), "node_modules/.bin/tsx"), ["--conditions=react-server", "-e", script], {
        encoding: "utf8",
        env: { ...process.env, LATCHKEY_LOG_LEVEL: level },
      });
      return `${run.stdout}${run.stderr}`
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((line) => (JSON.parse(line) as { msg: string }).msg);
    };
    expect(levels(undefined)).toEqual(expect.arrayContaining(["i", "w", "e"]));
    expect(levels(undefined)).not.toContain("d");
    expect(levels("warn").sort()).toEqual(["e", "w"]);
    expect(levels("debug").sort()).toEqual(["d", "e", "i", "w"]);
  });

  it("write one JSON object a line and never a secret-named field", async () => {
    const { logger } = await import("@/lib/log");
    const lines: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => (lines.push(String(chunk)), true)) as typeof process.stderr.write;
    try {
      logger("test").error("something failed", {
        requestId: "r1",
        token: "lkp_secret",
        nested: { clientSecret: "s3cr3t", password: "latchkey" },
        error: new Error("boom"),
      });
    } finally {
      process.stderr.write = write;
    }
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({
      level: "error",
      component: "test",
      msg: "something failed",
      requestId: "r1",
      token: "[redacted]",
      nested: { clientSecret: "[redacted]", password: "[redacted]" },
      error: { message: "boom" },
    });
    expect(new Date(entry.time).toISOString()).toBe(entry.time);
    expect(lines[0]).not.toMatch(/lkp_secret|s3cr3t|"latchkey"/);
  });

  it("keep an error's causes, and tag every line written while serving an HTTP request with its id", async () => {
    const { logger } = await import("@/lib/log");
    const { withHttpRequestId } = await import("@/lib/observability/request-context");
    const lines: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => (lines.push(String(chunk)), true)) as typeof process.stderr.write;
    try {
      const cause = Object.assign(new Error("connection refused"), { password: "hunter22" });
      withHttpRequestId("req-0123456789", () => logger("test").warn("outside call failed", { error: new Error("could not open the route", { cause }) }));
      withHttpRequestId("bad id with spaces", () => logger("test").warn("no id"));
    } finally {
      process.stderr.write = write;
    }
    const [withId, withoutId] = lines.map((l) => JSON.parse(l));
    expect(withId).toMatchObject({
      level: "warn",
      httpRequestId: "req-0123456789",
      error: { message: "could not open the route", cause: { message: "connection refused", password: "[redacted]" } },
    });
    expect(withoutId.httpRequestId).toBeUndefined();
    expect(lines.join("")).not.toContain("hunter22");
  });
});
