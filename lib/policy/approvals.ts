/**
 * Approvals of calls that a policy `confirm` pattern matched. An approval binds to a hash of
 * the exact call (tool and arguments) and is used once. A request waits for a person on the
 * approval page for a limited time (10 minutes unless the policy says otherwise); every
 * approval, refusal and expiry is written to the audit log.
 */
import { createHash } from "node:crypto";
import type { AuditLog } from "../audit.ts";

/** What the person is asked to approve. */
export interface ApprovalDetails {
  tool: string;
  target: string;
  user?: string | undefined;
  cwd?: string | undefined;
  /** The exact command (or what the call does). */
  command: string;
  /** The rule and pattern that asked for approval, e.g. `rule #1: re:^sudo\b`. */
  rule: string;
}

/** One approval request. */
export interface Approval extends ApprovalDetails {
  id: string;
  hash: string;
  state: "pending" | "approved" | "denied" | "expired" | "used";
  created: number;
  /** While pending: when the page stops accepting a decision. Once approved: when it lapses. */
  expires: number;
}

/**
 * The hash an approval binds to: SHA-256 over the tool name and the arguments with object keys
 * sorted, so the same call in any key order matches and any changed argument does not.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(callHash("ssh_exec", { b: 1, a: 2 }), callHash("ssh_exec", { a: 2, b: 1 }));
 * ```
 */
export function callHash(tool: string, args: unknown): string {
  return createHash("sha256").update(canonical([tool, args])).digest("hex");
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${
      Object.keys(v).sort().map((k) =>
        `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`
      ).join(",")
    }}`;
  }
  return JSON.stringify(v) ?? "null";
}

/** The daemon's approval requests (memory only). */
export class Approvals {
  #byId = new Map<string, Approval>();
  #audit: AuditLog | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(audit?: AuditLog) {
    this.#audit = audit;
  }

  /**
   * Uses up an approval the person gave for exactly this call (`hash`). Returns it once; a
   * second call with the same hash needs a new approval.
   */
  take(hash: string): Approval | undefined {
    this.sweep();
    for (const a of this.#byId.values()) {
      if (a.hash === hash && a.state === "approved") {
        a.state = "used";
        return a;
      }
    }
    return undefined;
  }

  /** The pending request for this call, or a new one valid for `ttlMs`. */
  request(hash: string, details: ApprovalDetails, ttlMs: number): Approval {
    this.sweep();
    for (const a of this.#byId.values()) {
      if (a.hash === hash && a.state === "pending") return a;
    }
    const now = Date.now();
    const a: Approval = {
      ...details,
      id: crypto.randomUUID(),
      hash,
      state: "pending",
      created: now,
      expires: now + ttlMs,
    };
    this.#byId.set(a.id, a);
    this.#audit?.record({
      event: "approval_requested",
      tool: a.tool,
      target: a.target,
      command: a.command,
      rule: a.rule,
    });
    return a;
  }

  /** One request by id (expired ones show as expired). */
  get(id: string): Approval | undefined {
    this.sweep();
    return this.#byId.get(id);
  }

  /** Requests still waiting for a person. */
  pending(): Approval[] {
    this.sweep();
    return [...this.#byId.values()].filter((a) => a.state === "pending");
  }

  /**
   * Records a person's decision (`via` says where: "page" or "elicitation"). Throws when the
   * request is unknown, expired or already decided.
   */
  decide(id: string, approve: boolean, via: string): Approval {
    const a = this.get(id);
    if (!a) throw new Error("no such approval request");
    if (a.state !== "pending") throw new Error(`this request is already ${a.state}`);
    a.state = approve ? "approved" : "denied";
    this.record(a, approve ? "approved" : "denied", via);
    return a;
  }

  /** Writes one audit line for a decision on `details` (also for elicitation answers). */
  record(details: ApprovalDetails, outcome: string, via: string): void {
    this.#audit?.record({
      event: `approval_${outcome}`,
      tool: details.tool,
      target: details.target,
      command: details.command,
      rule: details.rule,
      via,
    });
  }

  /** Marks lapsed requests expired (audited) and forgets old ones. */
  sweep(): void {
    const now = Date.now();
    for (const a of this.#byId.values()) {
      if ((a.state === "pending" || a.state === "approved") && a.expires <= now) {
        a.state = "expired";
        this.record(a, "expired", "timeout");
      } else if (a.state !== "pending" && a.state !== "approved" && a.expires + 3_600_000 < now) {
        this.#byId.delete(a.id);
      }
    }
  }

  /** Sweeps once a second so expiries reach the audit log on time. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.sweep(), 1000);
    Deno.unrefTimer(this.#timer);
  }

  /** Stops the sweeper. Idempotent. */
  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
