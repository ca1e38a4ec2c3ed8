import type { Client } from "ssh2";

/**
 * Session channels (exec, shell, SFTP) open on `client`, as ssh2's channel table holds them
 * once the server confirmed them (pending opens are functions there, channels objects).
 * Forwarded TCP channels do not count: sshd's `MaxSessions` is about sessions only.
 */
export function sessionChannels(client: Client): number {
  const table = (client as unknown as { _chanMgr?: { _channels?: Record<string, unknown> } })
    ._chanMgr?._channels;
  let n = 0;
  for (const key in table ?? {}) {
    const ch = table![key] as { type?: string } | undefined;
    if (ch && typeof ch === "object" && ch.type === "session") n++;
  }
  return n;
}

/**
 * Per-connection gate for exec channels. sshd caps the session channels one connection may
 * hold (`MaxSessions`, 10 by default, shared with SFTP and shells) and refuses the rest with
 * "open failed". Instead of failing those calls, the gate learns the cap and queues later
 * opens until a channel closes.
 *
 * The cap is what the connection held when the first refusal came — every session channel
 * the server had confirmed (exec, shell, SFTP), not opens still in flight — less one slot kept
 * for the kill helper of a timed-out command. A later refusal that races a closing channel
 * (sshd had not freed its slot yet) is retried shortly and never lowers the cap.
 */
export class ChannelGate {
  #client: Client;
  #inFlight = 0;
  #open = 0;
  #limit = Infinity;
  #waiters: (() => void)[] = [];

  constructor(client: Client) {
    this.#client = client;
  }

  /** Exec channels open (or opening) through this gate now. */
  get open(): number {
    return this.#open;
  }

  /** The learned cap on session channels (Infinity until the server first refuses). */
  get limit(): number {
    return this.#limit;
  }

  #full(): boolean {
    return this.#limit !== Infinity &&
      sessionChannels(this.#client) + this.#inFlight >= this.#limit;
  }

  /** Waits for a free slot and takes it; call {@link opened} or {@link failed} next. */
  async acquire(signal?: AbortSignal): Promise<void> {
    while (this.#full()) await this.#wait(signal);
    this.#inFlight++;
    this.#open++;
  }

  /** The slot's channel is open; {@link closed} when it closes. */
  opened(): void {
    this.#inFlight--;
  }

  /** The slot's open failed. */
  failed(): void {
    this.#inFlight--;
    this.#open--;
    this.#wakeAll();
  }

  /** The slot's channel closed. */
  closed(): void {
    this.#open--;
    this.#wakeAll();
  }

  /**
   * The server refused a channel: learns the cap, then waits until a slot frees (or briefly,
   * when the refusal raced a closing channel) before the caller retries.
   */
  async refused(signal?: AbortSignal): Promise<void> {
    const held = sessionChannels(this.#client);
    const cap = held >= 3 ? held - 1 : Math.max(1, held);
    if (this.#limit === Infinity) this.#limit = cap;
    if (!this.#full()) {
      await new Promise((r) => setTimeout(r, 20));
      return;
    }
    await this.#wait(signal);
  }

  #wakeAll(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /**
   * Waits for one of this gate's channels to close, or 1 s at most: a shell or SFTP channel
   * closing frees a slot too, without telling the gate.
   */
  #wait(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.#waiters = this.#waiters.filter((w) => w !== wake);
      };
      const onAbort = () => {
        done();
        reject(signal?.reason ?? new Error("aborted"));
      };
      const wake = () => {
        done();
        resolve();
      };
      const timer = setTimeout(wake, 1000);
      this.#waiters.push(wake);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}

const gates = new WeakMap<Client, ChannelGate>();

/** The gate of one connection (a reconnect makes a new Client, so a new gate). */
export function gateOf(client: Client): ChannelGate {
  let gate = gates.get(client);
  if (!gate) {
    gate = new ChannelGate(client);
    gates.set(client, gate);
  }
  return gate;
}

/** Whether an ssh2 error is the server refusing a channel (as opposed to a dead connection). */
export function isChannelRefused(err: unknown): boolean {
  const text = err instanceof Error ? err.message : String(err);
  return /open failed|open failure|administratively prohibited|resource shortage/i.test(text);
}
