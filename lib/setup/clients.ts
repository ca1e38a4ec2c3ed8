/**
 * The MCP clients `rsm setup` knows: where each one really reads its MCP servers on Linux,
 * macOS (and Windows), in which format, and what its entry for a stdio server looks like.
 *
 * Sources checked (Nov 2026) and the decisions taken from them:
 * - Claude Code: user-scope servers live in the top-level `mcpServers` of `~/.claude.json`
 *   (`claude mcp add --scope user` writes `{"type": "stdio", "command", "args", "env": {}}`);
 *   `CLAUDE_CONFIG_DIR` moves that file to `$CLAUDE_CONFIG_DIR/.claude.json`.
 *   (code.claude.com/docs/en/mcp)
 * - Claude Desktop: `claude_desktop_config.json`, `mcpServers`, in the app-data dir:
 *   macOS `~/Library/Application Support/Claude/`, Windows `%APPDATA%\Claude\`, Linux (community
 *   builds; Electron's appData) `$XDG_CONFIG_HOME/Claude/`, default `~/.config/Claude/`.
 * - Codex: `~/.codex/config.toml` (or `$CODEX_HOME/config.toml`), one `[mcp_servers.<name>]`
 *   table with `command` and `args`. (developers.openai.com/codex/mcp)
 * - Cursor: `~/.cursor/mcp.json`, `mcpServers`. (docs.cursor.com/context/model-context-protocol)
 * - Windsurf: `~/.codeium/windsurf/mcp_config.json`, `mcpServers`. (docs.windsurf.com …/mcp)
 * - Zed: `settings.json` (JSONC) under `context_servers`, `{command, args, env}` as the current
 *   docs show (zed.dev/docs/ai/mcp; the old `"source": "custom"` tag is not written). Linux
 *   `$XDG_CONFIG_HOME/zed/`, default `~/.config/zed/`; macOS also `~/.config/zed/`.
 * - Continue: its docs (docs.continue.dev/customize/deep-dives/mcp) say MCP servers are YAML
 *   "blocks" in a `mcpServers/` folder, `.continue/mcpServers/` in a workspace or
 *   `~/.continue/mcpServers/` for all workspaces. Decision: rsm writes its own block file
 *   `~/.continue/mcpServers/<name>.yaml` rather than editing the user's `config.yaml` — the file
 *   is wholly ours, so the user's config (comments, order) is never touched and no YAML editor
 *   is needed.
 * - VS Code: the user-profile `mcp.json` with a top-level `servers` object and
 *   `"type": "stdio"` (code.visualstudio.com/docs/copilot/reference/mcp-configuration):
 *   Linux `$XDG_CONFIG_HOME/Code/User/mcp.json` (default `~/.config/Code/User/`), macOS
 *   `~/Library/Application Support/Code/User/mcp.json`, Windows `%APPDATA%\Code\User\mcp.json`.
 * - Gemini CLI: `~/.gemini/settings.json`, `mcpServers`. (geminicli.com/docs/tools/mcp-server)
 *
 * A client is "detected" when its config file or config dir exists.
 */
import { join } from "node:path";

/** The ids accepted by `rsm setup --client`. */
export const CLIENT_IDS = [
  "claude-code",
  "claude-desktop",
  "codex",
  "cursor",
  "windsurf",
  "zed",
  "continue",
  "vscode",
  "gemini",
] as const;

/** One of {@link CLIENT_IDS}. */
export type ClientId = typeof CLIENT_IDS[number];

/** How a client's file is edited. */
export type ClientFormat = "json" | "toml" | "continue-yaml";

/** The command line an MCP client should start: `{command, args}` and env vars to set. */
export interface ServerCommand {
  command: string;
  args: string[];
  /** Env vars rsm owns in the entry (each key on its own; the user's other keys stay). */
  env?: Record<string, string>;
}

/** Where and how one client keeps its MCP servers, resolved for one environment. */
export interface ClientTarget {
  id: ClientId;
  /** Human name, e.g. "Claude Code". */
  label: string;
  /** The file rsm edits (or, for Continue, writes). */
  file: string;
  /** Dirs/files whose existence means the client is installed. */
  markers: string[];
  format: ClientFormat;
  /** JSON formats: the object that maps server names to entries, e.g. `["mcpServers"]`. */
  rootKey: string[];
  /** The entry fields rsm owns for `cmd` (compared and updated; other fields are kept). */
  entry(cmd: ServerCommand): Record<string, unknown>;
  /** Extra fields written only when the entry is new (e.g. an empty `env`). */
  extraOnCreate?: Record<string, unknown>;
}

/** The environment the paths are resolved in (tests pass a temp HOME and another `os`). */
export interface ClientEnv {
  /** Reads an environment variable. */
  get(name: string): string | undefined;
  /** `Deno.build.os`. */
  os: typeof Deno.build.os;
}

/** The user's home dir in `env`: HOME, then USERPROFILE. */
export function homeOf(env: ClientEnv): string {
  const home = env.get("HOME") || env.get("USERPROFILE");
  if (!home) throw new Error("Cannot find the home directory: HOME is not set");
  return home;
}

/** Electron-style app-data dir: Application Support, %APPDATA%, or XDG_CONFIG_HOME. */
function appData(env: ClientEnv, home: string): string {
  if (env.os === "darwin") return join(home, "Library", "Application Support");
  if (env.os === "windows") return env.get("APPDATA") || join(home, "AppData", "Roaming");
  return xdgConfig(env, home);
}

function xdgConfig(env: ClientEnv, home: string): string {
  const xdg = env.get("XDG_CONFIG_HOME");
  return xdg && xdg.startsWith("/") ? xdg : join(home, ".config");
}

const withEnv = (cmd: ServerCommand) => (cmd.env ? { env: { ...cmd.env } } : {});
const plain = (cmd: ServerCommand) => ({ command: cmd.command, args: cmd.args, ...withEnv(cmd) });
const typed = (cmd: ServerCommand) => ({
  type: "stdio",
  command: cmd.command,
  args: cmd.args,
  ...withEnv(cmd),
});

/** All clients with their paths resolved in `env`, in {@link CLIENT_IDS} order. */
export function resolveClients(env: ClientEnv, name: string): ClientTarget[] {
  const home = homeOf(env);
  const data = appData(env, home);
  const claudeDir = env.get("CLAUDE_CONFIG_DIR");
  const codexHome = env.get("CODEX_HOME") || join(home, ".codex");
  const zedDir = env.os === "windows"
    ? join(data, "Zed")
    : join(env.os === "darwin" ? join(home, ".config") : xdgConfig(env, home), "zed");
  const claudeJson = join(claudeDir || home, ".claude.json");
  return [
    {
      id: "claude-code",
      label: "Claude Code",
      file: claudeJson,
      markers: [claudeJson, claudeDir || join(home, ".claude")],
      format: "json",
      rootKey: ["mcpServers"],
      entry: typed,
      extraOnCreate: { env: {} },
    },
    {
      id: "claude-desktop",
      label: "Claude Desktop",
      file: join(data, "Claude", "claude_desktop_config.json"),
      markers: [join(data, "Claude")],
      format: "json",
      rootKey: ["mcpServers"],
      entry: plain,
    },
    {
      id: "codex",
      label: "Codex",
      file: join(codexHome, "config.toml"),
      markers: [codexHome],
      format: "toml",
      rootKey: ["mcp_servers"],
      entry: plain,
    },
    {
      id: "cursor",
      label: "Cursor",
      file: join(home, ".cursor", "mcp.json"),
      markers: [join(home, ".cursor")],
      format: "json",
      rootKey: ["mcpServers"],
      entry: plain,
    },
    {
      id: "windsurf",
      label: "Windsurf",
      file: join(home, ".codeium", "windsurf", "mcp_config.json"),
      markers: [join(home, ".codeium", "windsurf")],
      format: "json",
      rootKey: ["mcpServers"],
      entry: plain,
    },
    {
      id: "zed",
      label: "Zed",
      file: join(zedDir, "settings.json"),
      markers: [zedDir],
      format: "json",
      rootKey: ["context_servers"],
      entry: plain,
      extraOnCreate: { env: {} },
    },
    {
      id: "continue",
      label: "Continue",
      file: join(home, ".continue", "mcpServers", `${name}.yaml`),
      markers: [join(home, ".continue")],
      format: "continue-yaml",
      rootKey: [],
      entry: plain,
    },
    {
      id: "vscode",
      label: "VS Code",
      file: join(data, "Code", "User", "mcp.json"),
      markers: [join(data, "Code", "User")],
      format: "json",
      rootKey: ["servers"],
      entry: typed,
    },
    {
      id: "gemini",
      label: "Gemini CLI",
      file: join(home, ".gemini", "settings.json"),
      markers: [join(home, ".gemini")],
      format: "json",
      rootKey: ["mcpServers"],
      entry: plain,
    },
  ];
}

/** Aliases accepted by `--client` besides the ids (case-insensitive). */
const ALIASES: Record<string, ClientId> = {
  claude: "claude-code",
  claudecode: "claude-code",
  "claude-code": "claude-code",
  desktop: "claude-desktop",
  "claude-desktop": "claude-desktop",
  code: "vscode",
  "vs-code": "vscode",
  "gemini-cli": "gemini",
};

/** Maps a `--client` value to a client id, or undefined when it names no client. */
export function clientIdOf(value: string): ClientId | undefined {
  const v = value.trim().toLowerCase();
  if ((CLIENT_IDS as readonly string[]).includes(v)) return v as ClientId;
  return ALIASES[v];
}
