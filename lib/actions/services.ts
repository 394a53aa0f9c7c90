"use server";

import { z } from "zod";
import { safeAction } from "@/lib/actions/safe-action";
import { createServiceIdentity, updateServiceIdentity, type ServiceOutcome } from "@/lib/identity/service-identities";
import { createServiceToken } from "@/lib/identity/tokens";
import { decideServiceChange } from "@/lib/identity/service-changes";

const serviceId = z.string().min(1).max(64);

/** What the form shows: done, or waiting for another admin. */
const outcomeOf = (result: ServiceOutcome) =>
  result.outcome === "done" ? { proposed: false, id: result.service.id } : { proposed: true, id: result.change.id };

// Fields are validated by lib/identity/service-identities.ts (one schema for every caller); here only the shape.
export const createServiceAction = safeAction({
  name: "service.create",
  roles: ["admin"],
  input: z.object({ name: z.unknown(), description: z.unknown(), groups: z.unknown(), requestOnly: z.unknown(), owners: z.unknown().optional() }),
  run: async (who, input) => outcomeOf(await createServiceIdentity(who, input)),
});

export const updateServiceAction = safeAction({
  name: "service.update",
  roles: ["admin"],
  input: z.object({ serviceId, groups: z.unknown(), requestOnly: z.unknown() }),
  run: async (who, { serviceId: id, ...input }) => outcomeOf(await updateServiceIdentity(who, id, input)),
});

export const decideServiceChangeAction = safeAction({
  name: "service.decide-change",
  roles: ["admin"],
  input: z.object({ changeId: z.unknown(), decision: z.unknown(), comment: z.unknown() }),
  run: async (who, input) => ({ status: (await decideServiceChange(who, input)).status }),
});

export const createServiceTokenAction = safeAction({
  name: "service.create-token",
  roles: ["admin"],
  input: z.object({ serviceId, name: z.unknown(), scopes: z.unknown(), expiresInDays: z.unknown() }),
  run: (who, { serviceId: id, ...input }) => createServiceToken(who, id, input),
});
