import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { lastUseDue, tokenKeptFor } from "@/lib/identity/tokens";

/**
 * API tokens first used together (automation starting as a fleet, every caller after a
 * restart) must not all be read again, nor all write their last use, at the same moment: each
 * is kept for a time of its own, and each has its own minute for recording last use
 * (lib/identity/tokens.ts). A burst of them stalled every call in flight (bench:approvals).
 */
describe("an API token's times", () => {
  it("is kept for 20 to 30 s, never longer, each token for a time of its own", () => {
    const times = Array.from({ length: 200 }, () => tokenKeptFor());
    expect(Math.min(...times)).toBeGreaterThanOrEqual(20_000);
    expect(Math.max(...times)).toBeLessThanOrEqual(30_000);
    // Spread over the range, not bunched: both thirds of it at either end hold some.
    expect(times.filter((t) => t < 23_500).length).toBeGreaterThan(20);
    expect(times.filter((t) => t > 26_500).length).toBeGreaterThan(20);
  });

  it("records its last use at most once a minute, each token in a minute of its own (60 to 90 s after the last record)", () => {
    const now = new Date("2026-12-01T12:00:00Z");
    const ago = (ms: number) => new Date(now.getTime() - ms);
    const hashes = Array.from({ length: 100 }, () => createHash("sha256").update(randomBytes(32)).digest("hex"));
    for (const hash of hashes) {
      expect(lastUseDue(hash, null, now)).toBe(true);
      expect(lastUseDue(hash, ago(59_000), now)).toBe(false);
      expect(lastUseDue(hash, ago(60_000), now)).toBe(false);
      expect(lastUseDue(hash, ago(90_001), now)).toBe(true);
    }
    // At 75 s some are due and some are not: their minutes differ.
    const due = hashes.filter((hash) => lastUseDue(hash, ago(75_000), now)).length;
    expect(due).toBeGreaterThan(10);
    expect(due).toBeLessThan(90);
  });
});
