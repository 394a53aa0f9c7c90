import { ErrorCode, LogLevel, WebClient, type WebAPICallError } from "@slack/web-api";
import { env } from "../../env";

/**
 * The Slack app's view of Slack's Web API, through Slack's own client (@slack/web-api),
 * narrowed to the six methods Latchkey calls. The client's built-in waiting on rate limits
 * is switched off: a 429 becomes `SlackRetryLater`, and the notification outbox reschedules
 * the delivery after `Retry-After` instead of holding a worker for minutes.
 */

/** Slack answered 429: try again after `seconds`. */
export class SlackRetryLater extends Error {
  constructor(readonly seconds: number) {
    super(`rate limited by Slack; retrying after ${seconds} s`);
    this.name = "SlackRetryLater";
  }
}

/** Slack answered `ok: false` with `code` (e.g. channel_not_found, invalid_auth), or could not be reached. */
export class SlackApiError extends Error {
  constructor(
    readonly method: string,
    readonly code: string,
  ) {
    super(`Slack ${method}: ${code}`);
    this.name = "SlackApiError";
  }
}

export interface SlackMessageContent {
  text: string;
  blocks: unknown[];
}

export interface SlackUser {
  email: string | null;
  emailConfirmed: boolean;
  deleted: boolean;
  isBot: boolean;
}

export interface SlackApp {
  postMessage(
    channel: string,
    content: SlackMessageContent,
    metadata?: { event_type: string; event_payload: Record<string, string> },
  ): Promise<{ channel: string; ts: string }>;
  updateMessage(channel: string, ts: string, content: SlackMessageContent): Promise<void>;
  /** The Slack user's profile e-mail and whether Slack has confirmed it (users.info). */
  user(userId: string): Promise<SlackUser>;
  /** The Slack user id for an e-mail, or null when nobody in the workspace has it (users.lookupByEmail). */
  userIdByEmail(email: string): Promise<string | null>;
  openView(triggerId: string, view: Record<string, unknown>): Promise<void>;
  /** Who the token is (auth.test), for the health check. */
  whoAmI(): Promise<{ team: string; user: string }>;
}

function translate(method: string, error: unknown): Error {
  const e = error as WebAPICallError;
  if (e.code === ErrorCode.RateLimitedError) return new SlackRetryLater(e.retryAfter);
  if (e.code === ErrorCode.PlatformError) return new SlackApiError(method, String(e.data.error));
  if (e.code === ErrorCode.HTTPError) return new SlackApiError(method, `HTTP ${e.statusCode}`);
  if (e.code === ErrorCode.RequestError) return new SlackApiError(method, `unreachable (${e.original.message})`);
  return new SlackApiError(method, (error as Error).message);
}

async function call<T>(method: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw translate(method, error);
  }
}

export function slackApp(token: string, apiUrl: string): SlackApp {
  const web = new WebClient(token, {
    slackApiUrl: apiUrl.endsWith("/") ? apiUrl : `${apiUrl}/`,
    rejectRateLimitedCalls: true,
    retryConfig: { retries: 0 },
    timeout: 10_000,
    logLevel: LogLevel.ERROR,
  });
  return {
    async postMessage(channel, content, metadata) {
      const answer = await call("chat.postMessage", () =>
        web.chat.postMessage({ channel, text: content.text, blocks: content.blocks as never, unfurl_links: false, ...(metadata ? { metadata } : {}) }),
      );
      return { channel: answer.channel!, ts: answer.ts! };
    },
    async updateMessage(channel, ts, content) {
      await call("chat.update", () => web.chat.update({ channel, ts, text: content.text, blocks: content.blocks as never }));
    },
    async user(userId) {
      const answer = await call("users.info", () => web.users.info({ user: userId }));
      const user = answer.user ?? {};
      return {
        email: user.profile?.email ?? null,
        emailConfirmed: user.is_email_confirmed === true,
        deleted: user.deleted === true,
        isBot: user.is_bot === true,
      };
    },
    async userIdByEmail(email) {
      try {
        return (await web.users.lookupByEmail({ email })).user?.id ?? null;
      } catch (error) {
        const translated = translate("users.lookupByEmail", error);
        if (translated instanceof SlackApiError && translated.code === "users_not_found") return null;
        throw translated;
      }
    },
    async openView(triggerId, view) {
      await call("views.open", () => web.views.open({ trigger_id: triggerId, view: view as never }));
    },
    async whoAmI() {
      const answer = await call("auth.test", () => web.auth.test());
      return { team: String(answer.team ?? ""), user: String(answer.user ?? "") };
    },
  };
}

/** The configured Slack app, or null while LATCHKEY_SLACK_BOT_TOKEN is unset. */
export function configuredSlackApp(): SlackApp | null {
  const { LATCHKEY_SLACK_BOT_TOKEN: token, LATCHKEY_SLACK_API_URL: url } = env();
  return token ? slackApp(token, url) : null;
}
