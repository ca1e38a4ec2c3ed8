/**
 * Authentication plan for one hop (README "SSH sessions and exec"). Order: every agent key
 * (certificates in the agent included), explicit `key_path`, ssh_config `IdentityFile`s, the
 * default identities that exist (`~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`) — each preceded
 * by its OpenSSH certificate when one is beside it (`KEY-cert.pub`) or named by ssh_config
 * `CertificateFile` — then password, then keyboard-interactive answered with the password.
 * With ssh_config `IdentitiesOnly yes`, agent keys are used only when they are one of those
 * identities. Methods the server does not offer are skipped; a failure lists every method
 * tried.
 */
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { loadSsh2 } from "./ssh2.ts";
import type {
  AnyAuthMethod,
  AuthHandlerMiddleware,
  KeyboardInteractiveCallback,
  ParsedKey,
} from "ssh2";
import { parseCert, validityProblem } from "./cert/format.ts";
import { certificateKey, certOf } from "./cert/patch.ts";
import { homeDir } from "../paths.ts";
import { RsmError } from "../errors.ts";
import { forgetTypedSecret, type SecretNeed, SecretNeededError, typedSecret } from "../secrets.ts";
import { type AuthSpec, expandHome, type ResolvedSecrets } from "./spec.ts";
import type { HostConfig } from "./ssh_config.ts";

const DEFAULT_IDENTITIES = ["id_ed25519", "id_ecdsa", "id_rsa"];

interface Method {
  /** The server-side method name (`publickey`, `password`, `keyboard-interactive`). */
  server: string;
  label: string;
  auth: AnyAuthMethod;
}

/** Options for {@link prepareAuth}. */
export interface PrepareAuthOptions {
  user: string;
  auth: AuthSpec;
  secrets: ResolvedSecrets;
  config: HostConfig;
  /**
   * `user@host:port` of this hop: where secrets a person typed are looked up when no
   * reference provides them (see the README, "A person in control").
   */
  where?: string | undefined;
}

/** What {@link prepareAuth} returns: the ssh2 handler and what it did. */
export interface AuthPlan {
  handler: AuthHandlerMiddleware;
  /** The agent socket in use (for agent forwarding), if any. */
  agentSocket?: string | undefined;
  /** Labels of the methods actually tried, in order. */
  tried: string[];
  /** Methods not tried, with why. */
  skipped: string[];
  /** Methods the server said it accepts (after the first failure). */
  serverAllows?: string[] | undefined;
  /** A secret a person must type before this can succeed (set during authentication). */
  need?: SecretNeed | undefined;
  /** Ends the connection at once (set by the dialer; used when a secret is missing). */
  abort?: (() => void) | undefined;
  /** Builds the error to throw when authentication failed. */
  failure(target: string): RsmError;
}

/** Whether a keyboard-interactive question asks for the account password (not a code). */
function asksPassword(prompt: string): boolean {
  return /pass(word|phrase)?\b/i.test(prompt) &&
    !/one[- ]time|otp|oath|code|token|verification|pin\b/i.test(prompt);
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function isSocket(path: string): boolean {
  try {
    return Deno.statSync(path).isSocket === true;
  } catch {
    return false;
  }
}

type Ssh2 = Awaited<ReturnType<typeof loadSsh2>>;

/** The methods gathered so far for one hop, and why others were left out. */
class Gathered {
  readonly methods: Method[] = [];
  readonly skipped: string[] = [];
  /** Explicit keys that are encrypted and have no passphrase yet (a person may type one). */
  readonly lockedKeys: string[] = [];
  /** Private keys read from files. */
  readonly loaded: { path: string; key: ParsedKey }[] = [];
  /** Plain public blobs of every configured identity (for IdentitiesOnly). */
  readonly identities = new Set<string>();
  /** Key and certificate paths already considered. */
  readonly seen = new Set<string>();

  constructor(readonly user: string) {}

  /** Adds the certificate at `certPath` before its key's method; false (with why) if unusable. */
  async addCert(certPath: string, key: ParsedKey | undefined): Promise<boolean> {
    let cert;
    try {
      const text = (await Deno.readTextFile(certPath)).trim();
      cert = parseCert(Buffer.from(text.split(/\s+/)[1] ?? "", "base64"));
    } catch (err) {
      return this.#skip(`certificate ${certPath} (unreadable: ${errorText(err)})`);
    }
    if (!cert) return this.#skip(`certificate ${certPath} (not an OpenSSH certificate)`);
    this.identities.add(cert.keyBlob.toString("base64"));
    const owner = key ?? this.loaded.find((l) => l.key.getPublicSSH().equals(cert.keyBlob))?.key;
    if (!owner) {
      return this.#skip(
        `certificate ${certPath} (its private key is not among key_path and IdentityFile; ` +
          `an agent holding it must hold the certificate too)`,
      );
    }
    const problem = !owner.getPublicSSH().equals(cert.keyBlob)
      ? "it certifies a different key"
      : cert.kind !== "user"
      ? "a host certificate, not a user certificate"
      : validityProblem(cert)
      ? `${validityProblem(cert)}; get a new one from your CA`
      : cert.principals.length && !cert.principals.includes(this.user)
      ? `valid for ${cert.principals.join(", ")}, not ${this.user}`
      : undefined;
    if (problem) return this.#skip(`certificate ${certPath} (${problem})`);
    this.methods.push({
      server: "publickey",
      label: `certificate ${certPath}`,
      auth: { type: "publickey", username: this.user, key: certificateKey(owner, cert) },
    });
    return true;
  }

  /** Reads one key file and adds its method (after its `-cert.pub`, when there is one). */
  async addKeyFile(ssh2: Ssh2, path: string, explicit: boolean, secrets: ResolvedSecrets) {
    if (this.seen.has(path)) return;
    this.seen.add(path);
    if (!isFile(path)) {
      if (explicit) this.skipped.push(`publickey ${path} (no such file)`);
      return;
    }
    let data: Uint8Array;
    try {
      data = await Deno.readFile(path);
    } catch (err) {
      this.skipped.push(`publickey ${path} (unreadable: ${errorText(err)})`);
      return;
    }
    const buf = Buffer.from(data);
    const typedPass = secrets.passphrase === undefined
      ? typedSecret(`passphrase:${path}`)
      : undefined;
    let parsed = ssh2.utils.parseKey(buf, secrets.passphrase ?? typedPass);
    if (Array.isArray(parsed)) parsed = parsed[0];
    if (parsed instanceof Error && typedPass !== undefined) forgetTypedSecret(`passphrase:${path}`);
    if (parsed instanceof Error) {
      const encrypted = /encrypt|passphrase|bad decrypt/i.test(parsed.message) ||
        /ENCRYPTED|aes\d+-ctr|bcrypt/i.test(buf.toString("latin1", 0, 400)) ||
        buf.toString("latin1").includes("bcrypt");
      if (encrypted && explicit && secrets.passphrase === undefined) this.lockedKeys.push(path);
      const why = !encrypted
        ? `cannot parse: ${parsed.message}`
        : secrets.passphrase === undefined
        ? "encrypted; give key_passphrase or key_passphrase_env"
        : "encrypted; the passphrase given does not open it";
      this.skipped.push(`publickey ${path} (${why})`);
      return;
    }
    if (!parsed.isPrivateKey()) {
      this.skipped.push(`publickey ${path} (not a private key)`);
      return;
    }
    this.identities.add(parsed.getPublicSSH().toString("base64"));
    this.loaded.push({ path, key: parsed });
    if (isFile(`${path}-cert.pub`)) await this.addCert(`${path}-cert.pub`, parsed);
    this.methods.push({
      server: "publickey",
      label: `publickey ${path}`,
      auth: { type: "publickey", username: this.user, key: parsed },
    });
  }

  /** Adds ssh_config `CertificateFile`s; their keys go first, as OpenSSH tries them. */
  async addCertificateFiles(paths: string[]) {
    for (const certPath of paths) {
      if (this.seen.has(certPath)) continue;
      if (this.loaded.some((l) => `${l.path}-cert.pub` === certPath)) continue;
      this.seen.add(certPath);
      if (!isFile(certPath)) {
        this.skipped.push(`certificate ${certPath} (no such file)`);
        continue;
      }
      const before = this.methods.length;
      if (await this.addCert(certPath, undefined)) {
        this.methods.unshift(...this.methods.splice(before));
      }
    }
  }

  #skip(why: string): false {
    this.skipped.push(why);
    return false;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The agent socket to use and its method, or why it is skipped. */
function agentOf(
  auth: AuthSpec,
  config: HostConfig,
  user: string,
  skipped: string[],
): { socket?: string; method?: Method } {
  let socket: string | undefined;
  if (auth.agent_socket) socket = expandHome(auth.agent_socket);
  else if (auth.use_agent !== false) {
    socket = config.identityAgent ?? Deno.env.get("SSH_AUTH_SOCK") ?? undefined;
  }
  if (!socket) {
    if (auth.use_agent) {
      skipped.push("agent (no agent_socket given and SSH_AUTH_SOCK is not set for the daemon)");
    }
    return {};
  }
  if (!isSocket(socket)) {
    if (auth.use_agent || auth.agent_socket) skipped.push(`agent (${socket}: no such socket)`);
    return {};
  }
  return {
    socket,
    method: {
      server: "publickey",
      label: `agent (${socket})`,
      auth: { type: "agent", username: user, agent: socket },
    },
  };
}

/** With `IdentitiesOnly yes`: narrows the agent to the configured identities (and their .pub). */
async function narrowAgent(
  ssh2: Ssh2,
  agent: Method,
  socket: string,
  g: Gathered,
  keyPaths: string[],
) {
  for (const p of keyPaths) {
    try {
      const pub = ssh2.utils.parseKey(await Deno.readTextFile(`${expandHome(p)}.pub`));
      if (!(pub instanceof Error) && !Array.isArray(pub)) {
        g.identities.add(pub.getPublicSSH().toString("base64"));
      }
    } catch { /* no .pub beside it */ }
  }
  agent.label += " (IdentitiesOnly: configured identities only)";
  agent.auth = {
    type: "agent",
    username: g.user,
    agent: identitiesOnlyAgent(ssh2, socket, g.identities),
  };
}

/** Reads the key material of every configured method (async), then hands out a sync handler. */
export async function prepareAuth(options: PrepareAuthOptions): Promise<AuthPlan> {
  const { user, auth, secrets, config } = options;
  const where = options.where ?? user;
  const g = new Gathered(user);

  // 1. agent
  const agent = agentOf(auth, config, user, g.skipped);
  // 2-4. key files (each after its certificate, when it has one)
  const ssh2 = await loadSsh2();
  const keyFiles: { path: string; explicit: boolean }[] = [];
  if (auth.key_path) keyFiles.push({ path: expandHome(auth.key_path), explicit: true });
  for (const p of config.identityFiles) keyFiles.push({ path: expandHome(p), explicit: true });
  for (const name of DEFAULT_IDENTITIES) {
    keyFiles.push({ path: join(homeDir(), ".ssh", name), explicit: false });
  }
  for (const { path, explicit } of keyFiles) await g.addKeyFile(ssh2, path, explicit, secrets);
  await g.addCertificateFiles(config.certificateFiles);
  if (agent.method && agent.socket) {
    if (config.identitiesOnly) {
      const paths = [...config.identityFiles, ...(auth.key_path ? [auth.key_path] : [])];
      await narrowAgent(ssh2, agent.method, agent.socket, g, paths);
    }
    g.methods.unshift(agent.method);
  }

  // 5-6. password, keyboard-interactive. Without a password reference, one a person typed for
  // this user@host is used; keyboard-interactive questions that are not the password (a
  // one-time code) are answered with what a person typed for that question.
  const passwordKey = `password:${where}`;
  const typedPassword = secrets.password === undefined ? typedSecret(passwordKey) : undefined;
  const password = secrets.password ?? typedPassword;
  if (password !== undefined) {
    g.methods.push({
      server: "password",
      label: "password",
      auth: { type: "password", username: user, password },
    });
  }
  const plan: AuthPlan = {
    handler: () => false,
    agentSocket: agent.socket,
    tried: [],
    skipped: g.skipped,
    failure: (target) => {
      if (typedPassword !== undefined && plan.tried.includes("password") && !plan.need) {
        forgetTypedSecret(passwordKey); // refused: the next attempt asks the person again
      }
      return failureOf(plan, user, target);
    },
  };
  // with an encrypted key waiting for its passphrase, ask for that before anything else
  if (password !== undefined || g.lockedKeys.length === 0) {
    g.methods.push(keyboardInteractive(plan, user, where, password));
  }
  plan.handler = handlerOf(plan, g, { user, where, password });
  return plan;
}

/** Keyboard-interactive answered with the password, or with what a person typed for a question. */
function keyboardInteractive(
  plan: AuthPlan,
  user: string,
  where: string,
  password: string | undefined,
): Method {
  const prompt = (
    _name: string,
    _instructions: string,
    _lang: string,
    prompts: unknown[],
    finish: KeyboardInteractiveCallback,
  ) => {
    const answers: string[] = [];
    for (const p of prompts as { prompt: string }[]) {
      const q = String(p?.prompt ?? "");
      if (asksPassword(q) || q.trim() === "") {
        if (password !== undefined) {
          answers.push(password);
          continue;
        }
        plan.need = {
          key: `password:${where}`,
          kind: "password",
          label: `The password of ${where}`,
          prompt: q,
        };
      } else {
        const key = `answer:${where}:${q.trim()}`;
        const typed = typedSecret(key, true);
        if (typed !== undefined) {
          answers.push(typed);
          continue;
        }
        plan.need = { key, kind: "answer", label: `An answer for ${where}`, prompt: q };
      }
      // a question nobody can answer yet: end the connection instead of a wrong answer
      plan.abort?.();
      return;
    }
    finish(answers);
  };
  return {
    server: "keyboard-interactive",
    label: "keyboard-interactive",
    auth: { type: "keyboard-interactive", username: user, prompt },
  };
}

/** The error for a failed authentication: what was tried, skipped, and what the server allows. */
function failureOf(plan: AuthPlan, user: string, target: string): RsmError {
  const tried = plan.tried.length ? plan.tried.join(", ") : "nothing";
  const parts = [`Cannot authenticate as ${user} to ${target}: every method failed.`];
  parts.push(`Tried: ${tried}.`);
  if (plan.skipped.length) parts.push(`Skipped: ${plan.skipped.join("; ")}.`);
  if (plan.serverAllows) parts.push(`The server accepts: ${plan.serverAllows.join(", ")}.`);
  if (!plan.tried.length && !plan.skipped.length) {
    parts.push("Give auth.key_path, auth.password(_env/_file) or auth.use_agent.");
  } else parts.push("Check the user name and the credentials.");
  if (plan.need) return new SecretNeededError(plan.need, parts.join(" "));
  return new RsmError("AUTH_FAILED", parts.join(" "));
}

/** ssh2's auth handler: "none" first, then each gathered method the server accepts, in order. */
function handlerOf(
  plan: AuthPlan,
  g: Gathered,
  who: { user: string; where: string; password: string | undefined },
): AuthHandlerMiddleware {
  let next = 0;
  let askedNone = false;
  return (methodsLeft, _partial, callback) => {
    // like OpenSSH, start with "none": the server answers with the methods it accepts
    if (!methodsLeft && !askedNone) {
      askedNone = true;
      return callback({ type: "none", username: who.user });
    }
    if (methodsLeft) plan.serverAllows = [...methodsLeft];
    while (next < g.methods.length) {
      const m = g.methods[next++]!;
      if (methodsLeft && !(methodsLeft as string[]).includes(m.server)) {
        g.skipped.push(`${m.label} (server does not accept ${m.server})`);
        continue;
      }
      plan.tried.push(m.label);
      return callback(m.auth);
    }
    // out of methods: a secret only a person can give may still open the door
    const allows = (methodsLeft ?? []) as string[];
    const locked = g.lockedKeys[0];
    if (!plan.need && locked !== undefined) {
      plan.need = {
        key: `passphrase:${locked}`,
        kind: "passphrase",
        label: `The passphrase of the key ${locked}`,
      };
    } else if (!plan.need && who.password === undefined && allows.includes("password")) {
      plan.need = {
        key: `password:${who.where}`,
        kind: "password",
        label: `The password of ${who.where}`,
      };
    }
    return (callback as unknown as (auth: false) => void)(false);
  };
}

/**
 * An agent that lists only `allowed` keys (plain public blobs, base64; a certificate counts
 * as its key), for ssh_config `IdentitiesOnly`.
 */
type ssh2Agent = InstanceType<Awaited<ReturnType<typeof loadSsh2>>["OpenSSHAgent"]>;

function identitiesOnlyAgent(
  ssh2: Awaited<ReturnType<typeof loadSsh2>>,
  socket: string,
  allowed: Set<string>,
): InstanceType<typeof ssh2.OpenSSHAgent> {
  class Filtered extends ssh2.OpenSSHAgent {
    override getIdentities(cb: Parameters<ssh2Agent["getIdentities"]>[0]): void {
      super.getIdentities((err, keys) => {
        if (err || !keys) return cb(err, keys);
        cb(
          err,
          keys.filter((k) => {
            const blob = certOf(k)?.keyBlob ?? (k as ParsedKey).getPublicSSH();
            return allowed.has(Buffer.from(blob).toString("base64"));
          }),
        );
      });
    }
  }
  return new Filtered(socket);
}
