/**
 * One Docker host: its spec, a dockerode client over unix/tcp(+TLS)/ssh/an SSH session, and a
 * health state that is true (every call and every health check updates it).
 */
import type Docker from "dockerode";

let dockerode: Promise<typeof Docker> | undefined;
/** dockerode is loaded on the first Docker host, not at daemon start-up. */
function loadDockerode(): Promise<typeof Docker> {
  dockerode ??= import("dockerode").then((m) => m.default);
  return dockerode;
}
import { RsmError } from "../errors.ts";
import { addSecret } from "../secrets.ts";
import { parseDuration } from "../duration.ts";
import { type AuthSpec, expandHome } from "../ssh/spec.ts";
import {
  describeEndpoint,
  type Endpoint,
  parseHost,
  resolveHost,
  type TlsPaths,
} from "./endpoint.ts";
import { engineError, isEngineError, transportMessage } from "./errors.ts";
import { ForwardAgent, type SshClientLike } from "./agent.ts";

/** SSH auth fields as in README "SSH sessions and exec" (used by `ssh://` hosts): the same as `ssh_connect`'s. */
export type DockerSshAuth = AuthSpec;

/** `docker_connect`'s spec (README "Docker"). */
export interface DockerHostSpec {
  host?: string | undefined;
  tls_ca_path?: string | undefined;
  tls_cert_path?: string | undefined;
  tls_key_path?: string | undefined;
  /** Pin the Engine API version, e.g. `1.41`; default: the engine's own. */
  api_version?: string | undefined;
  /** SSH user for `ssh://` hosts without `user@`. */
  user?: string | undefined;
  auth?: DockerSshAuth | undefined;
  known_hosts_path?: string | undefined;
  host_key_policy?: "strict" | "accept-new" | "insecure" | undefined;
  /** Connect timeout (ping / SSH handshake); default 15s. */
  timeout?: string | number | undefined;
  persistent?: boolean | undefined;
  /** Reach the engine socket through this existing SSH session. */
  ssh_session?: string | undefined;
}

/** Host connection state. */
export type HostState = "connecting" | "connected" | "disconnected";

/** HostRow (README "Docker"). */
export interface HostRow {
  id: string;
  host: string;
  state: string;
  last_error: string;
  persistent: boolean;
  shells: number;
}

/** HostInfo: the row plus engine facts. */
export interface HostInfo extends HostRow {
  source: string;
  api_version: string;
  engine_version: string;
  os: string;
  connected_at: string;
}

/** An SSH connection a host owns (ends its whole jump chain). */
export type DialedSsh = SshClientLike & { end(): void; on(event: string, f: () => void): unknown };

/** What a host needs from the rest of the daemon (SSH clients). */
export interface HostDeps {
  /** The ssh2 client of SSH session `id`, or throws why there is none. */
  sessionClient(id: string): SshClientLike;
  /** Dials an `ssh://` endpoint with the spec's auth; resolves a ready ssh2 client. */
  dialSsh(
    ep: Extract<Endpoint, { kind: "ssh" }>,
    spec: DockerHostSpec,
    signal: AbortSignal,
  ): Promise<DialedSsh>;
}

/** Strips secrets from a spec (what `state.json` may hold). */
export function persistableSpec(spec: DockerHostSpec): DockerHostSpec {
  const out: DockerHostSpec = { ...spec };
  if (spec.auth) {
    const { password: _p, key_passphrase: _k, ...rest } = spec.auth;
    out.auth = rest;
  }
  return out;
}

/** A Docker host connection. `close()` is idempotent. */
export class DockerHost {
  readonly id: string;
  readonly spec: DockerHostSpec;
  state: HostState = "connecting";
  lastError = "";
  url = "";
  source = "";
  connectedAt?: Date | undefined;
  apiVersion = "";
  engineVersion = "";
  os = "";
  /** Shell count, kept by the manager for rows. */
  shells = 0;
  /** Consecutive failed checks or calls. */
  failures = 0;
  /** The background health check skips this host until then (ms since epoch). */
  nextCheckAt = 0;
  #docker: Docker | undefined;
  #endpoint: Endpoint | undefined;
  #ssh: DialedSsh | undefined;
  #sshDialing: Promise<DialedSsh> | undefined;
  #agent: ForwardAgent | undefined;
  #deps: HostDeps;
  #closed = false;

  constructor(id: string, spec: DockerHostSpec, deps: HostDeps) {
    this.id = id;
    this.spec = spec;
    this.#deps = deps;
    addSecret(spec.auth?.password);
    addSecret(spec.auth?.key_passphrase);
  }

  /** The timeout for connects and health checks (ms). */
  get timeoutMs(): number {
    return this.spec.timeout !== undefined ? parseDuration(this.spec.timeout) : 15_000;
  }

  /** The endpoint, once resolved. */
  get endpoint(): Endpoint | undefined {
    return this.#endpoint;
  }

  /** Resolves the endpoint, builds the client and pings the engine. */
  async connect(signal?: AbortSignal): Promise<void> {
    if (!this.#docker) await this.#build();
    await this.check(signal, true);
  }

  async #build(): Promise<void> {
    const Docker = await loadDockerode();
    const spec = this.spec;
    let resolved;
    if (spec.ssh_session) {
      resolved = { url: spec.host ?? "unix:///var/run/docker.sock", source: "spec", tls: {} };
    } else {
      resolved = await resolveHost(spec.host);
    }
    const tls: TlsPaths = {
      ca: spec.tls_ca_path ?? resolved.tls.ca,
      cert: spec.tls_cert_path ?? resolved.tls.cert,
      key: spec.tls_key_path ?? resolved.tls.key,
      verify: resolved.tls.verify,
    };
    const wantTls = Boolean(
      spec.tls_ca_path || spec.tls_cert_path || spec.tls_key_path || tls.verify,
    );
    let ep = parseHost(resolved.url, wantTls);
    if (spec.ssh_session) {
      if (ep.kind !== "unix") {
        throw new RsmError(
          "BAD_HOST",
          `Cannot use host ${resolved.url} with ssh_session: name the remote socket as unix:///path (default unix:///var/run/docker.sock)`,
        );
      }
      ep = { kind: "session", sessionId: spec.ssh_session, socketPath: ep.socketPath };
    }
    if (ep.kind === "ssh" && !ep.user && spec.user) ep = { ...ep, user: spec.user };
    this.#endpoint = ep;
    this.url = describeEndpoint(ep);
    this.source = resolved.source;
    const version = spec.api_version ? `v${spec.api_version.replace(/^v/, "")}` : undefined;
    switch (ep.kind) {
      case "unix":
        this.#docker = new Docker({ socketPath: ep.socketPath, version });
        break;
      case "tcp": {
        const read = async (p: string | undefined, what: string) => {
          if (!p) return undefined;
          try {
            return await Deno.readTextFile(expandHome(p));
          } catch (err) {
            throw new RsmError(
              "BAD_TLS",
              `Cannot read ${what} ${p}: ${err instanceof Error ? err.message : err}`,
            );
          }
        };
        const [ca, cert, key] = [
          await read(tls.ca, "tls_ca_path"),
          await read(tls.cert, "tls_cert_path"),
          await read(tls.key, "tls_key_path"),
        ];
        if ((cert && !key) || (key && !cert)) {
          throw new RsmError(
            "BAD_TLS",
            "Cannot use TLS client auth: give both tls_cert_path and tls_key_path",
          );
        }
        this.#docker = new Docker({
          protocol: ep.tls ? "https" : "http",
          host: ep.host,
          port: ep.port,
          ca,
          cert,
          key,
          version,
        } as Docker.DockerOptions);
        break;
      }
      case "ssh":
      case "session": {
        const socketPath = ep.socketPath;
        this.#agent = new ForwardAgent(async () => {
          const client = await this.#sshClient();
          return { client, socketPath };
        });
        this.#docker = new Docker({
          protocol: "http",
          host: "docker",
          port: 2375,
          agent: this.#agent,
          version,
        } as unknown as Docker.DockerOptions);
        break;
      }
      default: {
        // a new endpoint kind must be handled above: this line fails `deno check` until it is
        const unhandled: never = ep;
        throw new Error(
          `Cannot build a Docker client: unknown endpoint ${JSON.stringify(unhandled)}`,
        );
      }
    }
  }

  async #sshClient(): Promise<SshClientLike> {
    const ep = this.#endpoint!;
    if (ep.kind === "session") return this.#deps.sessionClient(ep.sessionId);
    if (ep.kind !== "ssh") throw new Error("not an ssh host");
    if (this.#ssh) return this.#ssh;
    this.#sshDialing ??= (async () => {
      try {
        const c = await this.#deps.dialSsh(ep, this.spec, AbortSignal.timeout(this.timeoutMs));
        if (this.#closed) {
          c.end();
          throw new RsmError("CLOSED", `Docker host ${this.id} is disconnected`);
        }
        this.#ssh = c;
        const drop = () => {
          if (this.#ssh === c) this.#ssh = undefined;
        };
        c.on("close", drop);
        c.on("error", drop);
        return c;
      } finally {
        this.#sshDialing = undefined;
      }
    })();
    return await this.#sshDialing;
  }

  /** Pings the engine and updates the state. With `throwOnFail`, throws the failure. */
  async check(signal?: AbortSignal, throwOnFail = false): Promise<boolean> {
    if (this.#closed) return false;
    try {
      if (!this.#docker) await this.#build();
      const sig = signal
        ? AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)])
        : AbortSignal.timeout(this.timeoutMs);
      const d = this.#docker!;
      const version = d.version as unknown as (o: { abortSignal: AbortSignal }) => Promise<unknown>;
      const v = await version.call(d, { abortSignal: sig }) as {
        ApiVersion?: string | undefined;
        Version?: string | undefined;
        Os?: string | undefined;
        Arch?: string | undefined;
      };
      this.apiVersion = v.ApiVersion ?? "";
      this.engineVersion = v.Version ?? "";
      this.os = [v.Os, v.Arch].filter(Boolean).join("/");
      this.#ok();
      return true;
    } catch (err) {
      const msg = err instanceof RsmError ? err.message : transportMessage(err);
      this.#fail(msg);
      if (throwOnFail) {
        if (err instanceof RsmError) throw err;
        throw new RsmError(
          "DOCKER_UNREACHABLE",
          `Cannot connect to Docker host ${this.id} (${
            this.url || this.spec.host || "default"
          }): ${msg}`,
          { cause: err },
        );
      }
      return false;
    }
  }

  #ok(): void {
    if (this.state !== "connected") this.connectedAt = new Date();
    this.state = "connected";
    this.lastError = "";
    this.failures = 0;
    this.nextCheckAt = 0;
  }

  #fail(msg: string): void {
    this.state = "disconnected";
    this.lastError = msg;
    this.failures++;
    // background checks of a dead host back off (10 s … 5 min) so an ssh:// host with a
    // wrong password is not retried every 10 s; explicit calls always go through
    this.nextCheckAt = Date.now() + Math.min(300_000, 10_000 * 2 ** Math.min(this.failures - 1, 5));
  }

  /**
   * Runs `fn` with the client. Engine answers (404, 409…) become clear RsmErrors and keep the
   * host `connected`; transport failures mark it `disconnected` and say so.
   */
  async use<T>(action: string, fn: (docker: Docker) => Promise<T>, hint?: string): Promise<T> {
    if (this.#closed) {
      throw new RsmError(
        "CLOSED",
        `Cannot ${action}: Docker host ${this.id} is disconnected; see docker_list_hosts`,
      );
    }
    if (!this.#docker) {
      try {
        await this.#build();
      } catch (err) {
        if (err instanceof RsmError) this.#fail(err.message);
        throw err;
      }
    }
    try {
      const out = await fn(this.#docker!);
      this.#ok();
      return out;
    } catch (err) {
      if (isEngineError(err)) {
        this.#ok();
        throw engineError(action, err, hint);
      }
      if (err instanceof RsmError) throw err;
      if (isAbort(err)) throw err;
      const msg = transportMessage(err);
      if (looksLikeTransport(err)) {
        this.#fail(msg);
        throw new RsmError(
          "DOCKER_UNREACHABLE",
          `Cannot ${action}: Docker host ${this.id} (${this.url}) is unreachable: ${msg}. It is health-checked and comes back by itself once the engine answers; see docker_list_hosts`,
          { cause: err },
        );
      }
      throw new RsmError("DOCKER_ERROR", `Cannot ${action}: ${msg}`, { cause: err });
    }
  }

  /** The row (README "Docker"). */
  row(): HostRow {
    return {
      id: this.id,
      host: this.url || this.spec.host || "",
      state: this.state,
      last_error: this.lastError,
      persistent: Boolean(this.spec.persistent),
      shells: this.shells,
    };
  }

  /** HostInfo. */
  info(): HostInfo {
    return {
      ...this.row(),
      source: this.spec.ssh_session ? `ssh_session ${this.spec.ssh_session}` : this.source,
      api_version: this.apiVersion,
      engine_version: this.engineVersion,
      os: this.os,
      connected_at: this.connectedAt?.toISOString() ?? "",
    };
  }

  /** Drops the transport (and an owned SSH connection). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.state = "disconnected";
    // an owned SSH connection gets a short grace so shells closed with the host can still
    // send their kill exec through it
    const ssh = this.#ssh;
    if (ssh) {
      const timer = setTimeout(() => {
        try {
          ssh.end();
        } catch { /* already gone */ }
        this.#agent?.destroy();
      }, 5_000);
      Deno.unrefTimer(timer);
    } else this.#agent?.destroy();
  }
}

function isAbort(err: unknown): boolean {
  const e = err as { name?: string; code?: string };
  return e?.name === "AbortError" || e?.code === "ABORT_ERR" || e?.name === "TimeoutError";
}

function looksLikeTransport(err: unknown): boolean {
  const e = err as { code?: unknown; message?: string };
  if (typeof e?.code === "string" && /^E[A-Z]+|ERR_|CERT|SSL|TLS/.test(e.code)) return true;
  return /socket|connect|ECONN|EPIPE|ENOENT|TLS|certificate|hang up|closed|channel|ssh|Not connected|handshake|unreachable|No response/i
    .test(e?.message ?? "");
}
