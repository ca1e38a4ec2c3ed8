import type { Client } from "ssh2";
import { waitAtMost } from "../timeout.ts";

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
 * How long the server may keep refusing session channels while this side holds none (and no
 * open succeeds) before a refusal is final: sshd frees a closed session within a turn of its
 * loop, or once it reaps the command's process, which a loaded machine delays.
 */
export const EMPTY_REFUSAL_WINDOW_MS = 5000;

/** One admitted open: what the gate knew when the channel open was sent. */
export interface Slot {
  /** Exec channels this gate had seen close before the open was sent. */
  readonly closedBefore: number;
}

/**
 * Per-connection gate for exec channels. sshd caps the session channels one connection may
 * hold (`MaxSessions`, 10 by default, shared with SFTP and shells) and refuses the rest with
 * "open failed". Instead of failing those calls, the gate learns the cap and queues later
 * opens until a channel closes.
 *
 * The cap is what the server held when it refused, as far as this side can tell: sshd reads
 * the connection in order, so when it handled the refused open it held every exec channel it
 * had confirmed before (all confirmations before a refusal arrive before it) except those
 * whose close was sent before that open, plus the other session channels (shell, SFTP). The
 * channels this side still holds at the refusal are not that number: under a burst of quick
 * commands most have closed here while their close was still on its way to the server (a
 * burst of 128 `echo` once learned a cap of 2). One slot is kept for the kill helper of a
 * timed-out command. The estimate can be low (sshd may hold a session a little longer than
 * its channel, and frees a closed one only after the read that carried the close), so it is
 * never below the most session channels the server was seen to hold at once, the cap grows by
 * one after each cap's worth of opens without a refusal, and each refusal learns it anew.
 */
export class ChannelGate {
  #client: Client;
  #inFlight = 0;
  #open = 0;
  #confirmed = 0;
  #closed = 0;
  #limit = Infinity;
  /**
   * The most session channels this side has seen confirmed and open at once: the server held
   * them all at the moment it confirmed the last (its closes arrive in order after that), so
   * its cap is at least this many.
   */
  #peak = 0;
  /** Opens since the last refusal (the cap grows by one per cap's worth). */
  #sinceRefusal = 0;
  /**
   * When the server first refused while no session channel was known to be held, since the
   * last open it confirmed (undefined: no such refusal pending).
   */
  #emptySince: number | undefined;
  #waiters: (() => void)[] = [];
  #emptyWindowMs: number;

  /** `emptyRefusalWindowMs` defaults to {@link EMPTY_REFUSAL_WINDOW_MS}. */
  constructor(client: Client, options: { emptyRefusalWindowMs?: number } = {}) {
    this.#client = client;
    this.#emptyWindowMs = options.emptyRefusalWindowMs ?? EMPTY_REFUSAL_WINDOW_MS;
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

  /**
   * Waits for a free slot and takes it; send the open right away (no `await` in between),
   * then call {@link opened} or {@link failed}.
   */
  async acquire(signal?: AbortSignal): Promise<Slot> {
    while (this.#full()) await this.#wait(signal);
    this.#inFlight++;
    this.#open++;
    return { closedBefore: this.#closed };
  }

  /** The slot's channel is open; {@link closed} when it closes. */
  opened(): void {
    this.#inFlight--;
    this.#confirmed++;
    this.#emptySince = undefined;
    this.#peak = Math.max(this.#peak, sessionChannels(this.#client));
    // a cap learned too low (the estimate can only see this side) grows back: one more
    // slot after each cap's worth of opens without a refusal; a refusal learns it anew
    if (this.#limit !== Infinity && ++this.#sinceRefusal >= this.#limit) {
      this.#limit++;
      this.#sinceRefusal = 0;
    }
    // one fewer open in flight: a waiter that found the gate full because of it (while
    // channels closed meanwhile) goes now, not at the next close or its 1 s check
    this.#wakeAll();
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
    this.#closed++;
    this.#wakeAll();
  }

  /**
   * The server refused the open of `slot` (already {@link failed}): learns the cap, then
   * waits until a slot frees (or briefly, when the refusal raced a closing channel) before
   * the caller retries. Returns false when the server has kept refusing for the empty
   * refusal window ({@link EMPTY_REFUSAL_WINDOW_MS} by default) while this side knew of no
   * session channel it holds and no open succeeded (it refuses sessions for another reason).
   */
  async refused(slot: Slot, signal?: AbortSignal): Promise<boolean> {
    const mine = this.#open - this.#inFlight; // exec channels confirmed and not closed here
    const others = Math.max(0, sessionChannels(this.#client) - mine);
    const held = others + Math.max(0, this.#confirmed - slot.closedBefore);
    if (held === 0) {
      // sshd still counts sessions whose close it has not finished (the close in the same
      // read as this open, a child not yet reaped): retry for a while before calling the
      // refusal final. The window is time, for the whole connection: a count of refusals
      // was reached by one wave of a burst (96 callers refused at once on a loaded machine).
      const now = Date.now();
      this.#emptySince ??= now;
      if (now - this.#emptySince > this.#emptyWindowMs) return false;
      // spread the retries so a burst does not come back as one wave
      await this.#sleep(50 + Math.floor(Math.random() * 100), signal);
      return true;
    }
    this.#emptySince = undefined;
    // closes sent just before the open may reach sshd in the same read, before it frees
    // their sessions: it then refuses while holding more than `held`. The peak is a floor
    // (without it the cap fell by a round's worth of closes at each round of long commands)
    const cap = Math.max(held, this.#peak);
    this.#limit = cap >= 3 ? cap - 1 : cap;
    this.#sinceRefusal = 0;
    if (!this.#full()) await this.#sleep(20, signal);
    else await this.#wait(signal);
    return true;
  }

  /** Waits `ms`; rejects with the reason if `signal` aborts first. */
  async #sleep(ms: number, signal?: AbortSignal): Promise<void> {
    await waitAtMost(new Promise(() => {}), ms, { signal });
    signal?.throwIfAborted();
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
