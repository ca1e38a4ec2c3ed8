import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import {
  type CallToolRequest,
  CallToolRequestSchema,
  type CallToolResult,
  ListToolsRequestSchema,
  type ServerNotification,
  type ServerRequest,
  type Tool,
} from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import type { App } from "../app.ts";
import { errorMessage } from "../errors.ts";
import { redact } from "../secrets.ts";
import { VERSION } from "../version.ts";
import { boundText, renderBounded } from "./format.ts";
import { GROUPS, Text, type ToolContext, type ToolDef } from "./tool.ts";
import { describeIssues, zodConfig } from "./validate.ts";

zodConfig();

interface Entry {
  def: ToolDef;
  schema: z.ZodObject;
}

/**
 * The tools one daemon serves (after the tool profile), with their compiled schemas.
 * Build once; {@link ToolRegistry.createServer} makes one MCP server per MCP session.
 * JSON Schemas for `tools/list` are rendered on first use, keeping daemon start-up fast.
 */
export class ToolRegistry {
  readonly #entries = new Map<string, Entry>();
  #listed?: Tool[];

  constructor(defs: readonly ToolDef[]) {
    for (const def of defs) {
      if (this.#entries.has(def.name)) throw new Error(`duplicate tool ${def.name}`);
      this.#entries.set(def.name, { def, schema: z.strictObject(def.input) });
    }
  }

  /** The `tools/list` entries. */
  list(): Tool[] {
    this.#listed ??= [...this.#entries.values()].map(({ def, schema }) => {
      const inputSchema = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Record<
        string,
        unknown
      >;
      delete inputSchema.$schema;
      slimSchema(inputSchema);
      return {
        name: def.name,
        description: def.description,
        inputSchema: inputSchema as Tool["inputSchema"],
        ...(def.annotations ? { annotations: def.annotations } : {}),
      };
    });
    return this.#listed;
  }

  /** Names of the served tools. */
  names(): string[] {
    return [...this.#entries.keys()];
  }

  /** Validates and runs one call; never throws (errors become `isError` results). */
  async call(
    app: App,
    name: string,
    args: unknown,
    ctx: Omit<ToolContext, "app">,
  ): Promise<CallToolResult> {
    const entry = this.#entries.get(name);
    if (!entry) {
      return errorResult(
        `unknown tool "${name}": this daemon serves ${this.#entries.size} tools; see tools/list` +
          (app.groups.size < GROUPS.length ? ` (tool profile: ${[...app.groups].join(",")})` : ""),
      );
    }
    const parsed = entry.schema.safeParse(args ?? {});
    if (!parsed.success) return errorResult(describeIssues(name, parsed.error.issues));
    try {
      const value = await entry.def.run(parsed.data, { app, ...ctx });
      const text = value instanceof Text
        ? boundText(value.text, app.maxOutput).text
        : renderBounded(value, app.format, app.maxOutput);
      return { content: [{ type: "text", text: redact(text) }] };
    } catch (err) {
      app.log.debug("tool failed", { tool: name, error: errorMessage(err) });
      return errorResult(errorMessage(err));
    }
  }

  /** A new MCP server object (one per MCP session) that serves these tools from `app`. */
  createServer(app: App): Server {
    const server = new Server(
      { name: "remote-shell-mcp", version: VERSION },
      {
        capabilities: { tools: { listChanged: false }, logging: {} },
        instructions:
          "Persistent SSH and Docker: connect once with ssh_connect/docker_connect, then exec, " +
          "shells (ssh_shell_run for exact output and exit codes), forwards, files. Sessions " +
          "outlive this conversation; see status. Long calls take wait_ms (default 20 s): not " +
          "done by then, they return {job_id, state: running} and go on; follow with job_wait, " +
          "job_output.",
      },
    );
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: this.list() }));
    server.setRequestHandler(CallToolRequestSchema, (
      request: CallToolRequest,
      extra: RequestHandlerExtra<ServerRequest, ServerNotification>,
    ) => {
      const token = request.params._meta?.progressToken;
      return this.call(app, request.params.name, request.params.arguments, {
        signal: AbortSignal.any([extra.signal, app.shutdown.signal]),
        progress(progress, total, message) {
          if (token === undefined) return;
          extra.sendNotification({
            method: "notifications/progress",
            params: {
              progressToken: token,
              progress,
              ...(total !== undefined ? { total } : {}),
              ...(message ? { message: redact(message) } : {}),
            },
          }).catch(() => {});
        },
      });
    });
    return server;
  }
}

function errorResult(message: string): CallToolResult {
  return { isError: true, content: [{ type: "text", text: redact(message) }] };
}

/**
 * Limits dropped from listed schemas: lengths, counts and numeric bounds. They guard the
 * daemon, not the model (descriptions name the ones a model needs, like defaults): validation
 * still enforces them and a violation is an error naming the field and the limit. This keeps
 * `tools/list` — which every MCP client puts in the model's context — about 13% smaller.
 */
const SLIMMED = [
  "maxLength",
  "minLength",
  "maxItems",
  "minItems",
  "minimum",
  "maximum",
  "exclusiveMinimum",
];

/** Drops the {@link SLIMMED} limits from a listed schema, recursively. */
function slimSchema(node: unknown): void {
  if (Array.isArray(node)) {
    for (const item of node) slimSchema(item);
  } else if (node && typeof node === "object") {
    const obj = node as Record<string, unknown>;
    for (const key of SLIMMED) delete obj[key];
    for (const value of Object.values(obj)) slimSchema(value);
  }
}
