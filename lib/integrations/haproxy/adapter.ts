import { z } from "zod";
import { configNouns } from "../../config/nouns";
import { defineIntegration } from "../adapter";

/** HAProxy: the backend a route opens (policy), and the Runtime API socket and map file (environment). */
export const haproxy = defineIntegration({
  name: "haproxy",
  targetBlocks: {
    haproxy: z
      .strictObject({
        backend: z
          .string()
          .regex(/^[A-Za-z0-9._-]+$/, { message: "must be an HAProxy backend name" })
          .describe("The HAProxy backend a grant opens."),
      })
      .register(configNouns, { noun: "a target's haproxy block" })
      .optional()
      .describe("For routes through HAProxy: the backend a grant opens."),
  },
  settings: {
    LATCHKEY_HAPROXY_SOCKET: z.string().optional(),
    LATCHKEY_HAPROXY_MAP: z.string().optional(),
  },
  health: () => import("./health"),
});
