import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ScimError } from "@/lib/identity/scim/errors";
import { parseFilter, parsePath } from "@/lib/identity/scim/filter";
import { groupFromBody, patchGroup } from "@/lib/identity/scim/group-resource";
import { parsePatch } from "@/lib/identity/scim/patch-op";
import { patchUser, userFromBody, type UserState } from "@/lib/identity/scim/user-resource";

/** SCIM's filter grammar and PATCH interpretation, as pure functions, in the shapes providers send. */

const PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const USER = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const erin: UserState = {
  userName: "erin@example.com",
  externalId: "00u1",
  active: true,
  displayName: "Erin",
  givenName: "Erin",
  familyName: "Example",
  email: "erin@example.com",
};
const ops = (...operations: unknown[]) => parsePatch({ schemas: [PATCH], Operations: operations });

function scimTypeOf(work: () => unknown): string | undefined {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(ScimError);
    return (error as ScimError).scimType;
  }
  throw new Error("expected a refusal");
}

describe("filters", () => {
  it("reads the filters Okta and Entra send", () => {
    expect(parseFilter('userName eq "erin@example.com"')).toEqual([{ attr: "username", value: "erin@example.com" }]);
    expect(parseFilter('externalId eq "00u1" and active eq true')).toEqual([
      { attr: "externalid", value: "00u1" },
      { attr: "active", value: true },
    ]);
    expect(parseFilter(`${USER}:userName eq "a\\"b"`)).toEqual([{ attr: "username", value: 'a"b' }]);
    expect(parseFilter('members[value eq "u1"]')).toEqual([{ attr: "members.value", value: "u1" }]);
    expect(parseFilter('(displayName eq "x")')).toEqual([{ attr: "displayname", value: "x" }]);
  });

  it("refuses what it does not support as invalidFilter, never matching everything", () => {
    for (const filter of [
      'userName sw "e"',
      'userName eq "a" or userName eq "b"',
      "not (active eq true)",
      "userName pr",
      'userName eq "x',
      "",
      "eq",
      'userName eq "a" extra',
      "userName eq x",
    ]) {
      expect(
        scimTypeOf(() => parseFilter(filter)),
        filter,
      ).toBe("invalidFilter");
    }
  });

  it("reads PATCH paths with value filters and sub-attributes", () => {
    expect(parsePath('emails[type eq "work"].value')).toEqual({ attr: "emails", filter: [{ attr: "emails.type", value: "work" }], sub: "value" });
    expect(parsePath(`${ENTERPRISE}:manager`)).toEqual({ schema: ENTERPRISE, attr: "manager" });
    expect(parsePath("name.givenName")).toEqual({ attr: "name", sub: "givenname" });
    expect(scimTypeOf(() => parsePath("members[value eq"))).toBe("invalidPath");
  });
});

describe("PATCH of a User", () => {
  it("deactivates in Okta's shape and in Entra's, with the string False", () => {
    expect(patchUser(erin, ops({ op: "replace", value: { active: false } }), "id").active).toBe(false);
    expect(patchUser(erin, ops({ op: "Replace", path: "active", value: "False" }), "id").active).toBe(false);
    expect(patchUser({ ...erin, active: false }, ops({ op: "Replace", path: "active", value: "True" }), "id").active).toBe(true);
    expect(scimTypeOf(() => patchUser(erin, ops({ op: "replace", path: "active", value: "no" }), "id"))).toBe("invalidValue");
  });

  it("applies Entra's attribute updates, keys of a path-less value as paths, and ignores attributes Latchkey does not keep", () => {
    const next = patchUser(
      erin,
      ops(
        { op: "Replace", path: 'emails[type eq "work"].value', value: "Erin.New@Example.com" },
        { op: "Add", path: `${ENTERPRISE}:department`, value: "Risk" },
        { op: "Replace", value: { "name.familyName": "Renamed", displayName: "Erin R", title: "Lead" } },
        { op: "Remove", path: "externalId" },
      ),
      "id",
    );
    expect(next).toEqual({ ...erin, email: "erin.new@example.com", familyName: "Renamed", displayName: "Erin R", externalId: null });
  });

  it("refuses read-only, unknown and required attributes in the RFC's terms", () => {
    expect(scimTypeOf(() => patchUser(erin, ops({ op: "add", path: "groups", value: [{ value: "g" }] }), "id"))).toBe("mutability");
    expect(scimTypeOf(() => patchUser(erin, ops({ op: "replace", path: "id", value: "other" }), "id"))).toBe("mutability");
    expect(scimTypeOf(() => patchUser(erin, ops({ op: "replace", path: "favouriteColour", value: "red" }), "id"))).toBe("invalidPath");
    expect(scimTypeOf(() => patchUser(erin, ops({ op: "remove", path: "userName" }), "id"))).toBe("invalidValue");
    expect(scimTypeOf(() => patchUser(erin, ops({ op: "replace", path: `${ENTERPRISE}:shoeSize`, value: 1 }), "id"))).toBe("invalidPath");
  });

  it("reads a POST body: the primary e-mail, else a userName that is one", () => {
    expect(userFromBody({ schemas: [USER], userName: "E@X.com", emails: [{ value: "other@x.com" }, { value: "main@x.com", primary: true }] })).toMatchObject({
      userName: "e@x.com",
      email: "main@x.com",
      active: true,
    });
    expect(userFromBody({ schemas: [USER], userName: "e@x.com", active: "False" })).toMatchObject({ email: "e@x.com", active: false });
    expect(scimTypeOf(() => userFromBody({ schemas: [USER], userName: "e@x.com", UserName: "f@x.com" }))).toBe("invalidSyntax");
  });
});

describe("PATCH of a Group", () => {
  const group = { displayName: "engineering", externalId: null, members: ["u1", "u2"] };

  it("adds and removes members in Okta's and Entra's shapes, and renames with Okta's path-less replace", () => {
    expect(patchGroup(group, ops({ op: "remove", path: 'members[value eq "u1"]' }), "g").state.members).toEqual(["u2"]);
    expect(patchGroup(group, ops({ op: "Remove", path: "members", value: [{ value: "u2" }] }), "g")).toEqual({
      state: { ...group, members: ["u1"] },
      removals: ["u2"],
    });
    expect(patchGroup(group, ops({ op: "Add", path: "members", value: [{ value: "u3" }, { value: "u1" }] }), "g").state.members).toEqual(["u1", "u2", "u3"]);
    expect(patchGroup(group, ops({ op: "replace", value: { id: "g", displayName: "eng" } }), "g").state).toEqual({ ...group, displayName: "eng" });
    expect(patchGroup(group, ops({ op: "replace", path: "members", value: [{ value: "u9" }] }), "g").state.members).toEqual(["u9"]);
  });

  it("refuses what a group cannot be", () => {
    expect(scimTypeOf(() => patchGroup(group, ops({ op: "remove", path: "displayName" }), "g"))).toBe("invalidValue");
    expect(scimTypeOf(() => patchGroup(group, ops({ op: "add", path: "owner", value: "x" }), "g"))).toBe("invalidPath");
    expect(
      scimTypeOf(() =>
        groupFromBody({ schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"], displayName: "g", members: [{ value: "u1", type: "Group" }] }),
      ),
    ).toBe("invalidValue");
  });
});

describe("under random input", () => {
  const anything = fc.oneof(fc.jsonValue(), fc.string(), fc.constantFrom("__proto__", "\u0000", "\ud800", "False"));
  it("every parser and PATCH either succeeds or refuses with a ScimError, nothing else", () => {
    const grammar = fc
      .array(
        fc.oneof(
          fc.constantFrom(
            "userName",
            "members",
            "[",
            "]",
            "(",
            ")",
            "eq",
            "and",
            "or",
            '"x"',
            "true",
            ".",
            "value",
            "urn:ietf:params:scim:schemas:core:2.0:User:",
          ),
          fc.string(),
        ),
        { maxLength: 10 },
      )
      .map((p) => p.join(" "));
    fc.assert(
      fc.property(grammar, anything, fc.dictionary(fc.oneof(fc.constantFrom("op", "path", "value"), fc.string()), anything), (text, value, operation) => {
        for (const work of [
          () => parseFilter(text),
          () => parsePath(text),
          () => userFromBody(value),
          () => groupFromBody(value),
          () => patchUser(erin, parsePatch({ schemas: [PATCH], Operations: [operation] }), "id"),
          () =>
            patchGroup({ displayName: "g", externalId: null, members: [] }, parsePatch({ schemas: [PATCH], Operations: [{ ...operation, path: text }] }), "g"),
        ]) {
          try {
            work();
          } catch (error) {
            expect(error).toBeInstanceOf(ScimError);
          }
        }
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      }),
      { numRuns: 1000 },
    );
  }, 60_000);
});
