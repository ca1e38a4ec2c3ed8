/** A person in control: the policy file, its checks, and approvals (see the README). */
export { type Approval, type ApprovalDetails, Approvals, callHash } from "./approvals.ts";
export {
  decide,
  type Decision,
  isLoopback,
  type Subject,
  type TargetFacts,
  within,
} from "./check.ts";
export { type AskPerson, type GuardCall, PolicyGuard } from "./guard.ts";
export {
  compilePattern,
  DEFAULT_APPROVAL_TTL_MS,
  defaultPolicy,
  globMatch,
  parsePolicy,
  type Policy,
  type Rule,
} from "./rules.ts";
export { dequote, splitCommand } from "./split.ts";
export { type PolicyStatus, PolicyStore } from "./store.ts";
export { type SecretAsk, SecretAsks } from "./secret_asks.ts";
