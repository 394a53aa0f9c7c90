// Lint for the whole codebase: typescript-eslint, React's hook rules, Next.js's rules, and the
// import boundaries that keep layers pointing downward (app -> components -> lib; an
// integration depends only on the workflow plugin contract, never on the workflow registry; the
// audit write side never imports the auditor's read side).
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
  { files: ["lib/**"], rules: { "no-restricted-imports": ["error", { patterns: [NO_APP, NO_COMPONENTS] }] } },
  { files: ["lib/audit/**"], rules: { "no-restricted-imports": ["error", { patterns: [NO_APP, NO_COMPONENTS, NO_HISTORY] }] } },
  { files: ["lib/integrations/**"], rules: { "no-restricted-imports": ["error", { patterns: [NO_APP, NO_COMPONENTS, NO_WORKFLOWS] }] } },
);
