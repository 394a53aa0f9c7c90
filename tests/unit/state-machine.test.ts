import type { RequestStatus } from "@prisma/client";
import { describe, expect, it } from "vitest";
import { canTransition, TERMINAL, TRANSITIONS } from "@/lib/approvals/state-machine";

const ALL = Object.keys(TRANSITIONS) as RequestStatus[];

const ALLOWED: [RequestStatus, RequestStatus][] = [
  ["pending", "approved"],
  ["pending", "rejected"],
  ["pending", "cancelled"],
  ["pending", "expired"],
  ["approved", "executing"],
  ["approved", "failed"],
  ["executing", "active"],
  ["executing", "completed"],
  ["executing", "failed"],
  ["active", "expired"],
  ["active", "revoked"],
  ["active", "failed"],
];

describe("request state machine", () => {
  it("covers every status", () => {
    expect(ALL.sort()).toEqual(["active", "approved", "cancelled", "completed", "executing", "expired", "failed", "pending", "rejected", "revoked"]);
  });

  for (const from of ALL) {
    for (const to of ALL) {
      const allowed = ALLOWED.some(([f, t]) => f === from && t === to);
      it(`${from} → ${to} is ${allowed ? "allowed" : "refused"}`, () => {
        expect(canTransition(from, to)).toBe(allowed);
      });
    }
  }

  it("terminal states lead nowhere", () => {
    for (const status of TERMINAL) expect(TRANSITIONS[status]).toEqual([]);
  });
});
