/** The built-in shell backends, registered with dependencies that refuse (nothing is opened). */
import { ShellBackends } from "../../lib/term/mod.ts";
import { sshShellBackend } from "../../lib/ssh/mod.ts";
import { dockerShellBackend } from "../../lib/docker/mod.ts";

export function builtinBackends(): ShellBackends {
  return new ShellBackends()
    .register(sshShellBackend({
      session: () => {
        throw new Error("no sessions here");
      },
      log: { warn: () => {} },
    }))
    .register(dockerShellBackend({ openShell: () => Promise.reject(new Error("no hosts")) }));
}
