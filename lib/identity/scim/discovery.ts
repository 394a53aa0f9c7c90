/**
 * What a SCIM client reads to learn what Latchkey supports (RFC 7643 §5–7): the service
 * provider's configuration, the two resource types and their schemas. It declares only
 * what Latchkey keeps and filters on, so a provider's attribute mapping shows the truth.
 */
import { scimNotFound } from "./errors";
import { CORE_GROUP, CORE_USER, ENTERPRISE_USER } from "./filter";
import { listResponse, location, MAX_COUNT } from "./listing";

const SPC = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema";

const base = () => location("Users", "x").replace(/\/Users\/x$/, "");

export function serviceProviderConfig() {
  return {
    schemas: [SPC],
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults: MAX_COUNT },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: false },
    authenticationSchemes: [
      {
        type: "oauthbearertoken",
        name: "Latchkey service token",
        description: "Authorization: Bearer <a service token with the scim scope only>",
        primary: true,
      },
    ],
    meta: { resourceType: "ServiceProviderConfig", location: `${base()}/ServiceProviderConfig` },
  };
}

const RESOURCE_TYPES = {
  User: { name: "User", endpoint: "/Users", description: "A person", schema: CORE_USER, schemaExtensions: [{ schema: ENTERPRISE_USER, required: false }] },
  Group: { name: "Group", endpoint: "/Groups", description: "A group the policy's roles and rules name", schema: CORE_GROUP, schemaExtensions: [] },
};

function resourceType(id: keyof typeof RESOURCE_TYPES) {
  return { schemas: [RESOURCE_TYPE], id, ...RESOURCE_TYPES[id], meta: { resourceType: "ResourceType", location: `${base()}/ResourceTypes/${id}` } };
}

export const resourceTypes = () => listResponse([resourceType("User"), resourceType("Group")], 2, 1);

export function resourceTypeById(id: string) {
  if (id !== "User" && id !== "Group") throw scimNotFound("ResourceType", id);
  return resourceType(id);
}

type Attribute = Record<string, unknown>;
function attr(name: string, type: string, extra: Attribute = {}): Attribute {
  return { name, type, multiValued: false, required: false, caseExact: false, mutability: "readWrite", returned: "default", uniqueness: "none", ...extra };
}
const sub = (name: string, type = "string", extra: Attribute = {}) => attr(name, type, extra);

const SCHEMAS: Record<string, { name: string; description: string; attributes: Attribute[] }> = {
  [CORE_USER]: {
    name: "User",
    description: "A person in Latchkey",
    attributes: [
      attr("userName", "string", { required: true, uniqueness: "server" }),
      attr("externalId", "string", { caseExact: true }),
      attr("name", "complex", { subAttributes: [sub("givenName"), sub("familyName")] }),
      attr("displayName", "string"),
      attr("emails", "complex", { multiValued: true, subAttributes: [sub("value"), sub("type"), sub("primary", "boolean")] }),
      attr("active", "boolean"),
      attr("groups", "complex", {
        multiValued: true,
        mutability: "readOnly",
        subAttributes: [sub("value", "string", { mutability: "readOnly" }), sub("display", "string", { mutability: "readOnly" })],
      }),
    ],
  },
  [CORE_GROUP]: {
    name: "Group",
    description: "A group the policy's roles and rules name",
    attributes: [
      attr("displayName", "string", { required: true, uniqueness: "server", caseExact: true }),
      attr("externalId", "string", { caseExact: true }),
      attr("members", "complex", {
        multiValued: true,
        subAttributes: [sub("value", "string", { mutability: "immutable" }), sub("display", "string", { mutability: "readOnly" })],
      }),
    ],
  },
  [ENTERPRISE_USER]: { name: "EnterpriseUser", description: "Accepted and not kept", attributes: [] },
};

function schema(id: string) {
  return { schemas: [SCHEMA], id, ...SCHEMAS[id]!, meta: { resourceType: "Schema", location: `${base()}/Schemas/${id}` } };
}

export const schemas = () => listResponse(Object.keys(SCHEMAS).map(schema), Object.keys(SCHEMAS).length, 1);

export function schemaById(id: string) {
  if (!Object.hasOwn(SCHEMAS, id)) throw scimNotFound("Schema", id);
  return schema(id);
}
