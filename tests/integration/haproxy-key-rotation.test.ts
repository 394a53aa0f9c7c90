import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { decodeProtectedHeader } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/support/ports";
import { engineFixture } from "../helpers/engine-fixture";
import { startHaproxy, type Haproxy } from "../helpers/haproxy";
import { Webhook } from "standardwebhooks";

/**
 * Key rotation against Debian's real HAProxy 2.6 running deploy/haproxy/haproxy.cfg, with
 * the worker's key step doing what it does in production: rotate on schedule, keep the key
 * directory, run the hook (here: reload HAProxy as `systemctl reload` does) and call the
 * webhook. Credentials are used through HAProxy all the time, and none may be refused.
 */
const ROTATION_SECONDS = 12;
// A rotation in progress: receivers holding either secret verify every announcement.
const NEW_SECRET = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
const OLD_SECRET = `whsec_${Buffer.alloc(32, 9).toString("base64")}`;
let fx: Awaited<ReturnType<typeof engineFixture>>;
let dir: string;
let haproxy: Haproxy;
let webhook: http.Server;
const webhookCalls: { body: string; valid: boolean; id: string }[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "latchkey-key-rotation-"));
  const webhookPort = await freePort();
  webhook = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const headers = Object.fromEntries(["webhook-id", "webhook-timestamp", "webhook-signature"].map((h) => [h, String(req.headers[h])]));
      const verifies = (secret: string) => {
        try {
          new Webhook(secret).verify(body, headers);
          return true;
        } catch {
          return false;
        }
      };
      webhookCalls.push({ body, valid: verifies(NEW_SECRET) && verifies(OLD_SECRET), id: headers["webhook-id"]! });
      res.end("ok");
    });
  });
  await new Promise<void>((resolve) => webhook.listen(webhookPort, "127.0.0.1", resolve));
  const pidFile = path.join(dir, "haproxy.pid");
  fx = await engineFixture({
    LATCHKEY_HAPROXY_SOCKET: path.join(dir, "haproxy.sock"),
    LATCHKEY_HAPROXY_MAP: path.join(dir, "routes.map"),
    LATCHKEY_KEY_ROTATION_DAYS: String(ROTATION_SECONDS / 86_400),
    LATCHKEY_KEY_PUBLISH_AHEAD: "5s",
    LATCHKEY_KEY_DIR: path.join(dir, "keys"),
    // What an operator would put: reload HAProxy (master-worker mode reloads on SIGUSR2).
    LATCHKEY_KEY_HOOK: `if [ -f '${pidFile}' ]; then kill -USR2 "$(cat '${pidFile}')"; fi; echo "$LATCHKEY_KEY_KIDS next=$LATCHKEY_KEY_NEXT" >> '${path.join(dir, "hook.log")}'`,
    LATCHKEY_KEY_WEBHOOK_URL: `http://127.0.0.1:${webhookPort}/keys`,
    LATCHKEY_KEY_WEBHOOK_SECRET: `${NEW_SECRET},${OLD_SECRET}`,
  });
  await writeFile(path.join(dir, "routes.map"), "");
  // The worker's first step makes the first key and writes the key directory HAProxy starts with.
  const { signingKeyStep } = await import("@/lib/jobs/worker");
  await signingKeyStep();
  haproxy = await startHaproxy(dir, { keyDir: path.join(dir, "keys"), mapFile: path.join(dir, "routes.map") });
  await writeFile(pidFile, String(haproxy.pid));
});

afterAll(async () => {
  await haproxy?.stop();
  webhook?.close();
  await fx?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Alice opens a route to app1, Bob approves, the worker opens it: her credential. */
async function openRoute(n: number): Promise<string> {
  const engine = await import("@/lib/approvals/engine");
  const alice = await fx.user("alice@example.com", ["engineering"]);
  const bob = await fx.user("bob@example.com", ["engineering-leads"]);
  const request = await engine.createRequest(alice, "open-route", { targetId: "internal-app", durationMinutes: 30, justification: `Rotation drill OPS-${n}` });
  await engine.decide(bob, { requestId: request.id, decision: "approve", comment: "" });
  expect(await engine.performQueued(request.id, false)).toBe("active");
  return (await engine.revealCredential(alice, request.id)).token;
}

/** One request through HAProxy on a fresh connection, as an independent client would. */
function call(url: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.get(`${url}/app1/orders`, { agent: false, headers: { authorization: `Bearer ${token}`, connection: "close" } }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", (error) => resolve({ status: 0, body: error.message }));
  });
}

const kidOf = (token: string) => decodeProtectedHeader(token).kid!;

describe("rotating the signing key while routes are open through HAProxy", () => {
  it("no valid credential is refused before, during or after two rotations", { timeout: 120_000 }, async () => {
    const { signingKeyStep } = await import("@/lib/jobs/worker");
    const tokens: string[] = [await openRoute(0)];
    const firstKid = kidOf(tokens[0]!);
    const refusals: { kid: string; status: number; body: string; at: string }[] = [];
    const accepted = new Map<string, number>();
    let probing = true;
    // Every credential issued so far, again and again, until the end.
    const prober = (async () => {
      while (probing) {
        for (const token of [...tokens]) {
          const answer = await call(haproxy.url, token);
          if (answer.status === 200 && answer.body === "app1 for alice@example.com") accepted.set(kidOf(token), (accepted.get(kidOf(token)) ?? 0) + 1);
          else refusals.push({ kid: kidOf(token), ...answer, at: new Date().toISOString() });
        }
      }
    })();

    // The worker's key step runs (every minute in production; here every 250 ms) while credentials keep being issued.
    const steps: NonNullable<Awaited<ReturnType<typeof signingKeyStep>>["rotation"]>[] = [];
    const deadline = Date.now() + 3 * ROTATION_SECONDS * 1000 + 10_000;
    let n = 1;
    let lastIssue = 0;
    while (steps.filter((s) => s.step === "activated").length < 2 && Date.now() < deadline) {
      const { rotation } = await signingKeyStep();
      if (rotation) steps.push(rotation);
      if (Date.now() - lastIssue > 700) {
        tokens.push(await openRoute(n++));
        lastIssue = Date.now();
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    // After the second rotation: keep issuing and probing a little longer.
    for (let i = 0; i < 3; i++) {
      tokens.push(await openRoute(n++));
      await new Promise((r) => setTimeout(r, 500));
    }
    probing = false;
    await prober;

    // Two rotations, each published ahead and then activated, in that order.
    expect(steps.map((s) => s.step)).toEqual(["published", "activated", "published", "activated"]);
    const [secondKid, thirdKid] = [steps[1]!.kid, steps[3]!.kid];
    expect(steps[0]!.kid).toBe(secondKid);
    expect(steps[2]!.kid).toBe(thirdKid);
    expect(new Set([firstKid, secondKid, thirdKid]).size).toBe(3);
    // Credentials of all three keys were issued and went through HAProxy, and not one was refused.
    expect(refusals).toEqual([]);
    for (const kid of [firstKid, secondKid, thirdKid]) expect(accepted.get(kid) ?? 0).toBeGreaterThan(3);
    // The first credential of each new key worked at once: HAProxy had loaded the key before it signed anything.
    for (const kid of [secondKid, thirdKid]) {
      const first = tokens.find((t) => kidOf(t) === kid)!;
      expect(await call(haproxy.url, first)).toEqual({ status: 200, body: "app1 for alice@example.com" });
    }
    expect((await Promise.all(tokens.map((t) => call(haproxy.url, t)))).filter((a) => a.status !== 200)).toEqual([]);

    // The key directory holds every key a verifier must accept now: all three sign live credentials.
    const files = await Promise.all([1, 2, 3, 4].map((i) => readFile(path.join(dir, "keys", `latchkey-key-${i}.pem`), "utf8")));
    for (const kid of [firstKid, secondKid, thirdKid]) expect(files.some((f) => f.includes(kid))).toBe(true);

    // Each publication and activation is audited, by the system.
    const events = await fx.db.auditEvent.findMany({ where: { action: { in: ["key.published", "key.rotated"] } }, orderBy: { id: "asc" } });
    expect(events.map((e) => [e.action, e.actorType, (e.data as { kid: string }).kid])).toEqual([
      ["key.published", "system", secondKid],
      ["key.rotated", "system", secondKid],
      ["key.published", "system", thirdKid],
      ["key.rotated", "system", thirdKid],
    ]);
    expect(events[1]!.data).toMatchObject({ retired: [firstKid], prepublished: true });

    // The hook reloaded HAProxy when each next key was published (the directory changed), and the webhook heard the same, signed.
    const hookLog = (await readFile(path.join(dir, "hook.log"), "utf8")).trim().split("\n");
    expect(hookLog.some((line) => line.endsWith(`next=${secondKid}`))).toBe(true);
    expect(hookLog.some((line) => line.endsWith(`next=${thirdKid}`))).toBe(true);
    const bodies = webhookCalls.map((c) => ({
      ...(JSON.parse(c.body) as { event: string; next: { kid: string; activatesAt: string } | null }),
      valid: c.valid,
    }));
    expect(bodies.every((b) => b.valid && b.event === "signing-keys.changed")).toBe(true);
    // Each change is its own delivery, with its own id.
    expect(new Set(webhookCalls.map((c) => c.id)).size).toBe(webhookCalls.length);
    expect(bodies.find((b) => b.next?.kid === thirdKid)?.next?.activatesAt).toBe((events[2]!.data as { activatesAt: string }).activatesAt);
  });
});
