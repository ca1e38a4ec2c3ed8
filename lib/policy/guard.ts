/**
 * The one place a call meets the policy: decide, refuse (audited, naming the rule and the
 * file), or get a person's approval — through the client when it can ask (elicitation),
 * otherwise through the approval page whose link the refusal carries.
 */
import { RsmError } from "../errors.ts";
import type { AuditLog } from "../audit.ts";
import { type Approval, type ApprovalDetails, type Approvals, callHash } from "./approvals.ts";
import { decide, type Subject, type TargetFacts } from "./check.ts";
import type { PolicyStore } from "./store.ts";
import type { Policy } from "./rules.ts";

/** How the caller can reach a person for one call. */
export interface AskPerson {
  /**
   * Asks the person through the client (MCP elicitation); undefined when the client cannot.
   * Resolves with the person's answer.
   */
  confirm?:
    | ((details: ApprovalDetails, ttlMs: number) => Promise<"accept" | "decline" | "cancel">)
    | undefined;
  /** The approval page's URL for a request (with a one-time login link). */
  approvalUrl(approval: Approval): string;
}

/** One call to check. */
export interface GuardCall {
  tool: string;
  readOnly: boolean;
  /** The validated arguments: an approval binds to them exactly. */
  args: unknown;
  subject?: Subject | undefined;
  /** The policy to check against (default: the one in force now, re-read if it changed). */
  policy?: Policy | undefined;
}

/** Options for {@link PolicyGuard}. */
export interface GuardOptions {
  store: PolicyStore;
  approvals: Approvals;
  audit?: AuditLog | undefined;
  /** Host names and user of a target (empty when it is unknown). */
  facts(kind: Subject["kind"], target: string): TargetFacts & { user?: string | undefined };
}

/** Checks calls against the policy in force. */
export class PolicyGuard {
  readonly store: PolicyStore;
  readonly approvals: Approvals;
  #opts: GuardOptions;
  /** The unfinished line typed into each shell (see {@link Subject.typedInto}). */
  #pending = new Map<string, string>();

  constructor(options: GuardOptions) {
    this.#opts = options;
    this.store = options.store;
    this.approvals = options.approvals;
  }

  /** Whether a tool may be listed now (read-only mode lists only read-only tools). */
  listed(readOnly: boolean): boolean {
    return readOnly || this.store.current().mode !== "read-only";
  }

  /**
   * Lets the call through, or throws an `RsmError` (`POLICY_DENIED`, `APPROVAL_DECLINED`,
   * `APPROVAL_NEEDED`) whose message names the rule and the policy file.
   */
  async authorize(call: GuardCall, ask: AskPerson): Promise<void> {
    const into = call.subject?.typedInto;
    if (into && call.subject?.typed !== undefined) {
      // check the shell's unfinished line together with what is typed now
      const full = (this.#pending.get(into) ?? "") + call.subject.typed;
      await this.#authorize({ ...call, subject: { ...call.subject, typed: full } }, ask);
      // what stays unfinished after this write (Ctrl-C / Ctrl-U start the line anew)
      // deno-lint-ignore no-control-regex
      const tail = full.split(/[\r\n\x03\x15]/).pop() ?? "";
      if (tail) this.#pending.set(into, tail.slice(-4096));
      else this.#pending.delete(into);
      if (this.#pending.size > 1000) this.#pending.delete(this.#pending.keys().next().value!);
      return;
    }
    return await this.#authorize(call, ask);
  }

  async #authorize(call: GuardCall, ask: AskPerson): Promise<void> {
    const policy = call.policy ?? this.store.current();
    const facts = call.subject
      ? this.#opts.facts(call.subject.kind, call.subject.target)
      : { hosts: [] };
    const d = decide(policy, { name: call.tool, readOnly: call.readOnly }, call.subject, facts);
    if (d.action === "allow") return;
    const target = call.subject?.target;
    if (d.action === "deny") {
      this.#opts.audit?.record({
        event: "policy_refused",
        tool: call.tool,
        target,
        command: describe(call.subject),
        rule: d.rule?.label ?? "mode",
      });
      throw new RsmError("POLICY_DENIED", d.message);
    }
    const hash = callHash(call.tool, { args: call.args, target });
    if (this.approvals.take(hash)) return;
    const details: ApprovalDetails = {
      tool: call.tool,
      target: target ?? "",
      user: call.subject?.user ?? facts.user,
      cwd: call.subject?.cwd,
      command: d.command,
      rule: `${d.rule.label} in ${policy.file}, confirm pattern ${JSON.stringify(d.pattern)}`,
    };
    if (ask.confirm) {
      const answer = await ask.confirm(details, policy.approvalTtlMs);
      this.approvals.record(
        details,
        answer === "accept" ? "approved" : answer === "decline" ? "denied" : "cancelled",
        "elicitation",
      );
      if (answer === "accept") return;
      throw new RsmError(
        "APPROVAL_DECLINED",
        `Not run: the person ${answer === "decline" ? "declined" : "cancelled"} the approval ` +
          `that ${details.rule} asks for. Do not retry unless the person asks you to.`,
      );
    }
    const a = this.approvals.request(hash, details, policy.approvalTtlMs);
    const minutes = Math.max(1, Math.round((a.expires - Date.now()) / 60_000));
    throw new RsmError(
      "APPROVAL_NEEDED",
      `Needs a person's approval: ${details.rule} matches ${JSON.stringify(d.command)}. ` +
        `This client cannot ask the person itself, so show them this link to open on the ` +
        `machine running rsm (valid ${minutes} min): ${ask.approvalUrl(a)} — once they approve, ` +
        `call ${call.tool} again with exactly the same arguments.`,
    );
  }
}

function describe(s: Subject | undefined): string | undefined {
  if (!s) return undefined;
  if (s.command !== undefined) return s.command;
  if (s.typed !== undefined) return s.typed;
  if (s.argv) return JSON.stringify(s.argv);
  if (s.writes) return s.writes.join(" ");
  if (s.bindAddr) return `listen on ${s.bindAddr}`;
  return undefined;
}
