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

  it("inside lib/, only the API itself reaches the API wrappers", async () => {
    const wrapper = await boundaryErrors("lib/mcp/fixture.ts", `import { apiRoute } from "../api/http";\nexport const f = apiRoute;\n`);
    expect(wrapper).toHaveLength(1);
    expect(wrapper[0]).toContain("serve app/ routes only");
    expect(
      await boundaryErrors("lib/identity/scim/fixture.ts", `import { sessionRoute } from "@/lib/api/session-route";\nexport const f = sessionRoute;\n`),
    ).toHaveLength(1);
    // The API's own files use their wrapper, and other lib/ code may still read the API's views.
    expect(await boundaryErrors("lib/api/fixture.ts", `import { apiRoute } from "./http";\nexport const f = apiRoute;\n`)).toEqual([]);
    expect(await boundaryErrors("lib/mcp/fixture.ts", `import { requestDetail } from "../api/views";\nexport const f = requestDetail;\n`)).toEqual([]);
  });

  it("lib/authz reaches no entry layer above it", async () => {
    for (const upward of [
      "../api/views",
      "@/lib/api/schemas",
      "../actions/tokens",
      "../mcp/http",
      "@/lib/approvals/engine",
      "../workflows/registry",
      "../integrations/status",
      "../jobs/queue",
    ]) {
      const errors = await boundaryErrors("lib/authz/fixture.ts", `import * as x from "${upward}";\nexport const f = x;\n`);
      expect(errors, upward).toHaveLength(1);
      expect(errors[0]).toContain("lib/authz depends only on");
    }
    // What it is built from stays open: credentials, identity, policy, the HTTP plumbing, the database.
    expect(
      await boundaryErrors(
        "lib/authz/fixture.ts",
        `import { publishedKey } from "../credentials/keys";\nimport { authenticateToken } from "../identity/tokens";\nimport { policy } from "../policy/current";\nimport { problem } from "../http/problem";\nimport { db } from "../db";\nexport const f = [publishedKey, authenticateToken, policy, problem, db];\n`,
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
