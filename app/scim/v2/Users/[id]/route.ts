import { projection } from "@/lib/identity/scim/listing";
import { scimMethodsNotAllowed, scimRoute } from "@/lib/identity/scim/route";
import { deleteUser, getUser, patchUserResource, replaceUser } from "@/lib/identity/scim/users";

export const dynamic = "force-dynamic";

export const GET = scimRoute({ name: "scim.users.get", run: async (_who, { params, url }) => getUser(params.id!, projection(url)) });

export const PUT = scimRoute({ name: "scim.users.replace", body: true, run: async (who, { params, body }) => replaceUser(who, params.id!, body) });

/** Deactivation (active: false) ends the person's access at once, through the directory. */
export const PATCH = scimRoute({ name: "scim.users.patch", body: true, run: async (who, { params, body }) => patchUserResource(who, params.id!, body) });

export const DELETE = scimRoute({ name: "scim.users.delete", run: async (who, { params }) => deleteUser(who, params.id!) });

export const { POST, OPTIONS } = scimMethodsNotAllowed("GET", "PUT", "PATCH", "DELETE");
