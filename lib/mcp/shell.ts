import { z } from "zod";
import { RsmError } from "../errors.ts";
import { PERSON_WAIT_MS, type ShellKind, type ShellWatch } from "../term/mod.ts";
import { defineTool, fields, Text, type ToolContext, type ToolDef } from "./tool.ts";
import { isRunning, JOB_TIMEOUT_DEFAULT_MS, jobTimeoutField, runLong, waitField } from "./job.ts";
import { lastLineOf } from "../jobs/mod.ts";

/** How one backend's shell tools differ: name prefix, owner field, group, open tool. */
interface Flavour {
  kind: ShellKind;
  prefix: "ssh_shell" | "docker_shell";
  group: "shell" | "docker";
  ownerField: "session_id" | "host_id";
  ownerWhat: string;
  open: ToolDef;
}

/**
 * `{person_typed}` once after a person typed into the shell from the console, so the model
 * knows that input in the output was not its own (README, "The console").
 */
function personTyped(shell: { watch: ShellWatch }): { person_typed?: string } {
  return shell.watch.takePersonTyped()
    ? { person_typed: "a person typed in this shell from the console since your last call" }
    : {};
}

const size = (what: string) => z.number().int().min(1).max(1000).describe(what);

/** Budget for the (escaped) text of one read/run result, leaving room for the fields. */
function budget(ctx: ToolContext): number {
  return Math.max(1024, Math.floor(ctx.app.maxOutput * 0.9) - 256);
}

/**
 * A screen as a result: size and cursor in the header, then the lines as plain text (trailing
 * blanks of each line and blank lines at the bottom left out; `rows` still says the height).
 */
export function screenResult(
  snap: { rows: string[]; cols: number; cursor_row: number; cursor_col: number },
) {
  const lines = snap.rows.map((r) => r.replace(/\s+$/, ""));
  while (lines.length && !lines[lines.length - 1]) lines.pop();
  return {
    rows: snap.rows.length,
    cols: snap.cols,
    cursor_row: snap.cursor_row,
    cursor_col: snap.cursor_col,
    screen: lines.join("\n"),
  };
}

function compileUntil(pattern: string | undefined, what = "until"): RegExp | undefined {
  if (pattern === undefined) return undefined;
  try {
    return new RegExp(pattern, "m");
  } catch (err) {
    throw new RsmError(
      "BAD_REGEX",
      `Cannot use ${what} ${JSON.stringify(pattern)}: not a valid regular expression ` +
        `(${(err as Error).message}); escape special characters like ( [ . * with \\`,
    );
  }
}

/**
 * The eight tools of one shell backend, built by one factory so SSH and Docker shells share
 * names, parameters, results and behaviour; only the owner field and the open tool differ.
 */
function makeShellTools(f: Flavour): ToolDef[] {
  const owner = { [f.ownerField]: fields.id(f.ownerWhat) } as Record<string, z.ZodString>;
  const target = { ...owner, shell_id: fields.id("shell id (from the open call)") };
  const ownerOf = (args: Record<string, unknown>) => args[f.ownerField] as string;
  const name = (verb: string) => `${f.prefix}_${verb}`;
  return [
    f.open,
    defineTool({
      name: name("write"),
      group: f.group,
      description: `Types raw keys into a shell (add "\\n" for Enter; "\\u0003" Ctrl-C, ` +
        `"\\u0004" Ctrl-D). With wait_until/wait_idle_ms/wait_ms also returns the output ` +
        `that followed. For one command's exact output and exit code use ${name("run")}.`,
      input: {
        ...target,
        data: z.string().max(1 << 20).describe("raw bytes to type"),
        wait_until: z.string().max(2000).optional().describe(
          'then wait for a regex in the new output, e.g. ">>> $"',
        ),
        wait_idle_ms: z.number().int().min(1).max(300_000).optional().describe(
          "then wait for this much quiet",
        ),
        wait_ms: z.number().int().min(0).max(300_000).optional().describe(
          "max wait (default 10000); alone: until the prompt is back",
        ),
      },
      policy: (a) => ({
        kind: f.kind,
        target: ownerOf(a),
        typed: a.data,
        typedInto: `${f.kind}:${ownerOf(a)}/${a.shell_id}`,
      }),
      run: async (args, ctx) => {
        const shell = ctx.app.shells.get(f.kind, ownerOf(args), args.shell_id);
        const waits = args.wait_until !== undefined || args.wait_idle_ms !== undefined ||
          args.wait_ms !== undefined;
        const until = compileUntil(args.wait_until, "wait_until");
        await shell.watch.agentTurn(PERSON_WAIT_MS, ctx.signal); // a person at the console first
        ctx.app.audit.record({
          tool: name("write"),
          target: `${ownerOf(args)}/${args.shell_id}`,
          command: args.data.length > 2000 ? args.data.slice(0, 2000) + "…" : args.data,
        });
        if (!waits) return { bytes_written: await shell.write(args.data, ctx.signal) };
        const result = await shell.writeAndRead(args.data, {
          timeoutMs: args.wait_ms ?? 10_000,
          until,
          idleMs: args.wait_idle_ms,
          maxBytes: budget(ctx),
          signal: ctx.signal,
        });
        return { ...result, ...personTyped(shell) };
      },
    }),
    defineTool({
      name: name("read"),
      group: f.group,
      description: `Reads a shell's new output: at once if buffered, else waits up to ` +
        `timeout_ms. until: a regex to wait for; idle_ms: wait for quiet; strip_ansi: plain ` +
        `text. eof: exited and all read; dropped_bytes: lost past 1 MiB unread; more: call ` +
        `again. Also running, waiting_for_input, last_exit_code, cwd.`,
      input: {
        ...target,
        timeout_ms: z.number().int().min(0).max(300_000).optional().describe(
          "longest wait in ms (default 1000, max 300000)",
        ),
        until: z.string().max(2000).optional().describe(
          "regex (multiline) to wait for in the unread output",
        ),
        idle_ms: z.number().int().min(1).max(300_000).optional().describe(
          "return after this much quiet (ms)",
        ),
        strip_ansi: z.boolean().optional().describe("remove escape sequences and \\r"),
      },
      annotations: { readOnlyHint: true },
      run: async (args, ctx) => {
        const shell = ctx.app.shells.get(f.kind, ownerOf(args), args.shell_id);
        const result = await ctx.app.shells.read(f.kind, ownerOf(args), args.shell_id, {
          timeoutMs: args.timeout_ms ?? 1000,
          until: compileUntil(args.until),
          idleMs: args.idle_ms,
          stripAnsi: args.strip_ansi,
          maxBytes: budget(ctx),
          signal: ctx.signal,
        });
        return {
          ...result,
          ...personTyped(shell),
        };
      },
    }),
    defineTool({
      name: name("run"),
      group: f.group,
      description: `Runs one command (may be multi-line) in a live POSIX shell and returns ` +
        `exactly its output and exit code; cwd, env, functions and virtualenvs persist. On ` +
        `timeout Ctrl-C is sent (timed_out: true); the shell stays usable. Not for ` +
        `interactive programs (use write/screen).`,
      input: {
        ...target,
        command: z.string().min(1).max(1 << 20).describe("shell command (may be several lines)"),
        wait_ms: waitField(),
        timeout_ms: jobTimeoutField(),
        strip_ansi: z.boolean().optional().describe("remove colour/cursor codes from output"),
        ...fields.output(),
      },
      policy: (a) => ({ kind: f.kind, target: ownerOf(a), command: a.command }),
      run: async (args, ctx) => {
        const shell = ctx.app.shells.get(f.kind, ownerOf(args), args.shell_id);
        await shell.watch.agentTurn(PERSON_WAIT_MS, ctx.signal); // a person at the console first
        const target = `${ownerOf(args)}/${args.shell_id}`;
        const result = await runLong(ctx, {
          kind: name("run"),
          target,
          summary: args.command.trim().split("\n")[0].slice(0, 200),
          waitMs: args.wait_ms,
          work: async (job) => {
            const r = await shell.run(args.command, {
              timeoutMs: args.timeout_ms ?? JOB_TIMEOUT_DEFAULT_MS,
              stripAnsi: args.strip_ansi,
              signal: job.signal,
              // progress and the running tail show the latest line; the clean output (no
              // terminal codes) is kept when the run ends
              onOutput: (chunk) => {
                const line = lastLineOf(chunk);
                if (line) job.note(line);
              },
            });
            // the shell hands over a run's output when it ends: keep it whole for job_output
            job.write("stdout", new TextEncoder().encode(r.output));
            ctx.app.audit.record({
              tool: name("run"),
              target,
              command: args.command,
              exit_code: r.exit_code,
            });
            return r;
          },
          outcome: (r) => ({ exit_code: r.exit_code, timed_out: r.timed_out }),
        });
        if (isRunning(result)) return result;
        // the registry bounds `output` and keeps what it cuts in the output store
        return { ...result, ...personTyped(shell) };
      },
    }),
    defineTool({
      name: name("screen"),
      group: f.group,
      description: `Shows a shell's terminal screen as a person sees it (vim, less, top, ` +
        `menus) as plain text lines; cursor_row/cursor_col are 0-based.`,
      input: target,
      annotations: { readOnlyHint: true },
      run: async (args, ctx) =>
        screenResult(await ctx.app.shells.get(f.kind, ownerOf(args), args.shell_id).snapshot()),
    }),
    defineTool({
      name: name("resize"),
      group: f.group,
      description: `Changes a shell's terminal size (rows × cols, 1..1000 each); programs ` +
        `get SIGWINCH and redraw.`,
      input: { ...target, rows: size("rows"), cols: size("columns") },
      annotations: { idempotentHint: true },
      run: async (args, ctx) => {
        await ctx.app.shells.get(f.kind, ownerOf(args), args.shell_id).resize(
          args.rows,
          args.cols,
        );
        return new Text("ok");
      },
    }),
    defineTool({
      name: name("close"),
      group: f.group,
      description: `Closes a shell and ends its process (a durable shell's tmux session ` +
        `too). Unread output is discarded.`,
      input: target,
      annotations: { destructiveHint: true },
      run: (args, ctx) => {
        ctx.app.shells.closeShell(f.kind, ownerOf(args), args.shell_id);
        return Promise.resolve(new Text(`closed ${args.shell_id}`));
      },
    }),
    defineTool({
      name: name("list"),
      group: f.group,
      description: `Lists open shells${` (optionally of one ${f.ownerWhat.split(" (")[0]})`}: ` +
        `buffered/dropped bytes, state, closed + exit_code once exited, lost with its ` +
        `connection.`,
      input: {
        [f.ownerField]: fields.id(f.ownerWhat).optional(),
      } as Record<string, z.ZodOptional<z.ZodString>>,
      annotations: { readOnlyHint: true },
      run: (args, ctx) =>
        Promise.resolve(
          ctx.app.shells.list({ kind: f.kind, owner: args[f.ownerField] as string | undefined }),
        ),
    }),
  ];
}

const sshOpen = defineTool({
  name: "ssh_shell_open",
  group: "shell",
  description: "Opens a PTY shell on an SSH session; its state (cwd, env, functions) " +
    "persists. Then: ssh_shell_run for exact output and exit code; ssh_shell_write (with " +
    "wait_until) for interactive programs; ssh_shell_screen for full-screen ones. durable: " +
    "true keeps it in tmux on the server (survives reconnects and restarts).",
  input: {
    session_id: fields.id("SSH session id (from ssh_connect)"),
    shell_id: fields.id("name for the new shell, unique within the session"),
    term: z.string().min(1).max(100).optional().describe("TERM (default xterm-256color)"),
    rows: size("rows (default 24)").optional(),
    cols: size("columns (default 80)").optional(),
    command: z.string().min(1).max(100_000).optional().describe(
      "run this instead of the login shell; the shell closes when it exits",
    ),
    env: fields.env().optional(),
    durable: z.boolean().optional().describe(
      "keep the shell in a tmux session on the server (survives reconnects and restarts)",
    ),
  },
  policy: (a) => ({ kind: "ssh", target: a.session_id, command: a.command }),
  run: async (args, ctx) => {
    const info = await ctx.app.shells.openSsh(args.session_id, args.shell_id, {
      term: args.term,
      rows: args.rows,
      cols: args.cols,
      command: args.command,
      env: args.env,
      durable: args.durable,
      signal: ctx.signal,
    });
    ctx.app.audit.record({
      tool: "ssh_shell_open",
      target: `${args.session_id}/${args.shell_id}`,
      command: args.command ?? "(login shell)",
    });
    return info;
  },
});

const dockerOpen = defineTool({
  name: "docker_shell_open",
  group: "docker",
  description: "Opens a PTY shell in a running container (docker exec with a TTY); its " +
    "state persists. Then: docker_shell_run for exact output and exit code; " +
    "docker_shell_write (with wait_until) for interactive programs; docker_shell_screen for " +
    "full-screen ones.",
  input: {
    host_id: fields.id("Docker host id (from docker_connect)"),
    shell_id: fields.id("name for the new shell, unique within the host"),
    container: z.string().min(1).max(300).describe("container name or id"),
    cmd: z.array(z.string().max(100_000)).min(1).max(1000).optional().describe(
      'argv to run (default ["/bin/sh"])',
    ),
    env: fields.env().optional(),
    user: z.string().min(1).max(300).optional().describe("user[:group] inside the container"),
    working_dir: z.string().min(1).max(4096).optional().describe("working directory"),
    rows: size("rows (default 24)").optional(),
    cols: size("columns (default 80)").optional(),
  },
  policy: (a) => ({
    kind: "docker",
    target: a.host_id,
    argv: a.cmd ?? ["/bin/sh"],
    user: a.user,
    cwd: a.working_dir,
  }),
  run: async (args, ctx) => {
    const cmd = args.cmd ?? ["/bin/sh"];
    const info = await ctx.app.shells.openDocker(args.host_id, args.shell_id, {
      container: args.container,
      cmd,
      env: args.env,
      user: args.user,
      working_dir: args.working_dir,
      rows: args.rows,
      cols: args.cols,
      signal: ctx.signal,
    });
    ctx.app.audit.record({
      tool: "docker_shell_open",
      target: `${args.host_id}/${args.container}/${args.shell_id}`,
      command: cmd.join(" "),
    });
    return info;
  },
});

/** The `ssh_shell_*` tools (group "shell"). */
export const sshShellTools: ToolDef[] = makeShellTools({
  kind: "ssh",
  prefix: "ssh_shell",
  group: "shell",
  ownerField: "session_id",
  ownerWhat: "SSH session id (from ssh_connect)",
  open: sshOpen,
});

/** The `docker_shell_*` tools (group "docker"). */
export const dockerShellTools: ToolDef[] = makeShellTools({
  kind: "docker",
  prefix: "docker_shell",
  group: "docker",
  ownerField: "host_id",
  ownerWhat: "Docker host id (from docker_connect)",
  open: dockerOpen,
}).map((def) =>
  def.name === "docker_shell_open" ? def : {
    ...def,
    // listed as "same as ssh_shell_…" when that one is served too (keeps tools/list small)
    sameAs: {
      tool: def.name.replace("docker_", "ssh_"),
      note: "in a container's shell (host_id instead of session_id)",
    },
  }
);

/**
 * Every shell tool: `ssh_shell_*` (group "shell") and `docker_shell_*` (group "docker").
 * The registry filters by group, so a profile without "docker" drops the Docker ones.
 */
export const shellTools: ToolDef[] = [...sshShellTools, ...dockerShellTools];
