import { z } from "zod";
import { configNouns } from "../../config/nouns";
import { envName } from "../../policy/fields";
import { defineIntegration } from "../adapter";
import { PRIVILEGES } from "./privileges";

/** PostgreSQL grants: each database target names the variable holding its admin connection URL, and what each access role grants. */
export const postgres = defineIntegration({
  name: "postgres",
  targetBlocks: {
    database: z
      .strictObject({
        connectionEnv: envName.describe("Environment variable holding the database's admin connection URL."),
        schema: z.string().min(1).default("public").describe("Schema the granted privileges apply to."),
        privileges: z.record(z.string(), z.array(z.enum(PRIVILEGES)).min(1)).describe("Access role (e.g. read, write) -> the SQL privileges it grants."),
      })
      .register(configNouns, { noun: "a target's database block" })
      .optional()
      .describe("For database targets: where to connect (an environment variable, never the URL itself) and what each role may do."),
  },
  health: () => import("./health"),
});
