/**
 * One SSH session: a spec, the live connection chain (if any), keepalive-driven failure
 * detection, auto-reconnect with backoff (1, 2, 5, 10, 30 s jittered, forever), serialised
 * manual reconnects, and an SFTP client cached per connection.
 *
 * Contract for the other managers (forwards, shells, SFTP, docker-over-ssh):
 * - `client()` is the current live `ssh2.Client` or throws `RsmError("NOT_CONNECTED")`.
 * - `ready(signal)` waits until connected; rejects when the session is closed, is
 *   disconnected for good (no auto-reconnect, nothing in flight) or `signal` aborts.
 * - `sftp(signal)` is cached per connection and rebuilt after a reconnect.
 * - events: `"connected"` (client, { reconnect }) on every (re)connection; `"down"` (reason)
 *   when the live connection drops; `"closed"` when the session is removed (ssh_disconnect).
 */
import { EventEmitter } from "node:events";
import type { Client, SFTPWrapper } from "ssh2";
import { errorMessage, RsmError } from "../errors.ts";
import { parseDuration } from "../duration.ts";
import type { Logger } from "../log.ts";
import { type Chain, dialChain } from "./dial.ts";
import { resolveChain } from "./resolve.ts";
import type { SessionSpec } from "./spec.ts";

/** Session states (README "SSH sessions and exec"). */
export type SessionState = "connecting" | "connected" | "reconnecting" | "disconnected";

/** Reconnect backoff in seconds; the last value repeats forever. */
export const BACKOFF_S: readonly number[] = [1, 2, 5, 10, 30];

/** Options for {@link SshSession}. */
export interface SessionOptions {
  /** The daemon's known_hosts file. */
  daemonKnownHosts: string;
  log: Logger;
  /** Called on every change worth persisting or showing. */
  onChange?: (() => void) | undefined;
}

function duration(value: string | number | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  try {
    return parseDuration(value);
  } catch (err) {
    throw new RsmError("BAD_SPEC", `Cannot use spec.${field}: ${errorMessage(err)}`);
  }
}

type Waiter = { resolve: (c: Client) => void; reject: (e: Error) => void };

/** A named SSH session. See the module doc for the contract. */
export class SshSession extends EventEmitter {
  readonly id: string;
  /** The spec as given (with inline secrets; scrubbed only when saved). */
  readonly spec: SessionSpec;
  state: SessionState = "connecting";
  persistent: boolean;
  autoReconnect: boolean;
  lastError = "";
  connectedAt?: Date | undefined;
  activeAddress = "";
  hostKeyFingerprint = "";
  /** The user on the target (after ssh_config). */
  user: string;

  #opts: SessionOptions;
  #chain: Chain | undefined;
  #sftp: { chain: Chain; promise: Promise<SFTPWrapper> } | undefined;
  #closed = false;
  #abort = new AbortController();
  #attempt: Promise<Client> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #retryIndex = 0;
  #waiters = new Set<Waiter>();
  #everConnected = false;

  constructor(id: string, spec: SessionSpec, options: SessionOptions) {
    super();
    this.id = id;
    this.spec = spec;
    this.persistent = !!spec.persistent;
    this.autoReconnect = !!spec.auto_reconnect;
    this.#opts = options;
    // validate early: bad addresses and durations fail before anything is dialed
    const chain = resolveChain(spec);
    this.user = chain.at(-1)!.user; // resolveChain always ends with the target
    duration(spec.timeout, "timeout");
    duration(spec.keepalive, "keepalive");
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The live connection; throws NOT_CONNECTED otherwise. */
  client(): Client {
    if (this.#chain && this.state === "connected") return this.#chain.final.client;
    throw new RsmError(
      "NOT_CONNECTED",
      `Session ${this.id} is ${this.state}` +
        (this.lastError ? ` (last error: ${this.lastError})` : "") +
        (this.state === "disconnected" ? "; use ssh_reconnect" : "; wait a moment and try again"),
    );
  }

  /** Waits until connected (see module doc). */
  ready(signal?: AbortSignal): Promise<Client> {
    if (this.#chain && this.state === "connected") return Promise.resolve(this.#chain.final.client);
    if (this.#closed) {
      return Promise.reject(new RsmError("CLOSED", `Session ${this.id} was disconnected`));
    }
    if (this.#gaveUp()) {
      try {
        this.client();
      } catch (err) {
        return Promise.reject(err);
      }
    }
    signal?.throwIfAborted();
    return new Promise<Client>((resolve, reject) => {
      const onAbort = () => {
        this.#waiters.delete(w);
        reject(signal?.reason ?? new Error("aborted"));
      };
      const w: Waiter = {
        resolve: (c) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(c);
        },
        reject: (e) => {
          signal?.removeEventListener("abort", onAbort);
          reject(e);
        },
      };
      this.#waiters.add(w);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** The SFTP client of the current connection (opened on first use). */
  async sftp(signal?: AbortSignal): Promise<SFTPWrapper> {
    const client = await this.ready(signal);
    const chain = this.#chain!;
    if (this.#sftp?.chain === chain) return await this.#sftp.promise;
    const promise = new Promise<SFTPWrapper>((resolve, reject) => {
      client.sftp((err, sftp) => {
        if (err) return reject(new RsmError("SFTP_FAILED", `Cannot open SFTP: ${err.message}`));
        sftp.on("close", () => {
          if (this.#sftp?.promise === promise) this.#sftp = undefined;
        });
        resolve(sftp);
      });
    });
    this.#sftp = { chain, promise };
    promise.catch(() => {
      if (this.#sftp?.promise === promise) this.#sftp = undefined;
    });
    return await promise;
  }

  /** First connection (ssh_connect). Throws on failure; `retry` keeps trying in the background. */
  connect(
    options: { signal?: AbortSignal | undefined; retry?: boolean | undefined } = {},
  ): Promise<Client> {
    this.state = this.#everConnected ? "reconnecting" : "connecting";
    return this.#run(options.signal, options.retry ?? false);
  }

  /** Restore path: connect in the background, retrying with backoff if auto_reconnect. */
  startBackground(): void {
    this.state = "connecting";
    this.#run(undefined, this.autoReconnect).catch(() => {});
  }

  /**
   * Drops the live connection (if any) and dials again. Concurrent calls share one attempt.
   */
  reconnect(signal?: AbortSignal): Promise<Client> {
    if (this.#closed) {
      return Promise.reject(new RsmError("CLOSED", `Session ${this.id} was disconnected`));
    }
    if (this.#attempt) return this.#attempt;
    this.#clearRetry();
    const old = this.#chain;
    if (old) {
      this.#chain = undefined;
      old.end();
      this.emit("down", "reconnect requested");
    }
    this.state = "reconnecting";
    this.#changed();
    return this.#run(signal, this.autoReconnect);
  }

  /** Closes the connection for good and emits `"closed"`. Idempotent. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#abort.abort(new RsmError("CLOSED", `session ${this.id} was disconnected`));
    this.#clearRetry();
    const chain = this.#chain;
    this.#chain = undefined;
    chain?.end();
    this.state = "disconnected";
    const err = new RsmError("CLOSED", `Session ${this.id} was disconnected`);
    for (const w of this.#waiters) w.reject(err);
    this.#waiters.clear();
    this.emit("closed");
    return Promise.resolve();
  }

  /** `await using` support. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #gaveUp(): boolean {
    return this.state === "disconnected" && !this.#attempt && this.#retryTimer === undefined;
  }

  #changed(): void {
    try {
      this.#opts.onChange?.();
    } catch { /* never fatal */ }
  }

  #clearRetry(): void {
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#retryTimer !== undefined) return;
    const base = BACKOFF_S[Math.min(this.#retryIndex, BACKOFF_S.length - 1)]! * 1000;
    this.#retryIndex++;
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#closed) return;
      this.#run(undefined, true).catch(() => {});
    }, delay);
  }

  #run(signal: AbortSignal | undefined, retry: boolean): Promise<Client> {
    if (this.#attempt) return this.#attempt;
    const attempt = (async () => {
      try {
        return await this.#dialOnce(signal);
      } catch (err) {
        const closedNow = this.#closed;
        if (!closedNow) {
          this.lastError = errorMessage(err);
          if (retry && this.autoReconnect) {
            this.state = "reconnecting";
            this.#scheduleRetry();
          } else this.state = "disconnected";
          this.#opts.log.warn("ssh connect failed", { id: this.id, error: this.lastError });
          if (this.#gaveUp()) {
            for (const w of this.#waiters) w.reject(err as Error);
            this.#waiters.clear();
          }
          this.#changed();
        }
        if (closedNow) {
          throw new RsmError("CLOSED", `Session ${this.id} was disconnected while connecting`);
        }
        throw err;
      } finally {
        this.#attempt = undefined;
      }
    })();
    this.#attempt = attempt;
    return attempt;
  }

  async #dialOnce(signal?: AbortSignal): Promise<Client> {
    const chainSpec = resolveChain(this.spec); // re-read ssh_config every time
    const target = chainSpec.at(-1)!; // resolveChain always ends with the target
    this.user = target.user;
    const timeoutMs = duration(this.spec.timeout, "timeout") ?? target.config.connectTimeoutMs ??
      15_000;
    const keepaliveMs = duration(this.spec.keepalive, "keepalive") ??
      target.config.serverAliveIntervalMs ?? 15_000;
    const sig = signal ? AbortSignal.any([this.#abort.signal, signal]) : this.#abort.signal;
    const chain = await dialChain(chainSpec, {
      timeoutMs,
      keepaliveMs,
      daemonKnownHosts: this.#opts.daemonKnownHosts,
      forwardAgent: this.spec.forward_agent,
      signal: sig,
    });
    if (this.#closed) {
      chain.end();
      throw new RsmError("CLOSED", `Session ${this.id} was disconnected while connecting`);
    }
    this.#install(chain);
    return chain.final.client;
  }

  #install(chain: Chain): void {
    const old = this.#chain;
    this.#chain = chain;
    old?.end();
    const reconnect = this.#everConnected;
    this.#everConnected = true;
    this.#clearRetry();
    this.#retryIndex = 0;
    this.state = "connected";
    this.lastError = "";
    this.connectedAt = new Date();
    this.activeAddress = chain.final.address;
    this.hostKeyFingerprint = chain.final.hostKey?.fingerprint ?? "";
    let reason = "";
    for (const hop of chain.hops) {
      hop.client.on("error", (err: Error) => {
        reason ||= err.message;
      });
      hop.client.on("close", () => this.#onDown(chain, reason || "connection closed"));
    }
    this.#opts.log.info("ssh connected", {
      id: this.id,
      address: this.activeAddress,
      reconnect,
    });
    const client = chain.final.client;
    for (const w of this.#waiters) w.resolve(client);
    this.#waiters.clear();
    this.emit("connected", client, { reconnect });
    this.#changed();
  }

  #onDown(chain: Chain, reason: string): void {
    if (chain !== this.#chain) return; // an old connection, already replaced or dropped
    this.#chain = undefined;
    chain.end();
    this.lastError = reason;
    this.#opts.log.warn("ssh connection lost", { id: this.id, reason });
    if (this.#closed) return;
    this.state = this.autoReconnect ? "reconnecting" : "disconnected";
    this.emit("down", reason);
    if (this.autoReconnect) this.#scheduleRetry();
    else {
      const err = new RsmError(
        "NOT_CONNECTED",
        `Session ${this.id} lost its connection (${reason}); use ssh_reconnect`,
      );
      for (const w of this.#waiters) w.reject(err);
      this.#waiters.clear();
    }
    this.#changed();
  }
}
