/**
 * Owns the daemon's jobs (README "Jobs"): starts work, lets callers wait on it with a bound,
 * lists, signals and forgets jobs, keeps finished ones (24 h, 500 at most, oldest finished
 * leave first) and persists their records in `state.json` (key `"jobs"`, no secrets; output
 * lives in files beside it). A running job whose kind can re-attach (durable commands) is
 * followed again after a restart; any other running job is then `lost`.
 */
import { join } from "node:path";
import type { Logger } from "../log.ts";
import type { StateStore } from "../state/store.ts";
import { errorMessage, RsmError } from "../errors.ts";
import { Job, type JobRow, type JobState, type JobWork } from "./job.ts";
import { JobOutput } from "./output.ts";
import { waitAtMost } from "../timeout.ts";
import { randomHex } from "../random.ts";

/** A job's persisted record. */
export interface SavedJob {
  id: string;
  kind: string;
  target: string;
  summary: string;
  started_at: number;
  ended_at?: number | undefined;
  state: JobState;
  exit_code: number | null;
  signal?: string | undefined;
  timed_out?: boolean | undefined;
  error?: string | undefined;
  result?: Record<string, unknown> | undefined;
  cursor: number;
  durable?: Record<string, unknown> | undefined;
}

/** What a kind of job can do besides running: re-attach after a restart, clean up. */
export interface JobKind {
  /**
   * Work that follows a running durable job again, from the output the job already holds
   * (`job.output` sizes of stdout and stderr).
   */
  reattach?(job: Job): JobWork;
  /** Removes what a durable job left on the remote side (called on forget). */
  cleanup?(job: Job): Promise<void>;
}

/** Options for {@link JobManager}. */
export interface JobManagerOptions {
  /** Directory for the output files. */
  dir: string;
  log: Logger;
  store?: StateStore | undefined;
  /** Finished jobs kept at most this long (default 24 h). */
  maxAgeMs?: number | undefined;
  /** Finished jobs kept at most (default 500). */
  maxFinished?: number | undefined;
}

/** Options for {@link JobManager.start}. */
export interface StartJobOptions {
  kind: string;
  target: string;
  summary: string;
  work: JobWork;
  /** Re-attach data of a durable job (see {@link JobKind.reattach}). */
  durable?: Record<string, unknown> | undefined;
}

/** Options for {@link JobManager.wait}. */
export interface WaitOptions {
  /** Longest wait in ms. */
  waitMs: number;
  /** Return as soon as the output after the job's cursor matches. */
  until?: RegExp | undefined;
  signal?: AbortSignal | undefined;
  /**
   * Called with the latest output line on new output (at most once a second) and at least
   * every `heartbeatMs` while waiting, also when nothing new arrived.
   */
  onProgress?: ((line: string, elapsedMs: number) => void) | undefined;
  /** Default 10000. */
  heartbeatMs?: number | undefined;
}

/** Why {@link JobManager.wait} returned. */
export type WaitEnd = "ended" | "waited" | "matched" | "aborted";

/** Owns every job of the daemon (see module doc). */
export class JobManager {
  readonly dir: string;
  readonly #log: Logger;
  readonly #store: StateStore | undefined;
  readonly #maxAge: number;
  readonly #maxFinished: number;
  readonly #jobs = new Map<string, Job>();
  readonly #kinds = new Map<string, JobKind>();
  #closed = false;

  constructor(options: JobManagerOptions) {
    this.dir = options.dir;
    this.#log = options.log;
    this.#store = options.store;
    this.#maxAge = options.maxAgeMs ?? 24 * 3600_000;
    this.#maxFinished = options.maxFinished ?? 500;
    options.store?.register("jobs", {
      save: () => this.#save(),
      restore: (data) => this.#restore(data),
    });
  }

  /** Registers what jobs of `kind` can do besides running. */
  registerKind(kind: string, def: JobKind): void {
    this.#kinds.set(kind, def);
  }

  /** Starts `work` as a new job (not listed until {@link reveal}). */
  start(options: StartJobOptions): Job {
    if (this.#closed) {
      throw new RsmError("SHUTTING_DOWN", "Cannot start a job: the daemon is shutting down");
    }
    let id: string;
    do id = `j${randomHex(3)}`; while (this.#jobs.has(id));
    const job = new Job(
      { ...options, id, startedAt: Date.now() },
      new JobOutput(this.dir, id),
    );
    this.#jobs.set(id, job);
    this.#launch(job, options.work);
    return job;
  }

  #launch(job: Job, work: JobWork): void {
    job.persist = () => {
      if (job.visible) this.#store?.changed();
    };
    job.run(work).then(() => {
      if (!job.visible) return;
      this.#prune();
      this.#store?.changed();
    });
  }

  /** Makes a job that outlived its call visible: listed, output on disk, persisted. */
  async reveal(job: Job): Promise<void> {
    if (job.visible) return;
    job.visible = true;
    job.output.spill();
    this.#store?.changed();
    if (job.durable) await this.#store?.flush().catch(() => {});
  }

  /**
   * Moves a job's read cursor (job_wait, job_output) and saves it, so the output a client
   * was shown is not shown again after a restart.
   */
  moveCursor(job: Job, to: number): void {
    if (to === job.cursor) return;
    job.cursor = to;
    if (job.visible) this.#store?.changed();
  }

  /** Drops a job whose call got its result (it is never listed). */
  discard(job: Job): void {
    if (job.visible) return;
    this.#jobs.delete(job.id);
    job.output.remove();
    if (job.durable) this.#kinds.get(job.kind)?.cleanup?.(job).catch(() => {});
  }

  /** The job `id`; throws NOT_FOUND naming job_list. */
  get(id: string): Job {
    const job = this.#jobs.get(id);
    if (!job || !job.visible) {
      throw new RsmError(
        "NOT_FOUND",
        `Cannot find job ${id}: no such job (finished jobs are kept 24 h unless forgotten); ` +
          `see job_list`,
      );
    }
    return job;
  }

  /** Visible jobs, oldest first. */
  jobs(): Job[] {
    this.#prune();
    return [...this.#jobs.values()].filter((j) => j.visible);
  }

  /** `job_list` rows, oldest first. */
  rows(): JobRow[] {
    return this.jobs().map((j) => j.row());
  }

  /** Forgets a finished job and deletes its output; a running one must be stopped first. */
  async forget(id: string): Promise<void> {
    const job = this.get(id);
    if (job.state === "running") {
      throw new RsmError(
        "JOB_RUNNING",
        `Cannot forget job ${id}: it is still running; stop it with job_signal first ` +
          `(signal KILL if TERM is ignored)`,
      );
    }
    this.#jobs.delete(id);
    job.output.remove();
    this.#store?.changed();
    try {
      await this.#kinds.get(job.kind)?.cleanup?.(job);
    } catch (err) {
      this.#log.warn("job cleanup failed", { job: id, error: errorMessage(err) });
    }
  }

  /** Waits until the job ends, `until` matches, `waitMs` passes or `signal` aborts. */
  wait(job: Job, options: WaitOptions): Promise<WaitEnd> {
    if (job.state !== "running") return Promise.resolve("ended");
    const started = Date.now();
    const heartbeat = options.heartbeatMs ?? 10_000;
    const dec = new TextDecoder();
    return new Promise<WaitEnd>((resolve) => {
      let lastProgress = 0;
      let checkTimer: ReturnType<typeof setTimeout> | undefined;
      const finish = (why: WaitEnd) => {
        clearTimeout(timer);
        clearInterval(beat);
        clearTimeout(checkTimer);
        unsubscribe();
        options.signal?.removeEventListener("abort", onAbort);
        resolve(why);
      };
      // the tool registry decides how often a notification goes out; here every change is
      // reported, and a heartbeat keeps a silent job's call visibly alive
      const progress = () => {
        if (!options.onProgress) return;
        const now = Date.now();
        lastProgress = now;
        options.onProgress(job.latestLine(), now - started);
      };
      const check = () => {
        checkTimer = undefined;
        if (!options.until) return;
        const size = job.output.size("both");
        const from = Math.max(job.cursor, size - (1 << 20));
        if (options.until.test(dec.decode(job.output.read("both", from, size - from)))) {
          finish("matched");
        }
      };
      const unsubscribe = job.onChange(() => {
        if (job.state !== "running") return finish("ended");
        progress();
        if (options.until && checkTimer === undefined) checkTimer = setTimeout(check, 30);
      });
      const timer = setTimeout(() => finish("waited"), options.waitMs);
      const beat = setInterval(() => {
        if (Date.now() - lastProgress >= heartbeat - 50) progress();
      }, Math.min(heartbeat, 1000));
      const onAbort = () => finish("aborted");
      options.signal?.addEventListener("abort", onAbort, { once: true });
      if (options.signal?.aborted) return finish("aborted");
      check();
    });
  }

  /**
   * Stops following jobs: durable ones keep running on the server, the others are stopped
   * (their remote commands killed). Resolves when they ended, or after `graceMs` (default
   * 5000). Idempotent.
   */
  async close(graceMs = 5000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const running = [...this.#jobs.values()].filter((j) => j.state === "running");
    for (const job of running) job.abort("daemon shutting down");
    await waitAtMost(Promise.all(running.map((j) => j.done)), graceMs);
    for (const job of this.#jobs.values()) job.output.close();
  }

  /** Drops finished jobs older than the age limit, then the oldest beyond the count limit. */
  #prune(): void {
    const now = Date.now();
    const finished = [...this.#jobs.values()].filter((j) => j.visible && j.state !== "running");
    let removed = false;
    for (const j of finished) {
      if (now - (j.endedAt ?? now) > this.#maxAge) {
        this.#jobs.delete(j.id);
        j.output.remove();
        removed = true;
      }
    }
    const left = finished.filter((j) => this.#jobs.has(j.id))
      .sort((a, b) => (a.endedAt ?? 0) - (b.endedAt ?? 0));
    for (const j of left.slice(0, Math.max(0, left.length - this.#maxFinished))) {
      this.#jobs.delete(j.id);
      j.output.remove();
      removed = true;
    }
    if (removed) this.#store?.changed();
  }

  #save(): { jobs: SavedJob[] } {
    return {
      jobs: [...this.#jobs.values()].filter((j) => j.visible).map((j) => ({
        id: j.id,
        kind: j.kind,
        target: j.target,
        summary: j.summary,
        started_at: j.startedAt,
        ...(j.endedAt !== undefined ? { ended_at: j.endedAt } : {}),
        state: j.state,
        exit_code: j.exitCode,
        ...(j.signalName ? { signal: j.signalName } : {}),
        ...(j.timedOut ? { timed_out: true } : {}),
        ...(j.error ? { error: j.error } : {}),
        ...(j.result ? { result: j.result } : {}),
        cursor: j.cursor,
        ...(j.durable ? { durable: j.durable } : {}),
      })),
    };
  }

  // deno-lint-ignore require-await
  async #restore(data: unknown): Promise<void> {
    const list = (data as { jobs?: SavedJob[] } | undefined)?.jobs;
    if (!Array.isArray(list)) return;
    for (const rec of list) {
      if (!rec || typeof rec.id !== "string" || this.#jobs.has(rec.id)) continue;
      const job = new Job(
        {
          id: rec.id,
          kind: String(rec.kind),
          target: String(rec.target),
          summary: String(rec.summary),
          startedAt: Number(rec.started_at) || Date.now(),
          durable: rec.durable,
        },
        JobOutput.restore(this.dir, rec.id),
      );
      job.visible = true;
      job.cursor = Math.min(Number(rec.cursor) || 0, job.output.size("both"));
      this.#jobs.set(job.id, job);
      const reattach = rec.durable ? this.#kinds.get(job.kind)?.reattach : undefined;
      if (rec.state === "running" && reattach) {
        // The output kept here goes on where it stopped (the command re-reads from the sizes
        // of stdout and stderr), so nothing is repeated; only output torn by the crash
        // (stdout + stderr not adding up to both) is re-read from the start.
        const out = job.output;
        if (out.size("stdout") + out.size("stderr") !== out.size("both")) {
          out.reset();
          job.cursor = 0;
        }
        this.#log.info("job re-attaching", { job: job.id, from_bytes: out.size("both") });
        this.#launch(job, reattach(job));
        continue;
      }
      job.exitCode = rec.exit_code ?? null;
      job.signalName = rec.signal;
      job.timedOut = !!rec.timed_out;
      job.result = rec.result;
      if (rec.state === "running") {
        job.end("lost", "the daemon stopped while it ran; its output up to then is kept");
      } else {
        job.end(rec.state, rec.error);
      }
      if (rec.ended_at) job.endedAt = rec.ended_at;
    }
    this.#store?.changed();
  }
}

/** The default jobs directory beside `state.json`. */
export function jobsDir(statePath: string): string {
  return join(statePath.slice(0, statePath.lastIndexOf("/")) || ".", "jobs");
}
