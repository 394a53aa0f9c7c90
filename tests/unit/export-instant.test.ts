import { describe, expect, it } from "vitest";
import { isoInstant } from "@/lib/history/rows";

/**
 * Exports write each event's time from PostgreSQL's text without making a Date per row: the
 * text they write must be exactly what Date.toISOString() gave before, whatever the fraction.
 */
describe("isoInstant", () => {
  it("writes a timestamp(3)'s text exactly as Date.toISOString() does", () => {
    const instants = [
      "2026-11-29T16:49:33.123Z",
      "2026-11-29T16:49:33.120Z",
      "2026-11-29T16:49:33.100Z",
      "2026-11-29T16:49:33.000Z",
      "2026-01-01T00:00:00.001Z",
      "1999-12-31T23:59:59.999Z",
      "0001-01-01T00:00:00.000Z",
    ];
    for (const instant of instants) {
      // PostgreSQL's text for the same value: a space for the T, no zone, trailing zeros of the fraction dropped.
      const text = instant
        .replace("T", " ")
        .replace("Z", "")
        .replace(/\.?0+$/, "");
      expect(isoInstant(text), text).toBe(new Date(instant).toISOString());
    }
  });
});
