/**
 * Reaching the person behind the MCP client: approvals as a form elicitation (no required
 * fields, so Accept means approve), secrets as a URL elicitation that points at the daemon's
 * own loopback page. A client that cannot elicit gets a tool error with the page's link.
 */
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type {
  ElicitResultSchema,
  ServerNotification,
  ServerRequest,
} from "@modelcontextprotocol/sdk/types.js";
import type { App } from "../app.ts";
import { RsmError } from "../errors.ts";
import type { ApprovalDetails } from "../policy/mod.ts";
import type { SecretNeededError } from "../secrets.ts";

/** How one MCP session can reach its person (each part only when the client supports it). */
export interface PersonChannel {
  /** Form-mode elicitation: approve or not. */
  confirm?(details: ApprovalDetails, ttlMs: number): Promise<"accept" | "decline" | "cancel">;
  /**
   * URL-mode elicitation: asks the person to open `url`; resolves with their answer. `done`
   * tells the client the page was completed.
   */
  openUrl?(
    message: string,
    url: string,
    elicitationId: string,
  ): Promise<{ action: "accept" | "decline" | "cancel"; done(): Promise<void> }>;
}

/** How long a person has to type a secret on the page. */
const SECRET_TTL_MS = 10 * 60_000;

/** The channel of one call, from the client's declared capabilities. */
export function personChannel(
  _app: App,
  server: Server,
  extra: RequestHandlerExtra<ServerRequest, ServerNotification>,
  schema: typeof ElicitResultSchema,
): PersonChannel {
  const caps = server.getClientCapabilities()?.elicitation as
    | { form?: object | undefined; url?: object | undefined }
    | undefined;
  if (!caps) return {};
  // a client that declares `elicitation: {}` supports form mode (the spec's default)
  const form = !!caps.form || !caps.url;
  const channel: PersonChannel = {};
  if (form) {
    channel.confirm = async (d, ttlMs) => {
      const lines = [
        `rsm asks for your approval (${d.rule}).`,
        `tool: ${d.tool}`,
        `target: ${d.target}`,
        `user: ${d.user ?? "(the session's user)"}`,
        `cwd: ${d.cwd ?? "(default directory)"}`,
        `command: ${d.command}`,
        "Accept runs exactly this once; Decline refuses it.",
      ];
      const r = await extra.sendRequest(
        {
          method: "elicitation/create",
          params: {
            mode: "form",
            message: lines.join("\n"),
            requestedSchema: { type: "object", properties: {} },
          },
        },
        schema,
        { timeout: ttlMs, signal: extra.signal },
      );
      return r.action;
    };
  }
  if (caps.url) {
    channel.openUrl = async (message, url, elicitationId) => {
      const r = await extra.sendRequest(
        { method: "elicitation/create", params: { mode: "url", message, url, elicitationId } },
        schema,
        { timeout: SECRET_TTL_MS, signal: extra.signal },
      );
      return {
        action: r.action,
        done: () =>
          server.createElicitationCompletionNotifier(elicitationId, {
            relatedRequestId: extra.requestId,
          })().catch(() => {}),
      };
    };
  }
  return channel;
}

/**
 * Gets a secret a connection needs from the person: through URL elicitation when the client
 * can (waits until it is entered), otherwise throws an error carrying the page's link (the
 * next attempt uses what was entered there).
 */
export async function askForSecret(
  app: App,
  need: SecretNeededError,
  person: PersonChannel,
  signal: AbortSignal,
  tool: string,
): Promise<void> {
  const cause = need.message;
  const ask = app.secretAsks.request(need.need, SECRET_TTL_MS);
  const url = app.web.link(`/web/secrets/${ask.id}`, SECRET_TTL_MS);
  const what = need.need.prompt
    ? `${need.need.label} ("${need.need.prompt.trim()}")`
    : need.need.label;
  if (!person.openUrl) {
    throw new RsmError(
      "SECRET_NEEDED",
      `${cause} ${what} is needed and no reference provides it (e.g. password_env). A person must type ` +
        `it: show them this link to open on the machine running rsm (valid 10 min): ${url} — ` +
        `then call ${tool} again; the secret goes to the daemon only, never into this ` +
        `conversation.`,
    );
  }
  const r = await person.openUrl(
    `${what} is needed. Open the rsm page to type it; it goes straight to the rsm daemon on ` +
      `this machine and is never shown to the model.`,
    url,
    ask.id,
  );
  if (r.action !== "accept") {
    throw new RsmError(
      "SECRET_DECLINED",
      `Not connected: the person ${r.action === "decline" ? "declined" : "cancelled"} entering ` +
        `${what}. Do not retry unless the person asks you to.`,
    );
  }
  const deadline = AbortSignal.any([signal, AbortSignal.timeout(SECRET_TTL_MS)]);
  await new Promise<void>((resolve, reject) => {
    const onAbort = () =>
      reject(
        new RsmError(
          "SECRET_TIMEOUT",
          `Gave up waiting for ${what} to be typed on the rsm page; call ${tool} again to ask ` +
            `anew.`,
        ),
      );
    if (deadline.aborted) return onAbort();
    deadline.addEventListener("abort", onAbort, { once: true });
    ask.entered.then(() => {
      deadline.removeEventListener("abort", onAbort);
      resolve();
    });
  });
  await r.done();
}
