/**
 * `rsm setup` writes the right entry at the path each MCP client really reads, on Linux and
 * macOS, for all nine clients; detection, --client, --name, and the no-client case.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { testIf } from "./support/env.ts";
import { listFiles, put, RSM_BIN, setupIn, tempHome } from "./support/setup.ts";

const NAME = "remote-shell-mcp";
const json = async (p: string) => JSON.parse(await Deno.readTextFile(p));

/** Every client's marker dir (Linux layout, XDG_CONFIG_HOME unset). */
const LINUX_MARKERS = [
  ".claude",
  ".config/Claude",
  ".codex",
  ".cursor",
  ".codeium/windsurf",
  ".config/zed",
  ".continue",
  ".config/Code/User",
  ".gemini",
];

/** Where each client's configuration lives under the home directory. */
type ClientPaths = Record<
  | "claudeCode"
  | "claudeDesktop"
  | "codex"
  | "cursor"
  | "windsurf"
  | "zed"
  | "continue"
  | "vscode"
  | "gemini",
  string
>;

async function checkAll(home: string, paths: ClientPaths) {
  const cc = await json(join(home, paths.claudeCode));
  assert.deepEqual(cc.mcpServers[NAME], {
    type: "stdio",
    command: RSM_BIN.command,
    args: ["stdio"],
    env: {},
  });
  const cd = await json(join(home, paths.claudeDesktop));
  assert.deepEqual(cd.mcpServers[NAME], { command: RSM_BIN.command, args: ["stdio"] });
  const codex = parseToml(await Deno.readTextFile(join(home, paths.codex))) as {
    mcp_servers: Record<string, unknown>;
  };
  assert.deepEqual({ ...codex.mcp_servers[NAME] as object }, {
    command: RSM_BIN.command,
    args: ["stdio"],
  });
  for (const rel of [paths.cursor, paths.windsurf, paths.gemini]) {
    assert.deepEqual((await json(join(home, rel))).mcpServers[NAME], {
      command: RSM_BIN.command,
      args: ["stdio"],
    }, rel);
  }
  assert.deepEqual((await json(join(home, paths.zed))).context_servers[NAME], {
    command: RSM_BIN.command,
    args: ["stdio"],
    env: {},
  });
  assert.deepEqual((await json(join(home, paths.vscode))).servers[NAME], {
    type: "stdio",
    command: RSM_BIN.command,
    args: ["stdio"],
  });
  const cont = await Deno.readTextFile(join(home, paths.continue));
  assert.match(cont, /^mcpServers:\n {2}- name: "remote-shell-mcp"\n/m);
  assert.match(cont, /^ {4}command: "\/opt\/rsm\/bin\/rsm"\n {4}args:\n {6}- "stdio"\n/m);
  assert.match(cont, /^schema: v1$/m);
}

testIf(null, "setup --yes registers rsm in all nine clients at their Linux paths", async () => {
  await using t = await tempHome();
  for (const d of LINUX_MARKERS) await Deno.mkdir(join(t.home, d), { recursive: true });
  const r = await setupIn(t.home, ["--yes"]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err, "");
  await checkAll(t.home, {
    claudeCode: ".claude.json",
    claudeDesktop: ".config/Claude/claude_desktop_config.json",
    codex: ".codex/config.toml",
    cursor: ".cursor/mcp.json",
    windsurf: ".codeium/windsurf/mcp_config.json",
    zed: ".config/zed/settings.json",
    continue: ".continue/mcpServers/remote-shell-mcp.yaml",
    vscode: ".config/Code/User/mcp.json",
    gemini: ".gemini/settings.json",
  });
  for (
    const label of [
      "Claude Code",
      "Claude Desktop",
      "Codex",
      "Cursor",
      "Windsurf",
      "Zed",
      "Continue",
      "VS Code",
      "Gemini CLI",
    ]
  ) assert.match(r.out, new RegExp(`${label}: added`));
  assert.match(r.out, /Restart .* to load "remote-shell-mcp"/);
});

testIf(null, "setup --yes uses the macOS paths of Claude Desktop, VS Code and Zed", async () => {
  await using t = await tempHome();
  const lib = "Library/Application Support";
  for (
    const d of [
      ".claude",
      `${lib}/Claude`,
      ".codex",
      ".cursor",
      ".codeium/windsurf",
      ".config/zed",
      ".continue",
      `${lib}/Code/User`,
      ".gemini",
    ]
  ) await Deno.mkdir(join(t.home, d), { recursive: true });
  const r = await setupIn(t.home, ["--yes"], { os: "darwin" });
  assert.equal(r.code, 0, r.err);
  await checkAll(t.home, {
    claudeCode: ".claude.json",
    claudeDesktop: `${lib}/Claude/claude_desktop_config.json`,
    codex: ".codex/config.toml",
    cursor: ".cursor/mcp.json",
    windsurf: ".codeium/windsurf/mcp_config.json",
    zed: ".config/zed/settings.json",
    continue: ".continue/mcpServers/remote-shell-mcp.yaml",
    vscode: `${lib}/Code/User/mcp.json`,
    gemini: ".gemini/settings.json",
  });
});

testIf(
  null,
  "setup follows XDG_CONFIG_HOME on Linux for Claude Desktop, VS Code and Zed",
  async () => {
    await using t = await tempHome();
    const xdg = join(t.home, "xdg");
    for (const d of ["Claude", "Code/User", "zed"]) {
      await Deno.mkdir(join(xdg, d), { recursive: true });
    }
    const r = await setupIn(t.home, ["--yes"], { xdg });
    assert.equal(r.code, 0, r.err);
    assert.ok((await json(join(xdg, "Claude/claude_desktop_config.json"))).mcpServers[NAME]);
    assert.ok((await json(join(xdg, "Code/User/mcp.json"))).servers[NAME]);
    assert.ok((await json(join(xdg, "zed/settings.json"))).context_servers[NAME]);
    // nothing was written under ~/.config
    assert.deepEqual(
      (await listFiles(t.home)).filter((f) => !f.startsWith("xdg/")),
      [],
    );
  },
);

testIf(null, "setup honours CODEX_HOME and CLAUDE_CONFIG_DIR", async () => {
  await using t = await tempHome();
  const codexHome = join(t.home, "codex-home");
  const claudeDir = join(t.home, "claude-dir");
  await Deno.mkdir(codexHome);
  await Deno.mkdir(claudeDir);
  const r = await setupIn(t.home, ["--yes"], {
    env: { CODEX_HOME: codexHome, CLAUDE_CONFIG_DIR: claudeDir },
  });
  assert.equal(r.code, 0, r.err);
  assert.match(await Deno.readTextFile(join(codexHome, "config.toml")), /\[mcp_servers\./);
  assert.ok((await json(join(claudeDir, ".claude.json"))).mcpServers[NAME]);
});

testIf(null, "setup touches only detected clients and says so when none is found", async () => {
  await using t = await tempHome();
  const none = await setupIn(t.home, ["--yes"]);
  assert.equal(none.code, 0);
  assert.match(none.out, /no MCP client found/);
  assert.match(none.out, /--client/);
  assert.deepEqual(await listFiles(t.home), []);

  await Deno.mkdir(join(t.home, ".cursor"));
  await put(t.home, ".claude.json", '{"numStartups": 3}\n'); // the file alone is a marker
  const r = await setupIn(t.home, ["--yes"]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(await listFiles(t.home), [
    ".claude.json",
    ".claude.json.rsm-backup-" + r.out.match(/\.claude\.json\.rsm-backup-(\S+?)\)/)![1],
    ".cursor/mcp.json",
  ]);
});

testIf(null, "setup --client forces clients that were not detected and skips others", async () => {
  await using t = await tempHome();
  await Deno.mkdir(join(t.home, ".cursor"));
  const r = await setupIn(t.home, ["--yes", "--client", "gemini,zed", "-c", "codex"]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(await listFiles(t.home), [
    ".codex/config.toml",
    ".config/zed/settings.json",
    ".gemini/settings.json",
  ]);
  const bad = await setupIn(t.home, ["--yes", "--client", "notepad"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /unknown; use one of claude-code, claude-desktop, codex/);
});

testIf(null, "setup --name registers the server under another name", async () => {
  await using t = await tempHome();
  const r = await setupIn(t.home, ["--yes", "--client", "cursor,continue,codex", "--name", "box"]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual((await json(join(t.home, ".cursor/mcp.json"))).mcpServers, {
    box: { command: RSM_BIN.command, args: ["stdio"] },
  });
  assert.match(
    await Deno.readTextFile(join(t.home, ".codex/config.toml")),
    /^\[mcp_servers\.box\]$/m,
  );
  assert.match(
    await Deno.readTextFile(join(t.home, ".continue/mcpServers/box.yaml")),
    /- name: "box"/,
  );
  const bad = await setupIn(t.home, ["--yes", "--client", "cursor", "--name", "a b"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /Cannot use --name "a b"/);
});

testIf(null, "setup --list shows each client, whether it was found, and its state", async () => {
  await using t = await tempHome();
  await Deno.mkdir(join(t.home, ".cursor"));
  await put(t.home, ".gemini/settings.json", "{ nope");
  await setupIn(t.home, ["--yes", "--client", "cursor"]);
  const r = await setupIn(t.home, ["--list"]);
  assert.equal(r.code, 0);
  assert.match(r.out, /^cursor\s+found\s+~\/\.cursor\/mcp\.json\s+registered$/m);
  assert.match(
    r.out,
    /^gemini\s+found\s+~\/\.gemini\/settings\.json\s+error: it is not valid JSON/m,
  );
  assert.match(r.out, /^zed\s+-\s+~\/\.config\/zed\/settings\.json\s+not registered$/m);
  assert.equal(r.out.trim().split("\n").length, 9);
});

testIf(null, "setup --help and bad flags answer with usage", async () => {
  await using t = await tempHome();
  const h = await setupIn(t.home, ["--help"]);
  assert.equal(h.code, 0);
  assert.match(h.out, /^rsm setup — register rsm in your MCP clients/);
  assert.match(h.out, /--dry-run/);
  const bad = await setupIn(t.home, ["--frobnicate"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /rsm setup --help/);
});
