import "server-only";
import { z } from "zod";
import { decide, decisionRefusal } from "../../approvals/engine";
import { db } from "../../db";
import { env } from "../../env";
import { DomainError, isDatabaseUnavailable } from "../../errors";
import { logger } from "../../log";
import { policy } from "../../policy/current";
import { rolesForGroups, type Principal } from "../../policy/evaluate";
import { configuredSlackApp, SlackApiError, SlackRetryLater, type SlackApp } from "./client";
import { buttonsOn, requestSummary } from "./deliver";
import { APPROVE_ACTION, REJECT_ACTION, REJECT_COMMENT_ACTION, REJECT_COMMENT_BLOCK, REJECT_VIEW, rejectModal } from "./messages";
import { SLACK_SIGNATURE_HEADER, SLACK_TIMESTAMP_HEADER, slackSignatureRefusal } from "./signature";

/**
 * Slack's interactivity requests: Approve and Reject clicks and the reject modal's
 * submission. Each is verified as Slack's (signature and five-minute window), the Slack
 * user is mapped to a Latchkey person by the e-mail Slack has confirmed, and the decision
 * goes through the approval engine with every rule the portal applies. A refusal is told
 * to the clicker alone (an ephemeral message, or an error in the modal) and changes nothing.
 */

const log = logger("slack");
const MAX_BODY = 64 * 1024;

export type SlackAnswer = { status: number; json?: unknown; text?: string };

const party = { team: z.object({ id: z.string().max(32) }), user: z.object({ id: z.string().max(32) }) };
const payloadSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("block_actions"),
    ...party,
    trigger_id: z.string().max(200),
    response_url: z.string().url().max(500),
    actions: z.array(z.object({ action_id: z.string().max(255), value: z.string().max(200).optional() })).min(1),
  }),
  z.object({
    type: z.literal("view_submission"),
    ...party,
    view: z.object({
      callback_id: z.string().max(255),
      private_metadata: z.string().max(3000),
      state: z.object({ values: z.record(z.string(), z.record(z.string(), z.object({ value: z.string().nullish() }))) }),
    }),
  }),
]);
type Payload = z.infer<typeof payloadSchema>;

const plain = (status: number, text: string): SlackAnswer => ({ status, text });

/** Verifies, parses and answers one interactivity request (the raw form body and its headers). */
export async function handleSlackInteraction(body: string, headers: Headers, now = Date.now()): Promise<SlackAnswer> {
  const secret = env().LATCHKEY_SLACK_SIGNING_SECRET;
  const slack = configuredSlackApp();
  if (!secret || !slack) return plain(403, "The Slack app is off: set LATCHKEY_SLACK_BOT_TOKEN and LATCHKEY_SLACK_SIGNING_SECRET.");
  if (body.length > MAX_BODY) return plain(413, "The request body is larger than any Slack interaction.");
  const refusal = slackSignatureRefusal(secret, { signature: headers.get(SLACK_SIGNATURE_HEADER), timestamp: headers.get(SLACK_TIMESTAMP_HEADER) }, body, now);
  if (refusal) return plain(401, refusal);
  const raw = new URLSearchParams(body).get("payload");
  if (!raw) return plain(400, 'Expected a form body with a "payload" field.');
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return plain(400, 'The "payload" field is not JSON.');
  }
  const type = (json as { type?: unknown } | null)?.type;
  if (type !== "block_actions" && type !== "view_submission") return { status: 200 }; // Other interactions are not Latchkey's.
  const parsed = payloadSchema.safeParse(json);
  if (!parsed.success)
    return plain(400, `The ${String(type)} payload is malformed: ${parsed.error.issues[0]!.path.join(".")} ${parsed.error.issues[0]!.message}`);
  return parsed.data.type === "block_actions" ? onClick(slack, parsed.data) : onSubmit(slack, parsed.data);
}

type Mapped = { ok: true; who: Principal } | { ok: false; message: string };

/** The Latchkey person behind a Slack user: same e-mail, confirmed by Slack, active in Latchkey. */
async function personOf(slack: SlackApp, slackUserId: string): Promise<Mapped> {
  const user = await slack.user(slackUserId);
  if (user.deleted || user.isBot) return { ok: false, message: "Only people can decide on requests, not bots or deactivated Slack accounts." };
  if (!user.email)
    return {
      ok: false,
      message: "Latchkey cannot see your Slack e-mail address (the app needs the users:read.email scope), so it cannot tell who you are. Decide in the portal.",
    };
  if (!user.emailConfirmed)
    return {
      ok: false,
      message: `Slack has not confirmed your e-mail address ${user.email}, so Latchkey cannot take it as proof of who you are. Decide in the portal.`,
    };
  // People only: a service identity acts through its API tokens, never as a Slack user, whatever e-mail a Slack account is given.
  const person = await db.user.findFirst({ where: { email: { equals: user.email, mode: "insensitive" }, kind: "person" } });
  if (!person) return { ok: false, message: `No Latchkey account has the e-mail address ${user.email}. Sign in to the portal once, then try again.` };
  if (!person.active) return { ok: false, message: "Your Latchkey account is deactivated." };
  return {
    ok: true,
    who: { id: person.id, email: person.email, groups: person.groups, roles: rolesForGroups(policy(), person.groups), requestOnly: person.requestOnly },
  };
}

/** Why nobody may decide this request from Slack, or null. */
async function slackDecisionRefusal(requestId: string): Promise<string | null> {
  const request = await db.accessRequest.findUnique({ where: { id: requestId }, select: { targetId: true } });
  if (!request) return "This request no longer exists.";
  if (!buttonsOn(request.targetId))
    return `Decisions in Slack are switched off for this target; decide in the portal: ${env().NEXTAUTH_URL}/requests/${requestId}`;
  return null;
}

function failureMessage(error: unknown, context: Record<string, unknown>): string {
  if (error instanceof DomainError) return error.message;
  if (error instanceof SlackRetryLater) return "Slack is busy; try again in a minute.";
  if (error instanceof SlackApiError) {
    log.warn("Slack call failed during an interaction", { ...context, error: error.message });
    return `Latchkey could not ask Slack who you are (${error.code}); nothing was decided. Try again or decide in the portal.`;
  }
  if (!isDatabaseUnavailable(error)) log.error("Slack interaction failed", { ...context, error });
  return "Latchkey could not record this; nothing was decided. Try again or decide in the portal.";
}

/** Tells the clicker alone, through the response_url Slack gave with the click. */
async function ephemeral(responseUrl: string, text: string): Promise<void> {
  try {
    const answer = await fetch(responseUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ response_type: "ephemeral", replace_original: false, text }),
      signal: AbortSignal.timeout(5_000),
    });
    if (!answer.ok) log.warn("Slack response_url refused an ephemeral message", { status: answer.status });
  } catch (error) {
    log.warn("Slack response_url unreachable", { error: (error as Error).message });
  }
}

async function onClick(slack: SlackApp, payload: Extract<Payload, { type: "block_actions" }>): Promise<SlackAnswer> {
  const action = payload.actions[0]!;
  if (action.action_id !== APPROVE_ACTION && action.action_id !== REJECT_ACTION) return { status: 200 };
  const requestId = action.value;
  if (!requestId) return plain(400, "The button carries no request id.");
  const context = { requestId, slackUserId: payload.user.id, slackTeamId: payload.team.id, action: action.action_id };
  try {
    const refusal = await slackDecisionRefusal(requestId);
    if (refusal) return tell(payload.response_url, refusal);
    const mapped = await personOf(slack, payload.user.id);
    if (!mapped.ok) return tell(payload.response_url, mapped.message);
    if (action.action_id === REJECT_ACTION) {
      // Refused before the modal opens, so nobody writes a reason that cannot count.
      const cannot = await decisionRefusal(mapped.who, requestId);
      if (cannot) return tell(payload.response_url, cannot);
      await slack.openView(payload.trigger_id, rejectModal((await requestSummary(requestId))!));
      return { status: 200 };
    }
    await decide(mapped.who, { requestId, decision: "approve", comment: "" }, { via: "slack", slackUserId: payload.user.id, slackTeamId: payload.team.id });
    return { status: 200 };
  } catch (error) {
    return tell(payload.response_url, failureMessage(error, context));
  }
}

async function tell(responseUrl: string, text: string): Promise<SlackAnswer> {
  await ephemeral(responseUrl, text);
  return { status: 200 };
}

function jsonOrNull(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

const modalError = (message: string): SlackAnswer => ({
  status: 200,
  json: { response_action: "errors", errors: { [REJECT_COMMENT_BLOCK]: message.slice(0, 2000) } },
});

async function onSubmit(slack: SlackApp, payload: Extract<Payload, { type: "view_submission" }>): Promise<SlackAnswer> {
  if (payload.view.callback_id !== REJECT_VIEW) return { status: 200 };
  const meta = z.object({ requestId: z.string().min(1).max(200) }).safeParse(jsonOrNull(payload.view.private_metadata));
  if (!meta.success) return plain(400, "The modal does not say which request it is about.");
  const { requestId } = meta.data;
  const comment = payload.view.state.values[REJECT_COMMENT_BLOCK]?.[REJECT_COMMENT_ACTION]?.value ?? "";
  const context = { requestId, slackUserId: payload.user.id, slackTeamId: payload.team.id, action: "reject" };
  try {
    const refusal = await slackDecisionRefusal(requestId);
    if (refusal) return modalError(refusal);
    const mapped = await personOf(slack, payload.user.id);
    if (!mapped.ok) return modalError(mapped.message);
    await decide(mapped.who, { requestId, decision: "reject", comment }, { via: "slack", slackUserId: payload.user.id, slackTeamId: payload.team.id });
    return { status: 200 };
  } catch (error) {
    return modalError(failureMessage(error, context));
  }
}
