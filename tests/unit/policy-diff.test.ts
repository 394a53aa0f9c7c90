import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { diffPolicies, renderDiff, type Person } from "@/lib/policy/diff";
import { parsePolicy } from "@/lib/policy/load";

const root = process.cwd();
const run = promisify(execFile);
const tsx = path.join(root, "node_modules/.bin/tsx");
const shippedText = readFileSync(path.join(root, "policy/latchkey.yaml"), "utf8");
const shipped = parsePolicy(shippedText, "policy/latchkey.yaml");

/** The shipped policy with the edits a reviewer should notice, each checked to apply. */
function editedPolicy(): string {
  const edits: Array<[string, string]> = [
    [
      "        requesters: [engineering, engineering-leads, platform-admins]\n        stages:\n          - { name: Team lead, groups: [engineering-leads, platform-admins], required: 1 }\n        # Platform",
      "        requesters: [engineering-leads, platform-admins]\n        stages:\n          - { name: Team lead, groups: [engineering-leads, platform-admins], required: 1 }\n        # Platform",
    ],
    [
      "          - { name: Data owner, groups: [platform-admins], required: 1 }\n        minDuration: 15m\n        maxDuration: 1h",
      "          - { name: Data owner, groups: [platform-admins, engineering-leads], required: 2 }\n        minDuration: 15m\n        maxDuration: 1h",
    ],
    ["roles: [read], maxDuration: 1h }", "roles: [read], maxDuration: 4h }"],
    [
      "        breakGlass: { groups: [platform-admins], maxDuration: 30m }",
      "        breakGlass: { groups: [platform-admins, engineering-leads], maxDuration: 1h }",
    ],
    [
      "        pendingTimeout: 8h\n        minDuration: 15m\n        maxDuration: 2h",
      "        pendingTimeout: 12h\n        minDuration: 15m\n        maxDuration: 4h",
    ],
    [
      "    events: [pending, approved, rejected, expiring, expired, break-glass]\n  - name: audit-webhook",
      "    events: [pending, break-glass]\n  - name: audit-webhook",
    ],
  ];
  let text = shippedText;
  for (const [from, to] of edits) {
    expect(text).toContain(from);
    text = text.replace(from, to);
  }
  return text;
}

const PEOPLE: Person[] = [
  { email: "alice@example.com", groups: ["engineering"] },
  { email: "bob@example.com", groups: ["engineering-leads"] },
  { email: "carol@example.com", groups: ["audit"] },
  { email: "dave@example.com", groups: ["platform-admins"] },
  { email: "ci-bot@example.com", groups: ["engineering-leads"], requestOnly: true },
];

const GROUP_SENTENCES = [
  "temporary-access on payments-api-staging: auto-approval staging-read-under-1h: role read, at most 1h → role read, at most 4h.",
  "temporary-access on payments-api-production: may request: engineering removed.",
  "temporary-access on payments-api-production: duration: 15m to 2h → 15m to 4h.",
  "temporary-access on payments-api-production: pending for: 8h → 12h.",
  "temporary-access on payments-api-production: break-glass by: engineering-leads added.",
  "temporary-access on payments-api-production: break-glass for at most: 30m → 1h.",
  "temporary-access on ledger-db-production: stage 2 approvers: Data owner: 1 of platform-admins → Data owner: 2 of platform-admins, engineering-leads.",
  "notifications approvers-slack: events: approved, rejected, expiring, expired removed.",
];

describe("what changes in who may do what", () => {
  const edited = parsePolicy(editedPolicy(), "edited.yaml");

  it("without people: request rights, approvers, auto-approval, durations, break-glass and routing, in groups", () => {
    expect(diffPolicies(shipped, edited).map((c) => c.sentence)).toEqual(GROUP_SENTENCES);
  });

  it("with people from their last sign-ins: who gains and who loses, and a request-only identity never approves", () => {
    const changes = diffPolicies(shipped, edited, PEOPLE);
    expect(changes.map((c) => c.sentence)).toEqual([
      GROUP_SENTENCES[0],
      `${GROUP_SENTENCES[1]} No longer: alice@example.com.`,
      GROUP_SENTENCES[2],
      GROUP_SENTENCES[3],
      `${GROUP_SENTENCES[4]} Now also: bob@example.com, ci-bot@example.com.`,
      GROUP_SENTENCES[5],
      `${GROUP_SENTENCES[6]} Now also: bob@example.com.`,
      GROUP_SENTENCES[7],
    ]);
  });

  it("a group mapped to a new role changes who may request, though no rule changed", () => {
    const widened = parsePolicy(
      shippedText.replace("  audit: [auditor]", "  audit: [auditor, requester]").replace("requesters: [engineering]\n", "requesters: [engineering, audit]\n"),
      "w.yaml",
    );
    expect(diffPolicies(shipped, widened, PEOPLE).map((c) => c.sentence)).toEqual([
      "group audit: portal roles: requester added.",
      "temporary-access on ledger-db-production: may request: audit added. Now also: carol@example.com.",
    ]);
    // The other way round, the same facts are lost.
    expect(diffPolicies(widened, shipped, PEOPLE).map((c) => c.sentence)).toEqual([
      "group audit: portal roles: requester removed.",
      "temporary-access on ledger-db-production: may request: audit removed. No longer: carol@example.com.",
    ]);
  });

  it("what a grant opens and the access roles a request may ask for", () => {
    const opened = parsePolicy(
      shippedText
        .replace(
          "      - { host: payments.internal.example.com, pathPrefix: / }",
          "      - { host: payments.internal.example.com, pathPrefix: / }\n      - { host: payments-admin.internal.example.com, pathPrefix: /admin }",
        )
        .replace(
          "        write: [SELECT, INSERT, UPDATE, DELETE]",
          "        write: [SELECT, INSERT, UPDATE, DELETE]\n        owner: [SELECT, INSERT, UPDATE, DELETE]",
        )
        .replace("      ledger-db-production:\n        roles: [read]", "      ledger-db-production:\n        roles: [read, write]"),
      "o.yaml",
    );
    expect(diffPolicies(shipped, opened).map((c) => c.sentence)).toEqual([
      "temporary-access on ledger-db-production: access roles: write added.",
      "target payments-api-production: a grant opens: payments-admin.internal.example.com/admin added.",
      "target ledger-db: a grant opens: owner: SELECT/INSERT/UPDATE/DELETE added.",
    ]);
  });

  it("a new and a removed rule read as new and gone", () => {
    const moved = parsePolicy(shippedText.replace("  restart-job:\n", "  restart-job-v2:\n"), "m.yaml");
    const sentences = diffPolicies(shipped, moved).map((c) => c.sentence);
    expect(sentences).toContain("restart-job-v2 on nightly-settlement: may request is new: engineering-leads, platform-admins.");
    expect(sentences).toContain("restart-job on nightly-settlement: stage 1 approvers is gone (was Job owner: 1 of platform-admins, engineering-leads).");
  });

  it("renders words and a table, and Markdown for a pull request", () => {
    const changes = diffPolicies(shipped, edited, PEOPLE);
    const text = renderDiff(changes, { before: "main", after: "policy/latchkey.yaml", peopleKnown: true, markdown: false });
    expect(text.split("\n").slice(0, 3)).toEqual([
      "Access changes from main to policy/latchkey.yaml (8 changes; people as known from their last sign-ins)",
      "",
      `- ${GROUP_SENTENCES[0]}`,
    ]);
    expect(text).toMatch(/\n\| where +\| what +\| before +\| after +\| gaining +\| losing +\|\n/);
    expect(text).toMatch(
      /\| temporary-access on payments-api-production \| may request +\| engineering, engineering-leads, platform-admins +\| engineering-leads, platform-admins +\| - +\| alice@example\.com +\|/,
    );
    const markdown = renderDiff(diffPolicies(shipped, edited), { before: "main", after: "policy/latchkey.yaml", peopleKnown: false, markdown: true });
    expect(markdown).toBe(
      [
        "### Access changes from main to policy/latchkey.yaml",
        "",
        "8 changes; groups only (no database to resolve them to people).",
        "",
        ...GROUP_SENTENCES.map((s) => `- ${s}`),
        "",
        "| where | what | before | after |",
        "| --- | --- | --- | --- |",
        "| temporary-access on payments-api-staging | auto-approval staging-read-under-1h | role read, at most 1h | role read, at most 4h |",
        "| temporary-access on payments-api-production | may request | engineering, engineering-leads, platform-admins | engineering-leads, platform-admins |",
        "| temporary-access on payments-api-production | duration | 15m to 2h | 15m to 4h |",
        "| temporary-access on payments-api-production | pending for | 8h | 12h |",
        "| temporary-access on payments-api-production | break-glass by | platform-admins | platform-admins, engineering-leads |",
        "| temporary-access on payments-api-production | break-glass for at most | 30m | 1h |",
        "| temporary-access on ledger-db-production | stage 2 approvers | Data owner: 1 of platform-admins | Data owner: 2 of platform-admins, engineering-leads |",
        "| notifications approvers-slack | events | pending, approved, rejected, expiring, expired, break-glass | pending, break-glass |",
        "",
      ].join("\n"),
    );
    expect(renderDiff([], { before: "a", after: "b", peopleKnown: false, markdown: false })).toBe(
      "Access changes from a to b\nNo change in who may do what.\n",
    );
  });
});

describe("npm run policy:diff", () => {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: "" };
  delete env.LATCHKEY_POLICY_FILE;
  const cli = (cwd: string, ...args: string[]) =>
    run(tsx, [path.join(root, "scripts/policy.ts"), "diff", ...args], { cwd, env }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => error,
    );

  it("compares with a git revision or a file, without a database", async () => {
    const repo = mkdtempSync(path.join(tmpdir(), "latchkey-policy-diff-"));
    const git = (...args: string[]) => run("git", args, { cwd: repo });
    await git("init", "-q");
    mkdirSync(path.join(repo, "policy"));
    writeFileSync(path.join(repo, "policy/latchkey.yaml"), shippedText);
    await git("add", ".");
    await git("-c", "user.name=Reviewer", "-c", "user.email=reviewer@example.com", "commit", "-qm", "policy");
    writeFileSync(path.join(repo, "policy/latchkey.yaml"), editedPolicy());
    writeFileSync(path.join(repo, "old.yaml"), shippedText);

    const fromGit = await cli(repo, "HEAD", "--markdown");
    expect(fromGit.code, fromGit.stderr).toBe(0);
    expect(fromGit.stdout.split("\n").slice(0, 5)).toEqual([
      "### Access changes from HEAD:./policy/latchkey.yaml to policy/latchkey.yaml",
      "",
      "8 changes; groups only (no database to resolve them to people).",
      "",
      `- ${GROUP_SENTENCES[0]}`,
    ]);
    const fromFile = await cli(repo, "old.yaml");
    expect(fromFile.code).toBe(0);
    expect(fromFile.stdout).toContain(`- ${GROUP_SENTENCES[1]}\n`);
    expect(fromFile.stdout).toMatch(/\| where +\| what +\| before +\| after +\|\n/);

    await git("-c", "user.name=Reviewer", "-c", "user.email=reviewer@example.com", "commit", "-qam", "edited");
    const same = await cli(repo, "HEAD");
    expect(same.stdout).toBe("Access changes from HEAD:./policy/latchkey.yaml to policy/latchkey.yaml\nNo change in who may do what.\n");
    const unknown = await cli(repo, "no-such-branch");
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^no-such-branch is neither a file nor a git revision holding the policy \(fatal: invalid object name 'no-such-branch'/);
    writeFileSync(path.join(repo, "typo.yaml"), shippedText.replace("        breakGlass: {", "        breakglass: {"));
    const typo = await cli(repo, "typo.yaml");
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain(
      "typo.yaml:100:9: workflows.temporary-access.targets.payments-api-production: `breakglass` is not a key of a workflow's rule for a target; did you mean `breakGlass`?",
    );
  }, 180_000);
});
