import { deleteGroup, getGroup, patchGroupResource, replaceGroup } from "@/lib/identity/scim/groups";
import { projection } from "@/lib/identity/scim/listing";
import { scimMethodsNotAllowed, scimRoute } from "@/lib/identity/scim/route";

export const dynamic = "force-dynamic";

export const GET = scimRoute({ name: "scim.groups.get", run: async (_who, { params, url }) => getGroup(params.id!, projection(url)) });

export const PUT = scimRoute({ name: "scim.groups.replace", body: true, run: async (who, { params, body }) => replaceGroup(who, params.id!, body) });

/** Member add and remove; a person who leaves a group loses at once what it gave them. */
export const PATCH = scimRoute({ name: "scim.groups.patch", body: true, run: async (who, { params, body }) => patchGroupResource(who, params.id!, body) });

export const DELETE = scimRoute({ name: "scim.groups.delete", run: async (who, { params }) => deleteGroup(who, params.id!) });

export const { POST, OPTIONS } = scimMethodsNotAllowed("GET", "PUT", "PATCH", "DELETE");
