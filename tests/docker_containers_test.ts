/**
 * Containers, logs, exec and run against a real dockerd (one engine and one rsm daemon for the
 * whole file; each step is one behaviour).
 */
import assert from "node:assert/strict";
import { testIf } from "./support/env.ts";
import { rsmSession } from "./support/mcp.ts";
import { dockerdMissing, startDockerd } from "./support/dockerd.ts";
import { containerSuite } from "./support/container_suite.ts";

testIf(
  dockerdMissing,
  "docker containers, logs, exec and run work against a real engine",
  async (t) => {
    await using d = await startDockerd();
    await using rsm = await rsmSession({ json: true });
    const info = await rsm.callJson("docker_connect", { id: "local", spec: { host: d.host } });
    assert.equal(info.state, "connected");
    await containerSuite(t, d, rsm);
  },
);
