/**
 * The launcher across a daemon crash with a call in flight (issue 2, acceptance 3): the call
 * in flight gets a JSON-RPC error (-32001), never a hang, and the next call works through a
 * new daemon without restarting the client. Also: wrong argument types are tool errors.
 */
import assert from "node:assert/strict";
import { need, testIf, waitFor } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { alive, rsmSession } from "./support/mcp.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd"], true);

// both links of the launcher: the stream link (the default here) and /mcp over HTTP
for (const link of ["stream", "http"] as const) {
  testIf(
    missing,
    `kill -9 during a call (${link} link): that call gets -32001, the next one works`,
    () => killDuringCall(link),
  );
}

async function killDuringCall(link: "stream" | "http"): Promise<void> {
  await using user = await createUser();
  await using sshd = await startSshd();
  await using rsm = await rsmSession({
    json: true,
    extraEnv: link === "http" ? { REMOTE_SHELL_MCP_LINK: "http" } : {},
  });
  await rsm.callJson("ssh_connect", {
    id: "box",
    spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
  });
  const before = await rsm.callJson("status");
  const started = Date.now();
  const inFlight = rsm.callRaw("ssh_exec", { session_id: "box", command: "sleep 60" })
    .then(() => null, (err: Error) => err);
  await new Promise((r) => setTimeout(r, 1500));
  Deno.kill(before.pid, "SIGKILL");
  const err = await inFlight;
  assert.ok(err instanceof Error, "the in-flight call is answered with an error");
  assert.match(err.message, /daemon restarted during the call/);
  assert.equal((err as Error & { code?: number }).code, -32001);
  assert.ok(Date.now() - started < 30_000, "answered well before the command would end");
  await waitFor("old daemon gone", () => !alive(before.pid));
  const after = await rsm.callJson("status");
  assert.notEqual(after.pid, before.pid);
}

testIf(missing, "a wrong argument type is a tool error naming the field", async () => {
  await using rsm = await rsmSession({ json: true });
  const err = await rsm.callError("ssh_exec", { session_id: "box", command: 5 });
  assert.match(err, /field "command": expected string, received number/);
  const err2 = await rsm.callError("ssh_exec", { session_id: "box" });
  assert.match(err2, /field "command"/);
  const err3 = await rsm.callError("ssh_connect", {
    id: "x",
    spec: { addresses: ["h"], bogus: 1 },
  });
  assert.match(err3, /unknown field "bogus" in "spec"/);
});
