import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";
import { startApiServer } from "../helpers/api-server";

let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  fx = await engineFixture();
  const { createPersonalToken } = await import("@/lib/identity/tokens");
  const alice = await fx.user("alice@example.com", ["engineering"]);
  const bob = await fx.user("bob@example.com", ["engineering-leads"]);
  tokens.alice = (await createPersonalToken(alice, { name: "cli", scopes: ["requests:read", "requests:write", "credentials:read"], expiresInDays: 1 })).secret;
  tokens.bob = (await createPersonalToken(bob, { name: "cli", scopes: ["requests:read", "requests:write", "approvals:write"], expiresInDays: 1 })).secret;
  api = await startApiServer();
});
afterAll(async () => {
  await api?.close();
  await fx?.close();
});

/** An empty configuration directory, so no real ~/.config/latchkey/config.json is read. */
const noConfig = mkdtempSync(path.join(os.tmpdir(), "latchkey-noconfig-"));

/** Runs the real CLI (bin/latchkey.mjs) in a child process against the API. */
function latchkey(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(process.cwd(), "bin/latchkey.mjs"), ...args],
      { env: { NODE_ENV: "test", PATH: process.env.PATH, XDG_CONFIG_HOME: noConfig, LATCHKEY_URL: api.url, ...env } },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("the latchkey CLI", () => {
  it("requests, is approved by another person's token, and prints the credential once", async () => {
    const made = await latchkey(
      [
        "request",
        "temporary-access",
        "--target",
        "payments-api-staging",
        "--role",
        "read",
        "--duration",
        "1h",
        "--justification",
        "Checking the retry queue for INC-77",
        "--json",
      ],
      { LATCHKEY_TOKEN: tokens.alice },
    );
    expect(made.stderr).toBe("");
    expect(made.code).toBe(0);
    const request = JSON.parse(made.stdout);
    expect(request).toMatchObject({ status: "pending", durationSeconds: 3600, requester: "alice@example.com" });

    const own = await latchkey(["approve", request.id], { LATCHKEY_TOKEN: tokens.alice });
    expect(own.code).toBe(1);
    expect(own.stderr).toMatch(/lacks the approvals:write scope/);

    const approved = await latchkey(["approve", request.id, "--comment", "fine"], { LATCHKEY_TOKEN: tokens.bob });
    expect(approved.code).toBe(0);
    expect(approved.stdout).toMatch(new RegExp(`^${request.id}  active  temporary-access`));
    expect(approved.stdout).toContain("approved by bob@example.com");

    const status = await latchkey(["status", request.id, "--wait"], { LATCHKEY_TOKEN: tokens.alice });
    expect(status.stdout).toContain(`latchkey credential ${request.id}`);
    const credential = await latchkey(["credential", request.id], { LATCHKEY_TOKEN: tokens.alice });
    expect(credential.code).toBe(0);
    expect(credential.stdout.trim().split(".")).toHaveLength(3);
    expect(credential.stderr).toMatch(/will not show it again/);
    const again = await latchkey(["credential", request.id], { LATCHKEY_TOKEN: tokens.alice });
    expect(again).toMatchObject({ code: 1, stdout: "" });
    expect(again.stderr).toMatch(/already shown once/);
  });

  it("reads the token from a file, lists workflows and says who it is", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "latchkey-cli-"));
    writeFileSync(path.join(dir, "token"), `${tokens.alice}\n`, { mode: 0o600 });
    const who = await latchkey(["whoami", "--token-file", path.join(dir, "token")]);
    expect(who.stdout).toContain("alice@example.com  roles: requester");
    const list = await latchkey(["workflows"], { LATCHKEY_TOKEN: tokens.alice });
    expect(list.stdout).toMatch(/temporary-access: Temporary access/);
    expect(list.stdout).toMatch(/--target payments-api-staging/);
  });

  it("explains refusals and wrong usage with exit codes 1 and 2", async () => {
    const invalid = await latchkey(
      [
        "request",
        "temporary-access",
        "--target",
        "payments-api-staging",
        "--role",
        "read",
        "--duration",
        "9999m",
        "--justification",
        "Checking the retry queue again",
      ],
      { LATCHKEY_TOKEN: tokens.alice },
    );
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toMatch(/durationMinutes: Duration must be between/);
    expect(await latchkey(["whoami"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/No API token/) });
    expect(await latchkey(["whoami"], { LATCHKEY_TOKEN: "lkp_" + "x".repeat(43) })).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/Unknown API token/),
    });
    expect(await latchkey(["frobnicate"], { LATCHKEY_TOKEN: tokens.alice })).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown command/) });
    expect(await latchkey(["request", "temporary-access", "--target", "x"], { LATCHKEY_TOKEN: tokens.alice })).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--justification/),
    });
    expect(
      await latchkey(["request", "temporary-access", "--target", "x", "--justification", "y", "--duration", "soon"], { LATCHKEY_TOKEN: tokens.alice }),
    ).toMatchObject({ code: 2 });
  });

  const ask = (justification: string, extra: string[] = []) =>
    latchkey(
      [
        "request",
        "temporary-access",
        "--target",
        "payments-api-staging",
        "--role",
        "read",
        "--duration",
        "30m",
        "--justification",
        justification,
        "--json",
        ...extra,
      ],
      { LATCHKEY_TOKEN: tokens.alice },
    );
  const made = async (justification: string) => {
    const result = await ask(justification);
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout) as { id: string; status: string };
  };
  const settledStatus = (id: string) => latchkey(["status", id, "--wait", "--json"], { LATCHKEY_TOKEN: tokens.alice });

  it("--wait exits 0 only once the request is active, and its own code when rejected, cancelled or timed out", async () => {
    // request --wait: waits while pending, then exits 0 when another person approves.
    const since = new Date();
    const waiting = ask("Deploy INC-81 fix", ["--wait", "--timeout", "60"]);
    const pending = await expect
      .poll(async () => fx.db.accessRequest.findFirst({ where: { createdAt: { gt: since }, status: "pending" } }), { timeout: 20_000 })
      .toBeTruthy()
      .then(() => fx.db.accessRequest.findFirstOrThrow({ where: { createdAt: { gt: since } } }));
    expect((await latchkey(["approve", pending.id], { LATCHKEY_TOKEN: tokens.bob })).code).toBe(0);
    const granted = await waiting;
    expect(granted.code).toBe(0);
    expect(JSON.parse(granted.stdout)).toMatchObject({ id: pending.id, status: "active" });

    // Rejected while waiting: 3, and the request is still printed for the script.
    const toReject = await made("Deploy INC-82 fix");
    const rejectedWait = settledStatus(toReject.id);
    expect((await latchkey(["reject", toReject.id, "--comment", "not now"], { LATCHKEY_TOKEN: tokens.bob })).code).toBe(0);
    const rejected = await rejectedWait;
    expect(rejected.code).toBe(3);
    expect(JSON.parse(rejected.stdout)).toMatchObject({ id: toReject.id, status: "rejected" });
    // `&&` does not go on.
    const chained = await new Promise<number>((resolve) =>
      execFile(
        "sh",
        ["-c", `"${process.execPath}" bin/latchkey.mjs status "${toReject.id}" --wait --json >/dev/null 2>&1 && exit 42; exit 0`],
        { env: { NODE_ENV: "test", PATH: process.env.PATH, XDG_CONFIG_HOME: noConfig, LATCHKEY_URL: api.url, LATCHKEY_TOKEN: tokens.alice } },
        (error) => resolve(error ? Number((error as { code?: number }).code) : 0),
      ),
    );
    expect(chained).toBe(0);

    // Cancelled by its requester while waiting: 4.
    const toCancel = await made("Deploy INC-83 fix");
    const cancelledWait = settledStatus(toCancel.id);
    expect((await latchkey(["cancel", toCancel.id], { LATCHKEY_TOKEN: tokens.alice })).code).toBe(0);
    expect(await cancelledWait).toMatchObject({ code: 4, stderr: expect.stringMatching(/the request is cancelled/) });

    // Nobody decides within --timeout: 8, still pending.
    const started = Date.now();
    const timedOut = await ask("Deploy INC-84 fix", ["--wait", "--timeout", "1"]);
    expect(timedOut.code).toBe(8);
    expect(JSON.parse(timedOut.stdout)).toMatchObject({ status: "pending" });
    expect(timedOut.stderr).toMatch(/still pending after 1 s/);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(await latchkey(["status", "x", "--wait", "--timeout", "soon"], { LATCHKEY_TOKEN: tokens.alice })).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--timeout "soon"/),
    });
  });

  it("revokes a grant early (exit 6 for a waiter), and --wait exits 5 for expired and 7 for failed", async () => {
    const engine = await import("@/lib/approvals/engine");
    const grant = await made("Checking INC-85");
    await latchkey(["approve", grant.id], { LATCHKEY_TOKEN: tokens.bob });
    // Only the requester (or an admin) may revoke.
    expect(await latchkey(["revoke", grant.id], { LATCHKEY_TOKEN: tokens.bob })).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/Only the requester or an admin/),
    });
    const revoked = await latchkey(["revoke", grant.id, "--reason", "done early", "--json"], { LATCHKEY_TOKEN: tokens.alice });
    expect(revoked.code).toBe(0);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ id: grant.id, status: "revoked" });
    expect((await fx.db.accessRequest.findUniqueOrThrow({ where: { id: grant.id } })).status).toBe("revoked");
    // A second revoke of the same grant is harmless.
    expect((await latchkey(["revoke", grant.id], { LATCHKEY_TOKEN: tokens.alice })).code).toBe(0);
    expect(await settledStatus(grant.id)).toMatchObject({ code: 6 });
    // Revoking what is not active is refused.
    const notActive = await made("Checking INC-86");
    expect(await latchkey(["revoke", notActive.id], { LATCHKEY_TOKEN: tokens.alice })).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/only an active grant can be revoked/),
    });

    const expiring = await made("Checking INC-87");
    await latchkey(["approve", expiring.id], { LATCHKEY_TOKEN: tokens.bob });
    const row = await fx.db.accessRequest.findUniqueOrThrow({ where: { id: expiring.id } });
    expect(await engine.expireGrant(expiring.id, new Date(row.expiresAt!.getTime() + 1000))).toBe("expired");
    expect(await settledStatus(expiring.id)).toMatchObject({ code: 5 });

    await fx.db.accessRequest.update({ where: { id: notActive.id }, data: { status: "failed" } });
    expect(await settledStatus(notActive.id)).toMatchObject({ code: 7 });
  });

  it("lists your requests and your inbox", async () => {
    const mine = await made("Checking INC-88");
    const list = await latchkey(["list", "--json"], { LATCHKEY_TOKEN: tokens.alice });
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).requests.map((r: { id: string }) => r.id)).toContain(mine.id);
    expect((await latchkey(["list"], { LATCHKEY_TOKEN: tokens.alice })).stdout).toMatch(new RegExp(`^${mine.id}  pending  temporary-access`, "m"));
    const inbox = await latchkey(["inbox", "--json"], { LATCHKEY_TOKEN: tokens.bob });
    expect(JSON.parse(inbox.stdout).requests.map((r: { id: string }) => r.id)).toContain(mine.id);
    // Alice's token cannot approve, so it has no inbox.
    expect(await latchkey(["inbox"], { LATCHKEY_TOKEN: tokens.alice })).toMatchObject({ code: 1, stderr: expect.stringMatching(/approvals:write/) });
  });

  it("prints JSON for every command, and its version", async () => {
    const pkg = JSON.parse(readFileSync("package.json", "utf8"));
    expect(await latchkey(["--version"])).toMatchObject({ code: 0, stdout: `latchkey ${pkg.version}\n` });
    expect(JSON.parse((await latchkey(["--version", "--json"])).stdout)).toEqual({ version: pkg.version });
    const one = await made("Checking INC-89");
    for (const args of [["whoami"], ["workflows"], ["list"], ["status", one.id], ["cancel", one.id], ["completion", "bash"]]) {
      const result = await latchkey([...args, "--json"], { LATCHKEY_TOKEN: tokens.alice });
      expect(result.code, args.join(" ")).toBe(0);
      expect(() => JSON.parse(result.stdout), args.join(" ")).not.toThrow();
    }
    const approveMe = await made("Checking INC-90");
    const rejectMe = await made("Checking INC-91");
    for (const [args, token] of [
      [["approve", approveMe.id], tokens.bob],
      [["reject", rejectMe.id, "--comment", "no"], tokens.bob],
      [["inbox"], tokens.bob],
      [["credential", approveMe.id], tokens.alice],
    ] as const) {
      const result = await latchkey([...args, "--json"], { LATCHKEY_TOKEN: token });
      expect(result.code, args.join(" ")).toBe(0);
      expect(JSON.parse(result.stdout), args.join(" ")).toBeTruthy();
    }
    // Errors too, on stderr, with the exit code.
    const refused = await latchkey(["status", "nope", "--json"], { LATCHKEY_TOKEN: tokens.alice });
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stderr)).toMatchObject({ exitCode: 1, error: expect.any(String) });
  });

  it("completes commands and flags in bash and zsh", async () => {
    const script = (await latchkey(["completion", "bash"])).stdout;
    const complete = (words: string) =>
      new Promise<string>((resolve, reject) =>
        execFile(
          "bash",
          ["-c", `${script}\nCOMP_WORDS=(${words}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _latchkey; echo "\${COMPREPLY[*]}"`],
          (error, stdout) => (error ? reject(error) : resolve(stdout.trim())),
        ),
      );
    expect((await complete("latchkey re")).split(" ").sort()).toEqual(["reject", "request", "revoke"]);
    expect(await complete("latchkey request --ti")).toBe("--timeout");
    expect(await complete("latchkey completion z")).toBe("zsh");
    const zsh = await latchkey(["completion", "zsh"]);
    expect(zsh.stdout).toMatch(/bashcompinit/);
    expect(zsh.stdout).toContain("complete -F _latchkey latchkey");
    expect(await latchkey(["completion", "fish"])).toMatchObject({ code: 2 });
  });

  describe("configuration file", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "latchkey-config-"));
    const file = path.join(dir, "latchkey", "config.json");
    const write = (config: unknown) => {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, typeof config === "string" ? config : JSON.stringify(config), { mode: 0o600 });
      chmodSync(file, 0o600);
    };
    const run = (args: string[], env: Record<string, string | undefined> = {}) => latchkey(args, { XDG_CONFIG_HOME: dir, LATCHKEY_URL: undefined, ...env });

    it("picks the default profile, --profile or LATCHKEY_PROFILE; LATCHKEY_URL/LATCHKEY_TOKEN and flags win over it", async () => {
      const tokenFile = path.join(dir, "bob-token");
      writeFileSync(tokenFile, `${tokens.bob!}\n`, { mode: 0o600 });
      write({
        defaultProfile: "alice",
        profiles: {
          alice: { url: api.url, token: tokens.alice },
          bob: { url: api.url, tokenFile },
          nowhere: { url: "http://127.0.0.1:9", token: tokens.alice },
        },
      });
      expect((await run(["whoami"])).stdout).toContain("alice@example.com");
      expect((await run(["whoami", "--profile", "bob"])).stdout).toContain("bob@example.com");
      expect((await run(["whoami"], { LATCHKEY_PROFILE: "bob" })).stdout).toContain("bob@example.com");
      // The environment wins over the profile...
      expect((await run(["whoami"], { LATCHKEY_TOKEN: tokens.bob })).stdout).toContain("bob@example.com");
      expect((await run(["whoami", "--profile", "nowhere"])).code).toBe(1);
      expect((await run(["whoami", "--profile", "nowhere"], { LATCHKEY_URL: api.url })).stdout).toContain("alice@example.com");
      // ...and flags win over the environment.
      expect((await run(["whoami", "--profile", "nowhere", "--url", api.url], { LATCHKEY_URL: "http://127.0.0.1:9" })).stdout).toContain("alice@example.com");
      const aliceFile = path.join(dir, "alice-token");
      writeFileSync(aliceFile, tokens.alice!, { mode: 0o600 });
      expect((await run(["whoami", "--token-file", aliceFile], { LATCHKEY_TOKEN: tokens.bob })).stdout).toContain("alice@example.com");
      // A token in a file others can read is warned about.
      chmodSync(file, 0o644);
      expect((await run(["whoami"])).stderr).toMatch(/can be read by others; chmod 600/);
    });

    it("refuses a malformed file with an error naming the file and the key", async () => {
      const cases: [unknown, RegExp][] = [
        ["{ not json", /not valid JSON/],
        [[], /must hold a JSON object/],
        [{ profile: {} }, /unknown key "profile"/],
        [{ profiles: { ci: { url: api.url, tokn: "x" } } }, /unknown key "profiles\.ci\.tokn" \(expected url, token, tokenFile\)/],
        [{ profiles: { ci: { url: 42 } } }, /"profiles\.ci\.url" must be a non-empty string/],
        [{ profiles: { ci: { url: api.url, token: "a", tokenFile: "b" } } }, /"profiles\.ci" has both "token" and "tokenFile"/],
        [{ defaultProfile: "prod", profiles: { ci: { url: api.url } } }, /no profile "prod" \(profiles: ci\)/],
      ];
      for (const [config, message] of cases) {
        write(config);
        const result = await run(["whoami"], { LATCHKEY_TOKEN: tokens.alice });
        expect(result.code, String(message)).toBe(2);
        expect(result.stderr).toContain(file);
        expect(result.stderr).toMatch(message);
      }
      const missing = mkdtempSync(path.join(os.tmpdir(), "latchkey-none-"));
      expect(await run(["whoami", "--profile", "ci"], { XDG_CONFIG_HOME: missing, LATCHKEY_TOKEN: tokens.alice })).toMatchObject({
        code: 2,
        stderr: expect.stringMatching(/no such file, so there is no profile "ci"/),
      });
    });
  });

  describe("the GitHub Actions example (docs/examples/github-actions-deploy.yml)", () => {
    type Step = { name?: string; id?: string; run?: string; if?: string };
    /**
     * Runs the example's `run` steps with bash as a GitHub runner would (-e, outputs through
     * $GITHUB_OUTPUT, later steps skipped after a failure unless `if: always()`), against
     * the real API with the real CLI.
     */
    async function runWorkflow(onPending: (id: string) => Promise<void>) {
      const { parse } = await import("yaml");
      const workflow = parse(readFileSync("docs/examples/github-actions-deploy.yml", "utf8"));
      const job = workflow.jobs.deploy as { env: Record<string, string>; steps: Step[] };
      const work = mkdtempSync(path.join(os.tmpdir(), "latchkey-ci-"));
      mkdirSync(path.join(work, "tools"));
      writeFileSync(path.join(work, "tools", "latchkey.mjs"), readFileSync("bin/latchkey.mjs"));
      writeFileSync(path.join(work, "deploy.sh"), '#!/bin/sh\nprintf %s "$DEPLOY_TOKEN" > deployed-with\n', { mode: 0o755 });
      const outputs: Record<string, Record<string, string>> = {};
      const results: { name: string; code: number | "skipped" }[] = [];
      let failed = false;
      const since = new Date();
      const watcher = (async () => {
        await expect.poll(() => fx.db.accessRequest.count({ where: { createdAt: { gt: since } } }), { timeout: 30_000 }).toBe(1);
        await onPending((await fx.db.accessRequest.findFirstOrThrow({ where: { createdAt: { gt: since } } })).id);
      })();
      for (const step of job.steps.filter((st) => st.run)) {
        const expr = (text: string) => text.replace(/\$\{\{\s*steps\.(\w+)\.outputs\.(\w+)\s*\}\}/g, (_, id, key) => outputs[id]?.[key] ?? "");
        const always = step.if?.startsWith("always()");
        // The example's only condition: `always() && steps.<id>.outputs.<key> != ''`.
        const condition = step.if ? /^always\(\) && steps\.(\w+)\.outputs\.(\w+) != ''$/.exec(step.if) : null;
        if (step.if && !condition) throw new Error(`cannot evaluate the condition ${step.if}`);
        if ((failed && !always) || (condition && !outputs[condition[1]!]?.[condition[2]!])) {
          results.push({ name: step.name!, code: "skipped" });
          continue;
        }
        const outputFile = path.join(work, `output-${results.length}`);
        writeFileSync(outputFile, "");
        const code = await new Promise<number>((resolve) =>
          execFile(
            "bash",
            ["-e", "-o", "pipefail", "-c", expr(step.run!)],
            {
              cwd: work,
              env: {
                NODE_ENV: "test",
                PATH: process.env.PATH,
                XDG_CONFIG_HOME: noConfig,
                ...job.env,
                LATCHKEY_URL: api.url,
                LATCHKEY_TOKEN: tokens.alice,
                GITHUB_OUTPUT: outputFile,
                GITHUB_SHA: "0123456789abcdef",
                GITHUB_ACTOR: "ci-bot",
                GITHUB_RUN_ID: "42",
              },
            },
            (error) => resolve(error ? Number((error as { code?: number }).code) : 0),
          ),
        );
        if (step.id)
          outputs[step.id] = Object.fromEntries(
            readFileSync(outputFile, "utf8")
              .split("\n")
              .filter(Boolean)
              .map((line) => line.split("=", 2) as [string, string]),
          );
        results.push({ name: step.name!, code });
        if (code !== 0) failed = true;
      }
      await watcher;
      return { results, outputs, work };
    }

    it("deploys with the credential once a person approves, then revokes the grant", async () => {
      const { results, outputs, work } = await runWorkflow(async (id) => {
        expect((await latchkey(["approve", id], { LATCHKEY_TOKEN: tokens.bob })).code).toBe(0);
      });
      expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
      expect(readFileSync(path.join(work, "deployed-with"), "utf8").split(".")).toHaveLength(3);
      const request = await fx.db.accessRequest.findUniqueOrThrow({ where: { id: outputs.access!.id! } });
      expect(request.status).toBe("revoked");
    });

    it("stops before deploying when the request is rejected", async () => {
      const { results, work } = await runWorkflow(async (id) => {
        expect((await latchkey(["reject", id, "--comment", "not during the freeze"], { LATCHKEY_TOKEN: tokens.bob })).code).toBe(0);
      });
      expect(results.map((r) => r.code)).toEqual([3, "skipped", "skipped"]);
      expect(() => readFileSync(path.join(work, "deployed-with"))).toThrow();
    });
  });
});
