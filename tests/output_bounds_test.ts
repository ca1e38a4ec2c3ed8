/**
 * Honest bounds for every tool that bounds output, through `rsm stdio` against a real sshd and
 * a real dockerd, in both formats: for `seq 1 N` (N from 1,000 to 400,000), `truncated` is
 * true exactly when bytes were left out, and the omitted count in the marker and in the result
 * equals the bytes really left out. Pages (`job_output`, `output_read`) are never cut again:
 * every page is exactly the bytes it says, and the pages add up to the whole output.
 */
import assert from "node:assert/strict";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { need, tempEnv, testIf, waitFor } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { type RsmClient, startRsm, stopDaemon } from "./support/mcp.ts";
import { dockerdMissing, startDockerd, TEST_IMAGE } from "./support/dockerd.ts";
import { checkCut, section, seqText, shownField, textOf } from "./support/bounds.ts";

const missing = dockerdMissing ?? await need(["sshd", "ssh-keygen", "useradd"], true);
const NS = [1000, 5000, 6000, 7000, 20_000, 100_000, 400_000];
const enc = new TextEncoder();
const CAP = 32 * 1024;

type Format = "toon" | "json";

testIf(missing, "every tool that bounds output says exactly what it left out", async (t) => {
  await using user = await createUser();
  await using sshd = await startSshd();
  await using d = await startDockerd();
  await using tmp = await tempEnv();
  const toon = await startRsm(tmp.env);
  const json = await startRsm(tmp.env, { json: true });
  const both: [Format, RsmClient][] = [["toon", toon], ["json", json]];
  try {
    await json.call("ssh_connect", {
      id: "box",
      spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
    });
    await json.call("docker_connect", { id: "e", spec: { host: d.host } });
    await d.cli(["run", "-d", "--name", "box", TEST_IMAGE, "sleep", "3600"]);

    const call = async (rsm: RsmClient, name: string, args: Record<string, unknown>) => {
      const r = await rsm.callRaw(name, args);
      assert.ok(!r.isError, `${name}: ${textOf(r)}`);
      const size = enc.encode(textOf(r)).length;
      assert.ok(size <= CAP, `${name}: ${size} bytes over the ${CAP}-byte bound`);
      return r;
    };
    /** Calls `name` for every N in both formats and checks field `field` against seq 1 N. */
    const eachSeq = async (
      what: string,
      field: string,
      ns: number[],
      callFor: (rsm: RsmClient, n: number, format: Format) => Promise<CallToolResult>,
    ) => {
      for (const n of ns) {
        for (const [format, rsm] of both) {
          const r = await callFor(rsm, n, format);
          checkCut(
            `${what} seq 1 ${n} (${format})`,
            seqText(n),
            shownField(r, format, field),
            r.structuredContent as Record<string, unknown>,
          );
        }
      }
    };

    /**
     * Pages job_output (`job_id`) or output_read (`output_id`) from offset 0 to the end:
     * every page is exactly the bytes it says, never cut again, and together they are `full`.
     */
    const pageAll = async (
      rsm: RsmClient,
      format: Format,
      where: string,
      full: string,
      id: { job_id: string } | { output_id: string },
    ) => {
      const tool = "job_id" in id ? "job_output" : "output_read";
      let all = "";
      let offset = 0;
      for (let page = 0;; page++) {
        assert.ok(page < 1000, `${where}: too many pages`);
        const r = await call(rsm, tool, { ...id, offset });
        const o = r.structuredContent as Record<string, unknown>;
        const data = shownField(r, format, "data");
        assert.doesNotMatch(data, /bytes omitted/, `${where}: a page is never cut`);
        assert.notEqual(o.truncated, true, `${where}: truncated`);
        assert.equal(enc.encode(data).length, o.bytes, `${where}: bytes`);
        all += data;
        if (o.eof) break;
        offset = o.next_offset as number;
      }
      assert.equal(all, full, where);
    };

    await t.step("ssh_exec", async () => {
      await eachSeq(
        "ssh_exec",
        "stdout",
        NS,
        (rsm, n) => call(rsm, "ssh_exec", { session_id: "box", command: `seq 1 ${n}` }),
      );
    });

    await t.step("ssh_shell_run", async () => {
      for (const [format, rsm] of both) {
        await rsm.call("ssh_shell_open", { session_id: "box", shell_id: `b-${format}` });
      }
      await eachSeq("ssh_shell_run", "output", NS, (rsm, n, format) =>
        call(rsm, "ssh_shell_run", {
          session_id: "box",
          shell_id: `b-${format}`,
          command: `seq 1 ${n}`,
          timeout_ms: 120_000,
        }));
    });

    await t.step("job_wait: the output since the last wait, cut once", async () => {
      for (const n of NS) {
        for (const [format, rsm] of both) {
          const started = JSON.parse(textOf(
            await call(json, "ssh_exec", {
              session_id: "box",
              command: `sleep 1; seq 1 ${n}`,
              wait_ms: 0,
            }),
          ));
          assert.equal(started.state, "running");
          const r = await call(rsm, "job_wait", { job_id: started.job_id, wait_ms: 60_000 });
          const o = r.structuredContent as Record<string, unknown>;
          assert.equal(o.state, "exited");
          const where = `job_wait seq 1 ${n} (${format})`;
          const shown = shownField(r, format, "output");
          checkCut(where, seqText(n), shown, o, started.job_id);
          // the bytes the marker points at are the ones left out
          const m = /(\d+) bytes omitted; job_output job_id=\w+ offset=(\d+)/.exec(shown);
          if (m) {
            const page = JSON.parse(textOf(
              await call(json, "job_output", {
                job_id: started.job_id,
                offset: Number(m[2]),
                length: 1000,
              }),
            ));
            assert.equal(page.data, seqText(n).slice(Number(m[2]), Number(m[2]) + page.bytes));
          }
          // everything was read: the next wait shows nothing new
          const again = JSON.parse(
            textOf(await call(json, "job_wait", { job_id: started.job_id, wait_ms: 0 })),
          );
          assert.equal(again.output, "", `${where}: read twice`);
          await json.call("job_forget", { job_id: started.job_id });
        }
      }
    });

    await t.step("job_output: pages are exact and add up to the whole output", async () => {
      for (const n of [7000, 100_000]) {
        const started = JSON.parse(textOf(
          await call(json, "ssh_exec", {
            session_id: "box",
            command: `sleep 1; seq 1 ${n}`,
            wait_ms: 0,
          }),
        ));
        await json.call("job_wait", { job_id: started.job_id, wait_ms: 60_000 });
        for (const [format, rsm] of both) {
          await pageAll(rsm, format, `job_output seq 1 ${n} (${format})`, seqText(n), {
            job_id: started.job_id,
          });
        }
        await json.call("job_forget", { job_id: started.job_id });
      }
    });

    await t.step("output_read: pages are exact and add up to the whole output", async () => {
      const full = seqText(400_000);
      const cut = JSON.parse(
        textOf(await call(json, "ssh_exec", { session_id: "box", command: "seq 1 400000" })),
      );
      for (const [format, rsm] of both) {
        await pageAll(rsm, format, `output_read (${format})`, full, { output_id: cut.output_id });
      }
    });

    await t.step("docker_exec", async () => {
      await eachSeq("docker_exec", "stdout", NS, (rsm, n) =>
        call(rsm, "docker_exec", {
          host_id: "e",
          container: "box",
          cmd: ["seq", "1", String(n)],
        }));
    });

    await t.step("docker_shell_run", async () => {
      for (const [format, rsm] of both) {
        await rsm.call("docker_shell_open", {
          host_id: "e",
          shell_id: `d-${format}`,
          container: "box",
        });
      }
      await eachSeq(
        "docker_shell_run",
        "output",
        NS,
        (rsm, n, format) =>
          call(rsm, "docker_shell_run", {
            host_id: "e",
            shell_id: `d-${format}`,
            command: `seq 1 ${n}`,
            timeout_ms: 120_000,
          }),
      );
    });

    await t.step("docker_container_logs and docker_run's first log lines", async () => {
      for (const n of NS) {
        const name = `seq${n}`;
        // docker_run (not waiting) shows what the container logged in its first moments
        const ran = await call(json, "docker_run", {
          host_id: "e",
          spec: { image: TEST_IMAGE, name, cmd: ["sh", "-c", `seq 1 ${n}; sleep 3600`] },
        });
        const first = JSON.parse(textOf(ran));
        // what it had logged by then: a prefix of the whole (ASCII, so characters are bytes)
        const logged = first.truncated === true
          ? seqText(n).slice(0, first.total_bytes)
          : first.logs;
        assert.ok(seqText(n).startsWith(logged), `docker_run seq 1 ${n}: a prefix of the logs`);
        checkCut(`docker_run seq 1 ${n} first logs`, logged, first.logs, first);
        await waitFor(`container ${name} to log all`, async () => {
          const r = JSON.parse(textOf(
            await call(json, "docker_container_logs", {
              host_id: "e",
              container: name,
              tail: "all",
            }),
          ));
          return r.truncated
            ? r.total_bytes === enc.encode(seqText(n)).length
            : r.logs === seqText(n);
        });
        for (const [format, rsm] of both) {
          const r = await call(rsm, "docker_container_logs", {
            host_id: "e",
            container: name,
            tail: "all",
          });
          checkCut(
            `docker_container_logs seq 1 ${n} (${format})`,
            seqText(n),
            shownField(r, format, "logs"),
            r.structuredContent as Record<string, unknown>,
          );
        }
        await json.call("docker_container_remove", { host_id: "e", container: name, force: true });
      }
    });

    await t.step("docker_run with wait: all logs, cut once", async () => {
      await eachSeq("docker_run wait", "logs", NS, (rsm, n) =>
        call(rsm, "docker_run", {
          host_id: "e",
          spec: { image: TEST_IMAGE, cmd: ["seq", "1", String(n)], wait: true, auto_remove: true },
        }));
    });

    await t.step("the TOON header says the section's size and what it shows", () => {
      // one sample: the header of a cut section names total and shown bytes
      return call(toon, "ssh_exec", { session_id: "box", command: "seq 1 100000" }).then((r) => {
        const { header, body } = section(textOf(r), "stdout");
        const m = /\((\d+) bytes, (\d+) shown\)/.exec(header);
        assert.ok(m, header);
        assert.equal(Number(m![1]), enc.encode(seqText(100_000)).length);
        const marker = /\[… (\d+) bytes omitted/.exec(body)!;
        assert.equal(Number(m![1]) - Number(m![2]), Number(marker[1]));
      });
    });
  } finally {
    await toon.close();
    await json.close();
    await stopDaemon(tmp.env);
  }
});
