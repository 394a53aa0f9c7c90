"use server";

import { z } from "zod";
import { safeAction } from "@/lib/actions/safe-action";
import { actorOf } from "@/lib/audit/record";
import { rotateSigningKey } from "@/lib/credentials/keys";

export const rotateKeyAction = safeAction({
  name: "key.rotate",
  roles: ["admin"],
  input: z.object({ reason: z.string().trim().min(1, "Say why you rotate the key.").max(500) }),
  run: (who, { reason }) => rotateSigningKey(actorOf(who), reason),
});
