/**
 * `rsm`: the remote-shell-mcp command line. Parses arguments and dispatches; nothing else.
 */
import { parseArgs } from "node:util";
import { VERSION } from "./lib/version.ts";
import { errorMessage } from "./lib/errors.ts";
import { resolvePaths } from "./lib/paths.ts";
import { type Handle, readHandle } from "./lib/http/handle.ts";
import { checkHealth } from "./lib/http/client/health.ts";
import { findOrSpawnDaemon } from "./lib/http/client/spawn.ts";
import { UsageError } from "./lib/cli/usage.ts";
import { narrowRun } from "./lib/perms.ts";

// Commands load their code on demand: `rsm stdio` must start fast and light.

const HELP: Record<string, string> = {
  main: `rsm ${VERSION} — persistent SSH and Docker for LLM agents over MCP

Usage: rsm <command> [options]

Commands:
  stdio     MCP server on stdin/stdout (what an MCP client starts); starts the daemon if needed
  daemon    run the daemon in the foreground (systemd, launchd, debugging)
  status    show the running daemon: pid, url, uptime, sessions, shells, forwards, hosts
  stop      stop the daemon gracefully (state is saved first)
  tools     list the tools the daemon serves
  call      call one tool from a shell: rsm call ssh_exec session_id=box command='uname -a'
  setup     register rsm in the MCP clients found on this machine
  console   print a one-time link to the daemon's web console (watch and take over shells)
  version   print the version
  help      this text; rsm <command> --help for one command

Environment: REMOTE_SHELL_MCP_ADDR, _STATE, _HANDLE, _FORMAT, _TOOLS, _LOG_LEVEL, _MAX_OUTPUT
(flag beats env beats default). Files live in $XDG_CONFIG_HOME/remote-shell-mcp/.`,
  stdio: `Usage: rsm stdio [--handle PATH] [--no-spawn]

Serves MCP on stdin/stdout and bridges every message to the daemon, starting it (detached)
when none answers, and re-initialising transparently when the daemon restarts.

  --handle PATH   daemon handle file (default: <config dir>/daemon.json)
  --no-spawn      fail instead of starting a daemon`,
  daemon: `Usage: rsm daemon [--addr HOST:PORT] [--state PATH] [--handle PATH]
                  [--format toon|json] [--log-level debug|info|warn|error]

Runs the daemon in the foreground. It holds every SSH session, shell, forward and Docker host.

  --addr        listen address (default 127.0.0.1:0 — the kernel picks a port)
  --state       state file (default: <config dir>/state.json)
  --handle      handle file with url+token (default: <config dir>/daemon.json)
  --format      tool result format (default toon)
  --log-level   default info`,
  status: `Usage: rsm status [--json] [--handle PATH]

Shows the running daemon: pid, url, uptime, version, sessions, shells, forwards, Docker hosts.
Exits 1 when no daemon is running.`,
  stop: `Usage: rsm stop [--handle PATH]

Stops the daemon gracefully: state is written first, then connections are closed.`,
  tools: `Usage: rsm tools [--json] [--handle PATH]

Lists the tools the daemon serves (starting it if needed). --json prints the full schemas.`,
  call: `Usage: rsm call TOOL [key=value | key:=json | key@=file]...

Calls one tool. key=value passes a string, key:=json a JSON value (numbers, booleans,
objects), key@=file a file's contents as a string. Prints the tool's text; a tool error goes to
stderr with exit 1; bad usage exits 2. Starts the daemon if needed.

Example: rsm call ssh_connect id=box spec:='{"addresses":["web1"],"user":"deploy"}'`,
  console: `Usage: rsm console [--print] [--handle PATH]

Prints a one-time login link to the daemon's web console on loopback: sessions, Docker hosts,
forwards with live byte counters, jobs, shells you can watch and take over, approvals and the
audit log. The link works once and sets a browser cookie. Starts the daemon if needed.
Opens the link in the desktop's browser when rsm may run xdg-open/open; otherwise (and with
--print) it only prints it.

  --print   only print the link`,
  version: "Usage: rsm version\n\nPrints the version.",
};

/** The flags any command may take (each command uses its own). */
interface Flags {
  handle?: string;
  "no-spawn"?: boolean;
  addr?: string;
  state?: string;
  format?: string;
  "log-level"?: string;
  detached?: boolean;
  json?: boolean;
  print?: boolean;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const early = await helpVersionOrSetup(command, rest);
  if (early !== undefined) return early;
  const cmd = command!;
  const options = {
    handle: { type: "string" },
    "no-spawn": { type: "boolean" },
    addr: { type: "string" },
    state: { type: "string" },
    format: { type: "string" },
    "log-level": { type: "string" },
    detached: { type: "boolean" },
    json: { type: "boolean" },
    print: { type: "boolean" },
  } as const;
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options,
      allowPositionals: cmd === "call",
      strict: cmd !== "call",
    });
  } catch (err) {
    console.error(`rsm ${cmd}: ${errorMessage(err)}; see rsm ${cmd} --help`);
    return 2;
  }
  const v = parsed.values as Flags;
  await narrowRun(cmd === "daemon" ? "daemon" : "client");
  return await runCommand(cmd, v, parsed.positionals);
}

/** Help, version, `setup` and unknown commands: the answer, or undefined for the rest. */
async function helpVersionOrSetup(
  command: string | undefined,
  rest: string[],
): Promise<number | undefined> {
  if (!command || command === "help" || command === "--help" || command === "-h") {
    const topic = command === "help" ? rest[0] : undefined;
    if (topic === "setup") {
      console.log((await import("./lib/setup/mod.ts")).SETUP_HELP);
      return 0;
    }
    console.log(topic && HELP[topic] ? HELP[topic] : HELP.main);
    return 0;
  }
  const wantsHelp = rest.includes("--help") || rest.includes("-h");
  if (command === "version" || command === "--version" || command === "-V") {
    console.log(wantsHelp ? HELP.version : `rsm ${VERSION}`);
    return 0;
  }
  if (command === "setup") {
    const { setupCommand } = await import("./lib/setup/mod.ts");
    return await setupCommand(rest);
  }
  if (!HELP[command]) {
    console.error(`rsm: unknown command "${command}"; see rsm help`);
    return 2;
  }
  if (wantsHelp) {
    console.log(HELP[command]);
    return 0;
  }
  return undefined;
}

/** Runs one command with its parsed flags; returns the exit code. */
async function runCommand(command: string, v: Flags, positionals: string[]): Promise<number> {
  const paths = resolvePaths({ handle: v.handle, state: v.state });
  switch (command) {
    case "stdio": {
      const { runLauncher } = await import("./launcher.ts");
      return await runLauncher({ handle: v.handle, noSpawn: v["no-spawn"] });
    }
    case "daemon": {
      const { runDaemon } = await import("./daemon.ts");
      return await runDaemon({
        addr: v.addr,
        state: v.state,
        handle: v.handle,
        format: v.format,
        logLevel: v["log-level"],
        detached: v.detached,
      });
    }
    case "status":
      return await statusCommand(paths.handle, v.json === true);
    case "stop":
      return await stopCommand(paths.handle);
    case "tools":
      return await toolsCommand(await findOrSpawnDaemon(paths), v.json === true);
    case "console": {
      const handle = await findOrSpawnDaemon(paths, { noSpawn: v["no-spawn"] });
      const { consoleCommand } = await import("./lib/cli/console.ts");
      return await consoleCommand(handle, { print: v.print });
    }
    case "call": {
      const [tool, ...pairs] = positionals;
      if (!tool) {
        console.error("rsm call: missing TOOL; see rsm call --help");
        return 2;
      }
      const handle = await findOrSpawnDaemon(paths, { noSpawn: v["no-spawn"] });
      const { callTool } = await import("./lib/cli/call.ts");
      return await callTool(handle, tool, pairs.filter((p) => !p.startsWith("--")));
    }
  }
  return 2;
}

/** `rsm status [--json]`. */
async function statusCommand(handlePath: string, json: boolean): Promise<number> {
  const handle = await readHandle(handlePath);
  if (!handle || !(await checkHealth(handle))) {
    console.error(`rsm: no daemon running (handle ${handlePath})`);
    return 1;
  }
  const { daemonJson } = await import("./lib/cli/connect.ts");
  const { printStatus } = await import("./lib/cli/status.ts");
  const report = await daemonJson(handle, "/status");
  if (json) console.log(JSON.stringify({ url: handle.url, ...report }, null, 2));
  else printStatus(handle, report);
  return 0;
}

/** `rsm stop`: asks the daemon to shut down and waits (up to 15 s) until it is gone. */
async function stopCommand(handlePath: string): Promise<number> {
  const handle = await readHandle(handlePath);
  if (!handle || !(await checkHealth(handle))) {
    console.error("rsm: no daemon running");
    return 1;
  }
  const { daemonJson } = await import("./lib/cli/connect.ts");
  await daemonJson(handle, "/shutdown", "POST");
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && await checkHealth(handle, 500)) {
    await new Promise((r) => setTimeout(r, 100));
  }
  console.log(`stopped daemon pid ${handle.pid}`);
  return 0;
}

/** `rsm tools [--json]`: the tools the daemon serves, a line each (or their full schemas). */
async function toolsCommand(handle: Handle, json: boolean): Promise<number> {
  const { connectDaemon } = await import("./lib/cli/connect.ts");
  await using client = await connectDaemon(handle);
  const { tools } = await client.listTools();
  if (json) console.log(JSON.stringify(tools, null, 2));
  else {
    const width = Math.max(...tools.map((t: { name: string }) => t.name.length));
    for (const t of tools) {
      console.log(`${t.name.padEnd(width)}  ${(t.description ?? "").split("\n")[0]}`);
    }
  }
  return 0;
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (err) {
    console.error(`rsm: ${errorMessage(err)}`);
    code = err instanceof UsageError ? 2 : 1;
  }
  Deno.exit(code);
}
