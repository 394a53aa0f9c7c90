import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineFixture } from "../helpers/engine-fixture";
import { startApiServer } from "../helpers/api-server";

/**
 * Hostile and random input against /scim/v2: bodies near the shapes providers send with
 * random values, random JSON, broken text, random filters and paths. Whatever comes in,
 * the answer is never a 500 or a stack trace, every refusal is in SCIM's error shape, and
 * a refused call changes nothing.
 */

let fx: Awaited<ReturnType<typeof engineFixture>>;
let api: Awaited<ReturnType<typeof startApiServer>>;
let token: string;
let userId: string;
let groupId: string;

const USER = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

beforeAll(async () => {
  fx = await engineFixture({ LATCHKEY_RATE_LIMIT_TOKEN: "100000", LATCHKEY_RATE_LIMIT_ADDRESS: "100000" });
  const tokens = await import("@/lib/identity/tokens");
  const services = await import("@/lib/identity/service-identities");
  const dave = await fx.user("dave@example.com", ["platform-admins"]);
  userId = (await fx.user("alice@example.com", ["engineering"])).id;
  const directory = await services.createServiceIdentity(dave, { name: "idp", description: "provisioning", groups: ["engineering"], requestOnly: true });
  token = (await tokens.createServiceToken(dave, directory.service!.id, { name: "scim", scopes: ["scim"], expiresInDays: 30 })).secret;
  api = await startApiServer("scim");
  const group = await fetch(`${api.url}/scim/v2/Groups`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/scim+json" },
    body: JSON.stringify({ schemas: [GROUP], displayName: "engineering" }),
  });
  groupId = ((await group.json()) as { id: string }).id;
});
afterAll(async () => {
  await api?.close();
  await fx?.close();
});

async function state() {
  const [users, scimUsers, groups, events, memberships] = await Promise.all([
    fx.db.user.count(),
    fx.db.scimUser.count(),
    fx.db.scimGroup.count(),
    fx.db.auditEvent.count(),
    fx.db.user.findMany({ select: { id: true, groups: true, active: true, email: true }, orderBy: { id: "asc" } }),
  ]);
  return { users, scimUsers, groups, events, memberships };
}

const TRICKY = fc.constantFrom(
  "\u202Egnp.exe",
  "a\u0000b",
  "\ud800",
  "<script>",
  "\uFEFFadmin",
  "Ａｌｉｃｅ",
  "x".repeat(5000),
  "__proto__",
  "constructor",
  "False",
  "True",
  "",
  " ",
  "null",
  "a@b",
  "alice@example.com",
  "engineering",
);
const scalar = fc.oneof(fc.string(), TRICKY, fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
const value = fc.oneof(
  scalar,
  fc.jsonValue(),
  fc.array(
    fc.record(
      { value: fc.oneof(scalar, fc.constant("ID")), type: fc.oneof(fc.constant("work"), fc.string()), primary: fc.oneof(fc.boolean(), fc.string()) },
      { requiredKeys: [] },
    ),
  ),
);
const attribute = fc.oneof(
  fc.constantFrom(
    "userName",
    "externalId",
    "active",
    "displayName",
    "name",
    "name.givenName",
    "emails",
    'emails[type eq "work"].value',
    "groups",
    "members",
    'members[value eq "ID"]',
    "id",
    "meta",
    "title",
    "phoneNumbers",
    `${ENTERPRISE}:department`,
    ENTERPRISE,
    "__proto__",
    "members[value eq",
    "a[b]c",
    "urn:x:y",
  ),
  fc.string(),
);
const resource = fc.record(
  {
    schemas: fc.oneof(fc.constant([USER]), fc.constant([GROUP]), fc.constant([USER, ENTERPRISE]), fc.array(fc.string()), scalar),
    userName: value,
    displayName: value,
    externalId: value,
    active: value,
    emails: value,
    members: value,
    name: fc.oneof(value, fc.dictionary(fc.string(), value)),
  },
  { requiredKeys: [] },
);
const patch = fc.record(
  {
    schemas: fc.oneof(fc.constant([PATCH]), scalar),
    Operations: fc.oneof(
      fc.array(
        fc.record(
          {
            op: fc.oneof(fc.constantFrom("add", "Replace", "remove", "move"), fc.string()),
            path: fc.oneof(attribute, scalar),
            value: fc.oneof(value, fc.dictionary(attribute, value)),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 4 },
      ),
      scalar,
    ),
  },
  { requiredKeys: [] },
);
const body = fc.oneof(
  resource.map((b) => JSON.stringify(b)),
  patch.map((b) => JSON.stringify(b)),
  fc.jsonValue().map((b) => JSON.stringify(b)),
  fc.string(),
  fc.constantFrom("{", "[", "null", '{"schemas":', "\u0000", '{"Operations":[{"op":"add","value":{"active":1e309}}]}'),
);
const filterPart = fc.oneof(
  fc.constantFrom(
    "userName",
    "externalId",
    "displayName",
    "active",
    "emails.value",
    "members.value",
    'members[value eq "ID"]',
    "title",
    "id",
    "(",
    ")",
    "[",
    "]",
    "and",
    "or",
    "not",
    "eq",
    "co",
    "pr",
    "true",
    "null",
    '"',
    '"alice@example.com"',
    '"\\u0000"',
    '"\\x"',
    "1e400",
  ),
  fc.string(),
);
const filter = fc.array(filterPart, { maxLength: 8 }).map((parts) => parts.join(" "));
const route = fc.constantFrom(
  ["POST", "/Users"],
  ["PUT", "/Users/{user}"],
  ["PATCH", "/Users/{user}"],
  ["GET", "/Users/{user}"],
  ["POST", "/Groups"],
  ["PUT", "/Groups/{group}"],
  ["PATCH", "/Groups/{group}"],
  ["DELETE", "/Users/{random}"],
  ["DELETE", "/Groups/{random}"],
  ["GET", "/Users?filter={filter}"],
  ["GET", "/Groups?filter={filter}&excludedAttributes=members"],
  ["GET", "/Users?startIndex={n}&count={n}"],
);
const contentType = fc.constantFrom("application/scim+json", "application/json; charset=utf-8", "text/plain", "", "application/scim+json; charset=utf-8");
const randomId = fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), fc.constantFrom("..%2f..%2fetc", "%00", "' OR 1=1 --", "9".repeat(400), "__proto__"));

describe("SCIM under hostile input", () => {
  it("never answers 500 or a stack trace; refusals are SCIM errors and change nothing", async () => {
    await fc.assert(
      fc.asyncProperty(
        route,
        body,
        contentType,
        filter,
        randomId,
        fc.string({ maxLength: 12 }),
        async ([method, template], payload, type, f, rawId, number) => {
          const target = template!
            .replace("{group}", groupId)
            .replace("{user}", userId)
            .replace("{random}", encodeURIComponent(rawId))
            .replace("{filter}", encodeURIComponent(f.replaceAll("ID", userId)))
            .replaceAll("{n}", encodeURIComponent(number));
          const sent = payload.replaceAll('"ID"', JSON.stringify(userId));
          const before = await state();
          const response = await fetch(`${api.url}/scim/v2${target}`, {
            method,
            headers: { authorization: `Bearer ${token}`, ...(type ? { "content-type": type } : {}) },
            body: ["POST", "PUT", "PATCH"].includes(method!) ? sent : undefined,
          });
          const text = await response.text();
          const cell = `${method} ${target} ${sent.slice(0, 300)}: ${text.slice(0, 300)}`;
          expect(response.status, cell).toBeLessThan(500);
          expect(text, cell).not.toMatch(/\n\s+at |node_modules|PrismaClient|prisma\.|SELECT |INSERT /);
          if (response.status >= 400) {
            expect(response.headers.get("content-type"), cell).toMatch(/^application\/scim\+json/);
            expect(JSON.parse(text), cell).toMatchObject({
              schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"],
              status: String(response.status),
              detail: expect.any(String),
            });
            expect(await state(), cell).toEqual(before);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
