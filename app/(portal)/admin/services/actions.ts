"use server";

import { z } from "zod";
import { safeAction } from "@/lib/actions/safe-action";
import { createServiceIdentity, updateServiceIdentity } from "@/lib/api/service-identities";
import { createServiceToken } from "@/lib/api/tokens";

const serviceId = z.string().min(1).max(64);

// Fields are validated by lib/api (one schema for every caller); here only the shape.
export const createServiceAction = safeAction({
  name: "service.create",
  roles: ["admin"],
  input: z.object({ name: z.unknown(), description: z.unknown(), groups: z.unknown(), requestOnly: z.unknown() }),
  run: async (who, input) => ({ id: (await createServiceIdentity(who, input)).id }),
});

export const updateServiceAction = safeAction({
  name: "service.update",
  roles: ["admin"],
  input: z.object({ serviceId, groups: z.unknown(), requestOnly: z.unknown() }),
  run: async (who, { serviceId: id, ...input }) => ({ requestOnly: (await updateServiceIdentity(who, id, input)).requestOnly }),
});

export const createServiceTokenAction = safeAction({
  name: "service.create-token",
  roles: ["admin"],
  input: z.object({ serviceId, name: z.unknown(), scopes: z.unknown(), expiresInDays: z.unknown() }),
  run: (who, { serviceId: id, ...input }) => createServiceToken(who, id, input),
});
