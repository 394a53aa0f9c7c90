import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";

/**
 * The signing-key webhook by the Standard Webhooks specification, verified by a real HTTP
 * receiver with the `standardwebhooks` package: one signature per secret during a rotation,
 * and one delivery id per change that its retries keep.
 */

const whsec = () => `whsec_${randomBytes(32).toString("base64")}`;
const NEW = whsec();
const OLD = whsec();
let fx: Awaited<ReturnType<typeof engineFixture>>;
let receiver: http.Server;
const received: { headers: Record<string, string>; body: string }[] = [];
/** Statuses the receiver answers, in turn; 200 once they run out. */
const answers: number[] = [];

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      received.push({
        headers: Object.fromEntries(["webhook-id", "webhook-timestamp", "webhook-signature", "content-type"].map((h) => [h, String(req.headers[h])])),
        body,
      });
      res.statusCode = answers.shift() ?? 200;
      res.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  fx = await engineFixture({
    LATCHKEY_KEY_WEBHOOK_URL: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/keys`,
    LATCHKEY_KEY_WEBHOOK_SECRET: `${NEW},${OLD}`,
  });
});
afterAll(async () => {
  receiver?.close();
  await fx?.close();
});

const change = (next: string) => ({ kids: ["k1", "k2"], active: "k1", next: { kid: next, activatesAt: "2026-12-01T00:00:00.000Z" }, dir: null });
const verifies = (secret: string, r: { headers: Record<string, string>; body: string }) => {
  try {
    new Webhook(secret).verify(r.body, r.headers);
    return true;
  } catch {
    return false;
  }
};

describe("the key webhook", () => {
  it("is signed with both secrets during a rotation, and a retry of one change keeps its delivery id", async () => {
    const { announceKeyChange } = await import("@/lib/credentials/key-announce");
    answers.push(503);
    await expect(announceKeyChange(change("k2"))).rejects.toThrow(/answered 503/);
    await announceKeyChange(change("k2"));
    const [failed, retried] = received.slice(-2) as [(typeof received)[number], (typeof received)[number]];
    expect(retried.headers["webhook-id"]).toMatch(/^msg_keys_[0-9a-f]{32}$/);
    expect(retried.headers["webhook-id"]).toBe(failed.headers["webhook-id"]);
    expect(retried.headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]+=* v1,[A-Za-z0-9+/]+=*$/);
    expect(JSON.parse(retried.body)).toMatchObject({ event: "signing-keys.changed", next: { kid: "k2" } });
    for (const r of [failed, retried]) {
      expect(verifies(NEW, r)).toBe(true);
      expect(verifies(OLD, r)).toBe(true);
      expect(verifies(whsec(), r)).toBe(false);
      expect(verifies(NEW, { ...r, body: r.body.replace("k2", "k9") })).toBe(false);
    }
    // Another change is another delivery.
    await announceKeyChange(change("k3"));
    expect(received.at(-1)!.headers["webhook-id"]).not.toBe(retried.headers["webhook-id"]);
    expect(verifies(OLD, received.at(-1)!)).toBe(true);
  });

  it("refuses a secret that is not whsec_ base64 at start-up, naming the variable", async () => {
    const { parseEnv } = await import("@/lib/env");
    const base = {
      DATABASE_URL: "postgresql://x@localhost/x",
      NEXTAUTH_SECRET: "s".repeat(32),
      LATCHKEY_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
      OIDC_ISSUER: "http://idp.example",
      OIDC_CLIENT_ID: "c",
      OIDC_CLIENT_SECRET: "s",
    };
    expect(() => parseEnv({ ...base, LATCHKEY_KEY_WEBHOOK_SECRET: "key-webhook-secret-0123456789" })).toThrow(
      /LATCHKEY_KEY_WEBHOOK_SECRET: secret 1 of 1 must be "whsec_" followed by base64/,
    );
    expect(parseEnv({ ...base, LATCHKEY_KEY_WEBHOOK_SECRET: `${NEW},${OLD}` }).LATCHKEY_KEY_WEBHOOK_SECRET).toBeTruthy();
  });
});
