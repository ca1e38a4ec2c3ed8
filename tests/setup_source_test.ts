/**
 * Run from source, `rsm setup` registers a `deno run` command line that starts the same code
 * from any working directory, and an MCP client started with exactly that entry works.
 * Also `rsm setup` through main.ts (the CLI the user types).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ROOT, run, tempEnv, testIf } from "./support/env.ts";
import { rsmCli, stopDaemon } from "./support/mcp.ts";
import { runningFromSource, serverCommand, setupCommand } from "../lib/setup/mod.ts";
import { VERSION } from "../lib/version.ts";

/** Deno's cache dir, so a child with a temp HOME does not re-download every npm package. */
async function denoDir(): Promise<string> {
  const info = await run("deno", ["info", "--json"]);
  return JSON.parse(info.stdout).denoDir;
}

testIf(null, "a compiled rsm registers itself with args [stdio]", () => {
  assert.equal(runningFromSource({ standalone: true, execPath: "/usr/local/bin/rsm" }), false);
  assert.deepEqual(serverCommand({ standalone: true, execPath: "/usr/local/bin/rsm" }), {
    command: "/usr/local/bin/rsm",
    args: ["stdio"],
    env: { PATH: "/usr/local/bin:/usr/bin:/bin" },
  });
  // its own dir goes first on PATH, so the permission to run "rsm" by name resolves to it
  assert.deepEqual(
    serverCommand({ standalone: true, execPath: "/home/u/.local/bin/rsm" }).env,
    { PATH: "/home/u/.local/bin:/usr/local/bin:/usr/bin:/bin" },
  );
  assert.equal(runningFromSource({ standalone: false, execPath: "/usr/bin/deno" }), true);
});

testIf(null, "from source setup registers deno run with -P=rsm and absolute paths", () => {
  const cmd = serverCommand({ standalone: false, execPath: Deno.execPath() });
  assert.equal(Deno.realPathSync(cmd.command), Deno.realPathSync(Deno.execPath()));
  assert.ok(cmd.command.startsWith("/"));
  assert.deepEqual(cmd.args, [
    "run",
    "-q",
    "-P=rsm",
    "--config",
    join(ROOT, "deno.json"),
    join(ROOT, "main.ts"),
    "stdio",
  ]);
  assert.ok(cmd.env?.PATH?.startsWith(cmd.command.replace(/\/deno$/, "") + ":"), cmd.env?.PATH);
});

testIf(
  null,
  "rsm setup from source writes a command that runs rsm from any directory and serves MCP",
  async () => {
    await using tmp = await tempEnv({ DENO_DIR: await denoDir() });
    await Deno.mkdir(join(tmp.home, ".cursor"));
    const r = await rsmCli(tmp.env, ["setup", "--yes"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Cursor: added ~\/\.cursor\/mcp\.json/);
    const entry = JSON.parse(await Deno.readTextFile(join(tmp.home, ".cursor/mcp.json")))
      .mcpServers["remote-shell-mcp"];
    assert.equal(entry.args.at(-1), "stdio");
    assert.deepEqual(entry.args.slice(0, 3), ["run", "-q", "-P=rsm"]);

    // the same command line, with `version` instead of `stdio`, from `/`
    const v = await run(entry.command, [...entry.args.slice(0, -1), "version"], {
      env: tmp.env,
      cwd: "/",
    });
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, new RegExp(VERSION.replaceAll(".", "\\.")));

    // and an MCP client started exactly as a GUI client would start it: cwd `/`, a PATH
    // without deno, and the entry's env on top
    const transport = new StdioClientTransport({
      command: entry.command,
      args: entry.args,
      env: { ...tmp.env, PATH: "/nonexistent", ...entry.env },
      cwd: "/",
      stderr: "pipe",
    });
    const client = new Client({ name: "setup-test", version: "1.0.0" });
    try {
      await client.connect(transport);
      const tools = await client.listTools();
      assert.ok(tools.tools.length > 0, "the daemon serves tools");
      assert.ok(tools.tools.some((t: { name: string }) => t.name === "status"));
    } finally {
      await client.close().catch(() => {});
      await stopDaemon(tmp.env);
    }

    // running setup again through the CLI changes nothing
    const again = await rsmCli(tmp.env, ["setup", "--yes"]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /Nothing to change/);
  },
);

testIf(null, "rsm setup --help prints the setup help through main.ts", async () => {
  await using tmp = await tempEnv({ DENO_DIR: await denoDir() });
  const r = await rsmCli(tmp.env, ["setup", "--help"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^rsm setup — register rsm in your MCP clients/);
  const dry = await rsmCli(tmp.env, ["setup", "--dry-run", "--client", "zed"]);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /\+\+\+ .*zed\/settings\.json/);
  assert.match(dry.stdout, /Dry run: nothing was written\./);
});

testIf(null, "setupCommand reads HOME from the environment of the process", async () => {
  await using tmp = await tempEnv();
  const saved = { HOME: Deno.env.get("HOME"), XDG: Deno.env.get("XDG_CONFIG_HOME") };
  Deno.env.set("HOME", tmp.home);
  Deno.env.set("XDG_CONFIG_HOME", tmp.xdg);
  let code: number;
  try {
    code = await setupCommand(["--yes", "--client", "vscode"]);
  } finally {
    if (saved.HOME === undefined) Deno.env.delete("HOME");
    else Deno.env.set("HOME", saved.HOME);
    if (saved.XDG === undefined) Deno.env.delete("XDG_CONFIG_HOME");
    else Deno.env.set("XDG_CONFIG_HOME", saved.XDG);
  }
  assert.equal(code, 0);
  const entry = JSON.parse(await Deno.readTextFile(join(tmp.xdg, "Code/User/mcp.json")))
    .servers["remote-shell-mcp"];
  assert.equal(entry.type, "stdio");
  assert.deepEqual(entry.args.slice(-2), [join(ROOT, "main.ts"), "stdio"]);
});
