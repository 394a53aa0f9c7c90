import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";

// Lints small fixture strings with the project's own eslint.config.mjs, as if they were files at
// the given paths, so a layer that imports upward fails `npm run lint` (and with it `npm test`).
const eslint = new ESLint({ cwd: process.cwd() });

async function boundaryErrors(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return result!.messages.filter((m) => m.ruleId === "no-restricted-imports").map((m) => m.message);
}

describe("import boundaries", () => {
  it("components/ may not import from app/, by alias or by relative path", async () => {
    const alias = await boundaryErrors(
      "components/requests/fixture.tsx",
      `import { decideAction } from "@/app/(portal)/requests/actions";\nexport const f = decideAction;\n`,
    );
    expect(alias).toHaveLength(1);
    expect(alias[0]).toContain("Only app/ may import from app/");
    expect(
      await boundaryErrors("components/requests/fixture.tsx", `import page from "../../app/(portal)/requests/page";\nexport const f = page;\n`),
    ).toHaveLength(1);
  });

  it("components/ may import the server actions from lib/actions/", async () => {
    expect(
      await boundaryErrors("components/requests/fixture.tsx", `import { decideAction } from "@/lib/actions/requests";\nexport const f = decideAction;\n`),
    ).toEqual([]);
  });

  it("lib/ may import neither app/ nor components/", async () => {
    expect(await boundaryErrors("lib/approvals/fixture.ts", `import { x } from "../../app/api/v1/requests/route";\nexport const f = x;\n`)).toHaveLength(1);
    const upward = await boundaryErrors("lib/approvals/fixture.ts", `import { Inbox } from "@/components/requests/inbox";\nexport const f = Inbox;\n`);
    expect(upward).toHaveLength(1);
    expect(upward[0]).toContain("lib/ serves components/");
  });

  it("an integration reaches workflows only through the plugin contract", async () => {
    const registry = await boundaryErrors(
      "lib/integrations/slack/fixture.ts",
      `import { getWorkflow } from "../../workflows/registry";\nexport const f = getWorkflow;\n`,
    );
    expect(registry).toHaveLength(1);
    expect(registry[0]).toContain("plugin contract");
    expect(
      await boundaryErrors("lib/integrations/slack/fixture.ts", `import { getWorkflow } from "@/lib/workflows/registry";\nexport const f = getWorkflow;\n`),
    ).toHaveLength(1);
    // The contract itself, and the integration's own upward-but-allowed imports, stay open.
    expect(
      await boundaryErrors(
        "lib/integrations/haproxy/fixture.ts",
        `import { ExecutionFailure } from "../../workflows/types";\nimport { targetField } from "../../workflows/common-fields";\nimport { db } from "../../db";\nexport const f = [ExecutionFailure, targetField, db];\n`,
      ),
    ).toEqual([]);
    // The app/ and components/ rules still hold inside lib/integrations/.
    expect(
      await boundaryErrors("lib/integrations/slack/fixture.ts", `import { x } from "@/app/api/slack/interactions/route";\nexport const f = x;\n`),
    ).toHaveLength(1);
  });

  it("the codebase as it stands keeps every boundary", async () => {
    const results = await eslint.lintFiles(["components", "lib"]);
    const crossings = results.flatMap((r) => r.messages.filter((m) => m.ruleId === "no-restricted-imports").map((m) => `${r.filePath}:${m.line} ${m.message}`));
    expect(crossings).toEqual([]);
  }, 60_000);
});
