import { listQuery } from "@/lib/identity/scim/listing";
import { scimMethodsNotAllowed, scimRoute } from "@/lib/identity/scim/route";
import { createUser, listUsers } from "@/lib/identity/scim/users";

export const dynamic = "force-dynamic";

/** Lists people, e.g. filter=userName eq "alice@example.com" (how providers look a person up before creating them). */
export const GET = scimRoute({ name: "scim.users.list", run: async (_who, { url }) => listUsers(listQuery(url)) });

/** Provisions a person (or links the one who already signed in with that e-mail). */
export const POST = scimRoute({ name: "scim.users.create", body: true, status: 201, run: async (who, { body }) => createUser(who, body) });

export const { PUT, PATCH, DELETE, OPTIONS } = scimMethodsNotAllowed("GET", "POST");
