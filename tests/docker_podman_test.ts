/** SPEC §4.6 "Podman's Docker-compatible API works too": the container suite against `podman system service`. */
import assert from "node:assert/strict";
import { testIf } from "./support/env.ts";
import { rsmSession } from "./support/mcp.ts";
import { podmanMissing, startPodman } from "./support/podman.ts";
import { containerSuite } from "./support/container_suite.ts";

testIf(
  podmanMissing,
  "docker containers, logs, exec and run work against Podman's Docker API",
  async (t) => {
    await using p = await startPodman();
    await using rsm = await rsmSession({ json: true });
    const info = await rsm.callJson("docker_connect", { id: "local", spec: { host: p.host } });
    assert.equal(info.state, "connected");
    await containerSuite(t, p, rsm, { podman: true });
  },
);
