/**
 * `rsm setup`: registers `rsm stdio` in every detected MCP client (README "Install").
 *
 * Decisions where the spec is silent:
 * - Without `--yes`, on a terminal it shows the diff and asks; with stdin not a terminal it
 *   behaves as `--dry-run` (prints the diff, writes nothing, says to re-run with `--yes`), so
 *   a script never edits config files it was not told to. install.sh passes `--yes`.
 * - Only the fields rsm owns (`command`, `args`, `type` where the client wants one, and
 *   `env.PATH` — see command.ts for why) are compared and updated, so a user's own additions
 *   to the entry (other env vars, `disabled`, …) stay.
 * - An unreadable/unparseable file is left untouched with a message; the exit code is 1 only
 *   when nothing could be done (every selected client failed), 2 for bad usage, else 0. No
 *   detected client at all is not an error (exit 0 with a hint about `--client`).
 * - Backups are `<file>.rsm-backup-<UTC yyyymmddThhmmssZ>` next to the file.
 */
import { parseArgs } from "node:util";
import { dirname } from "node:path";
import { writeFileAtomic } from "../state/atomic.ts";
import { errorMessage } from "../errors.ts";
import {
  CLIENT_IDS,
  type ClientEnv,
  type ClientId,
  clientIdOf,
  type ClientTarget,
  homeOf,
  resolveClients,
  type ServerCommand,
} from "./clients.ts";
import { editJson, type EditResult } from "./json.ts";
import { editToml, type TomlField } from "./toml.ts";
import { editContinue } from "./continue.ts";
import { unifiedDiff } from "./diff.ts";
import { serverCommand } from "./command.ts";

export { CLIENT_IDS, type ClientId, type ServerCommand };
export { runningFromSource, serverCommand } from "./command.ts";

/** Default server name in the clients' configs. */
export const DEFAULT_NAME = "remote-shell-mcp";

/** `rsm setup --help`. */
export const SETUP_HELP = `rsm setup — register rsm in your MCP clients

Usage: rsm setup [--yes] [--dry-run] [--client ID]... [--name NAME] [--list]

Adds {"command": "<path to rsm>", "args": ["stdio"]} under the name "${DEFAULT_NAME}"
to every MCP client found on this machine (its config file or config dir exists),
with env PATH=<rsm's dir>:/usr/local/bin:/usr/bin:/bin so clients started from a
desktop (minimal PATH) can still start the rsm daemon. Only that one entry is
touched: other servers, keys, key order, comments and formatting stay as they
were; in the entry, only command, args, type and env.PATH are set (your own env
vars stay). Each changed file is backed up first, next to it, as
<file>.rsm-backup-<UTC time>. Running it again changes nothing.

Clients and the files they read (Linux; macOS in brackets):
  claude-code     ~/.claude.json  (mcpServers)
  claude-desktop  ~/.config/Claude/claude_desktop_config.json
                  [~/Library/Application Support/Claude/claude_desktop_config.json]
  codex           ~/.codex/config.toml  ([mcp_servers.NAME]; $CODEX_HOME honoured)
  cursor          ~/.cursor/mcp.json
  windsurf        ~/.codeium/windsurf/mcp_config.json
  zed             ~/.config/zed/settings.json  (context_servers, JSONC)
  continue        ~/.continue/mcpServers/NAME.yaml  (a block file of its own)
  vscode          ~/.config/Code/User/mcp.json  (servers, "type": "stdio")
                  [~/Library/Application Support/Code/User/mcp.json]
  gemini          ~/.gemini/settings.json

Options:
  -y, --yes          apply without asking
  -n, --dry-run      print the diff of every change and write nothing
  -c, --client ID    only these clients, even if not detected (repeat, or a
                     comma list: --client cursor,zed)
      --name NAME    server name in the configs (default ${DEFAULT_NAME})
      --list         show every client, whether it was found, and its state
  -h, --help         this help

Without --yes, setup shows the diff and asks on a terminal; when stdin is not a
terminal it only shows the diff (as --dry-run) and writes nothing.
Run from source (deno task rsm setup), it registers "deno run -P=rsm --config
<checkout>/deno.json <checkout>/main.ts stdio" so the checkout works in clients.

Exit status: 0 done (or nothing to do), 1 every selected client failed or the
prompt was declined, 2 bad usage.`;

/** Where `runSetup` reads and writes (tests inject a temp HOME and capture the output). */
export interface SetupIO {
  env: ClientEnv;
  out(text: string): void;
  err(text: string): void;
  /** Whether stdin is a terminal (a prompt is possible). */
  isTTY: boolean;
  /** Asks a yes/no question (only called when `isTTY`). */
  confirm(question: string): boolean | Promise<boolean>;
  /** Clock for backup names (default `new Date()`). */
  now?: () => Date;
  /** The command to register (default {@link serverCommand}). */
  command?: ServerCommand;
}

interface Plan {
  target: ClientTarget;
  detected: boolean;
  original: string | null;
  result?: EditResult;
  error?: string;
  backup?: string;
}

/**
 * Runs `rsm setup ARGS` with real stdin/stdout and this process's environment; returns the
 * exit code.
 *
 * @example
 * ```ts ignore
 * // not run as a doc test: it reads this machine's real MCP client configs
 * Deno.exit(await setupCommand(["--dry-run"]));
 * ```
 */
export function setupCommand(args: string[]): Promise<number> {
  const enc = new TextEncoder();
  return runSetup(args, {
    env: { get: (k) => Deno.env.get(k), os: Deno.build.os },
    out: (t) => Deno.stdout.writeSync(enc.encode(t.endsWith("\n") ? t : t + "\n")),
    err: (t) => Deno.stderr.writeSync(enc.encode(t.endsWith("\n") ? t : t + "\n")),
    isTTY: Deno.stdin.isTerminal(),
    confirm: (q) => confirm(q),
  });
}

/** The flags of `rsm setup` once checked. */
interface SetupFlags {
  yes: boolean;
  dryRun: boolean;
  list: boolean;
  name: string;
  /** Clients named with --client, in order, without repeats. */
  forced: ClientId[];
}

/** Parses and checks `rsm setup` flags; prints the error or help and gives an exit code instead. */
function parseSetupFlags(args: string[], io: SetupIO): SetupFlags | number {
  let flags;
  try {
    flags = parseArgs({
      args,
      options: {
        yes: { type: "boolean", short: "y" },
        "dry-run": { type: "boolean", short: "n" },
        client: { type: "string", short: "c", multiple: true },
        name: { type: "string" },
        list: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    io.err(`rsm setup: ${errorMessage(err)}\nSee: rsm setup --help`);
    return 2;
  }
  if (flags.help) {
    io.out(SETUP_HELP);
    return 0;
  }
  const name = flags.name ?? DEFAULT_NAME;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
    io.err(
      `rsm setup: Cannot use --name ${JSON.stringify(name)}: use 1-64 letters, digits, _ or -`,
    );
    return 2;
  }
  const forced: ClientId[] = [];
  for (const value of (flags.client ?? []).flatMap((c) => c.split(","))) {
    if (value.trim() === "") continue;
    const id = clientIdOf(value);
    if (!id) {
      io.err(
        `rsm setup: Cannot set up client ${JSON.stringify(value)}: unknown; ` +
          `use one of ${CLIENT_IDS.join(", ")}`,
      );
      return 2;
    }
    if (!forced.includes(id)) forced.push(id);
  }
  return {
    yes: flags.yes === true,
    dryRun: flags["dry-run"] === true,
    list: flags.list === true,
    name,
    forced,
  };
}

/** What one run of `rsm setup` works with: flags, output, the command and path shortening. */
interface SetupRun {
  flags: SetupFlags;
  io: SetupIO;
  cmd: ServerCommand;
  /** Shows a path under the home directory as `~/…`. */
  tilde: (p: string) => string;
}

/** `rsm setup` against an explicit environment and output; returns the exit code. */
export async function runSetup(args: string[], io: SetupIO): Promise<number> {
  const flags = parseSetupFlags(args, io);
  if (typeof flags === "number") return flags;
  let home: string;
  let all: ClientTarget[];
  try {
    home = homeOf(io.env);
    all = resolveClients(io.env, flags.name);
  } catch (err) {
    io.err(`rsm setup: ${errorMessage(err)}`);
    return 1;
  }
  const run: SetupRun = {
    flags,
    io,
    cmd: io.command ?? serverCommand(),
    tilde: (p) => p.startsWith(home + "/") ? "~" + p.slice(home.length) : p,
  };

  const plans: Plan[] = [];
  for (const target of all) {
    const detected = await anyExists(target.markers);
    const wanted = flags.forced.length ? flags.forced.includes(target.id) : detected;
    if (!flags.list && !wanted) continue;
    plans.push(await plan(target, detected, flags.name, run.cmd));
  }

  if (flags.list) {
    for (const p of plans) {
      const state = p.error ? `error: ${p.error}` : describe(p, true);
      io.out(
        `${p.target.id.padEnd(15)} ${(p.detected ? "found" : "-").padEnd(6)} ` +
          `${run.tilde(p.target.file)}  ${state}`,
      );
    }
    return 0;
  }
  if (plans.length === 0) {
    io.out(
      `rsm setup: no MCP client found under ${home}.\n` +
        `Supported: ${CLIENT_IDS.join(", ")}. Use --client ID to set one up anyway.`,
    );
    return 0;
  }
  reportPlans(run, plans);
  const changes = plans.filter((p) => p.result && p.result.status !== "unchanged");
  const failed = () => plans.filter((p) => p.error).length;
  const code = () => (failed() > 0 && failed() === plans.length ? 1 : 0);
  if (changes.length === 0) {
    io.out(
      failed() ? "\nNothing else to change." : "\nNothing to change: already set up everywhere.",
    );
    return code();
  }
  const go = await confirmChanges(run, changes);
  if (go !== true) return go === "declined" ? 1 : code();
  await applyChanges(run, changes);
  const done = changes.filter((p) => !p.error).map((p) => p.target.label);
  if (done.length) io.out(`\nRestart ${done.join(", ")} to load "${flags.name}".`);
  return code();
}

/** Prints what will happen to each client's file, and why a file is left untouched. */
function reportPlans({ flags, io, cmd, tilde }: SetupRun, plans: Plan[]): void {
  const envText = Object.entries(cmd.env ?? {}).map(([k, v]) => `${k}=${v} `).join("");
  io.out(`Registering "${flags.name}": ${envText}${[cmd.command, ...cmd.args].join(" ")}\n`);
  for (const p of plans) {
    const state = p.error ? "left untouched (see below)" : describe(p, false);
    io.out(`  ${p.target.label.padEnd(15)} ${tilde(p.target.file).padEnd(48)} ${state}`);
  }
  for (const p of plans) {
    if (p.error) {
      io.err(
        `rsm setup: ${p.target.label}: Cannot update ${tilde(p.target.file)}: ${p.error}; ` +
          `left it untouched. Fix the file, or add this entry by hand under ` +
          `${[...p.target.rootKey, flags.name].join(".")}: ` +
          JSON.stringify({ ...p.target.entry(cmd) }),
      );
    }
  }
}

/**
 * Shows the diffs unless --yes, and asks when stdin is a terminal. True: go ahead; "declined":
 * the person said no; "stop": a dry run, or no terminal to ask on (nothing is written).
 */
async function confirmChanges(
  { flags, io, tilde }: SetupRun,
  changes: Plan[],
): Promise<true | "declined" | "stop"> {
  const showDiffs = () => {
    for (const p of changes) {
      io.out(
        "\n" + unifiedDiff(p.original ?? "", p.result!.text, {
          from: p.original === null ? "/dev/null" : tilde(p.target.file),
          to: tilde(p.target.file),
        }).trimEnd(),
      );
      if (p.result!.note) io.out(`note: ${tilde(p.target.file)}: ${p.result!.note}`);
    }
  };
  if (flags.dryRun) {
    showDiffs();
    io.out("\nDry run: nothing was written.");
    return "stop";
  }
  if (flags.yes) return true;
  showDiffs();
  if (!io.isTTY) {
    io.out("\nstdin is not a terminal and --yes was not given: nothing was written.");
    io.out("Re-run with --yes to apply these changes.");
    return "stop";
  }
  if (!(await io.confirm(`\nApply these changes to ${changes.length} file(s)?`))) {
    io.out("Nothing was written.");
    return "declined";
  }
  return true;
}

/** Writes each changed file (with a backup); a failure is printed and kept on its plan. */
async function applyChanges({ flags, io, cmd, tilde }: SetupRun, changes: Plan[]) {
  const now = (io.now ?? (() => new Date()))();
  io.out("");
  for (const p of changes) {
    try {
      await apply(p, flags.name, cmd, now);
      if (p.result!.status === "unchanged") {
        io.out(`  ${p.target.label}: already up to date`);
        continue;
      }
      io.out(
        `  ${p.target.label}: ${p.result!.status === "added" ? "added" : "updated"} ` +
          `${tilde(p.target.file)}` + (p.backup ? ` (backup: ${tilde(p.backup)})` : ""),
      );
      if (p.result!.note) io.out(`    note: ${p.result!.note}`);
    } catch (err) {
      p.error = errorMessage(err);
      io.err(`rsm setup: ${p.target.label}: Cannot write ${tilde(p.target.file)}: ${p.error}`);
    }
  }
}

function describe(p: Plan, list: boolean): string {
  const s = p.result?.status;
  if (s === "unchanged") return list ? "registered" : "up to date";
  if (s === "added") return list ? "not registered" : "will add";
  return list ? "registered with another command" : "will update";
}

async function anyExists(paths: string[]): Promise<boolean> {
  for (const p of paths) {
    try {
      await Deno.lstat(p);
      return true;
    } catch {
      // missing
    }
  }
  return false;
}

async function readOrNull(file: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

function edit(target: ClientTarget, text: string, name: string, cmd: ServerCommand): EditResult {
  const fields = target.entry(cmd);
  switch (target.format) {
    case "json":
      return editJson(text, {
        rootKey: target.rootKey,
        name,
        fields,
        extraOnCreate: target.extraOnCreate,
      });
    case "toml":
      return editToml(text, { name, fields: fields as Record<string, TomlField> });
    case "continue-yaml":
      return editContinue(text, name, cmd);
  }
}

async function plan(
  target: ClientTarget,
  detected: boolean,
  name: string,
  cmd: ServerCommand,
): Promise<Plan> {
  const p: Plan = { target, detected, original: null };
  try {
    p.original = await readOrNull(target.file);
    p.result = edit(target, p.original ?? "", name, cmd);
  } catch (err) {
    p.error = errorMessage(err);
  }
  return p;
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

/** Writes one planned change: re-reads first (the client may have written meanwhile). */
async function apply(p: Plan, name: string, cmd: ServerCommand, now: Date): Promise<void> {
  const file = p.target.file;
  const current = await readOrNull(file);
  if (current !== p.original) {
    p.original = current;
    p.result = edit(p.target, current ?? "", name, cmd);
    if (p.result.status === "unchanged") return;
  }
  if (p.original === null) {
    await Deno.mkdir(dirname(file), { recursive: true });
    await writeFileAtomic(file, p.result!.text, 0o600);
    return;
  }
  const real = await Deno.realPath(file); // write through a symlinked dotfile, keep the link
  const mode = (await Deno.stat(real)).mode;
  let backup = `${file}.rsm-backup-${stamp(now)}`;
  for (let i = 2; await anyExists([backup]); i++) backup = `${file}.rsm-backup-${stamp(now)}-${i}`;
  await Deno.writeTextFile(backup, p.original, { mode: 0o600, createNew: true });
  p.backup = backup;
  await writeFileAtomic(real, p.result!.text, mode === null ? 0o600 : mode & 0o777);
}
