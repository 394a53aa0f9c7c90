import { describe, expect, it } from "vitest";
import { z } from "zod";
import { fieldErrorsOf } from "@/lib/errors";

// The one converter from zod issues to field errors, used by server actions, the API's body
// and query checks, the engine's form check and the browser's form alike.
const schema = z
  .object({
    name: z
      .string()
      .min(3, "Name too short.")
      .regex(/^[a-z]+$/, "Lower-case letters only."),
    scopes: z.array(z.enum(["read", "write"], { message: "Unknown scope." })).min(1, "Pick a scope."),
    owner: z.object({ email: z.email("Not an e-mail address.") }),
  })
  .refine((v) => v.name !== "root", { message: "That name is reserved." });

const issuesOf = (input: unknown) => schema.safeParse(input).error!.issues;

describe("fieldErrorsOf", () => {
  it("keeps the first message of each top-level field, and files whole-input issues under 'form'", () => {
    expect(fieldErrorsOf(issuesOf({ name: "A", scopes: ["read", "admin"], owner: { email: "x" } }))).toEqual({
      name: "Name too short.",
      scopes: "Unknown scope.",
      owner: "Not an e-mail address.",
    });
    expect(fieldErrorsOf(issuesOf({ name: "root", scopes: ["read"], owner: { email: "a@b.co" } }))).toEqual({ form: "That name is reserved." });
    expect(fieldErrorsOf(z.object({ a: z.string() }).safeParse(null).error!.issues)).toEqual({ form: expect.any(String) });
  });

  it("names another root key, and keys nested fields by their whole path when asked", () => {
    const issues = issuesOf({ name: "ab", scopes: ["read", "admin"], owner: { email: "x" } });
    expect(fieldErrorsOf(issues, { root: "body", nested: true })).toEqual({
      name: "Name too short.",
      "scopes.1": "Unknown scope.",
      "owner.email": "Not an e-mail address.",
    });
    expect(fieldErrorsOf(z.string().safeParse(1).error!.issues, { root: "body", nested: true })).toEqual({ body: expect.any(String) });
  });

  it("gives no errors for no issues", () => {
    expect(fieldErrorsOf([])).toEqual({});
  });
});
