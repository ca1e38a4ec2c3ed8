/**
 * The one piping/accounting helper every forward kind uses (-L, -R, -D).
 *
 * A forward owns a {@link Traffic}: its byte counters and its live connections. Each accepted
 * connection becomes a {@link Connection} the moment it arrives (so cancel closes connections
 * still dialing too); `attach(upstream)` then pipes both ways:
 * - bytes are counted on the way through, chunks are handed on as they are; the chunks that
 *   arrive in one turn of the event loop (ssh2 emits every channel packet of one socket read
 *   at once) go out in one write: a socket write per 32 KiB packet was half the daemon's CPU
 *   in a `-L` transfer;
 * - backpressure: a side that cannot take more pauses the other until `drain`;
 * - half-close: EOF from one side ends the other's writable side only; the pair is torn down
 *   once each side has closed, after what was written to it has been flushed;
 * - an error on either side destroys both.
 *
 * `bytes_in` counts what the connecting side sent (towards the target), `bytes_out` what went
 * back to it.
 */
import type { Duplex } from "node:stream";
import process from "node:process";

/** Counters and live connections of one forward. */
export class Traffic {
  /** Bytes received from the connecting side and sent on towards the target. */
  bytesIn = 0;
  /** Bytes received from the target and sent back to the connecting side. */
  bytesOut = 0;
  /** Connections accepted so far. */
  total = 0;
  #live = new Set<Connection>();

  /** Connections open now (including ones still dialing). */
  get active(): number {
    return this.#live.size;
  }

  /** Starts tracking a connection that just arrived on the forward's accepting side. */
  open(downstream: Duplex): Connection {
    this.total++;
    const conn = new Connection(this, downstream, () => this.#live.delete(conn));
    this.#live.add(conn);
    return conn;
  }

  /**
   * Destroys every live connection (cancel, session gone); with `attachedOnly`, only those
   * already piped (connections still dialing keep waiting, e.g. for a reconnect).
   */
  closeAll(options: { attachedOnly?: boolean } = {}): void {
    for (const c of [...this.#live]) {
      if (!options.attachedOnly || c.upstream) c.destroy();
    }
  }
}

/** One accepted connection and, once dialed, its upstream. See the module doc. */
export class Connection {
  readonly downstream: Duplex;
  upstream?: Duplex | undefined;
  #traffic: Traffic;
  #onDone: () => void;
  #done = false;
  #closedDown = false;
  #closedUp = false;
  #destroyed = false;

  constructor(traffic: Traffic, downstream: Duplex, onDone: () => void) {
    this.#traffic = traffic;
    this.downstream = downstream;
    this.#onDone = onDone;
    downstream.on("error", () => this.destroy());
    downstream.once("close", () => {
      this.#closedDown = true;
      if (!this.upstream) this.destroy();
      else this.#settle();
    });
  }

  /** Whether the connection is finished (closed or destroyed). */
  get done(): boolean {
    return this.#done;
  }

  /**
   * Pipes `downstream` ⇄ `upstream`. If the connection was already destroyed, `upstream` is
   * destroyed at once.
   */
  attach(upstream: Duplex): void {
    if (this.#destroyed || this.upstream) {
      upstream.destroy();
      return;
    }
    this.upstream = upstream;
    const down = this.downstream;
    const t = this.#traffic;
    upstream.on("error", () => this.destroy());
    upstream.once("close", () => {
      this.#closedUp = true;
      this.#settle();
    });
    // downstream → upstream (bytes_in)
    const toUp = batched(upstream);
    down.on("data", (chunk: Uint8Array) => {
      t.bytesIn += chunk.length;
      if (!toUp(chunk)) down.pause();
    });
    upstream.on("drain", () => down.resume());
    down.once("end", () => upstream.end());
    // upstream → downstream (bytes_out)
    const toDown = batched(down);
    upstream.on("data", (chunk: Uint8Array) => {
      t.bytesOut += chunk.length;
      if (!toDown(chunk)) upstream.pause();
    });
    down.on("drain", () => upstream.resume());
    upstream.once("end", () => down.end());
    down.resume();
    upstream.resume();
  }

  /** Closes both sides now (data in flight is dropped). Idempotent. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#finish();
    this.downstream.destroy();
    this.upstream?.destroy();
  }

  /** One side closed: the other gets what is still buffered for it, then closes too. */
  #settle(): void {
    const up = this.upstream;
    if (!up) return;
    if (this.#closedDown && this.#closedUp) this.#finish();
    else if (this.#closedDown) drainThenClose(this.downstream, up);
    else if (this.#closedUp) drainThenClose(up, this.downstream);
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#onDone();
  }
}

/**
 * A writer for `w` that corks it for the rest of the current turn of the event loop, so the
 * chunks written in that turn reach the socket in one `writev`. Returns what `write` returns.
 */
function batched(w: Duplex): (chunk: Uint8Array) => boolean {
  let corked = false;
  const uncork = () => {
    corked = false;
    w.uncork();
  };
  return (chunk) => {
    if (!corked) {
      corked = true;
      w.cork();
      process.nextTick(uncork);
    }
    return w.write(chunk);
  };
}

/**
 * `from` has closed. Once its EOF has been passed on (`end` → `to.end()`), `to` is destroyed
 * as soon as its writes are flushed. An ssh2 channel emits `close` with data possibly still
 * buffered in its readable side, so the EOF may come later; a destroyed socket never sends it.
 */
function drainThenClose(from: Duplex, to: Duplex): void {
  const closeTo = () => {
    if (to.writableFinished) to.destroy();
    else {
      to.once("finish", () => to.destroy());
      if (!to.writableEnded) to.end();
    }
  };
  if (from.readableEnded) closeTo();
  else if (from.destroyed) to.destroy();
  else from.once("end", closeTo);
}
