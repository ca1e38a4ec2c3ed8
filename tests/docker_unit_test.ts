/** Pure logic of the Docker layer: host URLs, port/memory/restart parsing, times, bounds. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseHost, resolveHost } from "../lib/docker/endpoint.ts";
import { parseMemory, parsePort, parseRestart } from "../lib/docker/run.ts";
import { logTime } from "../lib/docker/logs.ts";
import { humanSize, registryAuth, registryOf, withTag } from "../lib/docker/images.ts";
import { formatPorts } from "../lib/docker/containers.ts";
import { persistableSpec } from "../lib/docker/host.ts";

Deno.test("docker host URLs parse into unix, tcp, ssh endpoints and bad ones say what is expected", () => {
  assert.deepEqual(parseHost("unix:///run/docker.sock"), {
    kind: "unix",
    socketPath: "/run/docker.sock",
  });
  assert.deepEqual(parseHost("tcp://10.0.0.5:2376", true), {
    kind: "tcp",
    host: "10.0.0.5",
    port: 2376,
    tls: true,
  });
  assert.deepEqual(parseHost("tcp://[::1]:2375"), {
    kind: "tcp",
    host: "::1",
    port: 2375,
    tls: false,
  });
  assert.deepEqual(parseHost("ssh://me@box:2222/run/user/1000/docker.sock"), {
    kind: "ssh",
    user: "me",
    host: "box",
    port: 2222,
    socketPath: "/run/user/1000/docker.sock",
  });
  assert.deepEqual(parseHost("ssh://box"), {
    kind: "ssh",
    user: undefined,
    host: "box",
    port: 22,
    socketPath: "/var/run/docker.sock",
  });
  assert.throws(() => parseHost("npipe:////./pipe/docker_engine"), /not supported/);
  assert.throws(() => parseHost("unix://relative.sock"), /absolute/);
});

Deno.test("with no host, DOCKER_HOST wins over the context, which wins over the default socket", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(
      (await resolveHost(undefined, { env: { HOME: dir } })).url,
      "unix:///var/run/docker.sock",
    );
    const r = await resolveHost(undefined, {
      env: {
        HOME: dir,
        DOCKER_HOST: "tcp://h:2376",
        DOCKER_TLS_VERIFY: "1",
        DOCKER_CERT_PATH: "/certs",
      },
    });
    assert.deepEqual(r, {
      url: "tcp://h:2376",
      source: "DOCKER_HOST",
      tls: { ca: "/certs/ca.pem", cert: "/certs/cert.pem", key: "/certs/key.pem", verify: true },
    });
    await Deno.mkdir(join(dir, ".docker"));
    await Deno.writeTextFile(
      join(dir, ".docker", "config.json"),
      JSON.stringify({ currentContext: "gone" }),
    );
    await assert.rejects(resolveHost(undefined, { env: { HOME: dir } }), /docker context "gone"/);
    assert.equal((await resolveHost("unix:///x.sock", { env: { HOME: dir } })).source, "spec");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("port mappings parse like docker run -p, including IPv6 host IPs and port 0", () => {
  assert.deepEqual(parsePort("8080:80"), { hostIp: "", hostPort: "8080", containerPort: "80/tcp" });
  assert.deepEqual(parsePort("127.0.0.1:8080:80/tcp"), {
    hostIp: "127.0.0.1",
    hostPort: "8080",
    containerPort: "80/tcp",
  });
  assert.deepEqual(parsePort("[::1]:8080:80"), {
    hostIp: "::1",
    hostPort: "8080",
    containerPort: "80/tcp",
  });
  assert.deepEqual(parsePort("127.0.0.1:0:80"), {
    hostIp: "127.0.0.1",
    hostPort: "",
    containerPort: "80/tcp",
  });
  assert.deepEqual(parsePort("127.0.0.1::53/udp"), {
    hostIp: "127.0.0.1",
    hostPort: "",
    containerPort: "53/udp",
  });
  assert.deepEqual(parsePort("80"), { hostIp: "", hostPort: "", containerPort: "80/tcp" });
  for (const bad of ["", "x:80", "80/icmp", "1:2:3:4", "70000:80", "[::1]80"]) {
    assert.throws(() => parsePort(bad), /Cannot read port mapping/, bad);
  }
});

Deno.test("memory sizes, restart policies and log times parse; bad ones are clear errors", () => {
  assert.equal(parseMemory("64m"), 64 * 1024 * 1024);
  assert.equal(parseMemory("1g"), 1024 ** 3);
  assert.equal(parseMemory("512MiB"), 512 * 1024 * 1024);
  assert.equal(parseMemory(1000), 1000);
  assert.throws(() => parseMemory("lots"), /Cannot read memory/);
  assert.deepEqual(parseRestart("on-failure:3"), { Name: "on-failure", MaximumRetryCount: 3 });
  assert.deepEqual(parseRestart("always"), { Name: "always" });
  assert.deepEqual(parseRestart("no"), { Name: "" });
  assert.throws(() => parseRestart("sometimes"), /restart_policy/);
  assert.equal(logTime("2024-01-02T03:04:05Z"), "1704164645.000");
  assert.equal(logTime("1704164645"), "1704164645");
  assert.equal(logTime("5m", 1_000_000_000), "999700.000");
  assert.throws(() => logTime("last tuesday"), /Cannot read time/);
});

Deno.test("image references name their registry and get :latest", () => {
  assert.equal(registryOf("busybox"), "docker.io");
  assert.equal(registryOf("library/busybox:1"), "docker.io");
  assert.equal(registryOf("127.0.0.1:5000/a/b:1"), "127.0.0.1:5000");
  assert.equal(registryOf("ghcr.io/x/y"), "ghcr.io");
  assert.equal(registryOf("localhost/x"), "localhost");
  assert.equal(withTag("busybox"), "busybox:latest");
  assert.equal(withTag("127.0.0.1:5000/a/b"), "127.0.0.1:5000/a/b:latest");
  assert.equal(withTag("a/b:2"), "a/b:2");
  assert.equal(withTag("a/b@sha256:abc"), "a/b@sha256:abc");
  assert.equal(humanSize(1_982_256), "1.98MB");
  assert.equal(humanSize(512), "512B");
});

Deno.test("registry credentials come from config.json auths", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      join(dir, "config.json"),
      JSON.stringify({ auths: { "https://reg.example:5000": { auth: btoa("u:p@ss:word") } } }),
    );
    const env = { DOCKER_CONFIG: dir };
    assert.deepEqual(await registryAuth("reg.example:5000", env), {
      username: "u",
      password: "p@ss:word",
      serveraddress: "reg.example:5000",
    });
    assert.equal(await registryAuth("other:5000", env), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ports render like docker ps and persisted specs hold no secrets", () => {
  assert.equal(
    formatPorts([
      { IP: "127.0.0.1", PrivatePort: 80, PublicPort: 8080, Type: "tcp" },
      { IP: "::1", PrivatePort: 80, PublicPort: 8080, Type: "tcp" },
      { IP: "", PrivatePort: 443, Type: "tcp" } as never,
    ]),
    "127.0.0.1:8080->80/tcp, [::1]:8080->80/tcp, 443/tcp",
  );
  assert.deepEqual(
    persistableSpec({
      host: "ssh://a@b",
      auth: { password: "hunter22", password_env: "PW", key_passphrase: "kp12" },
    }),
    { host: "ssh://a@b", auth: { password_env: "PW" } },
  );
});
