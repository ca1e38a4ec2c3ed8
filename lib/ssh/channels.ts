import type { Client } from "ssh2";

/**
 * Per-connection gate for session channels (exec). sshd caps the session channels one
 * connection may hold (`MaxSessions`, 10 by default) and refuses the rest with "open failed".
 * Instead of failing those calls, the gate learns the cap from the first refusal (keeping one
 * slot free for the kill helper of a timed-out command) and queues later opens until a
 * channel closes.
 */
export class ChannelGate {
  #open = 0;
  #limit = Infinity;
  #waiters: (() => void)[] = [];

  /** Channels open through this gate now. */
  get open(): number {
    return this.#open;
  }

  /** Waits for a free slot and takes it. */
  async acquire(signal?: AbortSignal): Promise<void> {
    while (this.#open >= this.#limit) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(signal?.reason ?? new Error("aborted"));
        const wake = () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        this.#waiters.push(wake);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    }
    this.#open++;
  }

  /** Gives a slot back (the channel closed, or its open failed). */
  release(): void {
    this.#open = Math.max(0, this.#open - 1);
    const next = this.#waiters.shift();
    next?.();
  }

  /** The server refused a channel while `open` were open: that is (about) its cap. */
  refused(): void {
    this.#limit = Math.max(1, this.#open - 1);
  }
}

const gates = new WeakMap<Client, ChannelGate>();

/** The gate of one connection (a reconnect makes a new Client, so a new gate). */
export function gateOf(client: Client): ChannelGate {
  let gate = gates.get(client);
  if (!gate) {
    gate = new ChannelGate();
    gates.set(client, gate);
  }
  return gate;
}

/** Whether an ssh2 error is the server refusing a channel (as opposed to a dead connection). */
export function isChannelRefused(err: unknown): boolean {
  const text = err instanceof Error ? err.message : String(err);
  return /open failed|open failure|administratively prohibited|resource shortage/i.test(text);
}
