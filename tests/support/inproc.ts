/**
 * The tool layer in-process: the daemon's composition (App, tool registry, profile, format)
 * served over the SDK's `InMemoryTransport` to an SDK `Client` — no daemon, no `rsm stdio`,
 * no sshd. For tests of validation, rendering, output bounds, profiles and tool wiring; the
 * end-to-end suite (tests/support/mcp.ts) stays the product's truth.
 *
 * Parts of the composition can be passed in: a prepared `app` (its managers, e.g. one with a
 * fake shell backend registered), a `registry`, or extra tool definitions (`tools`).
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { CallToolResult, Tool } from "@modelcontextprotocol/sdk/types.js";
import { join } from "node:path";
import { App } from "../../lib/app.ts";
import { silentLogger } from "../../lib/log.ts";
import type { Paths } from "../../lib/paths.ts";
import { allTools, buildRegistry, type Format, type Group, GROUPS } from "../../lib/mcp/mod.ts";
import type { ShellBackends } from "../../lib/term/mod.ts";
import { ToolRegistry } from "../../lib/mcp/registry.ts";
import type { ToolDef } from "../../lib/mcp/tool.ts";

/** Options for {@link startInProc}. */
export interface InProcOptions {
  /** Tool profile (default: every group). */
  groups?: Iterable<Group>;
  /** Result format (default "toon"). */
  format?: Format;
  /** Output bound in bytes (default 32768). */
  maxOutput?: number;
  /**
   * A prepared App to serve (its managers, backends, store). The harness then neither starts
   * nor closes it: the caller owns it. Default: a new App over a temp config dir.
   */
  app?: App;
  /** Called with the (new or given) App before the server is built, e.g. to register things. */
  configure?: (app: App) => void | Promise<void>;
  /** The tool registry to serve (default: the registry of `groups`, plus `tools`). */
  registry?: ToolRegistry;
  /** Extra tool definitions served next to the profile's (a name already served replaces it). */
  tools?: readonly ToolDef[];
  /** Start the App (load state, start the output store) — default true for a new App. */
  start?: boolean;
}

/** An in-process MCP client connected to the tool layer. */
export interface InProc extends AsyncDisposable {
  app: App;
  registry: ToolRegistry;
  server: Server;
  client: Client;
  /** The temp config dir of a new App (undefined when `app` was given). */
  dir?: string | undefined;
  /** `tools/list` (one page; the server does not paginate). */
  listTools(): Promise<Tool[]>;
  /** Raw tool result. */
  callRaw(name: string, args?: unknown): Promise<CallToolResult>;
  /** Calls a tool; returns its text; throws if the result is an error. */
  call(name: string, args?: Record<string, unknown>): Promise<string>;
  /** Calls a tool that must fail; returns the error text. */
  callError(name: string, args?: unknown): Promise<string>;
  /** Closes client and server, then the App and its temp dir when the harness made them. */
  close(): Promise<void>;
}

/** The text of a tool result (its text content parts, joined). */
export function resultText(r: CallToolResult): string {
  return r.content.map((c: { type: string; text?: string }) => c.type === "text" ? c.text : "")
    .join("");
}

/** Every file path of an App under `dir`. */
export function tempPaths(dir: string): Paths {
  return {
    dir,
    handle: join(dir, "daemon.json"),
    lock: join(dir, "daemon.lock"),
    state: join(dir, "state.json"),
    knownHosts: join(dir, "known_hosts"),
    log: join(dir, "daemon.log"),
    audit: join(dir, "audit.log"),
  };
}

/**
 * A registry of `groups`' tools (the shell tools of the backends in `shells`) with `extra`
 * added (replacing tools of the same name).
 */
export function registryWith(
  groups: ReadonlySet<Group>,
  shells: ShellBackends,
  extra: readonly ToolDef[] = [],
): ToolRegistry {
  if (extra.length === 0) return buildRegistry(groups, shells);
  const names = new Set(extra.map((t) => t.name));
  const served = allTools(shells).filter((t) =>
    (groups.has(t.group) || t.always) && !names.has(t.name)
  );
  return new ToolRegistry([...served, ...extra]);
}

/**
 * Builds the tool layer in-process and connects an SDK client to it.
 *
 * @example
 * ```ts ignore
 * await using rsm = await startInProc({ groups: ["ssh"], format: "json" });
 * const tools = await rsm.listTools();
 * ```
 */
export async function startInProc(options: InProcOptions = {}): Promise<InProc> {
  const groups: ReadonlySet<Group> = new Set(options.groups ?? GROUPS);
  let dir: string | undefined;
  let app = options.app;
  if (!app) {
    dir = await Deno.makeTempDir({ prefix: "rsm-inproc-" });
    app = new App({
      paths: tempPaths(dir),
      log: silentLogger,
      format: options.format ?? "toon",
      maxOutput: options.maxOutput ?? 32768,
      groups,
    });
  } else if (options.format || options.groups || options.maxOutput) {
    // the session's view of the given App, as the HTTP layer makes one per profile/format
    app = Object.create(app, {
      ...(options.groups ? { groups: { value: groups } } : {}),
      ...(options.format ? { format: { value: options.format } } : {}),
      ...(options.maxOutput ? { maxOutput: { value: options.maxOutput } } : {}),
    }) as App;
  }
  const owned = dir !== undefined;
  const cleanup = async () => {
    if (!owned) return;
    await app.close();
    await Deno.remove(dir!, { recursive: true }).catch(() => {});
  };
  let server: Server | undefined;
  let client: Client | undefined;
  try {
    if (options.start ?? owned) await app.start();
    await options.configure?.(app);
    const registry = options.registry ?? registryWith(groups, app.shells.backends, options.tools);
    server = registry.createServer(app);
    client = new Client({ name: "rsm-inproc-tests", version: "1.0.0" });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    await client.connect(clientSide);
    const c = client;
    const s = server;
    const callRaw = async (name: string, args: unknown = {}) =>
      (await c.callTool({ name, arguments: args as Record<string, unknown> })) as CallToolResult;
    let closed = false;
    const self: InProc = {
      app,
      registry,
      server: s,
      client: c,
      dir,
      async listTools() {
        return (await c.listTools()).tools;
      },
      callRaw,
      async call(name, args) {
        const r = await callRaw(name, args);
        if (r.isError) throw new Error(`${name} failed: ${resultText(r)}`);
        return resultText(r);
      },
      async callError(name, args) {
        const r = await callRaw(name, args);
        if (!r.isError) {
          throw new Error(`${name} was expected to fail but returned: ${resultText(r)}`);
        }
        return resultText(r);
      },
      async close() {
        if (closed) return;
        closed = true;
        await c.close();
        await s.close();
        await cleanup();
      },
      [Symbol.asyncDispose]() {
        return self.close();
      },
    };
    return self;
  } catch (err) {
    await client?.close().catch(() => {});
    await server?.close().catch(() => {});
    await cleanup();
    throw err;
  }
}
