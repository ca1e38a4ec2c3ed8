/**
 * `ssh_exec` (README "SSH sessions and exec"): one command on an SSH session, stopped for real on timeout or
 * cancel, output bounded head+tail, audited, with throttled progress.
 */
import { z } from "zod";
import { defineTool, fields, type ToolContext, type ToolDef } from "./tool.ts";
import {
  type DurableRecord,
  execCommand,
  type ExecResult,
  followDetached,
  startDetached,
} from "../ssh/mod.ts";
import { Capture, execView } from "../output/mod.ts";
import { boundText } from "./format.ts";
import {
  isRunning,
  JOB_TIMEOUT_DEFAULT_MS,
  jobTimeoutField,
  runLong,
  type RunningJob,
  waitField,
} from "./job.ts";
import { addSecret, forgetTypedSecret, SecretNeededError, typedSecret } from "../secrets.ts";
import { errorMessage, RsmError } from "../errors.ts";

async function sudoPassword(
  env: string | undefined,
  file: string | undefined,
): Promise<string | undefined> {
  if (env) {
    const v = Deno.env.get(env);
    if (v === undefined) {
      throw new RsmError(
        "SECRET_UNAVAILABLE",
        `Cannot read the sudo password: environment variable ${env} is not set in the daemon's ` +
          `environment`,
      );
    }
    addSecret(v);
    return v;
  }
  if (file) {
    let v: string;
    try {
      v = (await Deno.readTextFile(file.replace(/^~(?=\/)/, Deno.env.get("HOME") ?? "~")))
        .replace(/\r?\n$/, "");
    } catch (err) {
      throw new RsmError(
        "SECRET_UNAVAILABLE",
        `Cannot read the sudo password file ${file}: ${errorMessage(err)}`,
      );
    }
    addSecret(v);
    return v;
  }
  return undefined;
}

/**
 * Returns when sudo runs without a password on the session (`sudo -n true` succeeds);
 * otherwise throws the need for a sudo password that a person types (nothing else ran).
 */
async function needSudoPassword(
  client: Parameters<typeof execCommand>[0],
  sessionId: string,
  user: string,
  signal: AbortSignal,
): Promise<void> {
  const probe = await execCommand(client, "sudo -n true", {
    timeoutMs: 15_000,
    keepBytes: 4096,
    signal,
  });
  if (probe.exit_code === 0) return;
  const err = probe.stderr.render(2000).text;
  if (!/password is required|a terminal is required|askpass/i.test(err)) return; // sudo says why
  throw new SecretNeededError(
    {
      key: `sudo:${sessionId}`,
      kind: "sudo",
      label: `The sudo password of ${user} (${sessionId})`,
    },
    `Cannot run with sudo on ${sessionId}: sudo needs a password and no sudo_password_env or ` +
      `sudo_password_file was given.`,
  );
}

/** The command line as a job summary (first line, at most 200 characters). */
export function summaryOf(command: string): string {
  const first = command.trim().split("\n")[0] ?? "";
  return first.length > 200 || command.trim().includes("\n") ? first.slice(0, 200) + " …" : first;
}

/** `ssh_exec`'s input. */
const execInput = {
  session_id: fields.id("session id (see ssh_list)"),
  command: z.string().min(1).max(1 << 20).describe(
    "shell command line (the user's login shell)",
  ),
  env: fields.env().optional(),
  stdin: z.string().max(16 << 20).optional().describe("text written to the command's stdin"),
  wait_ms: waitField(true),
  timeout_ms: jobTimeoutField(),
  durable: z.boolean().optional().describe(
    "run detached: survives disconnects and daemon restarts",
  ),
  cwd: z.string().min(1).max(4096).optional().describe("working directory"),
  pty: z.boolean().optional().describe("allocate a tty (stderr merges into stdout)"),
  sudo: z.boolean().optional().describe("run as root through sudo -S"),
  sudo_password_env: z.string().min(1).max(200).optional().describe(
    "daemon env var holding the sudo password",
  ),
  sudo_password_file: z.string().min(1).max(4096).optional().describe(
    "file holding the sudo password",
  ),
  ...fields.output(),
};
type ExecArgs = z.infer<z.ZodObject<typeof execInput>>;
type SshClient = Parameters<typeof execCommand>[0];

/** What one `ssh_exec` call works with once its session is ready. */
interface ExecCall {
  args: ExecArgs;
  ctx: ToolContext;
  client: SshClient;
  timeoutMs: number;
  stdout: Capture;
  stderr: Capture;
  /** The job's kind, target, summary and wait. */
  call: { kind: string; target: string; summary: string; waitMs: number | undefined };
}

/** The exec tools. */
export const execTools: ToolDef[] = [
  defineTool({
    name: "ssh_exec",
    group: "ssh",
    description:
      "Runs one command on an SSH session: exit_code, signal?, timed_out, duration_ms, then " +
      "stdout and stderr as raw text. A non-zero exit is a result, not an error. Not done " +
      "within wait_ms: returns a job_id and goes on (job_wait). On timeout_ms it and its " +
      "children are killed.",
    input: execInput,
    annotations: { destructiveHint: true, openWorldHint: true },
    policy: (a) => ({
      kind: "ssh",
      target: a.session_id,
      command: a.command,
      cwd: a.cwd,
      ...(a.sudo ? { user: "root (sudo)" } : {}),
    }),
    audit: (a) => ({ target: a.session_id, command: a.command }),
    run: async (args, ctx) => {
      const { app } = ctx;
      const session = app.ssh.get(args.session_id);
      const timeoutMs = args.timeout_ms ?? JOB_TIMEOUT_DEFAULT_MS;
      if (args.durable && (args.stdin !== undefined || args.pty || args.sudo)) {
        throw new RsmError(
          "BAD_ARGUMENT",
          "Cannot run a durable command with stdin, pty or sudo: it runs detached with no " +
            "input; drop those fields, or run it without durable",
        );
      }
      const password = args.sudo
        ? await sudoPassword(args.sudo_password_env, args.sudo_password_file)
        : undefined;
      let client;
      try {
        client = await session.ready(
          AbortSignal.any([ctx.signal, AbortSignal.timeout(Math.min(timeoutMs, 15_000))]),
        );
      } catch (err) {
        if (err instanceof RsmError) throw err;
        session.client(); // throws the NOT_CONNECTED explanation
        throw err;
      }
      const keep = Math.max(64 * 1024, args.max_output ?? 0);
      const label = `ssh_exec ${args.session_id}`;
      const exec: ExecCall = {
        args,
        ctx,
        client,
        timeoutMs,
        stdout: new Capture({ keep, store: app.outputs, label: `${label} stdout` }),
        stderr: new Capture({ keep, store: app.outputs, label: `${label} stderr` }),
        call: {
          kind: "ssh_exec",
          target: args.session_id,
          summary: summaryOf(args.command),
          waitMs: args.wait_ms,
        },
      };
      const result = args.durable
        ? await runDurable(exec)
        : await runAttached(exec, await sudoOf(exec, session.user, password));
      if (isRunning(result)) return result;
      const lost = result.exit_code === null && !result.signal && !result.timed_out;
      if (lost && session.state !== "connected") {
        throw new RsmError(
          "CONNECTION_LOST",
          `Lost the connection of session ${args.session_id} while the command ran ` +
            `(${session.lastError || "connection closed"}); it may still be running on the ` +
            `server. Partial stdout: ${boundText(exec.stdout.text(), 2000).text}`,
        );
      }
      if (result.timed_out && result.stop_result && result.stop_result !== "stopped") {
        app.log.warn("ssh_exec: command not fully stopped", {
          session: args.session_id,
          result: result.stop_result,
        });
      }
      return execView(result);
    },
  }),
];

/** The sudo password to use: given, typed by a person earlier, or asked for now if sudo needs one. */
async function sudoOf(
  { args, ctx, client }: ExecCall,
  user: string,
  password: string | undefined,
): Promise<{ password?: string | undefined; typed?: string | undefined; key: string }> {
  const key = `sudo:${args.session_id}`;
  if (!args.sudo || password !== undefined) return { password, key };
  const typed = typedSecret(key);
  if (typed === undefined) await needSudoPassword(client, args.session_id, user, ctx.signal);
  return { typed, key };
}

/** A detached command on the server (survives disconnects and daemon restarts). */
async function runDurable(exec: ExecCall): Promise<ExecResult | RunningJob> {
  const { args, ctx, client, stdout, stderr } = exec;
  const { app } = ctx;
  const started = Date.now();
  // the job id names the directory on the server, so start the job first and launch the
  // command from inside its work
  const source = (signal: AbortSignal) => app.ssh.get(args.session_id).ready(signal);
  const value = await runLong(ctx, {
    ...exec.call,
    work: async (job) => {
      const { dir, pid } = await startDetached(client, job.id, args.command, {
        env: args.env,
        cwd: args.cwd,
      });
      const record: DurableRecord = {
        session_id: args.session_id,
        dir,
        pid,
        deadline: started + exec.timeoutMs,
      };
      job.setDurable({ ...record });
      const outcome = await followDetached(source, record, {
        ...job,
        write: (stream, chunk) => {
          (stream === "stdout" ? stdout : stderr).push(chunk);
          job.write(stream, chunk);
        },
      });
      await Promise.all([stdout.end(), stderr.end()]);
      return outcome;
    },
    outcome: (o) => o,
  });
  if (isRunning(value)) return value;
  if (value.lost) throw new RsmError("CONNECTION_LOST", value.lost);
  return {
    exit_code: value.exit_code ?? null,
    signal: value.signal,
    stdout,
    stderr,
    timed_out: !!value.timed_out,
    duration_ms: Date.now() - started,
  };
}

/** The command on its own channel, stopped for real on timeout or cancel. */
function runAttached(
  exec: ExecCall,
  sudo: { password?: string | undefined; typed?: string | undefined; key: string },
): Promise<ExecResult | RunningJob> {
  const { args, ctx, client } = exec;
  const session = ctx.app.ssh.get(args.session_id);
  return runLong(ctx, {
    ...exec.call,
    work: async (job) => {
      const r = await execCommand(client, args.command, {
        env: args.env,
        cwd: args.cwd,
        stdin: args.stdin,
        timeoutMs: exec.timeoutMs,
        pty: args.pty,
        sudo: args.sudo,
        sudoPassword: sudo.password ?? sudo.typed,
        signal: job.signal,
        stdout: exec.stdout,
        stderr: exec.stderr,
        onOutput: job.write,
        onStarted: job.setKiller,
      });
      if (
        sudo.typed !== undefined && /incorrect password|try again/i.test(r.stderr.render(4096).text)
      ) {
        forgetTypedSecret(sudo.key); // the next sudo call asks the person again
      }
      return r;
    },
    outcome: (r) => {
      const lost = r.exit_code === null && !r.signal && !r.timed_out;
      if (lost && session.state !== "connected") {
        return {
          lost: `lost the connection of session ${args.session_id} while the command ` +
            `ran (${session.lastError || "connection closed"}); it may still be running`,
        };
      }
      return { exit_code: r.exit_code, signal: r.signal, timed_out: r.timed_out };
    },
  });
}
