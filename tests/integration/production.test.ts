import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture, validInput } from "../helpers/engine-fixture";
import { startApiServer } from "../helpers/api-server";

const METRICS_TOKEN = "metrics-token-for-the-test-0123456789";
let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;

beforeAll(async () => {
  fx = await engineFixture({ LATCHKEY_METRICS_TOKEN: METRICS_TOKEN });
  const engine = await import("@/lib/approvals/engine");
  const alice = await fx.user("alice@example.com", ["engineering"]);
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
  it("serves Prometheus metrics to the holder of the metrics token only", async () => {
    expect((await fetch(`${api.url}/api/metrics`)).status).toBe(401);
    expect((await fetch(`${api.url}/api/metrics`, { headers: { authorization: "Bearer wrong-token-0123456789" } })).status).toBe(401);
    const response = await fetch(`${api.url}/api/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    expect(text).toContain('latchkey_requests{state="pending",workflow="temporary-access"} 3');
    expect(text).toContain('latchkey_requests{state="active",workflow="temporary-access"} 1');
    expect(text).toContain('latchkey_approval_latency_seconds_bucket{le="60"} 1');
    expect(text).toContain('latchkey_approval_latency_seconds_bucket{le="+Inf"} 1');
    expect(text).toContain("latchkey_approval_latency_seconds_count 1");
    expect(text).toMatch(/^latchkey_queue_depth\{queue="grant-expire",state="created"\} 1$/m);
    expect(text).toContain("latchkey_execution_failures_total 0");
    expect(text).toContain("latchkey_audit_chain_intact -1");
    for (const line of text.trim().split("\n")) expect(line).toMatch(/^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? -?[\d.e+]+)$/);
  });

  it("reports readiness with each check named", async () => {
    const response = await fetch(`${api.url}/api/ready`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ready", checks: { database: "ok", migrations: "ok", writes: "ok", encryptionKey: "ok", policy: "ok" } });
    expect(await (await fetch(`${api.url}/api/health`)).json()).toEqual({ status: "ok" });
  });
});

describe("structured logs", () => {
  it("write one JSON object a line and never a secret-named field", async () => {
    const { logger } = await import("@/lib/log");
    const lines: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => (lines.push(String(chunk)), true)) as typeof process.stderr.write;
    try {
      logger("test").error("something failed", { requestId: "r1", token: "lkp_secret", nested: { clientSecret: "s3cr3t", password: "latchkey" }, error: new Error("boom") });
    } finally {
      process.stderr.write = write;
    }
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({ level: "error", component: "test", msg: "something failed", requestId: "r1", token: "[redacted]", nested: { clientSecret: "[redacted]", password: "[redacted]" }, error: { message: "boom" } });
    expect(lines[0]).not.toMatch(/lkp_secret|s3cr3t|"latchkey"/);
  });
});
