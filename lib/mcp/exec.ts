/**
 * `ssh_exec` (SPEC §4.2): one command on an SSH session, stopped for real on timeout or
 * cancel, output bounded head+tail, audited, with throttled progress.
 */
import { z } from "zod";
import { defineTool, fields, type ToolDef } from "./tool.ts";
import { execCommand, splitBudget } from "../ssh/mod.ts";
import { addSecret } from "../secrets.ts";
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

/** The exec tools. */
export const execTools: ToolDef[] = [
  defineTool({
    name: "ssh_exec",
    group: "ssh",
    description:
      "Runs one command on an SSH session and returns {exit_code, signal?, stdout, stderr, " +
      "timed_out, truncated, duration_ms}. A non-zero exit is a result, not an error. On " +
      "timeout or cancel the command and its children are killed and partial output returned.\n" +
      'Example: {"session_id": "web1", "command": "systemctl status nginx", "timeout_ms": 10000}',
    input: {
      session_id: fields.id("session id (see ssh_list)"),
      command: z.string().min(1).max(1 << 20).describe(
        "shell command line (the user's login shell)",
      ),
      env: fields.env().optional(),
      stdin: z.string().max(16 << 20).optional().describe("text written to the command's stdin"),
      timeout_ms: z.number().int().min(1).max(3_600_000).optional().describe(
        "stop the command after this many ms (default 30000, max 3600000)",
      ),
      cwd: z.string().min(1).max(4096).optional().describe("working directory"),
      pty: z.boolean().optional().describe(
        "allocate a terminal (for commands that need a tty); stderr is merged into stdout",
      ),
      sudo: z.boolean().optional().describe("run as root through sudo -S"),
      sudo_password_env: z.string().min(1).max(200).optional().describe(
        "name of an environment variable of the daemon holding the sudo password",
      ),
      sudo_password_file: z.string().min(1).max(4096).optional().describe(
        "file holding the sudo password",
      ),
    },
    annotations: { destructiveHint: true, openWorldHint: true },
    run: async (args, ctx) => {
      const { app } = ctx;
      const session = app.ssh.get(args.session_id);
      const timeoutMs = args.timeout_ms ?? 30_000;
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
      let lastSent = 0;
      let result;
      try {
        result = await execCommand(client, args.command, {
          env: args.env,
          cwd: args.cwd,
          stdin: args.stdin,
          timeoutMs,
          pty: args.pty,
          sudo: args.sudo,
          sudoPassword: password,
          signal: ctx.signal,
          keepBytes: app.maxOutput,
          onProgress: (elapsed, line) => {
            if (elapsed - lastSent < 900) return;
            lastSent = elapsed;
            ctx.progress(
              Math.round(elapsed / 1000),
              Math.round(timeoutMs / 1000),
              line || `running for ${Math.round(elapsed / 1000)}s`,
            );
          },
        });
      } catch (err) {
        app.audit.record({
          tool: "ssh_exec",
          target: args.session_id,
          command: args.command,
          error: errorMessage(err),
        });
        throw err;
      }
      app.audit.record({
        tool: "ssh_exec",
        target: args.session_id,
        command: args.command,
        exit_code: result.exit_code,
      });
      const lost = result.exit_code === null && !result.signal && !result.timed_out;
      if (lost && session.state !== "connected") {
        throw new RsmError(
          "CONNECTION_LOST",
          `Lost the connection of session ${args.session_id} while the command ran ` +
            `(${session.lastError || "connection closed"}); it may still be running on the ` +
            `server. Partial stdout: ${result.stdout.render(2000).text}`,
        );
      }
      const budget = Math.max(2048, app.maxOutput - 1024);
      const [outMax, errMax] = splitBudget(result.stdout.total, result.stderr.total, budget);
      const stdout = result.stdout.render(outMax);
      const stderr = result.stderr.render(errMax);
      if (result.timed_out && result.stop_result && result.stop_result !== "stopped") {
        app.log.warn("ssh_exec: command not fully stopped", {
          session: args.session_id,
          result: result.stop_result,
        });
      }
      return {
        exit_code: result.exit_code,
        ...(result.signal ? { signal: result.signal } : {}),
        stdout: stdout.text,
        stderr: stderr.text,
        timed_out: result.timed_out,
        truncated: stdout.truncated || stderr.truncated,
        duration_ms: result.duration_ms,
      };
    },
  }),
];
