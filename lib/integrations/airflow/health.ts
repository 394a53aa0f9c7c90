import "server-only";
import { probe, unsetSettings, type IntegrationHealth } from "../adapter";
import { airflowClient, AirflowError } from "./client";

/** Airflow answers when it reads a run that cannot exist: 404 proves reachability and credentials. */
export const health: IntegrationHealth = {
  target(target, env) {
    const a = target.airflow;
    if (!a) return null;
    const [baseUrl, username, password] = [env[a.urlEnv], env[a.userEnv], env[a.passwordEnv]];
    if (!baseUrl || !username || !password) return unsetSettings(`${a.urlEnv}, ${a.userEnv} or ${a.passwordEnv}`);
    return probe(async () => {
      await airflowClient({ baseUrl, username, password, version: a.version })
        .getDagRun(a.dagId, "latchkey__health_check")
        .catch((e: unknown) => {
          if (!(e instanceof AirflowError && e.status === 404)) throw e;
        });
    });
  },
};
