import { z } from "zod";
import { RsmError } from "../errors.ts";
import {
  PERSON_WAIT_MS,
  type ShellBackend,
  type ShellBackends,
  type ShellWatch,
} from "../term/mod.ts";
import type { Subject } from "../policy/mod.ts";
import {
  defineTool,
  fields,
  type Group,
  GROUPS,
  Text,
  type ToolContext,
  type ToolDef,
} from "./tool.ts";
import { isRunning, JOB_TIMEOUT_DEFAULT_MS, jobTimeoutField, runLong, waitField } from "./job.ts";
import { lastLineOf } from "../jobs/mod.ts";

/**
 * `{person_typed}` once after a person typed into the shell from the console, so the model
 * knows that input in the output was not its own (README, "The console").
 */
function personTyped(shell: { watch: ShellWatch }): { person_typed?: string | undefined } {
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

/** How one backend's shell tools differ: kind (the name prefix), owner field, group, policy. */
interface Flavour {
  kind: string;
  group: Group;
  ownerField: string;
  ownerWhat: string;
  /** Policy subject of a call on `owner` (undefined: the policy does not check it). */
  subject(owner: string, more: Omit<Subject, "kind" | "target">): Subject | undefined;
}

/** Checks a backend's tool flavour against the tool layer (its group must be a profile group). */
function flavourOf(b: ShellBackend): Flavour {
  const group = GROUPS.find((g) => g === b.tool.group);
  if (!group) {
    throw new Error(`Cannot serve shell kind ${b.kind}: group "${b.tool.group}" is no tool group`);
  }
  const policy = b.tool.policy;
  return {
    kind: b.kind,
    group,
    ownerField: b.owner.field,
    ownerWhat: b.owner.describe,
    subject: (target, more) => policy ? { kind: policy.kind, target, ...more } : undefined,
  };
}

/**
 * The eight tools of one shell backend (`<kind>_shell_open`, `_write`, `_read`, `_run`,
 * `_screen`, `_resize`, `_close`, `_list`), built by one factory so every kind of shell shares
 * names, parameters, results and behaviour; only the owner field and the open tool's own
 * fields differ.
 */
function makeShellTools(b: ShellBackend): ToolDef[] {
  const f = flavourOf(b);
  const owner = { [f.ownerField]: fields.id(f.ownerWhat) } as Record<string, z.ZodString>;
  const target = { ...owner, shell_id: fields.id("shell id (from the open call)") };
  const ownerOf = (args: Record<string, unknown>) => args[f.ownerField] as string;
  const name = (verb: string) => `${f.kind}_shell_${verb}`;
  return [
    openTool(b, f),
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
      policy: (a) =>
        f.subject(ownerOf(a), {
          typed: a.data,
          typedInto: `${f.kind}:${ownerOf(a)}/${a.shell_id}`,
        }),
      audit: (a) => ({
        target: `${ownerOf(a)}/${a.shell_id}`,
        command: a.data.length > 2000 ? a.data.slice(0, 2000) + "…" : a.data,
      }),
      run: async (args, ctx) => {
        const shell = ctx.app.shells.get(f.kind, ownerOf(args), args.shell_id);
        const waits = args.wait_until !== undefined || args.wait_idle_ms !== undefined ||
          args.wait_ms !== undefined;
        const until = compileUntil(args.wait_until, "wait_until");
        await shell.watch.agentTurn(PERSON_WAIT_MS, ctx.signal); // a person at the console first
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
      policy: (a) => f.subject(ownerOf(a), { command: a.command }),
      audit: (a) => ({ target: `${ownerOf(a)}/${a.shell_id}`, command: a.command }),
      run: async (args, ctx) => {
        const shell = ctx.app.shells.get(f.kind, ownerOf(args), args.shell_id);
        await shell.watch.agentTurn(PERSON_WAIT_MS, ctx.signal); // a person at the console first
        const target = `${ownerOf(args)}/${args.shell_id}`;
        const result = await runLong(ctx, {
          kind: name("run"),
          target,
          summary: (args.command.trim().split("\n")[0] ?? "").slice(0, 200),
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

/** `<kind>_shell_open`: the owner, `shell_id`, the size, then the backend's own fields. */
function openTool(b: ShellBackend, f: Flavour): ToolDef {
  const policy = b.tool.policy;
  return defineTool({
    name: `${f.kind}_shell_open`,
    group: f.group,
    description: b.tool.openDescription,
    input: {
      [f.ownerField]: fields.id(f.ownerWhat),
      shell_id: fields.id(`name for the new shell, unique within the ${b.owner.noun}`),
      ...b.tool.openInput({ env: fields.env }),
      rows: size("rows (default 24)").optional(),
      cols: size("columns (default 80)").optional(),
    } as Record<string, z.ZodType>,
    policy: (a) => {
      const { [f.ownerField]: target, shell_id: _, rows: _r, cols: _c, ...options } = a;
      return policy && { kind: policy.kind, target: target as string, ...policy.open(options) };
    },
    run: async (args, ctx) => {
      const { [f.ownerField]: ownerId, shell_id, rows, cols, ...options } = args;
      const owner = ownerId as string;
      const id = shell_id as string;
      const info = await ctx.app.shells.open(f.kind, owner, id, {
        rows: rows as number | undefined,
        cols: cols as number | undefined,
        options,
        signal: ctx.signal,
      });
      const opened = ctx.app.shells.opened(f.kind, owner, id);
      ctx.audit.set({
        target: [owner, ...Object.values(opened.info ?? {}), id].join("/"),
        command: opened.command ?? "",
      });
      return info;
    },
  });
}

/**
 * Every backend's shell tools, in registration order. A profile without a backend's group
 * drops its tools; the later backends' tools are listed as "same as" the first one's.
 */
export function shellTools(backends: ShellBackends): ToolDef[] {
  const all = backends.all();
  const first = all[0];
  return all.flatMap((b, i) => {
    const tools = makeShellTools(b);
    if (i === 0 || !first) return tools;
    return tools.map((def) =>
      def.name.endsWith("_shell_open") ? def : {
        ...def,
        // listed as "same as <first>_shell_…" when that one is served too (keeps tools/list small)
        sameAs: {
          tool: def.name.replace(`${b.kind}_`, `${first.kind}_`),
          note: `${b.tool.where} (${b.owner.field} instead of ${first.owner.field})`,
        },
      }
    );
  });
}
