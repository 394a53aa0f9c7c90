import { createCipheriv, createDecipheriv, createHmac, randomBytes } from "node:crypto";
import { env } from "../env";
import { unseal as unsealV1 } from "./seal";

/**
 * The encryption keyring. LATCHKEY_ENCRYPTION_KEY holds the current key, optionally followed
 * (comma-separated) by previous ones; LATCHKEY_ENCRYPTION_KEY_PREVIOUS may hold more. Only the
 * current key seals; every key in the ring opens. Each key has an id, a fingerprint that
 * reveals nothing about the key (HMAC of a fixed label under it), so a sealed value and a
 * chained audit event name the key they need, and a failure names the key that is missing
 * instead of an opaque "unable to authenticate data".
 *
 * Sealed format (AES-256-GCM, `context` bound as additional data so a value cannot be moved
 * to another row unnoticed): "v2.<key id>.<iv>.<tag>.<ciphertext>". Values sealed before keys
 * had ids ("v1.<iv>.<tag>.<ciphertext>") are opened by trying each key.
 */

export interface RingKey {
  id: string;
  key: Buffer;
}

export const KEY_VARIABLE = "LATCHKEY_ENCRYPTION_KEY";

export function keyId(key: Buffer): string {
  return `ek-${createHmac("sha256", key).update("latchkey encryption key id").digest("hex").slice(0, 16)}`;
}

let cached: { source: string; ring: RingKey[] } | undefined;

/** The ring, current key first, without duplicates. */
export function keyring(): RingKey[] {
  const { LATCHKEY_ENCRYPTION_KEY: current, LATCHKEY_ENCRYPTION_KEY_PREVIOUS: previous } = env();
  const source = `${current}|${previous ?? ""}`;
  if (cached?.source !== source) {
    const ring: RingKey[] = [];
    for (const text of [...current.split(","), ...(previous?.split(",") ?? [])].map((k) => k.trim()).filter(Boolean)) {
      const key = Buffer.from(text, "base64");
      const id = keyId(key);
      if (!ring.some((k) => k.id === id)) ring.push({ id, key });
    }
    cached = { source, ring };
  }
  return cached.ring;
}

export const currentKey = (): RingKey => keyring()[0]!;
export const ringKey = (id: string): RingKey | undefined => keyring().find((k) => k.id === id);
const heldIds = () =>
  keyring()
    .map((k) => k.id)
    .join(", ");

/** A sealed value this installation cannot open: its key is not in the ring, or no key opens it. */
export class KeyUnavailableError extends Error {
  constructor(
    readonly keyId: string | null,
    readonly what: string,
  ) {
    super(
      keyId
        ? `${what} is sealed under encryption key ${keyId}, which ${KEY_VARIABLE} does not hold (it holds ${heldIds()}). ` +
            `Put that key back: first in ${KEY_VARIABLE} if it should stay current, or after the current key (comma-separated) or in ${KEY_VARIABLE}_PREVIOUS while npm run keys:reseal moves everything to the new one.`
        : `${what} was sealed before keys had ids, and no key in ${KEY_VARIABLE} (${heldIds()}) opens it. ` +
            `Put the key it was sealed under back in ${KEY_VARIABLE} or ${KEY_VARIABLE}_PREVIOUS.`,
    );
    this.name = "KeyUnavailableError";
  }
}

export function seal(plaintext: string, context: string, key: RingKey = currentKey()): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key.key, iv);
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return ["v2", key.id, iv.toString("base64url"), cipher.getAuthTag().toString("base64url"), body.toString("base64url")].join(".");
}

function open(key: Buffer, iv: string, tag: string, body: string, context: string): string {
  const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(Buffer.from(tag, "base64url"));
  return Buffer.concat([decipher.update(Buffer.from(body, "base64url")), decipher.final()]).toString("utf8");
}

/** The key id a sealed value names (null for values sealed before keys had ids). */
export function sealedKeyId(sealed: string): string | null {
  const parts = sealed.split(".");
  return parts[0] === "v2" ? (parts[1] ?? null) : null;
}

/** Opens a sealed value with whichever key of the ring sealed it; `what` names it in errors. */
export function unseal(sealed: string, context: string, what = `The sealed value for ${context}`): string {
  const parts = sealed.split(".");
  if (parts[0] === "v2" && parts.length === 5) {
    const [, id, iv, tag, body] = parts as [string, string, string, string, string];
    const key = ringKey(id);
    if (!key) throw new KeyUnavailableError(id, what);
    try {
      return open(key.key, iv, tag, body, context);
    } catch {
      throw new Error(`${what} does not authenticate under encryption key ${id}, which ${KEY_VARIABLE} holds: it was altered or moved to another row.`);
    }
  }
  if (parts[0] === "v1" && parts.length === 4) {
    for (const { key } of keyring()) {
      try {
        return unsealV1(key, sealed, context);
      } catch {
        // The next key may be the one.
      }
    }
    throw new KeyUnavailableError(null, what);
  }
  throw new Error(`${what} is not a sealed value Latchkey recognises.`);
}

/** Whether a sealed value is already under the current key (nothing for a re-seal to do). */
export const sealedUnderCurrent = (sealed: string) => sealedKeyId(sealed) === currentKey().id;
