import type { Capture } from "./capture.ts";

/**
 * What running one command returns, for SSH and Docker alike (`ssh_exec`, `docker_exec`).
 * A non-zero exit is a result, not an error.
 */
export interface ExecOutcome {
  /** null when the command was stopped or the exit status never arrived. */
  exit_code: number | null;
  /** The signal that ended it (`SIGKILL`), when one did. */
  signal?: string | undefined;
  stdout: Capture;
  stderr: Capture;
  /** Stopped on timeout or cancellation (partial output kept). */
  timed_out: boolean;
  duration_ms: number;
  /** When it had to be stopped: `stopped`, or what went wrong (`still running: …`). */
  stop_result?: string | undefined;
}

/**
 * An exec outcome as a tool shows it: the facts, a `stop_note` when a stop did not go
 * cleanly, then stdout and stderr (the renderer bounds them).
 */
export function execView(r: ExecOutcome): Record<string, unknown> {
  return {
    exit_code: r.exit_code,
    ...(r.signal ? { signal: r.signal } : {}),
    timed_out: r.timed_out,
    truncated: false, // set by the renderer when it leaves bytes out
    duration_ms: r.duration_ms,
    ...(r.stop_result && r.stop_result !== "stopped" ? { stop_note: r.stop_result } : {}),
    stdout: r.stdout,
    stderr: r.stderr,
  };
}
