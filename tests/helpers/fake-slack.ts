import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { signSlackRequest } from "@/lib/integrations/slack/signature";

/**
 * A faithful stand-in for the parts of Slack the Slack app uses, over real HTTP, after
 * api.slack.com's method pages: `POST /api/<method>` with a bearer token, form-encoded
 * (nested arguments as JSON strings, as Slack's SDKs send them) or JSON; answers are HTTP
 * 200 `{ ok: true, ... }` or `{ ok: false, error: "<code>" }` (not_authed, invalid_auth,
 * channel_not_found, not_in_channel, no_text, invalid_blocks, message_not_found,
 * user_not_found, users_not_found, invalid_trigger_id, expired_trigger_id), and a rate
 * limit is HTTP 429 with `Retry-After` and `{ ok: false, error: "ratelimited" }`.
 * As Slack's side of interactivity it issues trigger ids (valid three seconds) and
 * response_urls, signs the requests it sends with the app's signing secret, and records
 * what arrives at the response_urls.
 */

export interface FakeSlackUser {
  id: string;
  email: string | null;
  confirmed?: boolean;
  deleted?: boolean;
  isBot?: boolean;
}

export interface PostedMessage {
  channel: string;
  ts: string;
  text: string;
  blocks: Record<string, unknown>[];
  metadata?: { event_type: string; event_payload: Record<string, string> };
  updates: number;
}

export interface FakeSlackCall {
  method: string;
  status: number;
  error?: string;
}

const TEAM = { id: "T0LATCHKEY", name: "Latchkey Test" };
const TRIGGER_SECONDS = 3;

export async function startFakeSlack(options: { token: string; signingSecret: string; users: FakeSlackUser[]; channels: string[] }) {
  const users = new Map(options.users.map((u) => [u.id, u]));
  const channels = new Set(options.channels);
  const messages = new Map<string, PostedMessage>();
  const calls: FakeSlackCall[] = [];
  const views: { triggerId: string; view: Record<string, unknown> }[] = [];
  const ephemeral: { responseUrl: string; body: Record<string, unknown> }[] = [];
  const triggers = new Map<string, number>();
  const forcedLimits = new Map<string, { retryAfter: number; times: number }>();
  let clock = 1_790_000_000;

  const dmOf = (userId: string) => `D${userId.slice(1)}`;

  function handle(method: string, args: Record<string, unknown>): Record<string, unknown> {
    const str = (k: string) => (typeof args[k] === "string" ? (args[k] as string) : undefined);
    switch (method) {
      case "auth.test":
        return { ok: true, url: "https://latchkey-test.slack.com/", team: TEAM.name, user: "latchkey", team_id: TEAM.id, user_id: "U0BOT", bot_id: "B0BOT" };
      case "chat.postMessage": {
        let channel = str("channel");
        if (!channel) return { ok: false, error: "channel_not_found" };
        if (channel.startsWith("U")) {
          if (!users.has(channel)) return { ok: false, error: "channel_not_found" };
          channel = dmOf(channel);
        } else if (!channels.has(channel))
          return { ok: false, error: channel.startsWith("C") || channel.startsWith("G") ? "not_in_channel" : "channel_not_found" };
        const blocks = args.blocks;
        if (blocks !== undefined && !Array.isArray(blocks)) return { ok: false, error: "invalid_blocks" };
        if (!str("text") && !blocks) return { ok: false, error: "no_text" };
        clock += 1;
        const ts = `${clock}.000100`;
        const message: PostedMessage = {
          channel,
          ts,
          text: str("text") ?? "",
          blocks: (blocks as Record<string, unknown>[]) ?? [],
          metadata: args.metadata as PostedMessage["metadata"],
          updates: 0,
        };
        messages.set(`${channel}:${ts}`, message);
        return { ok: true, channel, ts, message: { type: "message", text: message.text, blocks: message.blocks, ts, bot_id: "B0BOT" } };
      }
      case "chat.update": {
        const [channel, ts] = [str("channel"), str("ts")];
        if (!channel || !(channels.has(channel) || channel.startsWith("D"))) return { ok: false, error: "channel_not_found" };
        const message = ts ? messages.get(`${channel}:${ts}`) : undefined;
        if (!message) return { ok: false, error: "message_not_found" };
        if (args.blocks !== undefined && !Array.isArray(args.blocks)) return { ok: false, error: "invalid_blocks" };
        if (!str("text") && !args.blocks) return { ok: false, error: "no_text" };
        message.text = str("text") ?? message.text;
        message.blocks = (args.blocks as Record<string, unknown>[]) ?? message.blocks;
        message.updates += 1;
        return { ok: true, channel, ts, text: message.text, message: { text: message.text, blocks: message.blocks } };
      }
      case "users.info": {
        const user = users.get(str("user") ?? "");
        if (!user) return { ok: false, error: "user_not_found" };
        const profile = user.email ? { email: user.email } : {};
        return {
          ok: true,
          user: {
            id: user.id,
            team_id: TEAM.id,
            name: user.id.toLowerCase(),
            deleted: user.deleted ?? false,
            is_bot: user.isBot ?? false,
            is_email_confirmed: user.confirmed ?? true,
            profile,
          },
        };
      }
      case "users.lookupByEmail": {
        const email = str("email")?.toLowerCase();
        const user = [...users.values()].find((u) => u.email?.toLowerCase() === email && !u.deleted);
        return user ? { ok: true, user: { id: user.id, team_id: TEAM.id, profile: { email: user.email } } } : { ok: false, error: "users_not_found" };
      }
      case "views.open": {
        const triggerId = str("trigger_id") ?? "";
        const issued = triggers.get(triggerId);
        if (issued === undefined) return { ok: false, error: "invalid_trigger_id" };
        if (Date.now() - issued > TRIGGER_SECONDS * 1000) return { ok: false, error: "expired_trigger_id" };
        const view = args.view as Record<string, unknown> | undefined;
        if (!view || typeof view !== "object" || view.type !== "modal") return { ok: false, error: "invalid_arguments" };
        triggers.delete(triggerId);
        views.push({ triggerId, view });
        return { ok: true, view: { id: `V${randomBytes(4).toString("hex").toUpperCase()}`, ...view } };
      }
      default:
        return { ok: false, error: "unknown_method" };
    }
  }

  function parseArgs(contentType: string, body: string): Record<string, unknown> | null {
    if (contentType.startsWith("application/json")) return JSON.parse(body) as Record<string, unknown>;
    const args: Record<string, unknown> = {};
    for (const [key, value] of new URLSearchParams(body)) {
      // Nested arguments arrive as JSON strings.
      args[key] = ["blocks", "attachments", "metadata", "view"].includes(key) ? JSON.parse(value) : value;
    }
    return args;
  }

  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const send = (status: number, json: unknown, headers: Record<string, string> = {}) =>
        res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers }).end(JSON.stringify(json));
      const url = new URL(req.url ?? "/", "http://fake");
      if (url.pathname.startsWith("/actions/")) {
        ephemeral.push({ responseUrl: url.pathname, body: JSON.parse(body) as Record<string, unknown> });
        return res.writeHead(200, { "content-type": "text/plain" }).end("ok");
      }
      const method = url.pathname.replace(/^\/api\//, "");
      if (req.method !== "POST" || !url.pathname.startsWith("/api/")) return send(404, { ok: false, error: "unknown_method" });
      const record = (status: number, answer: Record<string, unknown>, headers?: Record<string, string>) => {
        calls.push({ method, status, ...(answer.ok ? {} : { error: String(answer.error) }) });
        send(status, answer, headers);
      };
      const forced = forcedLimits.get(method);
      if (forced && forced.times > 0) {
        forced.times -= 1;
        return record(429, { ok: false, error: "ratelimited" }, { "retry-after": String(forced.retryAfter) });
      }
      const auth = req.headers.authorization?.match(/^Bearer (\S+)$/)?.[1];
      if (!auth) return record(200, { ok: false, error: "not_authed" });
      if (auth !== options.token) return record(200, { ok: false, error: "invalid_auth" });
      let args: Record<string, unknown> | null;
      try {
        args = parseArgs(String(req.headers["content-type"] ?? ""), body);
      } catch {
        return record(200, { ok: false, error: "invalid_json" });
      }
      record(200, handle(method, args ?? {}));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  /** What Slack sends to the interactivity URL, signed as Slack signs it (or with `at` as its time). */
  function signed(payload: Record<string, unknown>, at = Math.floor(Date.now() / 1000), secret = options.signingSecret) {
    const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
    return {
      body,
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": String(at),
        "x-slack-signature": signSlackRequest(secret, at, body),
      },
    };
  }

  return {
    apiUrl: `${base}/api/`,
    team: TEAM,
    messages,
    calls,
    views,
    ephemeral,
    addUser: (user: FakeSlackUser) => users.set(user.id, user),
    /** The messages in a channel (or a user's DM), oldest first. */
    inChannel: (channel: string) => [...messages.values()].filter((m) => m.channel === channel),
    dmsTo: (userId: string) => [...messages.values()].filter((m) => m.channel === dmOf(userId)),
    /** The next `times` calls of `method` answer 429 with this Retry-After. */
    rateLimit: (method: string, retryAfter: number, times = 1) => forcedLimits.set(method, { retryAfter, times }),
    /** A button click by a Slack user, as Slack posts it: with a fresh trigger id and response_url. */
    click(userId: string, actionId: string, value: string, at?: number) {
      const triggerId = `${clock}.${randomBytes(6).toString("hex")}`;
      triggers.set(triggerId, Date.now());
      const responseUrl = `${base}/actions/${TEAM.id}/${randomBytes(6).toString("hex")}`;
      const payload = {
        type: "block_actions",
        team: { id: TEAM.id, domain: "latchkey-test" },
        user: { id: userId, username: userId.toLowerCase(), team_id: TEAM.id },
        api_app_id: "A0LATCHKEY",
        trigger_id: triggerId,
        response_url: responseUrl,
        container: { type: "message", channel_id: "C0APPROVALS" },
        actions: [{ type: "button", action_id: actionId, block_id: "latchkey_decision", value, action_ts: String(Date.now() / 1000) }],
      };
      return { ...signed(payload, at), responseUrl: new URL(responseUrl).pathname, triggerId };
    },
    /** The reject modal's submission with this comment, as Slack posts it. */
    submit(userId: string, view: Record<string, unknown>, comment: string | null) {
      const payload = {
        type: "view_submission",
        team: { id: TEAM.id, domain: "latchkey-test" },
        user: { id: userId, username: userId.toLowerCase(), team_id: TEAM.id },
        api_app_id: "A0LATCHKEY",
        view: { ...view, id: "V0MODAL", state: { values: { comment: { comment: { type: "plain_text_input", value: comment } } } } },
      };
      return signed(payload);
    },
    signed,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export type FakeSlack = Awaited<ReturnType<typeof startFakeSlack>>;
