import { redact } from "./secrets.ts";
import type { Logger } from "./log.ts";
import { errorMessage } from "./errors.ts";

/** One audited action: a command run, a file changed, or a person's decision (`event`). */
export interface AuditEntry {
  /** What happened when it is not a plain call: approval_approved, policy_refused, secret_entered… */
  event?: string | undefined;
  tool?: string | undefined;
  /** Session id or Docker host id the action ran on. */
  target?: string | undefined;
  command?: string | undefined;
  path?: string | undefined;
  exit_code?: number | null | undefined;
  error?: string | undefined;
  /** The policy rule (and pattern) involved. */
  rule?: string | undefined;
  /** Where a person answered: "page", "elicitation", "timeout". */
  via?: string | undefined;
  /** What kind of secret was entered (never the secret). */
  kind?: string | undefined;
}

/** Failed audit writes since the daemon started, as `status` shows them. */
export interface AuditFailures {
  failed_writes: number;
  last_error: string;
  last_failed_at: string;
}

/** How often a run of failed audit writes is logged again (the first is always logged). */
const LOG_EVERY_MS = 60_000;

/**
 * Appends one JSON line per command-running or file-changing tool call to `audit.log`
 * (mode 0600). Secrets are redacted. A failed write (disk full, directory gone, permissions)
 * never fails the tool call, but it is not silent either: it is logged to `daemon.log` (the
 * first one at once, then at most once a minute with the count) and counted in `status`.
 */
export class AuditLog {
  #file: string | undefined;
  #log: Logger | undefined;
  #failures: AuditFailures | undefined;
  #lastLogged = 0;
  #unlogged = 0;

  constructor(file?: string, log?: Logger) {
    this.#file = file;
    this.#log = log;
  }

  /** Failed writes so far, or undefined when every write succeeded. */
  get failures(): AuditFailures | undefined {
    return this.#failures;
  }

  /** Records `entry` with the current time. */
  record(entry: AuditEntry): void {
    if (!this.#file) return;
    const line = redact(JSON.stringify({ time: new Date().toISOString(), ...entry })) + "\n";
    try {
      Deno.writeTextFileSync(this.#file, line, { append: true, create: true, mode: 0o600 });
    } catch (err) {
      // The tool call itself still succeeds; the failure is reported instead of swallowed.
      const now = new Date();
      this.#failures = {
        failed_writes: (this.#failures?.failed_writes ?? 0) + 1,
        last_error: redact(errorMessage(err)),
        last_failed_at: now.toISOString(),
      };
      this.#unlogged++;
      if (now.getTime() - this.#lastLogged >= LOG_EVERY_MS) {
        this.#log?.error("audit log write failed; this action is not in audit.log", {
          file: this.#file,
          tool: entry.tool,
          error: this.#failures.last_error,
          failed_writes: this.#failures.failed_writes,
          since_last_report: this.#unlogged,
        });
        this.#lastLogged = now.getTime();
        this.#unlogged = 0;
      }
    }
  }
}
