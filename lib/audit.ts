import { redact } from "./secrets.ts";

/** One audited action: a command run, a file changed, or a person's decision (`event`). */
export interface AuditEntry {
  /** What happened when it is not a plain call: approval_approved, policy_refused, secret_entered… */
  event?: string;
  tool?: string;
  /** Session id or Docker host id the action ran on. */
  target?: string;
  command?: string;
  path?: string;
  exit_code?: number | null;
  error?: string;
  /** The policy rule (and pattern) involved. */
  rule?: string;
  /** Where a person answered: "page", "elicitation", "timeout". */
  via?: string;
  /** What kind of secret was entered (never the secret). */
  kind?: string;
}

/**
 * Appends one JSON line per command-running or file-changing tool call to `audit.log`
 * (mode 0600). Secrets are redacted; a failed write is ignored, never fatal.
 */
export class AuditLog {
  #file?: string;
  constructor(file?: string) {
    this.#file = file;
  }

  /** Records `entry` with the current time. */
  record(entry: AuditEntry): void {
    if (!this.#file) return;
    const line = redact(JSON.stringify({ time: new Date().toISOString(), ...entry })) + "\n";
    try {
      Deno.writeTextFileSync(this.#file, line, { append: true, create: true, mode: 0o600 });
    } catch {
      // disk full or dir gone: the tool call itself still succeeds
    }
  }
}
