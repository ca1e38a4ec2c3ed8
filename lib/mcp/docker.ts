/** Docker tools (README "Docker"): hosts here; containers, images and copy in docker_*.ts. */
import { z } from "zod";
import { defineTool, fields, Text, type ToolDef } from "./tool.ts";
import { containerTools } from "./docker_containers.ts";
import { imageTools } from "./docker_images.ts";

const auth = z.strictObject({
  key_path: z.string().max(4096).optional(),
  key_passphrase: z.string().max(4096).optional(),
  key_passphrase_env: z.string().max(200).optional(),
  use_agent: z.boolean().optional(),
  agent_socket: z.string().max(4096).optional(),
  password: z.string().max(4096).optional(),
  password_env: z.string().max(200).optional(),
  password_file: z.string().max(4096).optional(),
}).describe("SSH auth for ssh:// hosts, as in ssh_connect");

const spec = z.strictObject({
  host: z.string().max(4096).optional().describe(
    "unix:///path/docker.sock, tcp://host:port (TLS when a cert or CA is given), " +
      "ssh://user@host[:port][/socket]; with ssh_session: the remote socket as unix:///path. " +
      "Default: DOCKER_HOST, the docker context, /var/run/docker.sock",
  ),
  tls_ca_path: z.string().max(4096).optional().describe("CA that signed the engine's certificate"),
  tls_cert_path: z.string().max(4096).optional().describe("client certificate (mutual TLS)"),
  tls_key_path: z.string().max(4096).optional().describe("client key (mutual TLS)"),
  api_version: z.string().regex(/^v?\d+\.\d+$/).optional().describe(
    "pin the Engine API version, e.g. 1.41",
  ),
  user: z.string().max(200).optional().describe("SSH user for ssh:// without user@"),
  auth: auth.optional(),
  known_hosts_path: z.string().max(4096).optional(),
  host_key_policy: z.enum(["strict", "accept-new", "insecure"]).optional(),
  timeout: fields.duration("connect and health-check timeout, default 15s").optional(),
  persistent: z.boolean().optional().describe(
    "saved (without secrets) and reconnected when the daemon restarts",
  ),
  ssh_session: z.string().min(1).max(200).optional().describe(
    "reach the engine socket through this existing SSH session (ssh_connect id)",
  ),
});

const hostTools: ToolDef[] = [
  defineTool({
    name: "docker_connect",
    group: "docker",
    description:
      "Connects to a Docker (or Podman) engine and names it for the other docker_* tools. " +
      "Local socket, tcp with mutual TLS, ssh://, or through an existing SSH session. " +
      "The host is health-checked: its state in docker_list_hosts is true.",
    input: { id: fields.id("a name for this host, used as host_id later"), spec },
    run: (args, ctx) => ctx.app.docker.connect(args.id, args.spec, { signal: ctx.signal }),
  }),
  defineTool({
    name: "docker_disconnect",
    group: "docker",
    description: "Forgets a Docker host (its SSH connection, if it has its own, is closed).",
    input: { id: fields.id("host id") },
    annotations: { destructiveHint: true },
    run: (args, ctx) => {
      ctx.app.docker.disconnect(args.id);
      return Promise.resolve(new Text(`disconnected ${args.id}`));
    },
  }),
  defineTool({
    name: "docker_list_hosts",
    group: "docker",
    description: "Lists Docker hosts with their live state (each is pinged now): connected or " +
      "disconnected with last_error.",
    input: {},
    annotations: { readOnlyHint: true },
    run: (_args, ctx) => ctx.app.docker.listHosts({ signal: ctx.signal }),
  }),
];

/** Every docker tool except the shells (lib/mcp/shell.ts). */
export const dockerTools: ToolDef[] = [...hostTools, ...containerTools, ...imageTools];
