import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { configNouns } from "@/lib/config/nouns";
import { nearestKey } from "@/lib/config/validate-file";
import { currentPolicy, parsePolicy, PolicyError } from "@/lib/policy/load";
import { policySchema } from "@/lib/policy/schema";
import { devSecrets, DevSecretsError } from "@/scripts/support/dev-secrets";

const run = promisify(execFile);
const root = process.cwd();
const tsx = path.join(root, "node_modules/.bin/tsx");
const shipped = readFileSync(path.join(root, "policy/latchkey.yaml"), "utf8");
const dir = mkdtempSync(path.join(tmpdir(), "latchkey-policy-"));

/** The shipped policy with one line edited, as a platform engineer would mistype it. */
function edited(from: string, to: string): string {
  expect(shipped).toContain(from);
  return shipped.replace(from, to);
}

const TYPOS = [
  {
    key: "pendingTimout",
    text: edited("        pendingTimeout: 8h", "        pendingTimout: 8h"),
    problem:
      "101:9: workflows.temporary-access.targets.payments-api-production: `pendingTimout` is not a key of a workflow's rule for a target; did you mean `pendingTimeout`?",
  },
  {
    key: "breakglass",
    text: edited("        breakGlass: { groups: [platform-admins]", "        breakglass: { groups: [platform-admins]"),
    problem:
      "100:9: workflows.temporary-access.targets.payments-api-production: `breakglass` is not a key of a workflow's rule for a target; did you mean `breakGlass`?",
  },
  {
    key: "maxDuraton",
    text: edited("{ name: staging-read-under-1h, roles: [read], maxDuration: 1h }", "{ name: staging-read-under-1h, roles: [read], maxDuraton: 1h }"),
    problem:
      "91:59: workflows.temporary-access.targets.payments-api-staging.autoApprove.0: `maxDuraton` is not a key of an auto-approve rule; did you mean `maxDuration`?",
  },
];

const expectedError = (file: string, problem: string) => `${file}: invalid policy\n  ${file}:${problem}`;

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyError);
    return (error as Error).message;
  }
  throw new Error("expected the policy to be refused");
}

describe("the three typos from the field are refused with the nearest valid key", () => {
  for (const typo of TYPOS) {
    it(`${typo.key}: when parsed`, () => {
      expect(errorOf(() => parsePolicy(typo.text, "policy/latchkey.yaml"))).toBe(expectedError("policy/latchkey.yaml", typo.problem));
    });

    it(`${typo.key}: on reload, and the fixed file loads again`, () => {
      const file = path.join(dir, `reload-${typo.key}.yaml`);
      writeFileSync(file, shipped);
      expect(currentPolicy(file, true).workflows["temporary-access"]!.targets["payments-api-production"]!.pendingTimeout).toBe(8 * 3600);
      writeFileSync(file, typo.text);
      expect(errorOf(() => currentPolicy(file, true))).toBe(expectedError(file, typo.problem));
      // Asked again, it is refused again: an invalid edit never falls back to the old rules.
      expect(errorOf(() => currentPolicy(file, true))).toBe(expectedError(file, typo.problem));
      writeFileSync(file, `${shipped}\n`);
      expect(currentPolicy(file, true).workflows["temporary-access"]!.targets["payments-api-production"]!.breakGlass?.maxDuration).toBe(1800);
    });
  }

  it("at start-up the server refuses to start, naming the place and the key", async () => {
    const startupEnv = {
      PATH: process.env.PATH!,
      NODE_ENV: "test" as const,
      DATABASE_URL: "postgresql://latchkey@127.0.0.1:1/latchkey",
      NEXTAUTH_SECRET: "s".repeat(40),
      LATCHKEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString("base64"),
      OIDC_ISSUER: "http://127.0.0.1:1",
      OIDC_CLIENT_ID: "latchkey",
      OIDC_CLIENT_SECRET: "secret",
    };
    await Promise.all(
      TYPOS.map(async (typo) => {
        const file = path.join(dir, `startup-${typo.key}.yaml`);
        writeFileSync(file, typo.text);
        const outcome = await run(tsx, ["--conditions=react-server", "lib/startup-checks.ts"], {
          cwd: root,
          env: { ...startupEnv, LATCHKEY_POLICY_FILE: file },
        }).then(
          () => ({ code: 0, stderr: "" }),
          (error: { code: number; stderr: string }) => error,
        );
        expect(outcome.code).toBe(1);
        expect(outcome.stderr).toBe(`[latchkey] cannot start: ${expectedError(file, typo.problem)}\n`);
      }),
    );
  }, 120_000);

  it("policy:check fails with the same message", async () => {
    await Promise.all(
      TYPOS.map(async (typo) => {
        const file = path.join(dir, `check-${typo.key}.yaml`);
        writeFileSync(file, typo.text);
        const outcome = await run(tsx, ["scripts/policy.ts", "check", "--file", file], { cwd: root }).then(
          () => ({ code: 0, stderr: "" }),
          (error: { code: number; stderr: string }) => error,
        );
        expect(outcome.code).toBe(1);
        expect(outcome.stderr).toBe(`${expectedError(file, typo.problem)}\n`);
      }),
    );
  }, 120_000);
});

describe("every object of the policy is strict", () => {
  const base = {
    top: "version: 1\nroles:\n  eng: [requester]\n  leads: [approver]\n",
    target: "targets:\n  api:\n    title: API\n    service: api\n    environment: prod\n",
    workflow:
      "workflows:\n  w:\n    targets:\n      api:\n        requesters: [eng]\n        stages:\n          - { name: S, groups: [leads] }\n        maxDuration: 1h\n",
  };
  const policyWith = (parts: Partial<typeof base> & { extra?: string }) =>
    `${parts.top ?? base.top}${parts.target ?? base.target}${parts.workflow ?? base.workflow}${parts.extra ?? ""}`;
  const cases: Array<{ name: string; text: string; problem: string }> = [
    {
      name: "the top level",
      text: policyWith({ extra: "notification: []\n" }),
      problem: "p.yaml:18:1: (top level): `notification` is not a key of the policy; did you mean `notifications`?",
    },
    {
      name: "defaults",
      text: policyWith({ extra: "defaults:\n  expiringNotise: 5m\n" }),
      problem: "p.yaml:19:3: defaults: `expiringNotise` is not a key of the defaults block; did you mean `expiringNotice`?",
    },
    {
      name: "a target",
      text: policyWith({ target: `${base.target}    owner: [eng]\n` }),
      problem: "p.yaml:10:5: targets.api: `owner` is not a key of a target; did you mean `owners`?",
    },
    {
      name: "a database block",
      text: policyWith({ target: `${base.target}    database: { connectionEnv: DB_URL, privilege: { read: [SELECT] } }\n` }),
      problem:
        "p.yaml:10:15: targets.api.database.privileges: is missing (a required key of a target's database block)\n  p.yaml:10:40: targets.api.database: `privilege` is not a key of a target's database block; did you mean `privileges`?",
    },
    {
      name: "an airflow block",
      text: policyWith({ target: `${base.target}    airflow: { dagId: d, urlEnv: U, userEnv: V, passwordEnv: P, dag_id: x }\n` }),
      problem: "p.yaml:10:65: targets.api.airflow: `dag_id` is not a key of a target's airflow block; did you mean `dagId`?",
    },
    {
      name: "an haproxy block",
      text: policyWith({ target: `${base.target}    haproxy: { backend: app1, mode: http }\n` }),
      problem: "p.yaml:10:31: targets.api.haproxy: `mode` is not a key of a target's haproxy block (its keys: backend)",
    },
    {
      name: "a forwardAuth entry",
      text: policyWith({ target: `${base.target}    forwardAuth:\n      - { host: a.test, pathprefix: /x }\n` }),
      problem: "p.yaml:11:25: targets.api.forwardAuth.0: `pathprefix` is not a key of a forwardAuth entry; did you mean `pathPrefix`?",
    },
    {
      name: "a workflow",
      text: policyWith({ workflow: `${base.workflow}    target: {}\n` }),
      problem: "p.yaml:18:5: workflows.w: `target` is not a key of a workflow; did you mean `targets`?",
    },
    {
      name: "a stage",
      text: policyWith({ workflow: base.workflow.replace("{ name: S, groups: [leads] }", "{ name: S, groups: [leads], requried: 2 }") }),
      problem: "p.yaml:16:41: workflows.w.targets.api.stages.0: `requried` is not a key of an approval stage; did you mean `required`?",
    },
    {
      name: "break-glass",
      text: policyWith({ workflow: `${base.workflow}        breakGlass: { groups: [eng], maxDuration: 30m, reason: x }\n` }),
      problem: "p.yaml:18:56: workflows.w.targets.api.breakGlass: `reason` is not a key of a breakGlass block (its keys: groups, maxDuration)",
    },
    {
      name: "a notification channel",
      text: policyWith({ extra: "notifications:\n  - { name: n, kind: slack, urlEnv: U, event: [pending] }\n" }),
      problem:
        "p.yaml:19:5: notifications.0.events: is missing (a required key of a notification channel)\n  p.yaml:19:40: notifications.0: `event` is not a key of a notification channel; did you mean `events`?",
    },
  ];
  for (const c of cases) {
    it(`refuses an unknown key in ${c.name}`, () => {
      expect(errorOf(() => parsePolicy(c.text, "p.yaml"))).toBe(`p.yaml: invalid policy\n  ${c.problem}`);
    });
  }

  it("refuses to name Latchkey's own secrets as a variable it would send to another system", () => {
    const airflow = policyWith({ target: `${base.target}    airflow: { dagId: d, urlEnv: U, userEnv: V, passwordEnv: LATCHKEY_ENCRYPTION_KEY }\n` });
    expect(errorOf(() => parsePolicy(airflow, "p.yaml"))).toMatch(
      /targets\.api\.airflow\.passwordEnv: names one of Latchkey's own secrets, which it never sends to another system/,
    );
    const webhook = policyWith({ extra: "notifications:\n  - { name: n, kind: slack, urlEnv: DATABASE_URL, events: [pending] }\n" });
    expect(errorOf(() => parsePolicy(webhook, "p.yaml"))).toMatch(/notifications\.0\.urlEnv: names one of Latchkey's own secrets/);
    // Its own integration settings, named for the integration, stay allowed.
    expect(() =>
      parsePolicy(policyWith({ target: `${base.target}    airflow: { dagId: d, urlEnv: LATCHKEY_AIRFLOW_URL, userEnv: V, passwordEnv: P }\n` }), "p.yaml"),
    ).not.toThrow();
  });

  it("names every unknown key of an object, and other mistakes with their line", () => {
    const text = policyWith({
      workflow: base.workflow.replace("        maxDuration: 1h\n", "        maxDuration: 1 hour\n        pendingtimeout: 1h\n        brakeGlass: {}\n"),
    });
    expect(errorOf(() => parsePolicy(text, "p.yaml"))).toBe(
      [
        "p.yaml: invalid policy",
        '  p.yaml:17:22: workflows.w.targets.api.maxDuration: "1 hour" is not a duration (use e.g. 30m, 8h, 1d)',
        "  p.yaml:18:9: workflows.w.targets.api: `pendingtimeout` is not a key of a workflow's rule for a target; did you mean `pendingTimeout`?",
        "  p.yaml:19:9: workflows.w.targets.api: `brakeGlass` is not a key of a workflow's rule for a target; did you mean `breakGlass`?",
      ].join("\n"),
    );
    const badDuration = policyWith({ workflow: base.workflow.replace("maxDuration: 1h", "maxDuration: 1 hour") });
    expect(errorOf(() => parsePolicy(badDuration, "p.yaml"))).toBe(
      'p.yaml: invalid policy\n  p.yaml:17:22: workflows.w.targets.api.maxDuration: "1 hour" is not a duration (use e.g. 30m, 8h, 1d)',
    );
    expect(errorOf(() => parsePolicy("version: 1\nroles: [\n", "p.yaml"))).toMatch(/^p\.yaml: invalid policy\n {2}p\.yaml:\d+:\d+: not valid YAML: /);
  });

  it("refuses an empty file and an alias bomb with a message, not a crash", () => {
    expect(errorOf(() => parsePolicy("", "p.yaml"))).toBe("p.yaml: invalid policy\n  p.yaml:1:1: (top level): Invalid input: expected object, received null");
    const levels = [
      "a: &a [x, x, x, x, x, x, x, x, x, x]",
      ...["b", "c", "d", "e"].map((name, i) => `${name}: &${name} [${Array(10).fill(`*${"abcd"[i]}`).join(", ")}]`),
    ];
    expect(errorOf(() => parsePolicy(`${levels.join("\n")}\n`, "p.yaml"))).toBe(
      "p.yaml: invalid policy\n  p.yaml:1:1: not valid YAML: Excessive alias count indicates a resource exhaustion attack",
    );
  });

  it("names a badly formed id by its place, as a key", () => {
    const text = policyWith({ target: base.target.replace("  api:\n", "  api:\n    title: API\n    service: api\n    environment: prod\n  Payments_API:\n") });
    expect(errorOf(() => parsePolicy(text, "p.yaml"))).toBe(
      "p.yaml: invalid policy\n  p.yaml:10:3: targets.Payments_API: `Payments_API` is not a valid name here: must be lower-case letters, digits and dashes",
    );
  });

  it("no object of the schema accepts keys it does not know, and each has a name for its errors", () => {
    const objects: string[] = [];
    const loose: string[] = [];
    const unnamed: string[] = [];
    const walk = (schema: z.core.$ZodType, at: string, seen: Set<unknown>) => {
      if (seen.has(schema)) return;
      seen.add(schema);
      const def = schema._zod.def as unknown as Record<string, unknown> & { type: string };
      if (def.type === "object") {
        objects.push(at);
        if ((def.catchall as z.core.$ZodType | undefined)?._zod.def.type !== "never") loose.push(at);
        if (!configNouns.get(schema as z.ZodType)) unnamed.push(at);
        for (const [key, child] of Object.entries(def.shape as Record<string, z.core.$ZodType>)) walk(child, `${at}.${key}`, seen);
      }
      for (const inner of ["innerType", "in", "out", "element", "valueType"]) if (def[inner]) walk(def[inner] as z.core.$ZodType, at, seen);
    };
    walk(policySchema, "policy", new Set());
    expect(objects).toEqual(
      expect.arrayContaining([
        "policy",
        "policy.defaults",
        "policy.targets",
        "policy.targets.forwardAuth",
        "policy.workflows.targets.autoApprove",
        "policy.workflows.targets.breakGlass",
        "policy.notifications",
      ]),
    );
    expect(objects.length).toBeGreaterThanOrEqual(12);
    expect(loose).toEqual([]);
    expect(unnamed).toEqual([]);
  });

  it("suggests a key only when it is close to what was typed", () => {
    expect(nearestKey("maxDuraton", ["minDuration", "maxDuration"])).toBe("maxDuration");
    expect(nearestKey("BREAKGLASS", ["breakGlass"])).toBe("breakGlass");
    expect(nearestKey("reqiured", ["required"])).toBe("required");
    expect(nearestKey("color", ["groups", "maxDuration"])).toBeUndefined();
  });
});

describe("the development secrets file is read as strictly", () => {
  it("refuses a mistyped name, with its line and the name meant, and keeps the file", () => {
    const file = path.join(dir, "dev-secrets.json");
    const text = `{\n  "NEXTAUTH_SECRET": "${"n".repeat(43)}",\n  "LATCHKEY_ENCRYPTON_KEY": "${Buffer.alloc(32, 1).toString("base64")}",\n  "OIDC_CLIENT_SECRET": "x"\n}\n`;
    writeFileSync(file, text);
    expect(() => devSecrets(file)).toThrowError(DevSecretsError);
    expect(() => devSecrets(file)).toThrowError(
      `${file}: invalid development secrets (delete the file to generate new ones)\n  ${file}:1:1: LATCHKEY_ENCRYPTION_KEY: is missing (a required key of the development secrets file)\n  ${file}:3:3: (top level): \`LATCHKEY_ENCRYPTON_KEY\` is not a key of the development secrets file; did you mean \`LATCHKEY_ENCRYPTION_KEY\`?`,
    );
    expect(readFileSync(file, "utf8")).toBe(text);
  });

  it("creates the file once and reads the same secrets the second time", () => {
    const file = path.join(dir, "fresh-secrets.json");
    const first = devSecrets(file);
    expect(first.NEXTAUTH_SECRET.length).toBeGreaterThanOrEqual(32);
    expect(devSecrets(file)).toEqual(first);
  });
});
