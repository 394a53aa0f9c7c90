/**
 * The approval engine: every change to a request goes through here, in one transaction
 * with its audit events. Callers (server actions, API routes, the worker) authenticate;
 * the engine authorizes against the policy and the request itself.
 *
 * A façade: each phase of a request's life is a file of its own beside this one
 * (create, decide, execution, grants for how requests and grants end, reveal), sharing
 * lifecycle.ts's transaction and transition.ts, the one writer of a request's status (which
 * audits each move and queues the jobs that follow it). actorOf lives with the audit actor
 * type and is re-exported here for older callers.
 */

export { actorOf } from "../audit/record";
export { approvalStateOf } from "./lifecycle";
export { breakGlass, createRequest, requestExtension, reviewBreakGlass, type CreateHooks } from "./create";
export { decide, decisionRefusal, type DecisionChannel, type DecisionInput } from "./decide";
export { followQueued, performQueued, undoQueued } from "./execution";
export {
  cancelForDirectory,
  cancelRequest,
  expireGrant,
  expirePending,
  notifyExpiring,
  revokeForDirectory,
  revokeGrant,
  stopForDirectory,
  sweepExpiredGrants,
} from "./grants";
export { revealCredential } from "./reveal";
