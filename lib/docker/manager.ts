/**
 * Every Docker host of the daemon: connect/disconnect, health checks that keep `state` true,
 * persistence of `persistent` hosts (restored in the background, kept when they fail), and
 * Docker terminals for the shell engine.
 */
import { RsmError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { StateRegistry } from "../state/store.ts";
import type { PtyStream } from "../term/pty.ts";
import {
  DockerHost,
  type DockerHostSpec,
  type HostInfo,
  type HostRow,
  persistableSpec,
} from "./host.ts";
import type { SshClientLike } from "./agent.ts";
import { dialDockerSsh } from "./ssh.ts";
import { type DockerShellOptions, openDockerShell } from "./shell.ts";

export type { HostInfo, HostRow };

/** Health check interval (ms). */
const HEALTH_MS = 10_000;

interface Saved {
  hosts: { id: string; spec: DockerHostSpec }[];
}

/** Options for {@link DockerManager.openShell}. */
export type OpenShellOptions = DockerShellOptions;

/** What {@link DockerManager} needs: where to persist and log, SSH sessions, shutdown. */
export interface DockerManagerOptions {
  /** Persists the `persistent` hosts under `"docker"`. */
  store: StateRegistry;
  log: Logger;
  /** The daemon's own known_hosts file, for `ssh://` hosts. */
  knownHosts: string;
  /**
   * SSH session `id` (for `ssh_session` hosts): throws a NOT_FOUND error naming the session
   * when there is none; its `client()` throws when it is not connected.
   */
  session(id: string): { client(): SshClientLike };
  /** Aborted when the daemon shuts down: health checks stop waiting. */
  shutdown?: AbortSignal | undefined;
  /**
   * Called when a host is disconnected, before its connection closes: the daemon closes the
   * host's shells here (their processes end with it, like an SSH session's shells).
   */
  onDisconnect?: ((hostId: string) => void) | undefined;
}

/** Owns every Docker host connection. */
export class DockerManager {
  #opts: DockerManagerOptions;
  #shutdown: AbortSignal;
  #hosts = new Map<string, DockerHost>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #checking = false;
  #closed = false;

  constructor(options: DockerManagerOptions) {
    this.#opts = { ...options };
    this.#shutdown = options.shutdown ?? new AbortController().signal;
    this.#opts.store.register("docker", {
      save: () => this.#save(),
      restore: (data) => this.#restore(data),
    });
  }

  #newHost(id: string, spec: DockerHostSpec): DockerHost {
    const { session, knownHosts } = this.#opts;
    return new DockerHost(id, spec, {
      sessionClient: (sid) => session(sid).client(),
      dialSsh: (ep, s, signal) => dialDockerSsh(ep, s, { knownHosts, signal }),
    });
  }

  /** The host `id` or a NOT_FOUND error that lists the hosts. */
  get(id: string): DockerHost {
    const h = this.#hosts.get(id);
    if (!h) {
      const known = [...this.#hosts.keys()];
      throw new RsmError(
        "NOT_FOUND",
        `Cannot find Docker host "${id}": no such host` +
          (known.length ? ` (hosts: ${known.slice(0, 20).join(", ")})` : "") +
          "; connect one with docker_connect",
      );
    }
    return h;
  }

  /** Connects a new host (the engine must answer). */
  async connect(
    id: string,
    spec: DockerHostSpec,
    options: { signal?: AbortSignal } = {},
  ): Promise<HostInfo> {
    if (this.#hosts.has(id)) {
      throw new RsmError(
        "ALREADY_EXISTS",
        `Cannot connect Docker host "${id}": the id is in use; docker_disconnect it first or pick another id`,
      );
    }
    if (spec.ssh_session) this.#opts.session(spec.ssh_session); // clear error for an unknown one
    const host = this.#newHost(id, spec);
    this.#hosts.set(id, host);
    try {
      await host.connect(options.signal);
    } catch (err) {
      this.#hosts.delete(id);
      host.close();
      throw err;
    }
    this.#startTimer();
    if (spec.persistent) this.#opts.store.changed();
    this.#opts.log.info("docker host connected", { id, host: host.url });
    return host.info();
  }

  /** Disconnects and forgets a host; its shells are closed (their processes ended). */
  disconnect(id: string): void {
    const host = this.get(id);
    this.#hosts.delete(id);
    // its shells end with it (like ssh_disconnect closes a session's shells)
    try {
      this.#opts.onDisconnect?.(id);
    } catch (err) {
      this.#opts.log.warn("cannot close what depends on docker host", { host: id, error: err });
    }
    host.close();
    if (host.spec.persistent) this.#opts.store.changed();
    this.#opts.log.info("docker host disconnected", { id });
  }

  /** HostInfo of one host. */
  info(id: string): HostInfo {
    return this.get(id).info();
  }

  /** Rows as they are now (no I/O; used by `status`). */
  rows(): HostRow[] {
    return [...this.#hosts.values()].map((h) => h.row());
  }

  /** Health-checks every host now (bounded wait), then returns the rows. */
  async listHosts(options: { signal?: AbortSignal } = {}): Promise<HostRow[]> {
    await Promise.all([...this.#hosts.values()].map((h) => {
      const sig = AbortSignal.timeout(Math.min(h.timeoutMs, 5_000));
      return h.check(options.signal ? AbortSignal.any([sig, options.signal]) : sig);
    }));
    return this.rows();
  }

  /** Opens a TTY exec in a container as a terminal for the shell engine. */
  async openShell(hostId: string, opts: OpenShellOptions): Promise<PtyStream> {
    const host = this.get(hostId);
    const pty = await openDockerShell(host, opts);
    host.shells++;
    pty.onExit(() => {
      host.shells = Math.max(0, host.shells - 1);
    });
    return pty;
  }

  #startTimer(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setInterval(() => void this.#healthRound(), HEALTH_MS);
    Deno.unrefTimer(this.#timer);
  }

  async #healthRound(): Promise<void> {
    if (this.#checking || this.#closed) return;
    this.#checking = true;
    try {
      const now = Date.now();
      const due = [...this.#hosts.values()].filter((h) => h.nextCheckAt <= now);
      await Promise.all(due.map(async (h) => {
        const before = h.state;
        await h.check(this.#shutdown);
        if (before !== h.state) {
          this.#opts.log.info("docker host state changed", {
            id: h.id,
            state: h.state,
            error: h.lastError,
          });
        }
      }));
    } finally {
      this.#checking = false;
    }
  }

  #save(): Saved {
    return {
      hosts: [...this.#hosts.values()]
        .filter((h) => h.spec.persistent)
        .map((h) => ({ id: h.id, spec: persistableSpec(h.spec) })),
    };
  }

  async #restore(data: unknown): Promise<void> {
    const saved = data as Partial<Saved> | null;
    const list = Array.isArray(saved?.hosts) ? saved!.hosts : [];
    const jobs: Promise<unknown>[] = [];
    for (const rec of list) {
      if (!rec || typeof rec.id !== "string" || this.#hosts.has(rec.id)) continue;
      const host = this.#newHost(rec.id, { ...rec.spec, persistent: true });
      this.#hosts.set(rec.id, host); // kept even when the engine is down: health checks retry
      jobs.push(
        host.check(this.#shutdown).then((ok) => {
          this.#opts.log.info("docker host restored", {
            id: rec.id,
            state: host.state,
            error: host.lastError,
          });
          return ok;
        }),
      );
    }
    if (list.length) this.#startTimer();
    await Promise.all(jobs);
  }

  /** Drops every host. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    for (const h of this.#hosts.values()) h.close();
    this.#hosts.clear();
    await Promise.resolve();
  }

  /** `await using` support. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
