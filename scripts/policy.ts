/**
 * npm run policy:check                 validate the policy file and print who can request what
 * npm run policy:explain -- --user <email> --workflow <id> --target <id> [--groups a,b]
 * The file is LATCHKEY_POLICY_FILE or policy/latchkey.yaml (or --file). A person's groups
 * come from --groups, else from their last sign-in (when DATABASE_URL is set), else from
 * the local identity provider's demo users.
 */
import { parseArgs } from "node:util";
import { loadPolicyFile, PolicyError } from "../lib/policy/load";
import { availabilityWarnings, explain, policyTable } from "../lib/policy/report";
import { DEMO_USERS } from "./support/demo-users";

const [command, ...rest] = process.argv.slice(2);
const { values } = parseArgs({
  args: rest,
  options: { file: { type: "string" }, user: { type: "string" }, workflow: { type: "string" }, target: { type: "string" }, groups: { type: "string" } },
});
const file = values.file ?? process.env.LATCHKEY_POLICY_FILE ?? "policy/latchkey.yaml";

async function knownPeople(): Promise<{ email: string; groups: string[] }[]> {
  if (!process.env.DATABASE_URL) return DEMO_USERS.map((u) => ({ email: u.email, groups: u.groups }));
  const pg = (await import("pg")).default;
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    return (await client.query<{ email: string; groups: string[] }>(`SELECT email, groups FROM "User" ORDER BY email`)).rows;
  } finally {
    await client.end();
  }
}

try {
  const policy = loadPolicyFile(file);
  if (command === "check") {
    console.log(`${file}: valid\n`);
    console.log(policyTable(policy));
    // Warnings, not errors: the policy may be reviewed where the portal's secrets are not set.
    const warnings = availabilityWarnings(policy, process.env);
    if (warnings.length) console.warn(`\n${warnings.join("\n")}`);
  } else if (command === "explain") {
    if (!values.user || !values.workflow || !values.target) {
      console.error("Usage: npm run policy:explain -- --user <email> --workflow <id> --target <id> [--groups a,b]");
      process.exit(2);
    }
    const people = await knownPeople();
    const groups = values.groups !== undefined ? values.groups.split(",").map((g) => g.trim()).filter(Boolean) : people.find((p) => p.email === values.user)?.groups;
    if (!groups) {
      console.error(`${values.user} is unknown (never signed in, not a demo user): pass --groups to say which groups they have.`);
      process.exit(2);
    }
    const result = explain(policy, { email: values.user, groups, workflowId: values.workflow, targetId: values.target, knownApprovers: people });
    console.log(result.text);
    process.exit(result.allowed ? 0 : 1);
  } else {
    console.error("Usage: npm run policy:check | npm run policy:explain -- --user <email> --workflow <id> --target <id>");
    process.exit(2);
  }
} catch (error) {
  if (error instanceof PolicyError) {
    console.error(error.message);
    process.exit(1);
  }
  throw error;
}
