/**
 * Port forward tools (README "Port forwards"): ssh_forward_local (-L), ssh_forward_remote (-R),
 * ssh_forward_dynamic (-D, SOCKS5), ssh_forwards_list, ssh_forward_cancel.
 * Validation and formatting only; the work is in lib/ssh/forwards.ts.
 */
import { z } from "zod";
import { defineTool, fields, Text, type ToolDef } from "./tool.ts";

const port = (what: string) => z.number().int().min(0).max(65535).describe(what);
const host = (what: string) => z.string().min(1).max(255).describe(what);
const sessionId = fields.id("session id (see ssh_list)");
const forwardId = fields.id('a name for the forward, unique in the session, e.g. "db"');
const allowRemote = z.boolean().optional().describe(
  "allow a non-loopback bind_addr (e.g. 0.0.0.0): other machines can then use the tunnel",
);

/** The forward tools. */
export const forwardTools: ToolDef[] = [
  defineTool({
    name: "ssh_forward_local",
    group: "forward",
    description:
      "Opens a local port forward (ssh -L): connections to bind_addr:bind_port on this machine " +
      "reach remote_host:remote_port as seen from the SSH server (e.g. a database only the " +
      "server can reach). bind_port 0 picks a free port; the result's bind_port is the real " +
      "one. Survives reconnects. Returns ForwardInfo.",
    input: {
      session_id: sessionId,
      forward_id: forwardId,
      bind_port: port("local port to listen on; 0 = pick a free one"),
      remote_host: host('target host as the server sees it, e.g. "127.0.0.1" or "db.internal"'),
      remote_port: port("target port").min(1),
      bind_addr: host("local address to listen on (default 127.0.0.1)").optional(),
      allow_remote_clients: allowRemote,
    },
    annotations: { openWorldHint: true },
    policy: (a) => ({
      kind: "ssh",
      target: a.session_id,
      bindAddr: a.bind_addr ?? "127.0.0.1",
    }),
    run: ({ session_id, forward_id, bind_addr, bind_port, remote_host, remote_port, ...o }, {
      app,
      signal,
    }) =>
      app.forwards.open(session_id, forward_id, {
        kind: "local",
        bind_addr: bind_addr ?? "127.0.0.1",
        bind_port,
        remote_host,
        remote_port,
        ...(o.allow_remote_clients ? { allow_remote_clients: true } : {}),
      }, { signal }),
  }),
  defineTool({
    name: "ssh_forward_remote",
    group: "forward",
    description:
      "Opens a remote port forward (ssh -R): connections to bind_addr:bind_port on the SSH " +
      "server reach local_host:local_port on this machine (e.g. expose a local dev server to " +
      "the server). bind_port 0 lets the server pick; the result's bind_port is the real one. " +
      "Re-established on the same port after a reconnect. Returns ForwardInfo.",
    input: {
      session_id: sessionId,
      forward_id: forwardId,
      bind_port: port("port to listen on, on the server; 0 = the server picks"),
      local_port: port("port on this machine to connect to").min(1),
      bind_addr: host("address to listen on, on the server (default 127.0.0.1)").optional(),
      local_host: host("host to connect to from this machine (default 127.0.0.1)").optional(),
    },
    annotations: { openWorldHint: true },
    policy: (a) => ({
      kind: "ssh",
      target: a.session_id,
      bindAddr: a.bind_addr ?? "127.0.0.1",
    }),
    run: ({ session_id, forward_id, bind_addr, bind_port, local_host, local_port }, {
      app,
      signal,
    }) =>
      app.forwards.open(session_id, forward_id, {
        kind: "remote",
        bind_addr: bind_addr ?? "127.0.0.1",
        bind_port,
        local_host: local_host ?? "127.0.0.1",
        local_port,
      }, { signal }),
  }),
  defineTool({
    name: "ssh_forward_dynamic",
    group: "forward",
    description:
      "Opens a SOCKS5 proxy (ssh -D) on this machine whose connections leave from the SSH " +
      "server; host names are resolved on the server (use socks5h:// or " +
      "curl --socks5-hostname). bind_port 0 picks a free port; the result's bind_port is the " +
      "real one. Survives reconnects. Returns ForwardInfo.",
    input: {
      session_id: sessionId,
      forward_id: forwardId,
      bind_port: port("local port for the SOCKS5 proxy; 0 = pick a free one"),
      bind_addr: host("local address to listen on (default 127.0.0.1)").optional(),
      allow_remote_clients: allowRemote,
    },
    annotations: { openWorldHint: true },
    policy: (a) => ({
      kind: "ssh",
      target: a.session_id,
      bindAddr: a.bind_addr ?? "127.0.0.1",
    }),
    run: ({ session_id, forward_id, bind_addr, bind_port, ...o }, { app, signal }) =>
      app.forwards.open(session_id, forward_id, {
        kind: "dynamic",
        bind_addr: bind_addr ?? "127.0.0.1",
        bind_port,
        ...(o.allow_remote_clients ? { allow_remote_clients: true } : {}),
      }, { signal }),
  }),
  defineTool({
    name: "ssh_forwards_list",
    group: "forward",
    description:
      "Lists port forwards (of one session, or all): kind, effective bind port, target, " +
      "active and total connections, bytes_in (from the connecting side) and bytes_out.",
    input: { session_id: fields.id("only this session's forwards").optional() },
    annotations: { readOnlyHint: true },
    run: ({ session_id }, { app }) => {
      if (session_id !== undefined) app.ssh.get(session_id); // a clear error for a bad id
      return Promise.resolve(app.forwards.list(session_id));
    },
  }),
  defineTool({
    name: "ssh_forward_cancel",
    group: "forward",
    description: "Closes a port forward: its listener and every connection through it.",
    input: { session_id: sessionId, forward_id: fields.id("forward id (see ssh_forwards_list)") },
    annotations: { destructiveHint: true },
    run: ({ session_id, forward_id }, { app }) => {
      app.forwards.cancel(session_id, forward_id);
      return Promise.resolve(new Text(`cancelled ${forward_id}`));
    },
  }),
];
