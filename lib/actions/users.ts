"use server";

import { z } from "zod";
import { safeAction } from "@/lib/actions/safe-action";
import { endSessions } from "@/lib/auth/users";
import { offboard, reactivate } from "@/lib/identity/offboarding";

export const endSessionsAction = safeAction({
  name: "user.end-sessions",
  roles: ["admin"],
  input: z.object({ userId: z.string().min(1).max(64) }),
  run: (who, { userId }) => endSessions(who, userId),
});

export const offboardAction = safeAction({
  name: "user.offboard",
  roles: ["admin"],
  input: z.object({ userId: z.string().min(1).max(64), reason: z.string().max(500) }),
  run: (who, input) => offboard(who, input),
});

export const reactivateAction = safeAction({
  name: "user.reactivate",
  roles: ["admin"],
  input: z.object({ userId: z.string().min(1).max(64) }),
  run: (who, { userId }) => reactivate(who, userId),
});
