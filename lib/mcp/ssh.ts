/**
 * SSH session tools (README "SSH sessions and exec"): ssh_connect, ssh_disconnect, ssh_list, ssh_info,
 * ssh_reconnect, ssh_clone. Validation and formatting only; the work is in lib/ssh.
 */
import { z } from "zod";
import { defineTool, fields, Text, type ToolDef } from "./tool.ts";
import type { SessionSpec } from "../ssh/mod.ts";
import { sessionInfo, sessionRows } from "./views.ts";

const secret = (what: string) => z.string().max(4096).describe(what);

const auth = z.strictObject({
  key_path: z.string().max(4096).optional().describe("private key file (~ expands)"),
  key_passphrase: secret("passphrase of the key (prefer key_passphrase_env)").optional(),
  key_passphrase_env: z.string().max(200).optional().describe(
    "name of an environment variable of the daemon holding the key passphrase",
  ),
  use_agent: z.boolean().optional().describe(
    "use the ssh-agent at SSH_AUTH_SOCK (default: used when available)",
  ),
  agent_socket: z.string().max(4096).optional().describe("path of an ssh-agent socket"),
  password: secret("password (prefer password_env or password_file)").optional(),
  password_env: z.string().max(200).optional().describe(
    "name of an environment variable of the daemon holding the password",
  ),
  password_file: z.string().max(4096).optional().describe("file holding the password"),
}).describe(
  "authentication; tried in order: agent keys, key_path, ssh_config IdentityFile, " +
    "~/.ssh/id_ed25519|id_ecdsa|id_rsa, password, keyboard-interactive",
);

const addresses = z.union([
  z.string().min(1).max(300),
  z.array(z.string().min(1).max(300)).min(1).max(32),
]).describe(
  'host, host:port, [v6]:port or a ~/.ssh/config alias; a list is tried in order (e.g. ["10.0.0.5", "box.example.com:2222"])',
);

const policy = z.enum(["strict", "accept-new", "insecure"]).describe(
  "host key policy: accept-new (default) records unknown keys; strict refuses them; " +
    "insecure skips checking. A changed key is refused unless insecure",
);

const hop = z.strictObject({
  user: z.string().min(1).max(200).optional(),
  addresses,
  auth: auth.optional(),
  known_hosts_path: z.string().max(4096).optional(),
  host_key_policy: policy.optional(),
  insecure: z.boolean().optional().describe('alias for host_key_policy "insecure"'),
});

export const sessionSpec = z.strictObject({
  user: z.string().min(1).max(200).optional().describe(
    "remote user (default: ssh_config User, then the local user)",
  ),
  addresses,
  auth: auth.optional(),
  jump_hosts: z.array(hop).max(8).optional().describe(
    "bastions to go through, first to last (each checked like the target); " +
      "replaces ssh_config ProxyJump",
  ),
  known_hosts_path: z.string().max(4096).optional().describe(
    "known_hosts file to read instead of ~/.ssh/known_hosts",
  ),
  host_key_policy: policy.optional(),
  insecure: z.boolean().optional().describe('alias for host_key_policy "insecure"'),
  timeout: fields.duration("whole connect per address: TCP, handshake, auth; default 15s")
    .optional(),
  keepalive: fields.duration("keepalive interval; default 15s").optional(),
  auto_reconnect: z.boolean().optional().describe(
    "reconnect after a drop with backoff 1,2,5,10,30 s, forever",
  ),
  persistent: z.boolean().optional().describe(
    "save the session (without inline secrets) so it comes back after a daemon restart",
  ),
  forward_agent: z.boolean().optional(),
  disable_ssh_config: z.boolean().optional().describe("ignore ~/.ssh/config"),
}).describe("how to connect");

/** The ssh tools. */
export const sshTools: ToolDef[] = [
  defineTool({
    name: "ssh_connect",
    group: "ssh",
    description:
      "Opens a named, persistent SSH session to use with ssh_exec, shells, forwards and files.\n" +
      'Example spec: {"addresses": ["10.0.0.5:22"], "user": "deploy", "auth": ' +
      '{"key_path": "~/.ssh/id_ed25519"}}; an ~/.ssh/config alias alone also works: ' +
      '{"addresses": "prod-db"}. Returns SessionInfo.',
    input: {
      id: fields.id('a name for the session, e.g. "web1"'),
      spec: sessionSpec,
    },
    annotations: { openWorldHint: true },
    run: async ({ id, spec }, { app, signal }) => {
      await app.ssh.connect(id, spec as SessionSpec, { signal });
      return sessionInfo(app, id);
    },
  }),
  defineTool({
    name: "ssh_disconnect",
    group: "ssh",
    description:
      "Closes an SSH session and everything on it (forwards, shells, SFTP); a persistent " +
      "session is forgotten too.",
    input: { id: fields.id("session id (see ssh_list)") },
    annotations: { destructiveHint: true, idempotentHint: false },
    run: async ({ id }, { app }) => {
      await app.ssh.disconnect(id);
      return new Text(`disconnected ${id}`);
    },
  }),
  defineTool({
    name: "ssh_list",
    group: "ssh",
    description: "Lists SSH sessions: id, user, address, state, last error, forwards, shells.",
    input: {},
    annotations: { readOnlyHint: true },
    run: (_args, { app }) => Promise.resolve(sessionRows(app)),
  }),
  defineTool({
    name: "ssh_info",
    group: "ssh",
    description: "Shows one SSH session in detail: addresses, active address, state, last error, " +
      "connected since, forwards, shells, host key fingerprint.",
    input: { id: fields.id("session id (see ssh_list)") },
    annotations: { readOnlyHint: true },
    run: ({ id }, { app }) => Promise.resolve(sessionInfo(app, id)),
  }),
  defineTool({
    name: "ssh_reconnect",
    group: "ssh",
    description:
      "Drops and re-dials an SSH session now (e.g. after a network change); concurrent calls " +
      "share one reconnect. Forwards and durable shells come back; plain shells are lost.",
    input: { id: fields.id("session id (see ssh_list)") },
    annotations: { idempotentHint: false },
    run: async ({ id }, { app, signal }) => {
      await app.ssh.reconnect(id, { signal });
      return sessionInfo(app, id);
    },
  }),
  defineTool({
    name: "ssh_clone",
    group: "ssh",
    description:
      "Opens a second, independent SSH connection with the same spec as an existing session " +
      "(e.g. to run something in parallel).",
    input: {
      source_id: fields.id("existing session id"),
      new_id: fields.id("name for the new session"),
    },
    annotations: { openWorldHint: true },
    run: async ({ source_id, new_id }, { app, signal }) => {
      await app.ssh.clone(source_id, new_id, { signal });
      return sessionInfo(app, new_id);
    },
  }),
];
