import { randomBytes } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";

/**
 * The map file HAProxy loads at start. Runtime changes are mirrored here so a reload keeps
 * them; every write goes to a temporary file renamed over the old one, so HAProxy never
 * reads a half-written map.
 */
export async function readMapFile(path: string): Promise<Map<string, string>> {
  let text = "";
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const entries = new Map<string, string>();
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith("#")) continue;
    const [key, value] = trimmed.split(/\s+/);
    if (key && value) entries.set(key, value);
  }
  return entries;
}

export async function writeMapFile(path: string, entries: Map<string, string>): Promise<void> {
  const body = ["# Managed by Latchkey: credential id -> backend. Edits are overwritten.", ...[...entries].map(([k, v]) => `${k} ${v}`)].join("\n");
  const temporary = `${path}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(temporary, `${body}\n`, { mode: 0o644 });
  await rename(temporary, path);
}
