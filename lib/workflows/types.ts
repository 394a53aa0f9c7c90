import type { AccessRequest, User } from "@prisma/client";
import type { z } from "zod";
import type { Actor } from "../audit/record";
import type { Tx } from "../db";
import type { TargetDefinition } from "../policy/schema";

/**
 * The workflow plugin contract: the engine, the catalog and the integrations know workflows
 * only through these types. A workflow is one folder under lib/workflows/<id>/ with a
 * client-safe `definition.ts` (a WorkflowDefinition) and a `server.ts` that adds how it acts
 * (a WorkflowModule), registered with one line in lib/workflows/registry.ts.
 */

/** Variables of the environment, passed in so availability checks stay pure. */
export type Environment = Record<string, string | undefined>;

/** Why a workflow cannot be carried out on a target here (lib/workflows/availability.ts). */
export interface Unavailable {
  /** Said to everyone. */
  reason: string;
  /** Environment variables to set; said to admins only. */
  missing: string[];
}

/** What a workflow is, importable by the browser: the catalog card, the form and its schema. */
export interface WorkflowDefinition<Input extends WorkflowInput = WorkflowInput, Id extends string = string> {
  id: Id;
  title: string;
  description: string;
  category: string;
  risk: "low" | "medium" | "high";
  /** True when approval grants something that lasts (and so has a duration and expires). */
  lasting: boolean;
  /** Validates the form on the client and again on the server; unknown fields are refused. */
  inputSchema: z.ZodType<Input>;
  /**
   * For workflows that reach an outside system: why it cannot be carried out on this target
   * here (no block in the policy, settings missing from the environment), or null. Pure.
   */
  unavailable?(target: TargetDefinition, env: Environment): Unavailable | null;
}

/** What both kinds of workflow add to their definition on the server. */
interface WorkflowServerPart<Input extends WorkflowInput> {
  /** Undoes, inside the transaction that ends the grant (expiry or revocation), what lives in Latchkey's own database. */
  revoke(ctx: RevokeContext): Promise<void>;
  /**
   * For workflows that call an outside system: exactly what carrying out the request will
   * send, built by the same pure functions the call uses, so approvers see what they approve.
   */
  preview?(ctx: { requestId: string; requesterEmail: string; input: Input; target: TargetDefinition | undefined }): OutsidePreview;
}

/** Acts on approval, inside the approval's transaction: Latchkey's own records (a signed credential). */
export interface InlineWorkflow<Input extends WorkflowInput = WorkflowInput, Id extends string = string>
  extends WorkflowDefinition<Input, Id>, WorkflowServerPart<Input> {
  kind: "inline";
  /** Throwing rolls the approval back; ExecutionFailure fails the request instead, audited. */
  execute(ctx: ExecuteContext<Input>): Promise<ExecuteResult>;
  perform?: undefined;
  follow?: undefined;
  undo?: undefined;
}

/** Changes an outside system on the queue after approval, outside any transaction, retried with backoff. */
export interface QueuedWorkflow<Input extends WorkflowInput = WorkflowInput, Id extends string = string>
  extends WorkflowDefinition<Input, Id>, WorkflowServerPart<Input> {
  kind: "queued";
  execute?: undefined;
  /** Must be idempotent for one request. Throw ExecutionFailure for a failure no retry can fix. */
  perform(ctx: PerformContext<Input>): Promise<PerformResult>;
  /**
   * For one-off actions (not lasting): reports the state of what perform started, until it
   * ends. The request stays `executing` meanwhile, then becomes `completed` or `failed`.
   */
  follow?(ctx: FollowContext): Promise<{ state: string; done: boolean; failure?: string }>;
  /** Undoes perform at expiry, revocation or failure; idempotent, retried until it succeeds. */
  undo?(ctx: { request: AccessRequest; target: TargetDefinition | undefined }): Promise<void>;
}

/** A workflow as the engine runs it: either kind, told apart by `kind` (or by `perform`). */
export type WorkflowModule<Input extends WorkflowInput = WorkflowInput, Id extends string = string> = InlineWorkflow<Input, Id> | QueuedWorkflow<Input, Id>;

export interface PerformContext<Input> {
  request: AccessRequest;
  requester: User;
  target: TargetDefinition;
  input: Input;
  activatedAt: Date;
  expiresAt: Date;
}

export interface FollowContext {
  request: AccessRequest;
  target: TargetDefinition;
  now: Date;
  /** When Latchkey first saw the outside action in its current state. */
  stateSince: Date;
}

/** The calls a request will make on an outside system, in order, with what each sends. */
export interface OutsidePreview {
  system: string;
  calls: { method: string; path: string; body?: unknown; when?: string }[];
  notes: string[];
}

export interface PerformResult {
  audit: Record<string, string>;
  /** Shown to the requester once (e.g. a connection string), sealed until then. */
  secret?: string;
  /** What was started on the outside system (e.g. "dag/run-id") and its state, for one-off actions. */
  externalRef?: string;
  externalState?: string;
}

/** Fields every workflow form has, so the engine can apply the policy's limits. */
export interface WorkflowInput {
  targetId: string;
  durationMinutes?: number;
  justification: string;
  role?: string;
}

/**
 * Thrown by `execute` or `perform` when the action cannot be carried out for a known reason: the
 * request becomes `failed` with this message, recorded and audited. Any other error
 * rolls the whole approval back instead.
 */
export class ExecutionFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ExecutionFailure";
  }
}

/**
 * What `execute` gets: what `perform` gets, plus the approval's transaction and who approved.
 * The request's row is written once after `execute` returns (lib/approvals/transition.ts,
 * Moves), so within `execute` the database still shows it as it was before the approval:
 * use `request` as given, never read its status back.
 */
export interface ExecuteContext<Input> extends PerformContext<Input> {
  tx: Tx;
  actor: Actor;
}

export interface ExecuteResult {
  /** Safe-to-log facts for the audit trail (never secrets). */
  audit: Record<string, string>;
}

export interface RevokeContext {
  tx: Tx;
  request: AccessRequest;
  reason: "expired" | "revoked";
  at: Date;
}
