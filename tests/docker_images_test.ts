/** Images against a real dockerd and real registries (one open, one with htpasswd auth). */
import assert from "node:assert/strict";
import { join } from "node:path";
import { testIf } from "./support/env.ts";
import { rsmSession } from "./support/mcp.ts";
import {
  dockerdMissing,
  pushTestImage,
  startDockerd,
  startRegistry,
  TEST_IMAGE,
} from "./support/dockerd.ts";

testIf(
  dockerdMissing,
  "docker images are pulled with progress and registry auth, listed and removed",
  async (t) => {
    await using d = await startDockerd();
    await using open = await startRegistry();
    const password = `pw-${crypto.randomUUID()}`;
    await using locked = await startRegistry({ auth: { user: "rsmuser", password } });
    const openRef = await pushTestImage(d, open, "rsm/busy:1");
    const runRef = await pushTestImage(d, open, "rsm/runme:2");
    const lockedRef = await pushTestImage(d, locked, "rsm/secret:3");
    await using rsm = await rsmSession({ json: true });
    await rsm.callJson("docker_connect", { id: "e", spec: { host: d.host } });
    const h = { host_id: "e" };

    await t.step(
      "docker_image_pull pulls from the local registry and sends progress notifications",
      async () => {
        const progress: { progress: number; message?: string }[] = [];
        const r = await rsm.callJson("docker_image_pull", { ...h, image: openRef }, {
          onprogress: (p) => progress.push(p),
        });
        assert.equal(r.image, openRef);
        assert.match(r.status, /Downloaded newer image|Image is up to date/);
        assert.ok(progress.length >= 1, "expected progress notifications");
        assert.ok(progress.some((p) => p.message), JSON.stringify(progress));
        assert.match(
          await d.cli(["images", "--format", "{{.Repository}}:{{.Tag}}"]),
          new RegExp(openRef),
        );
      },
    );

    await t.step("docker_image_list shows one row per tag with id, size and created", async () => {
      const rows = await rsm.callJson("docker_image_list", h);
      const row = rows.find((r: { tag: string }) => r.tag === openRef);
      assert.ok(row, JSON.stringify(rows));
      assert.match(row.id, /^[0-9a-f]{12}$/);
      assert.match(row.size, /^[\d.]+(B|kB|MB|GB)$/);
      assert.ok(!Number.isNaN(Date.parse(row.created)));
      assert.ok(rows.some((r: { tag: string }) => r.tag === TEST_IMAGE));
    });

    await t.step(
      "docker_image_remove removes the tag; an unknown image is a clear error",
      async () => {
        assert.equal(
          await rsm.call("docker_image_remove", { ...h, image: openRef }),
          `removed ${openRef}`,
        );
        assert.doesNotMatch(
          await d.cli(["images", "--format", "{{.Repository}}:{{.Tag}}"]),
          new RegExp(openRef),
        );
        const err = await rsm.callError("docker_image_remove", { ...h, image: "rsm-nothing:here" });
        assert.match(err, /Cannot remove image rsm-nothing:here: .*No such image/i);
      },
    );

    await t.step("docker_run pull_if_missing pulls from the local registry", async () => {
      const r = await rsm.callJson("docker_run", {
        ...h,
        spec: { image: runRef, cmd: ["echo", "pulled and ran"], wait: true, auto_remove: true },
      });
      assert.equal(r.exit_code, 0);
      assert.match(r.logs, /pulled and ran/);
      const missing = await rsm.callError("docker_run", {
        ...h,
        spec: { image: `${open.address}/rsm/absent:1` },
      });
      assert.match(missing, /Cannot run .*absent:1.*pulling it failed/);
    });

    await t.step(
      "a registry requiring auth works with credentials in ~/.docker/config.json, and says so without them",
      async () => {
        const denied = await rsm.callError("docker_image_pull", { ...h, image: lockedRef });
        assert.match(denied, /Cannot pull image/);
        assert.match(denied, /unauthorized|authentication|no basic auth|denied/i);
        const dir = join(rsm.tmp.home, ".docker");
        await Deno.mkdir(dir, { recursive: true });
        await Deno.writeTextFile(
          join(dir, "config.json"),
          JSON.stringify({ auths: { [locked.address]: { auth: btoa(`rsmuser:${password}`) } } }),
        );
        const r = await rsm.callJson("docker_image_pull", { ...h, image: lockedRef });
        assert.equal(r.image, lockedRef);
        assert.match(
          await d.cli(["images", "--format", "{{.Repository}}:{{.Tag}}"]),
          new RegExp(lockedRef),
        );
        await rsm.call("snapshot", {}); // state.json is written now, so the scan below reads it
        for (const f of ["daemon.log", "audit.log", "state.json"]) {
          const text = await Deno.readTextFile(join(rsm.tmp.rsmDir, f)); // must exist
          assert.ok(!text.includes(password), `${f} holds the registry password`);
        }
      },
    );
  },
);
