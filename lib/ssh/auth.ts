/**
 * Authentication plan for one hop (SPEC §4.1). Order: every agent key, explicit `key_path`,
 * ssh_config `IdentityFile`s, the default identities that exist (`~/.ssh/id_ed25519`,
 * `id_ecdsa`, `id_rsa`), password, then keyboard-interactive answered with the password.
 * Methods the server does not offer are skipped; a failure lists every method tried.
 */
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { loadSsh2 } from "./ssh2.ts";
import type { AnyAuthMethod, AuthHandlerMiddleware, KeyboardInteractiveCallback } from "ssh2";
import { homeDir } from "../paths.ts";
import { RsmError } from "../errors.ts";
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
  /** Builds the error to throw when authentication failed. */
  failure(target: string): RsmError;
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
  const methods: Method[] = [];
  const skipped: string[] = [];

  // 1. agent
  let agentSocket: string | undefined;
  if (auth.agent_socket) agentSocket = expandHome(auth.agent_socket);
  else if (auth.use_agent !== false) {
    agentSocket = config.identityAgent ?? Deno.env.get("SSH_AUTH_SOCK") ?? undefined;
  }
  if (agentSocket) {
    if (isSocket(agentSocket)) {
      methods.push({
        server: "publickey",
        label: `agent (${agentSocket})`,
        auth: { type: "agent", username: user, agent: agentSocket },
      });
    } else {
      if (auth.use_agent || auth.agent_socket) {
        skipped.push(`agent (${agentSocket}: no such socket)`);
      }
      agentSocket = undefined;
    }
  } else if (auth.use_agent) {
    skipped.push("agent (no agent_socket given and SSH_AUTH_SOCK is not set for the daemon)");
  }

  // 2-4. key files
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
    let parsed = (await loadSsh2()).utils.parseKey(buf, secrets.passphrase);
    if (Array.isArray(parsed)) parsed = parsed[0];
    if (parsed instanceof Error) {
      const encrypted = /encrypt|passphrase|bad decrypt/i.test(parsed.message) ||
        /ENCRYPTED|aes\d+-ctr|bcrypt/i.test(buf.toString("latin1", 0, 400)) ||
        buf.toString("latin1").includes("bcrypt");
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
    methods.push({
      server: "publickey",
      label: `publickey ${path}`,
      auth: { type: "publickey", username: user, key: parsed },
    });
  }

  // 5-6. password, keyboard-interactive
  const password = secrets.password;
  if (password !== undefined) {
    methods.push({
      server: "password",
      label: "password",
      auth: { type: "password", username: user, password },
    });
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
          finish(prompts.map(() => password));
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
      const tried = plan.tried.length ? plan.tried.join(", ") : "nothing";
      const parts = [`Cannot authenticate as ${user} to ${target}: every method failed.`];
      parts.push(`Tried: ${tried}.`);
      if (plan.skipped.length) parts.push(`Skipped: ${plan.skipped.join("; ")}.`);
      if (plan.serverAllows) parts.push(`The server accepts: ${plan.serverAllows.join(", ")}.`);
      if (!plan.tried.length && !plan.skipped.length) {
        parts.push("Give auth.key_path, auth.password(_env/_file) or auth.use_agent.");
      } else parts.push("Check the user name and the credentials.");
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
    return (callback as unknown as (auth: false) => void)(false);
  };
  return plan;
}
