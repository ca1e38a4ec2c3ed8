import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";

/**
 * The legacy HTTP+SSE transport (protocol 2024-11-05) on web-standard `Request`/`Response`:
 * `GET /sse` opens the event stream and announces `endpoint`; the client POSTs each message
 * to `/message?sessionId=…`. The SDK's own SSE server transport needs Node's http objects.
 */
export class LegacySseTransport implements Transport {
  readonly sessionId: string = crypto.randomUUID();
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  #controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  #closed = false;
  #encoder = new TextEncoder();
  #keepalive: ReturnType<typeof setInterval> | undefined;

  /** The response for `GET /sse`; `messagePath` is announced as the endpoint. */
  response(messagePath: string): Response {
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
        this.#push(`event: endpoint\ndata: ${messagePath}?sessionId=${this.sessionId}\n\n`);
        this.#keepalive = setInterval(() => this.#push(": keepalive\n\n"), 15_000);
      },
      cancel: () => {
        this.close();
      },
    });
    return new Response(stream, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        connection: "keep-alive",
      },
    });
  }

  /** Feeds one POSTed message into the server. */
  receive(message: JSONRPCMessage): void {
    this.onmessage?.(message);
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  send(message: JSONRPCMessage): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("SSE stream closed"));
    this.#push(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    clearInterval(this.#keepalive);
    try {
      this.#controller?.close();
    } catch { /* already closed */ }
    this.onclose?.();
    return Promise.resolve();
  }

  #push(text: string): void {
    try {
      this.#controller?.enqueue(this.#encoder.encode(text));
    } catch {
      this.close();
    }
  }
}
