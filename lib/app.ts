import type { Paths } from "./paths.ts";
import type { Logger } from "./log.ts";
import { AuditLog } from "./audit.ts";
import { StateStore } from "./state/store.ts";
import type { Format, Group } from "./config.ts";
import { durableKind, SshManager, sshShellBackend } from "./ssh/mod.ts";
import { JobManager, jobsDir } from "./jobs/mod.ts";
import { ForwardManager } from "./ssh/mod.ts";
import { ShellBackends, ShellManager } from "./term/mod.ts";
import { DockerManager, dockerShellBackend } from "./docker/mod.ts";
import { Approvals, PolicyGuard, PolicyStore, SecretAsks } from "./policy/mod.ts";
import { WebAuth } from "./http/web/auth.ts";
import { OutputStore } from "./output/mod.ts";
import { join } from "node:path";

/** Options for {@link App}. */
export interface AppOptions {
  paths: Paths;
  log: Logger;
  format: Format;
  maxOutput: number;
  groups: ReadonlySet<Group>;
  /** State write debounce (ms). Default 200. */
  debounceMs?: number;
}

/**
 * The daemon's shared world: every manager, the store, the logs. One per daemon; every MCP
 * session's server object uses the same App. Managers know nothing of MCP.
 */
export class App {
  readonly paths: Paths;
  readonly log: Logger;
  readonly audit: AuditLog;
  readonly store: StateStore;
  readonly format: Format;
  readonly maxOutput: number;
  readonly groups: ReadonlySet<Group>;
  readonly startedAt: number = Date.now();
  /** Aborted when the daemon shuts down; long waits listen to it. */
  readonly shutdown: AbortController = new AbortController();

  readonly ssh: SshManager;
  readonly forwards: ForwardManager;
  readonly shells: ShellManager;
  readonly docker: DockerManager;
  readonly jobs: JobManager;

  /** policy.toml, approvals, secrets typed by a person (see the README, "A person in control"). */
  readonly policy: PolicyStore;
  readonly guard: PolicyGuard;
  readonly secretAsks: SecretAsks;
  /** One-time login links and cookies for the daemon's pages. */
  readonly web: WebAuth = new WebAuth();
  /** Full texts behind every cut result (README, "Output store"). */
  readonly outputs: OutputStore;

  #closed = false;

  constructor(options: AppOptions) {
    this.paths = options.paths;
    this.log = options.log;
    this.format = options.format;
    this.maxOutput = options.maxOutput;
    this.groups = options.groups;
    this.audit = new AuditLog(options.paths.audit, options.log);
    this.outputs = new OutputStore(join(options.paths.dir, "outputs"), {
      onError: (message, error) => options.log.warn(message, { error }),
    });
    this.store = new StateStore(options.paths.state, {
      log: options.log,
      debounceMs: options.debounceMs,
    });
    // Order matters: restore runs in registration order (sessions before their forwards/shells).
    const { store, log } = this;
    const knownHosts = options.paths.knownHosts;
    this.ssh = new SshManager({ store, log, knownHosts });
    this.forwards = new ForwardManager({ store, log, session: (id) => this.ssh.get(id) });
    // Shell backends: one registration each (docs/architecture.md, "Shell backends").
    const backends = new ShellBackends()
      .register(sshShellBackend({ session: (id) => this.ssh.get(id), log: options.log }))
      .register(dockerShellBackend({ openShell: (id, o) => this.docker.openShell(id, o) }));
    this.shells = new ShellManager({ backends, store: this.store, log: options.log });
    this.docker = new DockerManager({
      store,
      log,
      knownHosts,
      session: (id) => this.ssh.get(id),
      shutdown: this.shutdown.signal,
      onDisconnect: (id) => this.#closeShells("docker", id),
    });
    this.jobs = new JobManager({
      dir: jobsDir(options.paths.state),
      log: options.log,
      store: this.store,
    });
    this.jobs.registerKind("ssh_exec", durableKind((id) => this.ssh.get(id)));
    this.policy = new PolicyStore(join(options.paths.dir, "policy.toml"), options.log);
    this.secretAsks = new SecretAsks(this.audit);
    this.guard = new PolicyGuard({
      store: this.policy,
      approvals: new Approvals(this.audit),
      audit: this.audit,
      facts: targetFacts(this.ssh, this.docker),
    });
  }

  /** Loads `state.json` and restores persisted things in the background (docs/architecture.md "The daemon": not before serving). */
  async start(): Promise<void> {
    this.policy.watch();
    this.guard.approvals.start();
    await this.outputs.start();
    await this.store.load();
    this.store.restoreAll().catch((err) => this.log.error("restore failed", { error: err }));
  }

  /** Closes the shells of `owner` (a Docker host going away takes its shells with it). */
  #closeShells(kind: string, owner: string): void {
    for (const sh of this.shells.list({ kind, owner })) {
      try {
        this.shells.closeShell(kind, owner, sh.id);
      } catch (err) {
        this.log.warn("cannot close shell", { kind, owner, shell: sh.id, error: err });
      }
    }
  }

  /** Persists state first, then closes everything. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.store.flush();
    } catch (err) {
      this.log.error("final state write failed", { error: err });
    }
    this.store.stop();
    this.policy.close();
    this.guard.approvals.close();
    this.shutdown.abort(new Error("daemon shutting down"));
    await this.jobs.close();
    for (const part of [this.shells, this.forwards, this.docker, this.ssh, this.outputs]) {
      try {
        await part.close();
      } catch (err) {
        this.log.warn("close failed", { error: err });
      }
    }
  }
}

/** Host names (and the user) of a session or Docker host, for policy rules with `hosts`. */
function targetFacts(ssh: Pick<SshManager, "info">, docker: Pick<DockerManager, "info">) {
  const hostOf = (a: string) =>
    a.replace(/^[^@]*@/, "").replace(/^\[([^\]]+)\](:\d+)?$/, "$1").replace(/:\d+$/, "");
  return (kind: "ssh" | "docker", id: string): { hosts: string[]; user?: string } => {
    const hosts = new Set<string>();
    try {
      if (kind === "ssh") {
        const info = ssh.info(id);
        for (const a of [...info.addresses, info.active_address]) if (a) hosts.add(hostOf(a));
        return { hosts: [...hosts], user: info.user };
      }
      const h = docker.info(id).host;
      if (h) hosts.add(h.replace(/^[a-z]+:\/\/([^@/]*@)?/, "").replace(/[:/].*$/, "") || h);
    } catch { /* unknown target: the tool itself says so */ }
    return { hosts: [...hosts] };
  };
}
