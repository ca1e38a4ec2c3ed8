/**
 * The tool surface as a model sees it: every tool of README "Tools" is served, each has a description
 * and the right annotations, schemas are strict, and the whole list stays small enough to sit
 * in a model's context.
 */
import assert from "node:assert/strict";
import { e2eTest } from "./support/env.ts";
import { rsmSession } from "./support/mcp.ts";

const LISTED_TOOLS = [
  "ssh_connect",
  "ssh_disconnect",
  "ssh_list",
  "ssh_info",
  "ssh_reconnect",
  "ssh_clone",
  "ssh_exec",
  "ssh_connect_many",
  "ssh_exec_many",
  "ssh_shell_open",
  "ssh_shell_write",
  "ssh_shell_read",
  "ssh_shell_resize",
  "ssh_shell_close",
  "ssh_shell_list",
  "ssh_shell_run",
  "ssh_shell_screen",
  "docker_shell_open",
  "docker_shell_write",
  "docker_shell_read",
  "docker_shell_resize",
  "docker_shell_close",
  "docker_shell_list",
  "docker_shell_run",
  "docker_shell_screen",
  "ssh_forward_local",
  "ssh_forward_remote",
  "ssh_forward_dynamic",
  "ssh_forwards_list",
  "ssh_forward_cancel",
  "ssh_file_list",
  "ssh_file_stat",
  "ssh_file_read",
  "ssh_file_write",
  "ssh_file_delete",
  "ssh_file_mkdir",
  "ssh_file_chmod",
  "ssh_file_rename",
  "ssh_file_hash",
  "ssh_upload",
  "ssh_download",
  "docker_connect",
  "docker_disconnect",
  "docker_list_hosts",
  "docker_containers",
  "docker_container_inspect",
  "docker_container_start",
  "docker_container_restart",
  "docker_container_stop",
  "docker_container_kill",
  "docker_container_remove",
  "docker_container_logs",
  "docker_exec",
  "docker_run",
  "docker_image_list",
  "docker_image_pull",
  "docker_image_remove",
  "docker_upload",
  "docker_download",
  "job_list",
  "job_wait",
  "job_output",
  "job_signal",
  "job_forget",
  "status",
  "snapshot",
  "output_read",
];

interface Listed {
  name: string;
  title?: string;
  description?: string;
  inputSchema: { additionalProperties?: boolean };
  annotations?: { readOnlyHint?: boolean; destructiveHint?: boolean };
}

e2eTest("every tool is served with a description, strict schema and annotations", async () => {
  await using rsm = await rsmSession();
  const { tools } = await rsm.client.listTools() as { tools: Listed[] };
  assert.deepEqual(tools.map((t) => t.name).sort(), [...LISTED_TOOLS].sort());
  for (const t of tools) {
    assert.ok((t.description ?? "").split("\n")[0]!.length > 20, `${t.name} has a description`); // split returns at least one part
    assert.match(t.title ?? "", /^[A-Z][\w ]{3,39}$/, `${t.name} has a short title`);
    assert.equal(t.inputSchema.additionalProperties, false, `${t.name} rejects unknown fields`);
    const readOnly =
      /(_list|_info|_read|_stat|_inspect|_logs|^status|_screen|^docker_containers|_list_hosts)$/
        .test(t.name) || t.name === "ssh_forwards_list";
    if (readOnly) assert.equal(t.annotations?.readOnlyHint, true, `${t.name} is read-only`);
    if (/(_delete|_remove|_kill|_disconnect)$/.test(t.name)) {
      assert.equal(t.annotations?.destructiveHint, true, `${t.name} is destructive`);
    }
  }
});

e2eTest(
  "every tool has a distinct title and initialize carries instructions of at most 2 KB",
  async () => {
    await using rsm = await rsmSession();
    const { tools } = await rsm.client.listTools() as { tools: Listed[] };
    const titles = tools.map((t) => t.title);
    assert.equal(new Set(titles).size, titles.length, "titles are distinct");
    const instructions = rsm.client.getInstructions() ?? "";
    assert.ok(new TextEncoder().encode(instructions).length <= 2000, "instructions ≤ 2,000 bytes");
    for (const word of ["ssh_exec", "shell", "job_id", "output_id", "output_read", "session_id"]) {
      assert.ok(instructions.includes(word), `instructions mention ${word}`);
    }
    // a profile without "meta" still serves output_read: any tool may return an output_id
    await using ssh = await rsmSession({ extraEnv: { REMOTE_SHELL_MCP_TOOLS: "ssh" } });
    const listed = await ssh.client.listTools() as { tools: Listed[] };
    const names = listed.tools.map((t) => t.name);
    assert.ok(names.includes("output_read") && !names.includes("status"));
  },
);

/**
 * Bytes of the `tools/list` response message as it goes over stdio (the JSON-RPC envelope
 * included, UTF-8), as the benchmark counts them: 48 KB is 48,000 bytes.
 */
const messageBytes = (tools: unknown) =>
  new TextEncoder().encode(JSON.stringify({ result: { tools }, jsonrpc: "2.0", id: 1 })).length;

e2eTest("tools/list stays small: full ≤ 48,000 bytes, the ssh profile ≤ 12,000", async () => {
  {
    await using rsm = await rsmSession();
    const { tools } = await rsm.client.listTools();
    const bytes = messageBytes(tools);
    assert.ok(bytes <= 48_000, `full tools/list is ${bytes} bytes`);
  }
  {
    await using rsm = await rsmSession({ extraEnv: { REMOTE_SHELL_MCP_TOOLS: "ssh" } });
    const { tools } = await rsm.client.listTools();
    const bytes = messageBytes(tools);
    assert.ok(bytes <= 12_000, `ssh profile tools/list is ${bytes} bytes`);
  }
});

e2eTest("limits left out of the listed schema are still enforced, naming the field", async () => {
  await using rsm = await rsmSession();
  const err = await rsm.callError("ssh_info", { id: "x".repeat(5000) });
  assert.match(err, /field "id"/);
});
