/**
 * The second half of `npm run build`, after `next build` wrote the standalone output
 * (.next/standalone: server.js and the node_modules Next.js traced). It compiles the
 * production entry (scripts/start.ts: migrations, worker, authorization listener, web
 * server) into .next/standalone/latchkey.mjs and copies in what it reads at run time, so
 * that directory alone is the application: an image copies it and nothing else.
 *
 * Packages Next.js keeps outside its bundles (serverExternalPackages) stay outside this
 * one too and are loaded from the traced node_modules; the build fails if one is missing.
 */
import { build } from "esbuild";
import { cpSync, existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

/** Manifests, under .next, that Next.js reads per request and treats as empty when missing (see below). */
const MANIFESTS_TAKEN_AS_EMPTY = ["server/subresource-integrity-manifest.json", "dynamic-css-manifest"];

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const out = path.join(root, ".next/standalone");
if (!existsSync(path.join(out, "server.js")))
  throw new Error('.next/standalone/server.js is missing: next.config.js must set output: "standalone" and `next build` must run first.');
const { default: nextConfig } = await import(path.join(root, "next.config.js"));
const external = nextConfig.serverExternalPackages;

await build({
  entryPoints: [path.join(root, "scripts/start.ts")],
  outfile: path.join(out, "latchkey.mjs"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // `server-only` resolves to its no-op under react-server, as in Next.js's server bundles.
  conditions: ["react-server"],
  external: [...external, ".prisma/client"],
  // Bundled CommonJS code calls require(); give the ES module one.
  banner: { js: 'import { createRequire as __latchkeyRequire } from "node:module"; const require = __latchkeyRequire(import.meta.url);' },
  legalComments: "none",
  logLevel: "warning",
});

// What the standalone server and the entry read from disk at run time.
const copies = [
  [".next/static", ".next/static"],
  ["public", "public"],
  ["prisma/migrations", "prisma/migrations"],
  ["policy", "policy"],
  // The web server's preload (cleartext HTTP/2 upgrade requests answered as HTTP/1.1) and what it requires.
  ...readdirSync(path.join(root, "lib/http"))
    .filter((f) => f.endsWith(".cjs"))
    .map((f) => [`lib/http/${f}`, `lib/http/${f}`]),
];
for (const [from, to] of copies) {
  rmSync(path.join(out, to), { recursive: true, force: true });
  cpSync(path.join(root, from), path.join(out, to), { recursive: true });
}
// Manifests Next.js's route runtime looks up at every request and takes as empty when the file is
// missing (handleMissing): subresource integrity (not used here) and dynamic CSS (none). A missing
// file is not cached, so every API call and page paid a failed read (an ENOENT thrown and caught,
// about 2.5% of the web server's CPU under bench:approvals). Written as the empty manifests they
// stand for, each is read once. One Next.js produces is never overwritten.
for (const manifest of MANIFESTS_TAKEN_AS_EMPTY) {
  const file = path.join(out, ".next", manifest);
  if (!existsSync(file)) writeFileSync(file, "{}\n");
}

const resolveFromOut = createRequire(path.join(out, "latchkey.mjs"));
for (const name of [...external, ".prisma/client/default"]) {
  try {
    resolveFromOut.resolve(name);
  } catch {
    throw new Error(`${name} is not in .next/standalone/node_modules: the production entry could not load it.`);
  }
}
console.log("[build] production entry: .next/standalone/latchkey.mjs");
