import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import type { PublishedKeyPem } from "./keys";

/**
 * Key files for verifiers that read public keys from disk rather than from JWKS. HAProxy
 * 2.6 loads each `jwt_verify` key file once, at start or reload, and takes one key per
 * file, so its configuration names a fixed set of slots and tries each. Latchkey fills the
 * slots with every published key (the active one, the next one published ahead, retired
 * ones with live credentials), oldest first, and repeats the newest key in slots it does not
 * need, so a file HAProxy expects always holds a valid key and activation changes no file.
 */
export const KEY_FILE_SLOTS = 4;

export const keyFileName = (slot: number) => `latchkey-key-${slot}.pem`;

export interface KeyDirectoryWrite {
  /** Whether any file's content changed (a verifier reading the files should reload). */
  changed: boolean;
  /** The kids the files hold. */
  kids: string[];
  /** Published keys that found no slot (more published keys than slots). */
  left: string[];
}

/** The content of each slot, in slot order. */
export function keyFileContents(keys: PublishedKeyPem[]): string[] {
  if (keys.length === 0) throw new Error("No key is published, so there is nothing a verifier could accept.");
  return Array.from({ length: KEY_FILE_SLOTS }, (_, i) => {
    const key = keys[i] ?? keys.at(-1)!;
    return `# Latchkey signing key ${key.kid} (${i < keys.length ? key.status : `${key.status}, repeated in an unused slot`})\n${key.pem}`;
  });
}

/**
 * Writes the slots into `dir`, each through a rename so a reload never reads half a file,
 * and only where the content differs.
 */
export async function writeKeyDirectory(dir: string, keys: PublishedKeyPem[]): Promise<KeyDirectoryWrite> {
  await mkdir(dir, { recursive: true });
  let changed = false;
  const contents = keyFileContents(keys);
  for (const [i, content] of contents.entries()) {
    const file = path.join(dir, keyFileName(i + 1));
    const before = await readFile(file, "utf8").catch(() => null);
    if (before === content) continue;
    await writeFile(`${file}.tmp`, content, { mode: 0o644 });
    await rename(`${file}.tmp`, file);
    changed = true;
  }
  return { changed, kids: keys.slice(0, KEY_FILE_SLOTS).map((k) => k.kid), left: keys.slice(KEY_FILE_SLOTS).map((k) => k.kid) };
}
