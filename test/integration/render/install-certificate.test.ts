/**
 * The renewal agent's command (templates/consul-template/install-certificate.sh.hbs),
 * run for real on bundles made by openssl: it splits the bundle into the files
 * the agents read with the right modes, replaces them by rename (an agent
 * reloading meanwhile never reads a half-written key), and leaves the old pair
 * in place when a bundle is broken. Needs root (chown).
 */
import { spawn } from "node:child_process";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { chmod, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { sharedEngine } from "../../../scripts/lib/render/engine.ts";
import { tempDir } from "../../helpers/fixtures.ts";
import { createTestCa, issueTestCert, type TestCa } from "../../helpers/pki.ts";

let dir: Awaited<ReturnType<typeof tempDir>>;
let script: string;
let ca: TestCa;
const bundles: string[] = [];
// no such unit: the script must not try to reload it
const unit = "hashistack-test-no-such-unit";

/** what consul-template renders into the destination: certificate, CA, key (no final newline) */
async function makeBundle(name: string): Promise<string> {
  const issued = await issueTestCert(ca, name, { ips: ["127.0.0.1"] });
  const bundle = join(dir.path, `${name}-bundle.pem`);
  const parts = [issued.certFile, ca.caFile, issued.keyFile].map(async (f) => (await readFile(f, "utf8")).trim());
  await writeFile(bundle, (await Promise.all(parts)).join("\n"), { mode: 0o600 });
  return bundle;
}

const install = (bundle: string, certFile: string, keyFile: string) =>
  $({ nothrow: true, quiet: true })`${script} ${bundle} ${certFile} ${keyFile} root ${unit}`;

beforeAll(async () => {
  dir = await tempDir("install-certificate");
  script = join(dir.path, "install-certificate");
  await writeFile(
    script,
    sharedEngine().render("consul-template/install-certificate.sh.hbs", { cluster: { name: "t" }, host: { name: "h" } }),
  );
  await chmod(script, 0o755);
  ca = await createTestCa(join(dir.path, "ca"));
  bundles.push(await makeBundle("first"), await makeBundle("second"));
}, 60_000);

afterAll(async () => dir?.remove());

describe("install-certificate", () => {
  it("writes leaf + CA (0644) and the key (0600) from the bundle, both by rename", async () => {
    const certFile = join(dir.path, "tls", "agent.pem");
    const keyFile = join(dir.path, "tls", "agent-key.pem");
    await $`mkdir -p ${join(dir.path, "tls")}`;
    const first = await install(bundles[0] as string, certFile, keyFile);
    expect(first.exitCode, first.stderr).toBe(0);
    const certPem = await readFile(certFile, "utf8");
    expect(certPem.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(2);
    const leaf = new X509Certificate(certPem);
    expect(leaf.subject).toBe("CN=first");
    expect(leaf.checkPrivateKey(createPrivateKey(await readFile(keyFile, "utf8")))).toBe(true);
    expect((await stat(certFile)).mode & 0o777).toBe(0o644);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);

    const inodes = [(await stat(certFile)).ino, (await stat(keyFile)).ino];
    const second = await install(bundles[1] as string, certFile, keyFile);
    expect(second.exitCode, second.stderr).toBe(0);
    expect(new X509Certificate(await readFile(certFile, "utf8")).subject).toBe("CN=second");
    // new inodes: replaced by rename, never truncated and rewritten in place
    expect((await stat(certFile)).ino).not.toBe(inodes[0]);
    expect((await stat(keyFile)).ino).not.toBe(inodes[1]);
    expect((await readdir(join(dir.path, "tls"))).sort()).toEqual(["agent-key.pem", "agent.pem"]);
  });

  it("a reader never sees a partial key while certificates are installed over and over", async () => {
    const certFile = join(dir.path, "race", "agent.pem");
    const keyFile = join(dir.path, "race", "agent-key.pem");
    await $`mkdir -p ${join(dir.path, "race")}`;
    expect((await install(bundles[0] as string, certFile, keyFile)).exitCode).toBe(0);
    // a shell loop installs 150 times while this process keeps reading the key, like a reloading agent
    const loop = spawn(
      "sh",
      [
        "-c",
        `i=0; while [ $i -lt 150 ]; do "$0" "$1" "$2" "$3" root ${unit} || exit 1; i=$((i+1)); done`,
        script,
        ...[bundles[0], certFile, keyFile].map(String),
      ],
      { stdio: "ignore" },
    );
    const finished = new Promise<number | null>((resolve) => loop.on("exit", resolve));
    let reads = 0;
    let running = true;
    void finished.then(() => {
      running = false;
    });
    while (running) {
      const pem = await readFile(keyFile, "utf8");
      expect(() => createPrivateKey(pem), `read ${reads + 1} got ${pem.length} bytes`).not.toThrow();
      reads++;
    }
    expect(await finished).toBe(0);
    expect(reads).toBeGreaterThan(10);
  }, 60_000);

  it("keeps the installed pair when the bundle holds no key, and says why", async () => {
    const certFile = join(dir.path, "broken", "agent.pem");
    const keyFile = join(dir.path, "broken", "agent-key.pem");
    await $`mkdir -p ${join(dir.path, "broken")}`;
    expect((await install(bundles[0] as string, certFile, keyFile)).exitCode).toBe(0);
    const before = await readFile(keyFile, "utf8");
    const keyless = join(dir.path, "keyless-bundle.pem");
    await writeFile(
      keyless,
      (await readFile(bundles[1] as string, "utf8")).replace(/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*$/, ""),
    );
    const result = await install(keyless, certFile, keyFile);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`${keyless} holds no certificate or no private key`);
    expect(await readFile(keyFile, "utf8")).toBe(before);
    expect(new X509Certificate(await readFile(certFile, "utf8")).subject).toBe("CN=first");
    expect((await readdir(join(dir.path, "broken"))).sort()).toEqual(["agent-key.pem", "agent.pem"]);
  });

  it("refuses a wrong argument count with its usage", async () => {
    const result = await $({ nothrow: true, quiet: true })`${script} only-one-argument`;
    expect(result.exitCode).toBe(64);
    expect(result.stderr).toContain("usage:");
  });
});
