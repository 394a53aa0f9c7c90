import { describe, expect, it } from "vitest";
import { bearerToken } from "@/lib/http/plain";

// The one reader of `Authorization: Bearer <token>`, shared by the API, SCIM, forward-auth and metrics.
describe("bearerToken", () => {
  it("reads the token whatever the scheme's case and the spaces after it", () => {
    expect(bearerToken("Bearer abc.def.ghi")).toBe("abc.def.ghi");
    expect(bearerToken("bearer abc")).toBe("abc");
    expect(bearerToken("BEARER \t abc")).toBe("abc");
  });

  it("refuses other schemes, a missing or split token, and no header at all", () => {
    for (const header of ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer a b", "Bearerabc", " Bearer abc", "Token abc", ""]) {
      expect(bearerToken(header), JSON.stringify(header)).toBeNull();
    }
    expect(bearerToken(null)).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
  });
});
