import { z } from "zod";
import { configNouns } from "../../config/nouns";
import { envName, policyDuration } from "../../policy/fields";
import { defineIntegration } from "../adapter";

/** Airflow: each scheduled-job target names its DAG and the variables holding Airflow's URL and credentials. */
export const airflow = defineIntegration({
  name: "airflow",
  targetBlocks: {
    airflow: z
      .strictObject({
        dagId: z
          .string()
          .regex(/^[\w.-]+$/, { message: "must be a DAG id" })
          .describe("The Airflow DAG id."),
        version: z.enum(["v1", "v2"]).default("v2").describe("Airflow's REST API version."),
        urlEnv: envName.describe("Environment variable holding Airflow's base URL."),
        userEnv: envName.describe("Environment variable holding the Airflow user."),
        passwordEnv: envName.describe("Environment variable holding the Airflow password."),
        unpause: z
          .boolean()
          .default(false)
          .describe("Whether Latchkey may unpause a paused DAG to run it; if not, a run on a paused DAG fails the request, saying so and how to unpause it."),
        queuedTimeout: policyDuration.optional().describe("How long a run may stay queued before the request fails with that reason (default 1h)."),
      })
      .register(configNouns, { noun: "a target's airflow block" })
      .optional()
      .describe("For scheduled jobs: the Airflow DAG and where to reach Airflow (environment variable names, never values)."),
  },
  health: () => import("./health"),
});
