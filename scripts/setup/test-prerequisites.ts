#!/usr/bin/env -S npx tsx
// Installs what the test suites need before vitest starts: Debian packages and
// the Consul/Nomad/Vault/consul-template/Fabio/Prometheus/Alertmanager binaries,
// and the older consul-template the upgrade e2e starts from (built once into the cache).
import { runCommand } from "../lib/cli/command.ts";
import { ensureBinary } from "../lib/binaries/build.ts";
import { type ToolSpec, testTools, tools, upgradeTestFrom } from "../lib/binaries/catalog.ts";
import { ensureImage } from "../lib/providers/local/image.ts";
import { localProviderPackages } from "../lib/providers/local/requirements.ts";
import { ensureDebianPackages } from "../lib/setup/debian-packages.ts";
import { ensureDebianNodejs18 } from "../lib/setup/debian-nodejs.ts";

/**
 * openssl and curl are the independent TLS/HTTP clients the tests check against; vagrant
 * (Debian's package) runs `vagrant validate` on the Vagrantfile; prometheus (Debian's 2.42,
 * for its promtool; the platform jobs run the Prometheus 3 build) scrapes the energy exporter
 * and checks its rules; gpg, gpgv, zip and unzip make and
 * check the locally served release tree of the download tests (gnupg also the PGP unseal
 * tests); python3 runs the deploy
 * tests' web server and parses rendered TOML; the rest runs local nodes.
 */
const testPackages = [
  "openssl",
  "curl",
  "ca-certificates",
  "vagrant",
  "prometheus",
  "gnupg",
  "gpg",
  "gpgv",
  "zip",
  "unzip",
  "python3",
  ...localProviderPackages,
];

await runCommand({
  name: "test-prerequisites",
  summary: "install the Debian packages and build the binaries the tests need",
  async run({ reporter }) {
    const installed = await ensureDebianPackages(testPackages, (line) => reporter.info(line));
    if (installed.length) reporter.success(`installed ${installed.join(", ")}`);
    // the pinned builds, then the older ones the upgrade e2e starts from
    const builds: ToolSpec[] = [...testTools.map((name) => tools[name]), ...Object.values(upgradeTestFrom)];
    for (const tool of builds) {
      const result = await ensureBinary(tool, {
        log: (line) => reporter.info(`${tool.name}: ${line}`),
        activity: (title) => reporter.activity(title),
      });
      if (result.built) reporter.success(`built ${tool.name} ${tool.version} in ${result.record?.seconds}s`);
      else reporter.debug(`${tool.name} ${tool.version} cached at ${result.path}`);
    }
    if (process.getuid?.() === 0) {
      const imageStep = reporter.step("node image"); // a heartbeat through the long debootstrap
      const image = await ensureImage((line) => reporter.info(line));
      imageStep.done(image.built ? `built in ${image.seconds}s` : "cached");
      // the energy exporter's bundle is tested under the node the exec-profile nodes have
      await ensureDebianNodejs18((line) => reporter.info(line));
    } else reporter.warn("not root: tests that boot local nodes will fail (they need root)");
    return 0;
  },
});
