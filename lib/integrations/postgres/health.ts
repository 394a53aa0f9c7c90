import "server-only";
import { probe, unsetSettings, type IntegrationHealth } from "../adapter";
import { postgresGrants } from "./database-grants";

/** A database target answers when its admin connection runs SELECT 1. */
export const health: IntegrationHealth = {
  target(target, env) {
    if (!target.database) return null;
    const url = env[target.database.connectionEnv];
    return url ? probe(() => postgresGrants(url).ping()) : unsetSettings(target.database.connectionEnv);
  },
};
