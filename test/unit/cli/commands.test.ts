import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { reportError } from "../../../scripts/lib/cli/command.ts";
import { NotImplementedError } from "../../../scripts/lib/errors.ts";
import { scratchDirs } from "../../helpers/fixtures.ts";

const scratch = scratchDirs();
afterAll(() => scratch.removeAll());

const run = (script: string, args: string[], env: Record<string, string> = {}) =>
  $({ nothrow: true, quiet: true, env: { ...process.env, ...env } })`npx --no-install tsx scripts/${script}.ts ${args}`;

describe("command line", () => {
  it("--help works on every command and documents exit codes", async () => {
    const results = await Promise.all(
      ["bootstrap", "teardown", "deploy", "status", "render", "env", "binaries"].map(
        async (name) => [name, await run(name, ["--help"])] as const,
      ),
    );
    for (const [name, result] of results) {
      expect(result.exitCode, name).toBe(0);
      expect(result.stdout, name).toMatch(new RegExp(`^${name} — `));
      expect(result.stdout, name).toContain("--debug");
      expect(result.stdout, name).toContain("4 not implemented yet");
    }
  }, 60_000); // seven tsx start-ups at once: slow on a loaded 2-core machine

  it("something not built yet says so and exits 4, never pretending success", () => {
    // (every command exists now; what remains unbuilt — e.g. PGP-wrapped unseal keys — reports through this path)
    const lines: string[] = [];
    const code = reportError(new NotImplementedError("PGP-wrapped unseal keys", "issue 'x'"), {
      debug: false,
      write: (l) => lines.push(l),
    });
    expect(code).toBe(4);
    expect(lines).toEqual(["✖ PGP-wrapped unseal keys is not implemented yet.", "  hint: It is tracked as: issue 'x'."]);
  });

  it("deploy checks its input before connecting, and without NOMAD_ADDR needs a bootstrapped cluster", async () => {
    const dir = await scratch.make("deploy");
    const env = { HASHISTACK_STATE_DIR: join(dir, "state"), NOMAD_ADDR: "" };
    const noEquals = await run("deploy", ["--var", "image", "jobs/"], env);
    expect(noEquals.exitCode).toBe(2);
    expect(noEquals.stderr).toContain("--var 'image' must look like name=value.");
    const missing = await run("deploy", [join(dir, "nope.nomad.hcl")], env);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain(`Job file or directory ${join(dir, "nope.nomad.hcl")} does not exist.`);
    await writeFile(join(dir, "app.nomad.hcl"), 'job "app" {}\n');
    const unbootstrapped = await run(
      "deploy",
      ["--config", "cluster.example.yaml", "--cluster", "unit-cli", join(dir, "app.nomad.hcl")],
      env,
    );
    expect(unbootstrapped.exitCode).toBe(3);
    expect(unbootstrapped.stderr).toContain("NOMAD_ADDR is not set and cluster 'unit-cli' has not been bootstrapped.");
  });

  it("an unknown flag is a usage error (exit 2) with a pointer to --help", async () => {
    const result = await run("render", ["--colour"]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("Unknown option '--colour'");
    expect(result.stderr).toContain("hint: Run 'npm run render -- --help' for the options.");
  });

  it("bootstrap --stages with an unknown name exits 2 listing the stages, before provisioning anything", async () => {
    const dir = await scratch.make("stages");
    const env = { HASHISTACK_STATE_DIR: join(dir, "state"), HASHISTACK_INVENTORY_DIR: join(dir, "inv") };
    const result = await run(
      "bootstrap",
      ["--config", "cluster.example.yaml", "--cluster", "unit-cli", "--stages", "prepare,consol"],
      env,
    );
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("Unknown stage 'consol' in --stages.");
    expect(result.stderr).toContain(
      "hint: The stages, in the order they run: prepare, vault, certificates, consul, nomad, workload-identity, images, platform, verify.",
    );
    expect(existsSync(join(dir, "state"))).toBe(false);
    expect((await run("bootstrap", ["--help"])).stdout).toMatch(/--stages LIST +run only these stages .*: prepare, vault, /);
  }, 60_000);

  it("bootstrap --replace refuses bad input with exit 2 before provisioning anything, and is in the help", async () => {
    const dir = await scratch.make("replace");
    const env = { HASHISTACK_STATE_DIR: join(dir, "state"), HASHISTACK_INVENTORY_DIR: join(dir, "inv") };
    const common = ["--config", "cluster.example.yaml", "--cluster", "unit-cli"];
    const [unprovisioned, withStages, help] = await Promise.all([
      run("bootstrap", [...common, "--replace", "server-2"], env),
      run("bootstrap", [...common, "--replace", "server-2", "--stages", "consul"], env),
      run("bootstrap", ["--help"]),
    ]);
    expect(unprovisioned.exitCode).toBe(2);
    expect(unprovisioned.stderr).toContain("--replace server-2: cluster 'unit-cli' has no nodes yet.");
    expect(withStages.exitCode).toBe(2);
    expect(withStages.stderr).toContain("--replace runs every stage (the new node needs them all): drop --stages.");
    expect(existsSync(join(dir, "state"))).toBe(false);
    expect(help.stdout).toMatch(/--replace NODE +replace this node \(e\.g\. server-2\) with a fresh one/);
  }, 60_000);

  it("render writes every host's files with secrets at 0600, and a second run keeps the same secrets", async () => {
    const dir = await scratch.make("render");
    const env = { HASHISTACK_STATE_DIR: join(dir, "state") };
    const first = await run(
      "render",
      ["--config", "cluster.example.yaml", "--cluster", "unit-cli", "--out", join(dir, "out"), "--output", "json"],
      env,
    );
    expect(first.exitCode, first.stderr).toBe(0);
    const report = JSON.parse(first.stdout) as { files: { host: string; path: string; mode: number; secret: boolean }[] };
    expect(new Set(report.files.map((f) => f.host))).toEqual(
      new Set(["server-1", "server-2", "server-3", "client-1", "client-2"]),
    );
    const consul = join(dir, "out", "server-2", "etc", "consul.d", "consul.hcl");
    expect((await stat(consul)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, "state", "unit-cli", "secrets", "consul-gossip-key"))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, "state", "unit-cli", "secrets"))).mode & 0o777).toBe(0o700);
    const before = await readFile(consul, "utf8");

    const second = await run(
      "render",
      ["--config", "cluster.example.yaml", "--cluster", "unit-cli", "--out", join(dir, "out")],
      env,
    );
    expect(second.exitCode).toBe(0);
    expect(second.stdout).not.toContain("generated a new secret");
    expect(await readFile(consul, "utf8")).toBe(before);
    // the gossip key is in the file, never on the terminal
    const key = (await readFile(join(dir, "state", "unit-cli", "secrets", "consul-gossip-key"), "utf8")).trim();
    expect(before).toContain(key);
    expect(first.stdout + first.stderr + second.stdout + second.stderr).not.toContain(key);
  });

  it("refuses a secret file that others can read", async () => {
    const dir = await scratch.make("render");
    const env = { HASHISTACK_STATE_DIR: join(dir, "state") };
    expect(
      (await run("render", ["--config", "cluster.example.yaml", "--cluster", "unit-cli", "--out", join(dir, "out")], env))
        .exitCode,
    ).toBe(0);
    const keyFile = join(dir, "state", "unit-cli", "secrets", "nomad-gossip-key");
    await $`chmod 644 ${keyFile}`;
    const result = await run(
      "render",
      ["--config", "cluster.example.yaml", "--cluster", "unit-cli", "--out", join(dir, "out")],
      env,
    );
    expect(result.exitCode).toBe(3);
    expect(result.stderr).toContain(`Secret file ${keyFile} is readable by other users (mode 644).`);
  });

  it("a bad config exits 2 naming file, line and field", async () => {
    const dir = await scratch.make("cfg");
    const file = join(dir, "cluster.yaml");
    await writeFile(file, "name: lab\ntopology:\n  servers: 4\n");
    const result = await run("render", ["--config", file]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(`${file}:3:12 topology.servers: an odd number of servers is needed`);
    expect(result.stderr).not.toMatch(/at .*\.ts:\d+/); // no stack without --debug
  });

  it("teardown lists with --dry-run (not the state with --keep-state), and without a terminal only --yes confirms", async () => {
    const dir = await scratch.make("teardown");
    const env = { HASHISTACK_STATE_DIR: join(dir, "state"), HASHISTACK_INVENTORY_DIR: join(dir, "inv") };
    // a name no real cluster has, and a state dir of its own: teardown meets nothing it did not make
    const name = `unit-td-${randomBytes(3).toString("hex")}`;
    const config = join(dir, "cluster.yaml");
    await writeFile(config, `name: ${name}\nprovider:\n  type: local\n  local:\n    cidr: 10.74.0.0/24\n`);
    await $`mkdir -p ${join(dir, "state", name, "secrets")}`;
    const local = ["--config", config];
    const listed = await run("teardown", [...local, "--dry-run", "--output", "json"], env);
    expect(JSON.parse(listed.stdout)).toEqual({ wouldRemove: [`state ${join(dir, "state", name)}`] });
    const kept = await run("teardown", [...local, "--dry-run", "--keep-state"], env);
    expect(kept.stdout).toContain(`nothing to remove for cluster '${name}'`);
    const refused = await run("teardown", local, env);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain("Confirmation needed, but there is no terminal to ask on.");
    expect(refused.stderr).toContain("hint: Pass --yes to confirm.");
    const removed = await run("teardown", [...local, "--yes"], env);
    expect(removed.exitCode, removed.stderr).toBe(0);
    expect(existsSync(join(dir, "state", name))).toBe(false);
    expect((await run("teardown", [...local, "--dry-run"], env)).stdout).toContain(`nothing to remove for cluster '${name}'`);
  }, 90_000); // six command runs

  it("restore checks the snapshot folder before it looks at any cluster: bad input exits 2", async () => {
    const dir = await scratch.make("restore");
    const env = { HASHISTACK_STATE_DIR: join(dir, "state") };
    const none = await run("restore", ["--config", "cluster.example.yaml"], env);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain("Give exactly one snapshot folder.");
    const notSnapshot = await run("restore", [dir, "--config", "cluster.example.yaml", "--cluster", "unit-cli"], env);
    expect(notSnapshot.exitCode).toBe(2);
    expect(notSnapshot.stderr).toContain(`${dir} is not a snapshot folder: it has no manifest.json.`);
    const help = await run("restore", ["--help"]);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toMatch(/^restore — /);
    expect(help.stdout).toContain("--force");
  }, 60_000);

  it("env explains that the cluster must be bootstrapped first", async () => {
    const dir = await scratch.make("env");
    const result = await run("env", ["--config", "cluster.example.yaml", "--cluster", "unit-cli"], { HASHISTACK_STATE_DIR: dir });
    expect(result.exitCode).toBe(3);
    expect(result.stderr).toContain("Cluster 'unit-cli' has not been bootstrapped.");
    expect(result.stderr).toContain("hint: Run 'npm run bootstrap' first.");
  });
});
