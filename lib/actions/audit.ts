"use server";

import { z } from "zod";
import { safeAction } from "@/lib/actions/safe-action";
import { verifyAuditChain } from "@/lib/audit/verify";

export const verifyChainAction = safeAction({
  name: "audit.verify",
  roles: ["admin", "auditor"],
  input: z.object({}),
  run: async () => {
    const result = await verifyAuditChain("manual");
    return { ok: result.ok, outcome: result.outcome, eventsChecked: result.eventsChecked, problem: result.problem };
  },
});
