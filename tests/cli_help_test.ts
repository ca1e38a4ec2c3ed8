import assert from "node:assert/strict";
import { e2eTest, tempEnv } from "./support/env.ts";
import { rsmCli, rsmSession } from "./support/mcp.ts";
import { readHandle } from "./support/mcp.ts";
import { VERSION } from "../lib/version.ts";

e2eTest("rsm --help and every command's --help describe their usage", async () => {
  await using tmp = await tempEnv();
  const main = await rsmCli(tmp.env, ["--help"]);
  assert.equal(main.code, 0);
  const cmds = [
    "stdio",
    "daemon",
    "status",
    "stop",
    "tools",
    "call",
    "setup",
    "console",
    "version",
  ];
  for (const cmd of cmds) {
    assert.match(main.stdout, new RegExp(`^  ${cmd}\\s`, "m"), `main help lists ${cmd}`);
    const help = await rsmCli(tmp.env, [cmd, "--help"]);
    assert.equal(help.code, 0, `${cmd} --help exits 0`);
    assert.match(help.stdout, new RegExp(`rsm ${cmd}`), `${cmd} --help shows its usage`);
    const viaHelp = await rsmCli(tmp.env, ["help", cmd]);
    assert.equal(viaHelp.stdout, help.stdout, `rsm help ${cmd} equals ${cmd} --help`);
  }
  const bad = await rsmCli(tmp.env, ["daemon", "--no-such-flag"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /see rsm daemon --help/);
});

e2eTest("one version is reported by rsm version, /health and the MCP server info", async () => {
  const deno = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  assert.equal(VERSION, deno.version);
  await using rsm = await rsmSession({ json: true });
  assert.equal(rsm.client.getServerVersion()?.version, deno.version);
  assert.equal((await rsm.callJson("status")).version, deno.version);
  const handle = (await readHandle(rsm.env))!;
  const health = await fetch(`${handle.url}/health`, {
    headers: { authorization: `Bearer ${handle.token}` },
  }).then((r) => r.json());
  assert.equal(health.version, deno.version);
  assert.equal(handle.version, deno.version);
  const v = await rsmCli(rsm.env, ["version"]);
  assert.equal(v.stdout.trim(), `rsm ${deno.version}`);
});
