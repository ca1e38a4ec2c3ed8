/**
 * Every Docker host of the daemon: connect/disconnect, health checks that keep `state` true,
 * persistence of `persistent` hosts (restored in the background, kept when they fail), and
 * Docker terminals for the shell engine.
 */
import type { App } from "../app.ts";
import { RsmError } from "../errors.ts";
import type { PtyStream } from "../term/pty.ts";
import {
  DockerHost,
  type DockerHostSpec,
  type HostInfo,
  type HostRow,
  persistableSpec,
} from "./host.ts";
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

/** Owns every Docker host connection. */
export class DockerManager {
  readonly app: App;
  #hosts = new Map<string, DockerHost>();
  #timer?: ReturnType<typeof setInterval>;
  #checking = false;
  #closed = false;

  constructor(app: App) {
    this.app = app;
    app.store.register("docker", {
      save: () => this.#save(),
      restore: (data) => this.#restore(data),
    });
  }

  #newHost(id: string, spec: DockerHostSpec): DockerHost {
    const app = this.app;
    return new DockerHost(id, spec, {
      sessionClient: (sid) => app.ssh.get(sid).client(),
      dialSsh: (ep, s, signal) => dialDockerSsh(app, ep, s, signal),
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
        "CONFLICT",
        `Cannot connect Docker host "${id}": the id is in use; docker_disconnect it first or pick another id`,
      );
    }
    if (spec.ssh_session) this.app.ssh.get(spec.ssh_session); // clear error for an unknown session
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
    if (spec.persistent) this.app.store.changed();
    this.app.log.info("docker host connected", { id, host: host.url });
    return host.info();
  }

  /** Disconnects and forgets a host; its shells are closed (their processes ended). */
  disconnect(id: string): void {
    const host = this.get(id);
    this.#hosts.delete(id);
    // its shells end with it (like ssh_disconnect closes a session's shells)
    for (const sh of this.app.shells.list({ kind: "docker", owner: id })) {
      try {
        this.app.shells.closeShell("docker", id, sh.id);
      } catch (err) {
        this.app.log.warn("cannot close docker shell", { host: id, shell: sh.id, error: err });
      }
    }
    host.close();
    if (host.spec.persistent) this.app.store.changed();
    this.app.log.info("docker host disconnected", { id });
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
        await h.check(this.app.shutdown.signal);
        if (before !== h.state) {
          this.app.log.info("docker host state changed", {
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
        host.check(this.app.shutdown.signal).then((ok) => {
          this.app.log.info("docker host restored", {
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
}
