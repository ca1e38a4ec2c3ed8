import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import {
  type CallToolRequest,
  CallToolRequestSchema,
  type CallToolResult,
  ElicitResultSchema,
  ListToolsRequestSchema,
  type ServerNotification,
  type ServerRequest,
  type Tool,
} from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import type { App } from "../app.ts";
import { errorMessage } from "../errors.ts";
import { redact, SecretNeededError } from "../secrets.ts";
import { redactDeep, redactShapes } from "../redact.ts";
import type { AskPerson, Policy, Subject } from "../policy/mod.ts";
import { RsmError } from "../errors.ts";
import { VERSION } from "../version.ts";
import { GROUPS, PROGRESS_PERIOD_MS, type ToolContext, type ToolDef } from "./tool.ts";
import { CallAudit } from "./audit.ts";
import { askForSecret, type PersonChannel, personChannel } from "./person.ts";
import { renderResult } from "./render.ts";
import { INSTRUCTIONS, titleOf } from "./titles.ts";
import { describeIssues, zodConfig } from "./validate.ts";
import { applyAliases, describeWithAliases } from "./aliases.ts";

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
  #listed: Tool[] | undefined;

  constructor(defs: readonly ToolDef[]) {
    for (const def of defs) {
      if (this.#entries.has(def.name)) throw new Error(`duplicate tool ${def.name}`);
      this.#entries.set(def.name, { def, schema: z.strictObject(def.input) });
    }
  }

  /** The `tools/list` entries the policy lets through now (read-only mode: read-only tools). */
  list(app?: App): Tool[] {
    const all = this.#all();
    if (!app) return all;
    return all.filter((t) => app.guard.listed(t.annotations?.readOnlyHint === true));
  }

  #all(): Tool[] {
    this.#listed ??= [...this.#entries.values()].map(({ def, schema }) => {
      const inputSchema = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Record<
        string,
        unknown
      >;
      delete inputSchema.$schema;
      slimSchema(inputSchema);
      // The id fields every tool shares are explained once, in the server's instructions.
      const props = (inputSchema.properties ?? {}) as Record<
        string,
        { description?: string | undefined }
      >;
      for (const id of SHARED_IDS) delete props[id]?.description;
      return {
        name: def.name,
        title: titleOf(def),
        description: def.sameAs && this.#entries.has(def.sameAs.tool)
          ? `Same as ${def.sameAs.tool}, ${def.sameAs.note}.`
          : describeWithAliases(def.name, def.description),
        inputSchema: inputSchema as Tool["inputSchema"],
        ...listedAnnotations(def.annotations),
      };
    });
    return this.#listed;
  }

  /** Names of the served tools. */
  names(): string[] {
    return [...this.#entries.keys()];
  }

  /**
   * Validates, checks against the policy (asking a person through `person` when a rule says
   * so), runs one call, and redacts the result; never throws (errors become `isError` results).
   */
  async call(
    app: App,
    name: string,
    args: unknown,
    ctx: Omit<ToolContext, "app" | "authorize" | "audit">,
    person: PersonChannel = {},
  ): Promise<CallToolResult> {
    const entry = this.#entries.get(name);
    if (!entry) {
      return errorResult(
        app,
        `unknown tool "${name}": this daemon serves ${this.#entries.size} tools; see tools/list` +
          (app.groups.size < GROUPS.length ? ` (tool profile: ${[...app.groups].join(",")})` : ""),
      );
    }
    let input: unknown;
    try {
      input = applyAliases(name, args ?? {}); // old argument forms (lib/mcp/aliases.ts)
    } catch (err) {
      return errorResult(app, `invalid arguments for ${name}: ${errorMessage(err)}`);
    }
    const parsed = entry.schema.safeParse(input);
    if (!parsed.success) return errorResult(app, describeIssues(name, parsed.error.issues));
    const readOnly = entry.def.annotations?.readOnlyHint === true;
    const ask: AskPerson = {
      confirm: person.confirm,
      approvalUrl: (a) => app.web.link(`/web/approvals/${a.id}`, a.expires - Date.now()),
    };
    // the policy in force when the call came in, read once: every check of `policy.toml`
    // is a stat of the file (a missing file made it ~10 failed stats per call)
    const policy = app.policy.current();
    const authorize = (subject: Subject | undefined, now?: Policy) =>
      app.guard.authorize({
        tool: name,
        readOnly,
        args: parsed.data,
        subject,
        ...(now ? { policy: now } : {}),
      }, ask);
    try {
      await authorize(
        entry.def.policy ? entry.def.policy(parsed.data) : defaultSubject(parsed.data),
        policy,
      );
      const audit = new CallAudit(app.audit, name, entry.def.audit?.(parsed.data));
      const full: ToolContext = { app, ...ctx, audit, authorize: (s) => authorize(s) };
      let value: unknown;
      try {
        for (let round = 0;; round++) {
          try {
            value = await entry.def.run(parsed.data, full);
            break;
          } catch (err) {
            // a secret only a person can give (a password, a one-time code): ask, then retry
            if (!(err instanceof SecretNeededError) || round >= 4) throw err;
            await askForSecret(app, err, person, ctx.signal, name);
          }
        }
      } catch (err) {
        if (!audit.deferred) audit.end({ error: errorMessage(err) });
        throw err;
      }
      if (!audit.deferred) audit.end();
      // credential shapes are found in the value's strings, before JSON/TOON escape them
      const shaped = policy.redact;
      const data = parsed.data as {
        max_output?: number | undefined;
        keep?: "head" | "tail" | "both" | undefined;
      };
      const out = renderResult(shaped ? redactDeep(value) : value, {
        format: app.format,
        max: data.max_output ?? app.maxOutput,
        keep: data.keep,
        store: app.outputs,
        label: name,
      });
      // collected streams are plain text only now: redact the structured strings, and the
      // JSON text from them (escapes would hide a multi-line shape from a text search)
      const structured = out.structured && redactStructured(out.structured, shaped);
      const text = app.format === "json" && structured
        ? JSON.stringify(structured, null, 2)
        : redactFor(app, out.text, shaped);
      // known secrets (typed or referenced) are hidden in the final text in any case
      return {
        content: [{ type: "text", text: redact(text) }],
        ...(structured ? { structuredContent: structured } : {}),
      };
    } catch (err) {
      if (!(err instanceof RsmError) || !err.code.startsWith("POLICY")) {
        app.log.debug("tool failed", { tool: name, error: errorMessage(err) });
      }
      return errorResult(app, errorMessage(err));
    }
  }

  /** A new MCP server object (one per MCP session) that serves these tools from `app`. */
  createServer(app: App): Server {
    const server = new Server(
      { name: "remote-shell-mcp", version: VERSION },
      {
        capabilities: { tools: { listChanged: true }, logging: {} },
        instructions: INSTRUCTIONS,
      },
    );
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: this.list(app) }));
    // read-only mode switched on or off: the tool list changed
    const unwatch = app.policy.onChange((now, before) => {
      if (now.mode !== before.mode) server.sendToolListChanged().catch(() => {});
    });
    const closed = server.onclose;
    server.onclose = () => {
      unwatch();
      closed?.();
    };
    server.setRequestHandler(CallToolRequestSchema, (
      request: CallToolRequest,
      extra: RequestHandlerExtra<ServerRequest, ServerNotification>,
    ) => {
      const token = request.params._meta?.progressToken;
      let lastSent = -Infinity;
      return this.call(app, request.params.name, request.params.arguments, {
        signal: AbortSignal.any([extra.signal, app.shutdown.signal]),
        progress(progress, total, message) {
          if (token === undefined) return;
          const now = Date.now();
          const last = total !== undefined && progress >= total;
          if (!last && now - lastSent < PROGRESS_PERIOD_MS) return;
          lastSent = now;
          extra.sendNotification({
            method: "notifications/progress",
            params: {
              progressToken: token,
              progress,
              ...(total !== undefined ? { total } : {}),
              ...(message ? { message: redactFor(app, message) } : {}),
            },
          }).catch(() => {});
        },
      }, personChannel(app, server, extra, ElicitResultSchema));
    });
    return server;
  }
}

function errorResult(app: App, message: string): CallToolResult {
  return { isError: true, content: [{ type: "text", text: redactFor(app, message) }] };
}

/**
 * What the model may see of `text`: secrets rsm knows are always hidden; credential shapes
 * too unless the policy says `redact = false`.
 */
export function redactFor(
  app: App,
  text: string,
  shaped: boolean = app.policy.current().redact,
): string {
  const known = redact(text);
  return shaped ? redactShapes(known) : known;
}

/** The policy subject of a tool without its own description: its session or Docker host. */
function defaultSubject(args: Record<string, unknown>): Subject | undefined {
  if (typeof args.session_id === "string") return { kind: "ssh", target: args.session_id };
  if (typeof args.host_id === "string") return { kind: "docker", target: args.host_id };
  return undefined;
}

/** Redacts every string inside a structured result (the same rule as the text). */
function redactStructured<T>(value: T, shaped: boolean): T {
  if (typeof value === "string") {
    const known = redact(value);
    return (shaped ? redactShapes(known) : known) as T;
  }
  if (Array.isArray(value)) return value.map((v) => redactStructured(v, shaped)) as T;
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, redactStructured(v, shaped)]),
    ) as T;
  }
  return value;
}

/**
 * Annotations as listed: `openWorldHint: true` is MCP's default, so it is left out, and so is
 * an annotations object with nothing left in it.
 */
function listedAnnotations(
  a: ToolDef["annotations"],
): { annotations?: Tool["annotations"] | undefined } {
  if (!a) return {};
  const { openWorldHint, ...rest } = a;
  const listed = openWorldHint === true ? rest : a;
  return Object.keys(listed).length ? { annotations: listed } : {};
}

/** Id fields whose meaning the server's instructions give once for all tools. */
const SHARED_IDS = ["session_id", "host_id", "shell_id"];

/**
 * Limits dropped from listed schemas: lengths, counts and numeric bounds. They guard the
 * daemon, not the model (descriptions name the ones a model needs, like defaults): validation
 * still enforces them and a violation is an error naming the field and the limit. Record
 * keys' schemas and nested objects' `additionalProperties: false` go too (validation keeps
 * both), and a description repeated within one schema is kept only where it first appears.
 * This keeps `tools/list` — which every MCP client puts in the model's context — small.
 */
const SLIMMED = [
  "maxLength",
  "minLength",
  "maxItems",
  "minItems",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "propertyNames",
];

/** Drops the {@link SLIMMED} limits from a listed schema, recursively. */
function slimSchema(node: unknown, root = true, seen = new Set<unknown>()): void {
  if (Array.isArray(node)) {
    for (const item of node) slimSchema(item, false, seen);
  } else if (node && typeof node === "object") {
    const obj = node as Record<string, unknown>;
    // A description said once is enough (jump_hosts repeat the target's auth fields).
    if (seen.has(obj.description)) delete obj.description;
    else if (typeof obj.description === "string") seen.add(obj.description);
    for (const key of SLIMMED) delete obj[key];
    // JSON object keys are strings anyway
    if ((obj.propertyNames as { type?: string | undefined })?.type === "string") {
      delete obj.propertyNames;
    }
    // Nested objects stay strict in validation; the root says so once for the model.
    if (!root && obj.additionalProperties === false) delete obj.additionalProperties;
    for (const value of Object.values(obj)) slimSchema(value, false, seen);
  }
}
