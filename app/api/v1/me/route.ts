import { apiRoute } from "@/lib/api/http";

export const dynamic = "force-dynamic";

/** Who this token speaks for, with its roles and scopes. */
export const GET = apiRoute({
  name: "me",
  scope: "requests:read",
  run: async (who) => ({ id: who.id, email: who.email, groups: who.groups, roles: who.roles, requestOnly: Boolean(who.requestOnly), token: who.via }),
});
