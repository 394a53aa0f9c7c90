import { revealCredential } from "@/lib/approvals/engine";
import { apiRoute } from "@/lib/api/http";

export const dynamic = "force-dynamic";

/**
 * Hands the credential of an active grant to its requester, once (a POST: it cannot be
 * read twice). Afterwards only its metadata shows, on GET /requests/{id}.
 */
export const POST = apiRoute({
  name: "requests.credential",
  scope: "credentials:read",
  run: async (who, { params }) => {
    const { token, expiresAt } = await revealCredential(who, params.id!);
    return { credential: token, expiresAt };
  },
});
