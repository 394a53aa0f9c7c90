"use server";

import { z } from "zod";
import { safeAction } from "@/lib/actions/safe-action";
import { createPersonalToken, revokeToken } from "@/lib/identity/tokens";

// Token fields are validated by lib/identity/tokens.ts (one schema for every caller).
export const createPersonalTokenAction = safeAction({
  name: "token.create-personal",
  input: z.object({ name: z.unknown(), scopes: z.unknown(), expiresInDays: z.unknown() }),
  run: (who, input) => createPersonalToken(who, input),
});

export const revokeTokenAction = safeAction({
  name: "token.revoke",
  input: z.object({ tokenId: z.string().min(1).max(64) }),
  run: async (who, { tokenId }) => {
    await revokeToken(who, tokenId);
    return { revoked: true };
  },
});
