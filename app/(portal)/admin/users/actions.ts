"use server";

import { z } from "zod";
import { safeAction } from "@/lib/actions/safe-action";
import { endSessions } from "@/lib/auth/users";

export const endSessionsAction = safeAction({
  name: "user.end-sessions",
  roles: ["admin"],
  input: z.object({ userId: z.string().min(1).max(64) }),
  run: (who, { userId }) => endSessions(who, userId),
});
