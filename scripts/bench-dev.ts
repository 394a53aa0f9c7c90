/**
 * How fast development feels: the time from `npm run dev` (scripts/serve.ts) to "Latchkey is
 * running", then the time each page takes on its first visit (when next dev compiles it), and
 * on a second visit. Runs on a fresh data directory (the embedded PostgreSQL is initialised,
 * as on a first checkout) unless LATCHKEY_DATA_DIR is set.
 *   npm run bench:dev                               Turbopack (the default)
 *   LATCHKEY_DEV_BUNDLER=webpack npm run bench:dev  webpack, for comparison
 */
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort } from "./support/ports";

const root = process.cwd();
const fresh = !process.env.LATCHKEY_DATA_DIR;
const dataDir = process.env.LATCHKEY_DATA_DIR ?? mkdtempSync(path.join(os.tmpdir(), "latchkey-bench-dev-"));
// Readable by the unprivileged user the embedded PostgreSQL runs as when this runs as root.
if (fresh) chmodSync(dataDir, 0o755);
const port = await freePort();

/** Every page route under app/, dynamic segments filled with a placeholder id. */
function pages(dir = path.join(root, "app"), prefix = ""): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) {
      const segment = entry.startsWith("(") ? "" : `/${entry.replace(/^\[.*\]$/, "does-not-exist")}`;
      found.push(...pages(full, `${prefix}${segment}`));
    } else if (entry === "page.tsx") found.push(prefix || "/");
  }
  return found.sort();
}

const started = Date.now();
const child = spawn(path.join(root, "node_modules/.bin/tsx"), ["--conditions=react-server", "scripts/serve.ts"], {
  cwd: root,
  detached: true,
  stdio: ["ignore", "pipe", "pipe"],
  env: {
    ...process.env,
    PORT: String(port),
    LATCHKEY_DATA_DIR: dataDir,
    LATCHKEY_LOCAL_IDP_PORT: String(await freePort()),
    LATCHKEY_EMBEDDED_PG_PORT: String(await freePort()),
    NEXT_TELEMETRY_DISABLED: "1",
  },
});
let output = "";
await new Promise<void>((resolve, reject) => {
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.includes("Latchkey is running")) resolve();
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  child.once("exit", (code) => reject(new Error(`npm run dev exited (${code}):\n${output.slice(-3000)}`)));
});
const ready = Date.now() - started;
console.log(`${process.env.LATCHKEY_DEV_BUNDLER === "webpack" ? "webpack" : "Turbopack"}; ${fresh ? "fresh data directory" : dataDir}`);
console.log(
  output
    .split("\n")
    .filter((l) => /ready in/.test(l))
    .map((l) => `  ${l.trim()}`)
    .join("\n"),
);
console.log(`npm run dev -> "Latchkey is running": ${(ready / 1000).toFixed(1)} s`);

const rows: string[] = [];
for (const page of pages()) {
  const time = async () => {
    const t = Date.now();
    const response = await fetch(`http://localhost:${port}${page}`, { redirect: "manual" });
    await response.arrayBuffer();
    return { ms: Date.now() - t, status: response.status };
  };
  const first = await time();
  const second = await time();
  rows.push(`  ${page.padEnd(40)} first ${String(first.ms).padStart(6)} ms   again ${String(second.ms).padStart(5)} ms   (${first.status})`);
  if (page === "/signin") console.log(`first usable page (/signin) at ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
console.log(rows.join("\n"));

process.kill(-child.pid!, "SIGTERM");
await new Promise((resolve) => child.once("exit", resolve));
if (fresh) rmSync(dataDir, { recursive: true, force: true });
