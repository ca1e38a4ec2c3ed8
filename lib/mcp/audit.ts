/**
 * The audit line of one tool call (lib/audit.ts writes `audit.log`). A tool declares what to
 * record ({@link ToolDef.audit}); the registry writes the line once, when the call ends, with
 * its error if it failed; for work that became a job, `runLong` writes it when the work ends,
 * with the exit code. No tool writes its own try/finally around the audit log.
 */
import type { AuditEntry, AuditLog } from "../audit.ts";

/** What a call's audit line says it acted on. */
export interface AuditSubject {
  /** Session id, Docker host id, or `host/container`, `session/shell`. */
  target: string;
  command?: string | undefined;
  path?: string | undefined;
}

/** How a call ended, as the audit line records it. */
export interface AuditOutcome {
  exit_code?: number | null | undefined;
  error?: string | undefined;
}

/** One call's audit line (see the module comment). */
export class CallAudit {
  #subject: AuditSubject | undefined;
  #extra: AuditOutcome = {};
  #deferred = false;
  #written = false;

  constructor(readonly log: AuditLog, readonly tool: string, subject?: AuditSubject) {
    this.#subject = subject;
  }

  /** What is known only once the work ran: the opened shell, the signalled job, an exit code. */
  set(fields: Partial<AuditSubject> & AuditOutcome): void {
    const { exit_code, error, ...subject } = fields;
    this.#subject = { target: "", ...this.#subject, ...subject };
    if (exit_code !== undefined) this.#extra.exit_code = exit_code;
    if (error !== undefined) this.#extra.error = error;
  }

  /** Writes a line of its own (one per host of a fleet call); the call's line is not written. */
  record(entry: AuditSubject & AuditOutcome): void {
    this.#written = true;
    this.log.record({ tool: this.tool, ...entry });
  }

  /** The work goes on after the call (a job): {@link end} is called when the work ends. */
  defer(): void {
    this.#deferred = true;
  }

  get deferred(): boolean {
    return this.#deferred;
  }

  /** Writes the line (once; nothing when the tool declared nothing to record). */
  end(outcome: AuditOutcome = {}): void {
    if (this.#written || !this.#subject) return;
    this.#written = true;
    const entry: AuditEntry = { tool: this.tool, ...this.#subject, ...this.#extra };
    if (outcome.exit_code !== undefined) entry.exit_code = outcome.exit_code;
    if (outcome.error !== undefined) entry.error = outcome.error;
    this.log.record(entry);
  }
}
