import { spawn } from "node:child_process";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";

/**
 * README "Graceful shutdown": "On SIGTERM ... the worker finishes the jobs in flight (up to
 * 30 s each) before the process exits." The worker runs as production runs it on its own
 * (`latchkey.mjs worker`, here scripts/start.ts through tsx); its job in flight is an e-mail
 * to a real SMTP server that takes three seconds to accept it. SIGTERM arrives while the
 * server holds the message: the mail is accepted, recorded as delivered, and then the
 * process exits, cleanly.
 */
const HOLD_MS = 3_000;
let fx: Awaited<ReturnType<typeof engineFixture>>;
let smtpPort: number;
let receiving: number | null = null;
let accepted: number | null = null;
const smtp = new SMTPServer({
  secure: false,
  disabledCommands: ["STARTTLS", "AUTH"],
  logger: false,
  onData(stream, _session, callback) {
    stream.resume();
    stream.on("end", () => {
      receiving = Date.now();
      setTimeout(() => {
        accepted = Date.now();
        callback();
      }, HOLD_MS);
    });
  },
});

beforeAll(async () => {
  await new Promise<void>((resolve) => smtp.listen(0, "127.0.0.1", resolve));
  smtpPort = (smtp.server.address() as AddressInfo).port;
  fx = await engineFixture({
    LATCHKEY_POLICY_FILE: path.join(process.cwd(), "tests/fixtures/policy-integrations.yaml"),
    LATCHKEY_SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
    LATCHKEY_SMTP_FROM: "Latchkey <latchkey@example.com>",
  });
  await fx.user("eve@example.com", ["engineering"]);
  await fx.user("lead@example.com", ["engineering-leads"]);
});
afterAll(async () => {
  await fx?.close();
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
});

describe("stopping the worker with SIGTERM", () => {
  it("lets the job in flight finish (the mail is accepted and recorded as delivered), then exits 0", { timeout: 120_000 }, async () => {
    const worker = spawn("node_modules/.bin/tsx", ["--conditions=react-server", "scripts/start.ts", "worker"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: fx.url,
        NEXTAUTH_URL: "http://localhost:3999",
        NEXTAUTH_SECRET: process.env.NEXTAUTH_SECRET,
        OIDC_ISSUER: "http://unused.invalid",
        OIDC_CLIENT_ID: "unused",
        OIDC_CLIENT_SECRET: "unused",
        LATCHKEY_ENCRYPTION_KEY: process.env.LATCHKEY_ENCRYPTION_KEY,
        LATCHKEY_POLICY_FILE: process.env.LATCHKEY_POLICY_FILE,
        LATCHKEY_SMTP_URL: process.env.LATCHKEY_SMTP_URL,
        LATCHKEY_SMTP_FROM: process.env.LATCHKEY_SMTP_FROM,
      } as unknown as NodeJS.ProcessEnv,
    });
    let output = "";
    worker.stdout.on("data", (c: Buffer) => (output += c.toString()));
    worker.stderr.on("data", (c: Buffer) => (output += c.toString()));
    const exit = new Promise<{ code: number | null; at: number }>((resolve) => worker.once("exit", (code) => resolve({ code, at: Date.now() })));
    try {
      await expect.poll(() => output, { timeout: 60_000 }).toContain("worker started");

      const engine = await import("@/lib/approvals/engine");
      const eve = await fx.user("eve@example.com", ["engineering"]);
      const request = await engine.createRequest(eve, "temporary-access", {
        targetId: "no-ticket",
        role: "read",
        durationMinutes: 30,
        justification: "Shutdown drill",
      });
      await expect.poll(() => receiving, { timeout: 30_000 }).not.toBeNull();
      worker.kill("SIGTERM");

      const { code, at } = await exit;
      expect(code, output).toBe(0);
      expect(output).toContain("shutting down: finishing requests and jobs in flight");
      expect(accepted).not.toBeNull();
      expect(at).toBeGreaterThanOrEqual(accepted!);
      const delivery = await fx.db.notificationDelivery.findFirstOrThrow({ where: { requestId: request.id, channel: "@email" } });
      expect(delivery).toMatchObject({ status: "delivered", attempts: 1, lastError: null });
    } finally {
      if (worker.exitCode === null) worker.kill("SIGKILL");
    }
  });
});
