import "server-only";
import { policy } from "../../policy/current";
import { probe, unsetSettings, type IntegrationHealth, type ServiceStatus } from "../adapter";
import { httpTicket, jiraIssue } from "./client";

/** A ticket key no tracker has: a 404 for it proves the service answers and accepts the credentials. */
const NO_SUCH_TICKET = "LATCHKEYHEALTH-0";

/** Each target's ticket check, asked for a ticket that cannot exist. */
export const health: IntegrationHealth = {
  services() {
    const checks = Object.values(policy().targets).flatMap((target): Promise<ServiceStatus>[] => {
      const rule = target.ticket;
      if (rule?.jira) {
        const { urlEnv, userEnv, tokenEnv } = rule.jira;
        const [baseUrl, user, token] = [process.env[urlEnv], process.env[userEnv], process.env[tokenEnv]];
        const run =
          baseUrl && user && token
            ? probe(async () => {
                await jiraIssue({ baseUrl, user, token }, NO_SUCH_TICKET);
              })
            : unsetSettings(`${urlEnv}, ${userEnv} or ${tokenEnv}`);
        return [run.then((r) => ({ system: "jira", subject: target.title, ...r, lastErrors: [] }))];
      }
      if (rule?.http) {
        const url = process.env[rule.http.urlEnv];
        const token = rule.http.tokenEnv ? process.env[rule.http.tokenEnv] : undefined;
        const run = url
          ? probe(async () => {
              await httpTicket(url, token, NO_SUCH_TICKET);
            })
          : unsetSettings(rule.http.urlEnv);
        return [run.then((r) => ({ system: "ticket-http", subject: target.title, ...r, lastErrors: [] }))];
      }
      return [];
    });
    return Promise.all(checks);
  },
};
