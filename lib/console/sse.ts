import { securityHeaders } from "./page.ts";

/** Sends one event: `event` name and its data (one line; newlines are split as SSE requires). */
export type Send = (event: string, data: string) => void;

/**
 * A server-sent-events response. `start(send, close)` begins producing and returns its
 * clean-up, which runs once when the client goes away (Deno cancels the body) or `close()` is
 * called. The request's `signal` is not used: under Deno.serve's legacy behaviour it also
 * aborts after a response completes, and listening to it prints a deprecation warning. A comment every 15 s keeps proxies and idle detection quiet.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sseStream } from "./sse.ts";
 *
 * const res = sseStream((send) => {
 *   const t = setInterval(() => send("tick", String(Date.now())), 10);
 *   return () => clearInterval(t);
 * });
 * const reader = res.body!.getReader();
 * let text = "";
 * while (!text.includes("event: tick")) text += new TextDecoder().decode((await reader.read()).value);
 * await reader.cancel(); // the client went away: the interval is cleared
 * assert.match(text, /^retry: 2000\n\n/);
 * ```
 */
export function sseStream(start: (send: Send, close: () => void) => () => void): Response {
  const enc = new TextEncoder();
  let cleanup: (() => void) | undefined;
  let done = false;
  let keepalive: ReturnType<typeof setInterval> | undefined;
  let controller: ReadableStreamDefaultController<Uint8Array>;
  const finish = () => {
    if (done) return;
    done = true;
    clearInterval(keepalive);
    try {
      cleanup?.();
    } catch { /* best effort */ }
    try {
      controller.close();
    } catch { /* already closed */ }
  };
  const push = (text: string) => {
    if (done) return;
    try {
      controller.enqueue(enc.encode(text));
    } catch {
      finish();
    }
  };
  const send: Send = (event, data) => {
    push(`event: ${event}\ndata: ${data.split("\n").join("\ndata: ")}\n\n`);
  };
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      push("retry: 2000\n\n");
      keepalive = setInterval(() => push(": keepalive\n\n"), 15_000);
      cleanup = start(send, finish);
      if (done) {
        done = false;
        finish();
      }
    },
    cancel: finish,
  });
  return new Response(body, {
    headers: { ...securityHeaders("text/event-stream; charset=utf-8"), connection: "keep-alive" },
  });
}
