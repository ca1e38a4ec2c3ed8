/**
 * Fleets (issue 15, acceptance 1 and 2): 50 netns hosts, one sshd each, plus 3 unreachable
 * ones. `ssh_connect_many` opens the 50 in one call and reports the 3 per host;
 * `ssh_exec_many` of `cat /etc/role` (47 hosts say web, 3 say db: each namespace's sshd sees
 * its own /etc/role through `ip netns exec`'s /etc/netns bind mounts) returns two groups and
 * the unreachable ones apart; with `concurrency: 4` the servers never run more than 4 at once.
 */
import assert from "node:assert/strict";
import { need, testIf } from "./support/env.ts";
import { createUser, type Sshd, startSshd } from "./support/sshd.ts";
import { createNet, type NetHost } from "./support/netns.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd", "ip"], true);

const HOSTS = 50;
const DB = new Set([7, 23, 41]);

testIf(missing, "ssh_connect_many and ssh_exec_many across 50 netns hosts", async (t) => {
  // `ip netns exec` bind-mounts /etc/netns/NS/role over /etc/role, which must exist
  try {
    Deno.statSync("/etc/role");
  } catch {
    Deno.writeTextFileSync("/etc/role", "");
  }
  await using user = await createUser({ plainShell: true });
  await using net = await createNet();
  const servers: Sshd[] = [];
  const etcDirs: string[] = [];
  try {
    const started = Date.now();
    const up = await Promise.all(Array.from({ length: HOSTS }, async (_, i) => {
      const h: NetHost = await net.host(`h${i}`);
      const l = await net.link("root", h);
      const etc = `/etc/netns/${h.ns}`;
      etcDirs.push(etc);
      await Deno.mkdir(etc, { recursive: true });
      await Deno.writeTextFile(`${etc}/role`, DB.has(i) ? "db\n" : "web\n");
      const s = await startSshd({ netns: h.ns, listen: l.addrB, port: 22 });
      servers.push(s);
      return { id: `h${String(i).padStart(2, "0")}`, addresses: l.addrB };
    }));
    const down = await Promise.all([0, 1, 2].map(async (i) => {
      const h = await net.host(`u${i}`);
      const l = await net.link("root", h);
      await l.down();
      return { id: `gone${i}`, addresses: l.addrB };
    }));
    console.log(`${HOSTS} hosts up in ${Date.now() - started} ms`);
    await using rsm = await rsmWithEnv();
    const spec = {
      user: user.name,
      addresses: "placeholder",
      auth: { key_path: user.keyPath },
      timeout: "20s",
    };

    await t.step("one call opens 50 sessions and reports the 3 unreachable per host", async () => {
      const t0 = Date.now();
      const r = await rsm.callJson("ssh_connect_many", { spec, targets: [...up, ...down] });
      console.log(`ssh_connect_many of ${up.length + down.length} targets: ${Date.now() - t0} ms`);
      assert.equal(r.connected.length, HOSTS, JSON.stringify(r.failed));
      assert.deepEqual(
        r.connected.map((c: { id: string }) => c.id).sort(),
        up.map((u) => u.id).sort(),
      );
      assert.deepEqual(r.failed.map((f: { id: string }) => f.id).sort(), [
        "gone0",
        "gone1",
        "gone2",
      ]);
      for (const f of r.failed) assert.match(f.error, /Cannot connect|unreachable|route/i);
      const list = await rsm.callJson("ssh_list");
      assert.equal(list.filter((s: { state: string }) => s.state === "connected").length, HOSTS);
    });

    await t.step(
      "cat /etc/role: two groups (47 web, 3 db), unreachable apart, bounded",
      async () => {
        const ids = [...up, ...down].map((x) => x.id);
        const text = await rsm.call("ssh_exec_many", {
          session_ids: ids,
          command: "cat /etc/role",
        });
        assert.ok(
          new TextEncoder().encode(text).length < 8 * 1024,
          `answer is ${text.length} bytes`,
        );
        const r = JSON.parse(text);
        assert.equal(r.hosts, HOSTS + 3);
        assert.equal(r.groups.length, 2);
        assert.deepEqual(
          r.groups.map((g: { sessions: string[]; stdout: string; exit_code: number }) => [
            g.sessions.length,
            g.stdout,
            g.exit_code,
          ]),
          [[47, "web\n", 0], [3, "db\n", 0]],
        );
        assert.deepEqual(
          r.groups[1].sessions.sort(),
          [...DB].map((i) => `h${String(i).padStart(2, "0")}`),
        );
        assert.deepEqual(
          r.failed.map((f: { session_id: string }) => f.session_id).sort(),
          ["gone0", "gone1", "gone2"],
        );
      },
    );

    await t.step("a glob selects sessions; the default groups by output", async () => {
      const r = await rsm.callJson("ssh_exec_many", {
        session_ids: "h0*",
        command: "cat /etc/role; exit 3",
      });
      assert.equal(r.hosts, 10);
      assert.deepEqual(r.groups.map((g: { sessions: string[] }) => g.sessions.length), [9, 1]);
      assert.equal(r.groups[0].exit_code, 3);
    });

    await t.step("a group cut to fit keeps its full output in the output store", async () => {
      const text = await rsm.call("ssh_exec_many", {
        session_ids: "h1*",
        command: "seq 1 30000",
      });
      assert.ok(new TextEncoder().encode(text).length <= 32 * 1024, `${text.length} bytes`);
      const r = JSON.parse(text);
      assert.equal(r.groups.length, 1);
      const g = r.groups[0];
      assert.equal(g.sessions.length, 10);
      assert.equal(g.truncated, true);
      assert.match(g.stdout, /^1\n2\n3\n/);
      assert.match(g.stdout, /29999\n30000\n$/);
      assert.match(g.stdout, new RegExp(`output_read output_id=${g.output_id}`));
      const full = await rsm.callJson("output_read", {
        output_id: g.output_id,
        grep: "^1500[0-9]$",
      });
      assert.match(JSON.stringify(full), /15009/);
      assert.equal(full.total_bytes, 168_894); // every byte of `seq 1 30000`
      assert.equal(full.matches, 10);
    });

    await t.step("concurrency 4: the servers never see more than 4 at once", async () => {
      const dir = await Deno.makeTempDir({ prefix: "rsm-fleet-" });
      await Deno.chmod(dir, 0o777);
      const log = `${dir}/events`;
      const cmd = `echo "$(date +%s%N) 1" >> ${log}; sleep 0.2; echo "$(date +%s%N) -1" >> ${log}`;
      try {
        const r = await rsm.callJson("ssh_exec_many", {
          session_ids: "h*",
          command: cmd,
          concurrency: 4,
        });
        assert.equal(r.groups.length, 1);
        assert.equal(r.groups[0].sessions.length, HOSTS);
        const events = (await Deno.readTextFile(log)).trim().split("\n").map((l) => {
          const [ts, d] = l.split(" ");
          assert.ok(ts && d, `a log line "${l}" holds a time and a direction`);
          return { ts: BigInt(ts), d: Number(d) };
        }).sort((a, b) => (a.ts === b.ts ? a.d - b.d : a.ts < b.ts ? -1 : 1));
        assert.equal(events.length, HOSTS * 2);
        let now = 0;
        let peak = 0;
        for (const e of events) {
          now += e.d;
          peak = Math.max(peak, now);
        }
        assert.ok(peak <= 4, `peak ${peak} commands at once`);
        assert.ok(peak >= 3, `peak ${peak}: the commands did run in parallel`);
      } finally {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    });
  } finally {
    await Promise.all(servers.map((s) => s[Symbol.asyncDispose]()));
    for (const d of etcDirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
});
