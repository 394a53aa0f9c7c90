/**
 * npm run policy:check                 validate the policy file and print who can request what
 * npm run policy:explain -- --user <email> --workflow <id> --target <id> [--groups a,b]
 * npm run policy:schema                regenerate policy/latchkey.schema.json from the zod schema
 * npm run policy:test [-- <files or folders>]   run policy/tests/*.yaml against the policy
 * npm run policy:diff -- <git ref or file> [--markdown]   who gains or loses what, from that version to this one
 * The file is LATCHKEY_POLICY_FILE or policy/latchkey.yaml (or --file). A person's groups
 * come from --groups, else from their last sign-in (when DATABASE_URL is set), else from
 * the local identity provider's demo users.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { diffPolicies, renderDiff, type Person } from "../lib/policy/diff";
import { policyJsonSchema } from "../lib/policy/json-schema";
import { loadPolicyFile, parsePolicy, PolicyError } from "../lib/policy/load";
import { availabilityWarnings, explain, policyTable } from "../lib/policy/report";
import { runPolicyTests } from "../lib/policy/test-cases";
import { DEMO_USERS } from "./support/demo-users";

const [command, ...rest] = process.argv.slice(2);
const { values, positionals } = parseArgs({
  args: rest,
  allowPositionals: true,
  options: {
    file: { type: "string" },
    user: { type: "string" },
    workflow: { type: "string" },
    target: { type: "string" },
    groups: { type: "string" },
    markdown: { type: "boolean", default: false },
  },
});
const file = values.file ?? process.env.LATCHKEY_POLICY_FILE ?? "policy/latchkey.yaml";
const SCHEMA_FILE = "policy/latchkey.schema.json";

/** People as of their last sign-in; service identities marked request-only never approve. */
async function signedInPeople(databaseUrl: string): Promise<Person[]> {
  const pg = (await import("pg")).default;
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<Person>(`SELECT email, groups, "requestOnly" FROM "User" ORDER BY email`)).rows;
  } finally {
    await client.end();
  }
}

async function knownPeople(): Promise<{ email: string; groups: string[] }[]> {
  if (!process.env.DATABASE_URL) return DEMO_USERS.map((u) => ({ email: u.email, groups: u.groups }));
  return signedInPeople(process.env.DATABASE_URL);
}

/** A file on disk, or the policy file as it is at a git revision (`main`, `HEAD~1`, `origin/main:policy/latchkey.yaml`). */
function olderVersion(source: string): { name: string; text: string } {
  if (existsSync(source) && statSync(source).isFile()) return { name: source, text: readFileSync(source, "utf8") };
  const inRepository = path.relative(process.cwd(), path.resolve(file));
  const spec = source.includes(":") ? source : `${source}:./${inRepository.startsWith("..") ? "policy/latchkey.yaml" : inRepository}`;
  try {
    return { name: spec, text: execFileSync("git", ["show", spec], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }) };
  } catch (error) {
    const why = (error as { stderr?: string }).stderr?.trim().split("\n")[0] ?? String(error);
    throw new PolicyError(`${source} is neither a file nor a git revision holding the policy (${why})`);
  }
}

function testFiles(paths: string[]): string[] {
  return paths.flatMap((p) =>
    statSync(p).isDirectory()
      ? readdirSync(p)
          .filter((f) => /\.ya?ml$/.test(f))
          .sort()
          .map((f) => path.join(p, f))
      : [p],
  );
}

async function main(): Promise<number> {
  if (command === "schema") {
    writeFileSync(SCHEMA_FILE, policyJsonSchema());
    console.log(`${SCHEMA_FILE}: written`);
    return 0;
  }
  const policy = loadPolicyFile(file);
  if (command === "check") {
    console.log(`${file}: valid\n`);
    console.log(policyTable(policy));
    // Warnings, not errors: the policy may be reviewed where the portal's secrets are not set.
    const warnings = availabilityWarnings(policy, process.env);
    if (warnings.length) console.warn(`\n${warnings.join("\n")}`);
    return 0;
  }
  if (command === "test") {
    let passed = 0;
    let failed = 0;
    for (const testFile of testFiles(positionals.length ? positionals : ["policy/tests"])) {
      const run = runPolicyTests(policy, readFileSync(testFile, "utf8"), testFile);
      console.log(run.report);
      passed += run.passed;
      failed += run.failed;
    }
    console.log(`\n${passed} passed, ${failed} failed (policy ${file})`);
    return failed === 0 && passed > 0 ? 0 : 1;
  }
  if (command === "diff") {
    if (positionals.length !== 1) {
      console.error("Usage: npm run policy:diff -- <git ref or file> [--file <newer policy>] [--markdown]");
      return 2;
    }
    const older = olderVersion(positionals[0]!);
    const before = parsePolicy(older.text, older.name);
    const people = process.env.DATABASE_URL ? await signedInPeople(process.env.DATABASE_URL) : undefined;
    const changes = diffPolicies(before, policy, people);
    process.stdout.write(renderDiff(changes, { before: older.name, after: file, peopleKnown: people !== undefined, markdown: values.markdown }));
    return 0;
  }
  if (command === "explain") {
    if (!values.user || !values.workflow || !values.target) {
      console.error("Usage: npm run policy:explain -- --user <email> --workflow <id> --target <id> [--groups a,b]");
      return 2;
    }
    const people = await knownPeople();
    const groups =
      values.groups !== undefined
        ? values.groups
            .split(",")
            .map((g) => g.trim())
            .filter(Boolean)
        : people.find((p) => p.email === values.user)?.groups;
    if (!groups) {
      console.error(`${values.user} is unknown (never signed in, not a demo user): pass --groups to say which groups they have.`);
      return 2;
    }
    const result = explain(policy, { email: values.user, groups, workflowId: values.workflow, targetId: values.target, knownApprovers: people });
    console.log(result.text);
    return result.allowed ? 0 : 1;
  }
  console.error("Usage: npm run policy:check | policy:explain | policy:schema | policy:test | policy:diff (see scripts/policy.ts)");
  return 2;
}

try {
  process.exitCode = await main();
} catch (error) {
  if (!(error instanceof PolicyError)) throw error;
  console.error(error.message);
  process.exitCode = 1;
}
