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

  it("a workflow's definition and an integration's adapter stay free of server code (types excepted)", async () => {
    const serverCode = async (filePath: string, code: string) => {
      const [result] = await eslint.lintText(code, { filePath });
      return result!.messages.filter((m) => m.ruleId === "@typescript-eslint/no-restricted-imports").map((m) => m.message);
    };
    for (const code of [
      `import { db } from "../../db";\nexport const f = db;\n`,
      `import { env } from "@/lib/env";\nexport const f = env;\n`,
      `import { openRoute } from "./server";\nexport const f = openRoute;\n`,
      `import { getWorkflow } from "../registry";\nexport const f = getWorkflow;\n`,
      `import { runtimeApi } from "../../integrations/haproxy/runtime-api";\nexport const f = runtimeApi;\n`,
      `import "server-only";\nexport const f = 1;\n`,
      `import { haproxy } from "../../integrations/haproxy/adapter";\nexport const f = haproxy;\n`,
    ]) {
      const refused = await serverCode("lib/workflows/open-route/definition.ts", code);
      expect(refused, code).toHaveLength(1);
      expect(refused[0]).toMatch(/Declarations stay free of server code|never its client/);
    }
    expect(await serverCode("lib/integrations/haproxy/adapter.ts", `import { env } from "../../env";\nexport const f = env;\n`)).toHaveLength(1);
    expect(await serverCode("lib/integrations/haproxy/adapter.ts", `import { runtimeApi } from "./runtime-api";\nexport const f = runtimeApi;\n`)).toEqual([]);
    expect(
      await serverCode(
        "lib/workflows/open-route/definition.ts",
        `import type { Tx } from "../../db";\nimport { haproxyUnavailable } from "../../integrations/haproxy/availability";\nexport const f: [Tx?, unknown?] = [undefined, haproxyUnavailable];\n`,
      ),
    ).toEqual([]);
  });

  it("the codebase as it stands keeps every boundary", async () => {
    const results = await eslint.lintFiles(["components", "lib"]);
    const crossings = results.flatMap((r) =>
      r.messages.filter((m) => m.ruleId?.endsWith("no-restricted-imports")).map((m) => `${r.filePath}:${m.line} ${m.message}`),
    );
    expect(crossings).toEqual([]);
  }, 60_000);
});
