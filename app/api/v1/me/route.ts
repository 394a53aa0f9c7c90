import { apiRoute } from "@/lib/api/http";
import type { Me } from "@/lib/api/schemas";

export const dynamic = "force-dynamic";

/** Who this token speaks for, with its roles and scopes. */
export const GET = apiRoute({
  name: "me",
  scope: "requests:read",
  run: async (who): Promise<Me> => ({
    id: who.id,
    email: who.email,
    groups: who.groups,
    roles: who.roles,
    requestOnly: Boolean(who.requestOnly),
    token: { kind: who.via!.kind, tokenId: who.via!.tokenId, scopes: [...who.via!.scopes] },
  }),
});
