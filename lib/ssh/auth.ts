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
  where?: string;
}

/** What {@link prepareAuth} returns: the ssh2 handler and what it did. */
export interface AuthPlan {
  handler: AuthHandlerMiddleware;
  /** The agent socket in use (for agent forwarding), if any. */
  agentSocket?: string;
  /** Labels of the methods actually tried, in order. */
  tried: string[];
  /** Methods not tried, with why. */
  skipped: string[];
  /** Methods the server said it accepts (after the first failure). */
  serverAllows?: string[];
  /** A secret a person must type before this can succeed (set during authentication). */
  need?: SecretNeed;
  /** Ends the connection at once (set by the dialer; used when a secret is missing). */
  abort?: () => void;
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

/** Reads the key material of every configured method (async), then hands out a sync handler. */
export async function prepareAuth(options: PrepareAuthOptions): Promise<AuthPlan> {
  const { user, auth, secrets, config } = options;
  const where = options.where ?? user;
  const lockedKeys: string[] = [];
  const methods: Method[] = [];
  const skipped: string[] = [];

  // 1. agent
  let agentSocket: string | undefined;
  if (auth.agent_socket) agentSocket = expandHome(auth.agent_socket);
  else if (auth.use_agent !== false) {
    agentSocket = config.identityAgent ?? Deno.env.get("SSH_AUTH_SOCK") ?? undefined;
  }
  let agentMethod: Method | undefined;
  if (agentSocket) {
    if (isSocket(agentSocket)) {
      agentMethod = {
        server: "publickey",
        label: `agent (${agentSocket})`,
        auth: { type: "agent", username: user, agent: agentSocket },
      };
    } else {
      if (auth.use_agent || auth.agent_socket) {
        skipped.push(`agent (${agentSocket}: no such socket)`);
      }
      agentSocket = undefined;
    }
  } else if (auth.use_agent) {
    skipped.push("agent (no agent_socket given and SSH_AUTH_SOCK is not set for the daemon)");
  }

  // 2-4. key files (each after its certificate, when it has one)
  const ssh2 = await loadSsh2();
  const loaded: { path: string; key: ParsedKey }[] = [];
  /** Plain public blobs of every configured identity (for IdentitiesOnly). */
  const identities = new Set<string>();
  const addCert = async (certPath: string, key: ParsedKey | undefined): Promise<boolean> => {
    let cert;
    try {
      const text = (await Deno.readTextFile(certPath)).trim();
      cert = parseCert(Buffer.from(text.split(/\s+/)[1] ?? "", "base64"));
    } catch (err) {
      skipped.push(
        `certificate ${certPath} (unreadable: ${err instanceof Error ? err.message : err})`,
      );
      return false;
    }
    if (!cert) {
      skipped.push(`certificate ${certPath} (not an OpenSSH certificate)`);
      return false;
    }
    identities.add(cert.keyBlob.toString("base64"));
    const owner = key ?? loaded.find((l) => l.key.getPublicSSH().equals(cert.keyBlob))?.key;
    if (!owner) {
      skipped.push(
        `certificate ${certPath} (its private key is not among key_path and IdentityFile; ` +
          `an agent holding it must hold the certificate too)`,
      );
      return false;
    }
    if (!owner.getPublicSSH().equals(cert.keyBlob)) {
      skipped.push(`certificate ${certPath} (it certifies a different key)`);
      return false;
    }
    if (cert.kind !== "user") {
      skipped.push(`certificate ${certPath} (a host certificate, not a user certificate)`);
      return false;
    }
    const invalid = validityProblem(cert);
    if (invalid) {
      skipped.push(`certificate ${certPath} (${invalid}; get a new one from your CA)`);
      return false;
    }
    if (cert.principals.length && !cert.principals.includes(user)) {
      skipped.push(
        `certificate ${certPath} (valid for ${cert.principals.join(", ")}, not ${user})`,
      );
      return false;
    }
    methods.push({
      server: "publickey",
      label: `certificate ${certPath}`,
      auth: { type: "publickey", username: user, key: certificateKey(owner, cert) },
    });
    return true;
  };
  const seen = new Set<string>();
  const keyFiles: { path: string; explicit: boolean }[] = [];
  if (auth.key_path) keyFiles.push({ path: expandHome(auth.key_path), explicit: true });
  for (const p of config.identityFiles) keyFiles.push({ path: expandHome(p), explicit: true });
  for (const name of DEFAULT_IDENTITIES) {
    keyFiles.push({ path: join(homeDir(), ".ssh", name), explicit: false });
  }
  for (const { path, explicit } of keyFiles) {
    if (seen.has(path)) continue;
    seen.add(path);
    if (!isFile(path)) {
      if (explicit) skipped.push(`publickey ${path} (no such file)`);
      continue;
    }
    let data: Uint8Array;
    try {
      data = await Deno.readFile(path);
    } catch (err) {
      skipped.push(`publickey ${path} (unreadable: ${err instanceof Error ? err.message : err})`);
      continue;
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
      if (encrypted && explicit && secrets.passphrase === undefined) lockedKeys.push(path);
      skipped.push(
        `publickey ${path} (` +
          (encrypted
            ? secrets.passphrase === undefined
              ? "encrypted; give key_passphrase or key_passphrase_env"
              : "encrypted; the passphrase given does not open it"
            : `cannot parse: ${parsed.message}`) +
          ")",
      );
      continue;
    }
    if (!parsed.isPrivateKey()) {
      skipped.push(`publickey ${path} (not a private key)`);
      continue;
    }
    identities.add(parsed.getPublicSSH().toString("base64"));
    loaded.push({ path, key: parsed });
    if (isFile(`${path}-cert.pub`)) await addCert(`${path}-cert.pub`, parsed);
    methods.push({
      server: "publickey",
      label: `publickey ${path}`,
      auth: { type: "publickey", username: user, key: parsed },
    });
  }

  for (const certPath of config.certificateFiles) {
    if (seen.has(certPath) || loaded.some((l) => `${l.path}-cert.pub` === certPath)) continue;
    seen.add(certPath);
    if (!isFile(certPath)) {
      skipped.push(`certificate ${certPath} (no such file)`);
      continue;
    }
    // a CertificateFile's key goes before the plain keys, as OpenSSH tries it
    const before = methods.length;
    if (await addCert(certPath, undefined)) methods.unshift(...methods.splice(before));
  }
  if (agentMethod) {
    if (config.identitiesOnly) {
      for (const p of [...config.identityFiles, ...(auth.key_path ? [auth.key_path] : [])]) {
        try {
          const pub = ssh2.utils.parseKey(await Deno.readTextFile(`${expandHome(p)}.pub`));
          if (!(pub instanceof Error) && !Array.isArray(pub)) {
            identities.add(pub.getPublicSSH().toString("base64"));
          }
        } catch { /* no .pub beside it */ }
      }
      agentMethod.label += " (IdentitiesOnly: configured identities only)";
      agentMethod.auth = {
        type: "agent",
        username: user,
        agent: identitiesOnlyAgent(ssh2, agentSocket!, identities),
      };
    }
    methods.unshift(agentMethod);
  }

  // 5-6. password, keyboard-interactive. Without a password reference, one a person typed for
  // this user@host is used; keyboard-interactive questions that are not the password (a
  // one-time code) are answered with what a person typed for that question.
  const passwordKey = `password:${where}`;
  const typedPassword = secrets.password === undefined ? typedSecret(passwordKey) : undefined;
  const password = secrets.password ?? typedPassword;
  if (password !== undefined) {
    methods.push({
      server: "password",
      label: "password",
      auth: { type: "password", username: user, password },
    });
  }
  // with an encrypted key waiting for its passphrase, ask for that before anything else
  if (password !== undefined || lockedKeys.length === 0) {
    methods.push({
      server: "keyboard-interactive",
      label: "keyboard-interactive",
      auth: {
        type: "keyboard-interactive",
        username: user,
        prompt: (
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
                key: passwordKey,
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
        },
      },
    });
  }

  const plan: AuthPlan = {
    handler: () => false,
    agentSocket,
    tried: [],
    skipped,
    failure(target) {
      if (typedPassword !== undefined && plan.tried.includes("password") && !plan.need) {
        forgetTypedSecret(passwordKey); // refused: the next attempt asks the person again
      }
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
    },
  };
  let next = 0;
  let askedNone = false;
  plan.handler = (methodsLeft, _partial, callback) => {
    // like OpenSSH, start with "none": the server answers with the methods it accepts
    if (!methodsLeft && !askedNone) {
      askedNone = true;
      return callback({ type: "none", username: user });
    }
    if (methodsLeft) plan.serverAllows = [...methodsLeft];
    while (next < methods.length) {
      const m = methods[next++];
      if (methodsLeft && !(methodsLeft as string[]).includes(m.server)) {
        skipped.push(`${m.label} (server does not accept ${m.server})`);
        continue;
      }
      plan.tried.push(m.label);
      return callback(m.auth);
    }
    // out of methods: a secret only a person can give may still open the door
    const allows = (methodsLeft ?? []) as string[];
    if (!plan.need && lockedKeys.length) {
      plan.need = {
        key: `passphrase:${lockedKeys[0]}`,
        kind: "passphrase",
        label: `The passphrase of the key ${lockedKeys[0]}`,
      };
    } else if (!plan.need && password === undefined && allows.includes("password")) {
      plan.need = { key: passwordKey, kind: "password", label: `The password of ${where}` };
    }
    return (callback as unknown as (auth: false) => void)(false);
  };
  return plan;
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
