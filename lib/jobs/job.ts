/**
 * One job: work that runs in the daemon and may outlive the call that started it (a command,
 * a transfer, an image pull). The work writes its output through {@link JobControl}; the job
 * records how it ended.
 */
import { errorMessage } from "../errors.ts";
import type { JobOutput } from "./output.ts";

/** Where a job is (README "Jobs"). */
export type JobState = "running" | "exited" | "failed" | "killed" | "lost";

/** How a job's work ended, as the work reports it. */
export interface JobOutcome {
  /** The exit code of a command (null when it was killed by a signal or never exited). */
  exit_code?: number | null | undefined;
  /** The signal that ended it (`SIGTERM`…). */
  signal?: string | undefined;
  /** Stopped by its own timeout_ms. */
  timed_out?: boolean | undefined;
  /** The final value of a job that is not a command (a transfer's byte count…). */
  result?: Record<string, unknown> | undefined;
  /** The work can no longer be followed (its session is gone…): why. */
  lost?: string | undefined;
}

/** Delivers a signal to a job's work; resolves with what happened (`stopped`, `sent`…). */
export type Killer = (signal: string) => Promise<string>;

/** What a job's work gets. */
export interface JobControl {
  readonly id: string;
  /** Aborted when the work must stop: job_signal without a killer, cancel, daemon shutdown. */
  readonly signal: AbortSignal;
  /** Appends output. */
  write(stream: "stdout" | "stderr", chunk: Uint8Array): void;
  /** A progress line for work without output of its own. */
  note(line: string): void;
  /** Measured progress (a transfer's bytes so far of `total`) with its message. */
  progress(done: number, total: number | undefined, message: string): void;
  /** Sets how signals reach the work (a remote process group…); without one, signals abort. */
  setKiller(killer: Killer): void;
  /** Records what re-attaching needs after a restart (persisted; no secrets). */
  setDurable(data: Record<string, unknown>): void;
}

/** A job's work. */
export type JobWork = (job: JobControl) => Promise<JobOutcome>;

/** A row of `job_list`. */
export interface JobRow {
  id: string;
  kind: string;
  target: string;
  summary: string;
  state: JobState;
  exit_code: number | null;
  started_at: string;
  duration_ms: number;
  output_bytes: number;
}

/** Identity of a job, fixed at start. */
export interface JobInit {
  id: string;
  kind: string;
  target: string;
  summary: string;
  startedAt: number;
  /** Kind-specific data needed to re-attach after a restart (no secrets). */
  durable?: Record<string, unknown> | undefined;
}

/** One job (see module doc). */
export class Job {
  readonly id: string;
  readonly kind: string;
  readonly target: string;
  readonly summary: string;
  readonly startedAt: number;
  readonly output: JobOutput;
  durable?: Record<string, unknown> | undefined;
  state: JobState = "running";
  endedAt?: number | undefined;
  exitCode: number | null = null;
  signalName?: string | undefined;
  timedOut = false;
  error?: string | undefined;
  result?: Record<string, unknown> | undefined;
  /** The latest progress note of work without output. */
  noteLine = "";
  /** The latest measured progress (bytes of a transfer…), if the work measures any. */
  meter?: { done: number; total?: number | undefined };
  /** Set once the job outlived its call (listed, persisted). */
  visible = false;
  /** Offset in `both` up to which job_wait/job_output have shown the output. */
  cursor = 0;
  /** The signal job_signal sent last. */
  requestedSignal?: string | undefined;
  /** Called when something worth persisting changed (set by the manager). */
  persist?: (() => void) | undefined;
  readonly #abort = new AbortController();
  #killer: Killer | undefined;
  #listeners = new Set<() => void>();
  #done: Promise<void>;
  #resolveDone!: () => void;

  constructor(init: JobInit, output: JobOutput) {
    this.id = init.id;
    this.kind = init.kind;
    this.target = init.target;
    this.summary = init.summary;
    this.startedAt = init.startedAt;
    this.durable = init.durable;
    this.output = output;
    this.#done = new Promise((r) => (this.#resolveDone = r));
  }

  /** Resolves once the job has ended. */
  get done(): Promise<void> {
    return this.#done;
  }

  /** Aborted when the work must stop. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Runs `work` and records its end; resolves when it ended (never rejects). */
  async run(work: JobWork): Promise<void> {
    const control: JobControl = {
      id: this.id,
      signal: this.#abort.signal,
      write: (stream, chunk) => {
        this.output.append(stream, chunk);
        this.#emit();
      },
      note: (line) => {
        this.noteLine = line;
        this.#emit();
      },
      progress: (done, total, message) => {
        this.meter = { done, total };
        this.noteLine = message;
        this.#emit();
      },
      setKiller: (killer) => (this.#killer = killer),
      setDurable: (data) => {
        this.durable = data;
        this.persist?.();
      },
    };
    try {
      const outcome = await work(control);
      this.#finish(outcome);
    } catch (err) {
      if (this.requestedSignal) this.#finish({ signal: sigName(this.requestedSignal) });
      else this.end("failed", errorMessage(err));
    }
  }

  #finish(o: JobOutcome): void {
    if (o.lost) return this.end("lost", o.lost);
    this.exitCode = o.exit_code ?? null;
    this.timedOut = !!o.timed_out;
    this.result = o.result;
    // work stopped by job_signal without a signal of its own (an aborted transfer, a shell
    // run interrupted with Ctrl-C) reads as killed by the signal that was asked for
    const stoppedByRequest = this.requestedSignal && (o.exit_code == null || o.timed_out);
    const sig = o.signal ?? (stoppedByRequest ? sigName(this.requestedSignal!) : undefined);
    if (stoppedByRequest && !o.signal) this.timedOut = false;
    if (sig) this.signalName = sig;
    this.end(sig || o.timed_out ? "killed" : "exited");
  }

  /** Ends the job in `state` (idempotent: the first end wins). */
  end(state: Exclude<JobState, "running">, error?: string): void {
    if (this.state !== "running") return;
    this.state = state;
    if (error) this.error = error;
    this.endedAt = Date.now();
    this.output.close();
    this.#resolveDone();
    this.#emit();
  }

  /** Sends `signal` (TERM, KILL, INT, HUP…) to the work; resolves with what happened. */
  async kill(signal: string): Promise<string> {
    if (this.state !== "running") return `not running (${this.state})`;
    this.requestedSignal = signal;
    if (this.#killer) return await this.#killer(signal);
    this.#abort.abort(new Error(`job ${this.id} got ${sigName(signal)}`));
    return "stopped";
  }

  /** Aborts the work (cancel, shutdown). */
  abort(reason: string): void {
    this.#abort.abort(new Error(reason));
  }

  /** Calls `fn` on new output or a state change; returns the unsubscribe. */
  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #emit(): void {
    for (const fn of [...this.#listeners]) fn();
  }

  /** Milliseconds it ran (until now while running). */
  durationMs(): number {
    return (this.endedAt ?? Date.now()) - this.startedAt;
  }

  /** The `job_list` row. */
  row(): JobRow {
    return {
      id: this.id,
      kind: this.kind,
      target: this.target,
      summary: this.summary,
      state: this.state,
      exit_code: this.exitCode,
      started_at: new Date(this.startedAt).toISOString(),
      duration_ms: this.durationMs(),
      output_bytes: this.output.size("both"),
    };
  }

  /** The latest line worth showing as progress. */
  latestLine(): string {
    return this.output.lastLine() || this.noteLine;
  }
}

/** `TERM` → `SIGTERM`. */
export function sigName(signal: string): string {
  const s = signal.toUpperCase();
  return /^\d+$/.test(s) || s.startsWith("SIG") ? s : `SIG${s}`;
}
