import { createGroup, listGroups } from "@/lib/identity/scim/groups";
import { listQuery } from "@/lib/identity/scim/listing";
import { scimMethodsNotAllowed, scimRoute } from "@/lib/identity/scim/route";

export const dynamic = "force-dynamic";

export const GET = scimRoute({ name: "scim.groups.list", run: async (_who, { url }) => listGroups(listQuery(url)) });

export const POST = scimRoute({ name: "scim.groups.create", body: true, status: 201, run: async (who, { body }) => createGroup(who, body) });

export const { PUT, PATCH, DELETE, OPTIONS } = scimMethodsNotAllowed("GET", "POST");
