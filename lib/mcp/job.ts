/**
 * Jobs in the tool layer (README "Jobs"): {@link runLong} lets a long tool hand back a job
 * after `wait_ms` instead of blocking, and the `job` group's tools list, wait on, read,
 * signal and forget jobs. The engine is lib/jobs.
 */
import { z } from "zod";
import { errorMessage, RsmError } from "../errors.ts";
import { Capture, type CapturedStream, completeLength, fitHead, JSON_COST } from "../output/mod.ts";
import type { Job, JobControl, JobOutcome, JobStream } from "../jobs/mod.ts";
import { defineTool, Text, type ToolContext, type ToolDef } from "./tool.ts";
import { waitAtMost } from "../timeout.ts";

/** Default and largest `wait_ms`. */
export const WAIT_DEFAULT_MS = 20_000;
export const WAIT_MAX_MS = 300_000;
/** Largest `timeout_ms` of work that can become a job: 7 days. */
export const JOB_TIMEOUT_MAX_MS = 7 * 24 * 3600_000;
/** Default `timeout_ms` of a command that may become a job: 1 h. */
export const JOB_TIMEOUT_DEFAULT_MS = 3600_000;

/**
 * The `wait_ms` field every long tool takes. Described once, on ssh_exec and in the server's
 * instructions, to keep tools/list small.
 */
export const waitField = (described = false) => {
  const field = z.number().int().min(0).max(WAIT_MAX_MS).optional();
  return described ? field.describe("then return a job_id (default 20000)") : field;
};

/** The `timeout_ms` field of commands that may become jobs. */
export const jobTimeoutField = () =>
  z.number().int().min(1).max(JOB_TIMEOUT_MAX_MS).optional().describe(
    "kill after ms (default 1 h)",
  );

/** What a call that outlived its `wait_ms` returns. */
export interface RunningJob {
  job_id: string;
  state: "running";
  elapsed_ms: number;
  tail: string;
}

/** One long call (see {@link runLong}). */
export interface LongCall<T> {
  kind: string;
  target: string;
  summary: string;
  waitMs?: number | undefined;
  /** Re-attach data of a durable job. */
  durable?: Record<string, unknown> | undefined;
  /** The work; writes output and sets a killer through `job`. */
  work(job: JobControl): Promise<T>;
  /** How the work's value ends the job (exit code, signal, result). */
  outcome(value: T): JobOutcome;
}

/**
 * Runs `call.work` as a job and waits up to `wait_ms` (default 20 s) for it. Done in time:
 * returns its value (and the job is never listed). Still running: returns
 * `{job_id, state: "running", elapsed_ms, tail}` and the work goes on. Cancelling the call
 * while it waits stops the work. Progress goes out while waiting (see {@link progressOf}).
 */
export async function runLong<T>(ctx: ToolContext, call: LongCall<T>): Promise<T | RunningJob> {
  const { app } = ctx;
  let value: T | undefined;
  let failure: unknown;
  let ok = false;
  ctx.audit.defer(); // the call's audit line is written when the work ends, not the call
  const job = app.jobs.start({
    kind: call.kind,
    target: call.target,
    summary: call.summary,
    durable: call.durable,
    work: async (control) => {
      try {
        value = await call.work(control);
        ok = true;
      } catch (err) {
        failure = err;
        ctx.audit.end({ error: errorMessage(err) });
        throw err;
      }
      const outcome = call.outcome(value);
      ctx.audit.end(outcome.lost ? { error: outcome.lost } : { exit_code: outcome.exit_code });
      return outcome;
    },
  });
  const why = await app.jobs.wait(job, {
    waitMs: call.waitMs ?? WAIT_DEFAULT_MS,
    signal: ctx.signal,
    onProgress: progressOf(ctx, job),
  });
  if (why === "aborted") {
    job.abort("the call was cancelled");
    await waitAtMost(job.done, 15_000);
  }
  if (job.state !== "running") {
    app.jobs.discard(job);
    if (!ok) throw failure;
    return value as T;
  }
  await app.jobs.reveal(job);
  return {
    job_id: job.id,
    state: "running",
    elapsed_ms: job.durationMs(),
    tail: job.output.tail(5) || job.noteLine,
  };
}

/**
 * Progress for a wait, with the latest output line as message: bytes done of total for work
 * that measures them (transfers, pulls), otherwise the elapsed ms as the rising value.
 */
function progressOf(ctx: ToolContext, job: Job) {
  return (line: string, elapsedMs: number) => {
    const message = line || `running for ${Math.round(elapsedMs / 1000)}s`;
    if (job.meter) ctx.progress(job.meter.done, job.meter.total, message);
    else ctx.progress(elapsedMs, undefined, message);
  };
}

/** Whether a value returned by {@link runLong} is a running job. */
export function isRunning(value: unknown): value is RunningJob {
  return !!value && typeof value === "object" && (value as RunningJob).state === "running" &&
    typeof (value as RunningJob).job_id === "string";
}

/**
 * Bytes of output text one job_output page or grep shows: the result's bound less room for
 * its other fields, counted as the text costs in JSON (the stricter format), so a page is
 * never cut again by the renderer.
 */
function budget(ctx: ToolContext): number {
  return Math.max(1024, ctx.app.maxOutput - 1024);
}

/**
 * A job's output from `from` to `end` as a section the renderer cuts once, to what the
 * result has room for (README "Readable results"): the head and tail it shows and, where it
 * leaves bytes out, a marker saying how many and the job_output offset that reads them.
 */
class JobText implements CapturedStream {
  readonly total: number;
  readonly whole: Uint8Array | undefined;
  readonly #job: Job;
  readonly #from: number;
  readonly #keep: number;

  constructor(job: Job, from: number, end: number, keep: number) {
    this.#job = job;
    this.#from = from;
    this.#keep = keep;
    this.total = end - from;
    this.whole = this.total <= 2 * keep ? job.output.read("both", from, this.total) : undefined;
  }
  head(): Uint8Array {
    return this.whole ?? this.#job.output.read("both", this.#from, this.#keep);
  }
  tail(): Uint8Array {
    if (this.whole) return new Uint8Array(0);
    return this.#job.output.read("both", this.#from + this.total - this.#keep, this.#keep);
  }
  storedId(): undefined {
    return undefined;
  }
  marker(omitted: number, headShown: number): string {
    return `[… ${omitted} bytes omitted; job_output job_id=${this.#job.id} ` +
      `offset=${this.#from + headShown} …]`;
  }
}

/**
 * The output after the job's cursor, moving the cursor to its end (a character still
 * arriving stays for the next read).
 */
function unread(ctx: ToolContext, job: Job): JobText {
  const size = job.output.size("both");
  const from = Math.min(job.cursor, size);
  let end = size;
  if (job.state === "running" && size > from) {
    const last = job.output.read("both", Math.max(from, size - 4), size - Math.max(from, size - 4));
    end = size - last.length + completeLength(last);
  }
  ctx.app.jobs.moveCursor(job, end);
  return new JobText(job, from, end, Math.max(64 * 1024, ctx.app.maxOutput));
}

/** A job's state fields, as job_wait and job_signal show them. */
function stateOf(job: Job): Record<string, unknown> {
  return {
    job_id: job.id,
    state: job.state,
    ...(job.state !== "running" ? { exit_code: job.exitCode } : {}),
    ...(job.signalName ? { signal: job.signalName } : {}),
    ...(job.timedOut ? { timed_out: true } : {}),
    ...(job.error ? { error: job.error } : {}),
    ...(job.result ? { result: job.result } : {}),
    duration_ms: job.durationMs(),
    output_bytes: job.output.size("both"),
  };
}

function compileRegex(field: string, pattern: string, flags = ""): RegExp {
  try {
    return new RegExp(pattern, flags);
  } catch (err) {
    throw new RsmError(
      "BAD_REGEX",
      `Cannot use ${field} ${JSON.stringify(pattern)}: not a valid regular expression ` +
        `(${(err as Error).message}); escape special characters like ( [ . * with \\`,
    );
  }
}

const jobId = () => z.string().min(1).max(200);

/** The `job` group. */
export const jobTools: ToolDef[] = [
  defineTool({
    name: "job_list",
    title: "List jobs",
    group: "job",
    description: "Lists jobs: work that outlived its call's wait_ms (finished: kept 24 h).",
    input: {},
    annotations: { readOnlyHint: true },
    run: (_a, ctx) => Promise.resolve(ctx.app.jobs.rows()),
  }),
  defineTool({
    name: "job_wait",
    title: "Wait for a job",
    group: "job",
    description: "Waits up to wait_ms for a job to end or its output to match until; returns " +
      "state, exit_code when done, and the output since the last job_wait/job_output.",
    input: {
      job_id: jobId(),
      wait_ms: z.number().int().min(0).max(WAIT_MAX_MS).optional().describe("default 20000"),
      until: z.string().max(2000).optional().describe("regex"),
    },
    annotations: { readOnlyHint: true },
    run: async (a, ctx) => {
      const job = ctx.app.jobs.get(a.job_id);
      const until = a.until !== undefined ? compileRegex("until", a.until, "m") : undefined;
      await ctx.app.jobs.wait(job, {
        waitMs: a.wait_ms ?? WAIT_DEFAULT_MS,
        until,
        signal: ctx.signal,
        onProgress: progressOf(ctx, job),
      });
      return { ...stateOf(job), output: unread(ctx, job) };
    },
  }),
  defineTool({
    name: "job_output",
    title: "Read job output",
    group: "job",
    description: "Pages a job's complete output (both streams interleaved, or one), or with " +
      "grep returns the matching lines with line numbers.",
    input: {
      job_id: jobId(),
      offset: z.number().int().min(0).max(1e15).optional(),
      length: z.number().int().min(1).max(1e15).optional(),
      stream: z.enum(["stdout", "stderr", "both"]).optional(),
      grep: z.string().max(2000).optional().describe("regex"),
    },
    annotations: { readOnlyHint: true },
    run: (a, ctx) => {
      const job = ctx.app.jobs.get(a.job_id);
      const stream: JobStream = a.stream ?? "both";
      const total = job.output.size(stream);
      if (a.grep !== undefined) {
        const re = compileRegex("grep", a.grep);
        const found = job.output.grep(stream, re, 1000);
        const lines: string[] = [];
        let bytes = 0;
        let shown = 0;
        for (const m of found) {
          const l = `${m.line}: ${m.text.length > 2000 ? m.text.slice(0, 2000) + "…" : m.text}`;
          // what the line costs in a JSON string: its quotes stand for the "\n" after it
          bytes += new TextEncoder().encode(JSON.stringify(l)).length;
          if (bytes > budget(ctx)) break;
          lines.push(l);
          shown++;
        }
        return Promise.resolve({
          job_id: job.id,
          state: job.state,
          stream,
          total_bytes: total,
          matches: found.length >= 1000 ? "1000+" : found.length,
          ...(shown < found.length ? { shown } : {}),
          output: lines.join("\n") + (lines.length ? "\n" : ""),
        });
      }
      const offset = Math.min(a.offset ?? 0, total);
      const room = budget(ctx);
      const bytes = job.output.read(stream, offset, Math.min(a.length ?? room, room));
      // the page fits the bound even as a JSON string, so the renderer never cuts it again
      let n = fitHead(bytes, room, JSON_COST);
      if (n === bytes.length && (offset + n < total || job.state === "running")) {
        n = completeLength(bytes); // a character cut at the page's end comes with the next
      }
      if (stream === "both") ctx.app.jobs.moveCursor(job, Math.max(job.cursor, offset + n));
      const eof = offset + n >= total && job.state !== "running";
      return Promise.resolve({
        job_id: job.id,
        state: job.state,
        stream,
        offset,
        bytes: n,
        total_bytes: total,
        eof,
        ...(offset + n < total ? { next_offset: offset + n } : {}),
        ...(job.output.dropped ? { dropped_bytes: job.output.dropped } : {}),
        data: new TextDecoder().decode(bytes.subarray(0, n)),
      });
    },
  }),
  defineTool({
    name: "job_signal",
    title: "Signal a job",
    group: "job",
    description: "Signals a running job's whole process group (KILL: verified gone); other " +
      "work (transfers, pulls) is stopped.",
    input: {
      job_id: jobId(),
      signal: z.string().max(20).optional().describe("default TERM"),
    },
    annotations: { destructiveHint: true },
    run: async (a, ctx) => {
      const job = ctx.app.jobs.get(a.job_id);
      const signal = (a.signal ?? "TERM").toUpperCase().replace(/^SIG/, "");
      if (!/^([A-Z][A-Z0-9+-]*|\d+)$/.test(signal)) {
        throw new RsmError(
          "BAD_ARGUMENT",
          `Cannot send signal ${JSON.stringify(a.signal)}: not a signal name; use TERM, INT, ` +
            `HUP or KILL`,
        );
      }
      ctx.audit.set({ target: job.target, command: `kill -${signal} ${job.id} (${job.summary})` });
      const delivered = await job.kill(signal);
      await waitAtMost(job.done, 3000);
      return { ...stateOf(job), delivered };
    },
  }),
  defineTool({
    name: "job_forget",
    title: "Forget a job",
    group: "job",
    description: "Forgets a finished job and deletes its output.",
    input: { job_id: jobId() },
    annotations: { destructiveHint: true, idempotentHint: true },
    run: async (a, ctx) => {
      await ctx.app.jobs.forget(a.job_id);
      return new Text(`forgot ${a.job_id}`);
    },
  }),
];

/**
 * The outcome of work that is not a command: exit code 0 and its value as the result, with
 * captured streams (a container's logs) as text (at most 8 KiB each; the marker of a longer
 * one names its stored copy for output_read).
 */
export function resultOutcome(value: object): JobOutcome {
  const result: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    result[k] = v instanceof Capture
      ? v.render(8192).text
      : v instanceof Uint8Array
      ? new TextDecoder().decode(v)
      : v;
  }
  return { exit_code: 0, result };
}
