// Lint for the whole codebase: typescript-eslint, React's hook rules, Next.js's rules, and the
// import boundaries that keep layers pointing downward (app -> components -> lib; an
// integration depends only on the workflow plugin contract, never on the workflow registry;
// what the browser or the configuration parsers load stays free of server code; only routes
// use the API wrapper; authorization depends on no entry layer above it; the audit write side
// never imports the auditor's read side).
// docs/ARCHITECTURE.md explains these layers; keep the two in step.
import nextPlugin from "@next/eslint-plugin-next";
import reactHooks from "eslint-plugin-react-hooks";
import tseslint from "typescript-eslint";

/** `@/app/...` or `../../app/...`: the named top-level folder. */
const into = (folder) => `^(@/|(\\.\\./)+)${folder}(/|$)`;

const NO_APP = { regex: into("app"), message: "Only app/ may import from app/: move shared code (e.g. server actions) into lib/." };
const NO_COMPONENTS = { regex: into("components"), message: "lib/ serves components/, never the reverse: move the shared code into lib/." };
// The audit write side (record, chain, verify, anchor) must not depend on the auditor's read side.
const NO_HISTORY = {
  regex: "^(@/lib/|(\\.\\./)+)history(/|$)",
  message: "The audit write side (lib/audit/) must not import the auditor's read side (lib/history/).",
};
// From inside lib/integrations/<name>/ a workflow is `../../workflows/...` or `@/lib/workflows/...`.
// types.ts (the plugin contract) and common-fields.ts (the shared form fields) are the only way in.
const NO_WORKFLOWS = {
  regex: "^(@/lib/|(\\.\\./)+)workflows/(?!(types|common-fields)$)",
  message: "An integration depends only on the workflow plugin contract (lib/workflows/types, lib/workflows/common-fields), not on the workflow registry.",
};

// A workflow's definition.ts reaches the browser (the form validates with its schema), and an
// integration's adapter.ts is loaded by the policy schema and the environment parser: both are
// declarations (zod, plain functions), never the database, the environment or a client.
// Types may still be imported: they are erased before anything runs.
const SERVER_CODE = [
  {
    group: ["server-only", "pg", "node:*", "nodemailer", "@prisma/*", "@slack/*"],
    message: "Declarations stay free of server code: put this in the server part.",
    allowTypeImports: true,
  },
  {
    regex: "^(@/lib/|(\\.\\./)+)(db|env|log|credentials|approvals|jobs|audit|auth|notifications|actions)(/|$)",
    message: "Declarations stay free of server code: put this in the server part (server.ts, health.ts).",
    allowTypeImports: true,
  },
  {
    regex: "^\\./(server|health)$",
    message: "Declarations stay free of server code: the server part imports the declaration, not the reverse.",
    allowTypeImports: true,
  },
  {
    regex: "^(\\.\\.?/registry|(.*/)?workflows/registry)$",
    message: "Declarations stay free of server code: the workflow registry holds server parts.",
    allowTypeImports: true,
  },
  {
    regex: "(^|/)integrations/(?!adapter$)[^/]+/(?!(availability|privileges)$)[^/]+$",
    message: "A definition may use an integration's availability check, never its client or its adapter (which brings its health probe).",
    allowTypeImports: true,
  },
];
// The HTTP wrappers (lib/api/http.ts for /api/v1, lib/api/session-route.ts for pages' routes) are for app/ routes:
// inside lib/ a module that needs an API caller's identity or a problem answer takes lib/authz/caller or lib/http/problem.
const NO_API_WRAPPER = {
  regex: "^(@/lib/|(\\.\\./)+)api/(http|session-route)$",
  message: "The API wrappers (lib/api/http, lib/api/session-route) serve app/ routes only: use lib/authz/caller or lib/http/problem.",
};
// lib/authz answers proxies and resource servers on the hot path (and in the lean listener): it must not pull in the
// API layer, server actions, MCP, the request lifecycle, workflows, integrations, jobs or notifications.
const NO_AUTHZ_UPWARD = {
  regex: "^(@/lib/|(\\.\\./)+)(api|actions|mcp|approvals|workflows|integrations|jobs|notifications)(/|$)",
  message:
    "lib/authz depends only on credentials, identity, policy, http plumbing and the database: not on lib/api, lib/actions, lib/mcp, the request lifecycle, workflows, integrations, jobs or notifications.",
};
// A request's status is written by lib/approvals/transition.ts alone (checked, conditional,
// audited, its jobs queued): a Prisma write of `status` to an AccessRequest, or SQL that sets
// or inserts it, anywhere else is refused.
const STATUS_WRITES = [
  {
    selector:
      "CallExpression[callee.object.property.name='accessRequest'][callee.property.name=/^(create|createMany|createManyAndReturn|update|updateMany|updateManyAndReturn|upsert)$/] > ObjectExpression > Property[key.name=/^(data|create|update)$/] > ObjectExpression > Property[key.name='status']",
    message: "A request's status changes only through lib/approvals/transition.ts (transition, Moves, openRequest).",
  },
  {
    selector:
      ':matches(TemplateElement[value.raw=/UPDATE\\s+"AccessRequest"[^;]*\\bstatus\\b\\s*=|INSERT\\s+INTO\\s+"AccessRequest"[^;]*\\bstatus\\b/i], Literal[value=/UPDATE\\s+"AccessRequest"[^;]*\\bstatus\\b\\s*=|INSERT\\s+INTO\\s+"AccessRequest"[^;]*\\bstatus\\b/i])',
    message: "A request's status changes only through lib/approvals/transition.ts, never by SQL of its own.",
  },
];

export default tseslint.config(
  { ignores: ["node_modules/**", ".next/**", ".data/**", "tests/.artifacts/**", "next-env.d.ts", "public/**", "bin/**/*.js", "bench/**"] },
  ...tseslint.configs.recommended,
  {
    files: ["**/*.{ts,tsx,mjs,cjs,js}"],
    plugins: { "react-hooks": reactHooks, "@next/next": nextPlugin },
    rules: {
      ...nextPlugin.configs.recommended.rules,
      ...nextPlugin.configs["core-web-vitals"].rules,
      "react-hooks/rules-of-hooks": "error",
      "react-hooks/exhaustive-deps": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
    },
    settings: { next: { rootDir: "." } },
  },
  // CommonJS on purpose: these are loaded with `node --require` before any ES module runs.
  { files: ["**/*.cjs"], rules: { "@typescript-eslint/no-require-imports": "off" } },
  // Tests read outside systems' answers (SCIM, MCP, Kubernetes manifests) loosely, field by field.
  { files: ["tests/**"], rules: { "@typescript-eslint/no-explicit-any": "off" } },
  { files: ["components/**"], rules: { "no-restricted-imports": ["error", { patterns: [NO_APP] }] } },
  { files: ["lib/**"], rules: { "no-restricted-imports": ["error", { patterns: [NO_APP, NO_COMPONENTS, NO_API_WRAPPER] }] } },
  { files: ["lib/audit/**"], rules: { "no-restricted-imports": ["error", { patterns: [NO_APP, NO_COMPONENTS, NO_API_WRAPPER, NO_HISTORY] }] } },
  { files: ["lib/integrations/**"], rules: { "no-restricted-imports": ["error", { patterns: [NO_APP, NO_COMPONENTS, NO_API_WRAPPER, NO_WORKFLOWS] }] } },
  { files: ["lib/authz/**"], rules: { "no-restricted-imports": ["error", { patterns: [NO_APP, NO_COMPONENTS, NO_API_WRAPPER, NO_AUTHZ_UPWARD] }] } },
  { files: ["lib/**", "app/**", "components/**"], ignores: ["lib/approvals/transition.ts"], rules: { "no-restricted-syntax": ["error", ...STATUS_WRITES] } },
  {
    files: [
      "lib/workflows/*/definition.ts",
      "lib/workflows/definitions.ts",
      "lib/workflows/types.ts",
      "lib/workflows/common-fields.ts",
      "lib/integrations/*/adapter.ts",
      "lib/integrations/*/availability.ts",
      "lib/integrations/adapter.ts",
      "lib/integrations/registry.ts",
    ],
    rules: { "@typescript-eslint/no-restricted-imports": ["error", { patterns: SERVER_CODE }] },
  },
);
