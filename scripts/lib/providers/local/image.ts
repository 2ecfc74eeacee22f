/**
 * The base Debian image for local nodes, built once with debootstrap into the
 * cache and versioned by its package list and preparation steps: change either
 * and a new image is built beside the old one.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { chmod, copyFile, mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { cacheRoot } from "../../binaries/build.ts";
import { withLock } from "../../binaries/lock.ts";
import { OperationError } from "../../errors.ts";
import { shellQuote } from "../../remote/quote.ts";
import { templatesDir } from "../../render/engine.ts";
import { hostRun } from "./host-command.ts";

export const imagePackages = [
  "systemd",
  "systemd-sysv",
  "dbus",
  "systemd-resolved",
  "openssh-server",
  "ca-certificates",
  "curl",
  "unzip",
  "iproute2",
  "procps",
  // prepare sends the binaries zstd-packed to nodes that have it (binaries/compressed.ts)
  "zstd",
  // the energy exporter's runtime in the exec profile (Prometheus, Alertmanager and Fabio
  // are built binaries that prepare uploads)
  "nodejs",
];

/** Units that must not run in every node: timers that would wake 5+ nodes at once. */
const disabledUnits = [
  "apt-daily.timer",
  "apt-daily-upgrade.timer",
  "systemd-timesyncd.service",
  "e2scrub_all.timer",
  "fstrim.timer",
];

const sshdConfig = `# hashistack-bootstrap local node
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UseDNS no
`;

const suite = "bookworm";
const prepareVersion = 2;
const nodeFilesDir = join(templatesDir, "local-node");
/** files added to every local node: [source in templates/local-node, destination, mode] */
const nodeFiles: [string, string, number][] = [
  ["cgroups-rw.sh", "usr/local/sbin/hashistack-cgroups-rw", 0o755],
  ["cgroups-rw.service", "etc/systemd/system/hashistack-cgroups-rw.service", 0o644],
];

export function imageId(): string {
  const digest = createHash("sha256")
    .update(JSON.stringify({ suite, packages: imagePackages, disabledUnits, sshdConfig, prepareVersion }))
    .update(nodeFiles.map(([source]) => readFileSync(join(nodeFilesDir, source), "utf8")).join("\n"))
    .digest("hex")
    .slice(0, 12);
  return `debian-${suite}-${digest}`;
}

export function imageRoot(id = imageId()): string {
  return join(cacheRoot(), "images", id, "rootfs");
}

export function mirror(): string {
  return process.env.HASHISTACK_DEBIAN_MIRROR ?? "http://deb.debian.org/debian";
}

export async function ensureImage(log: (line: string) => void): Promise<{ root: string; built: boolean; seconds: number }> {
  const id = imageId();
  const root = imageRoot(id);
  const marker = join(root, "etc", "hashistack-image");
  if (existsSync(marker)) return { root, built: false, seconds: 0 };
  return withLock(join(cacheRoot(), "locks", `image-${id}`), async () => {
    if (existsSync(marker)) return { root, built: false, seconds: 0 };
    const started = Date.now();
    const building = join(cacheRoot(), "images", id, `rootfs.building-${process.pid}`);
    await rm(building, { recursive: true, force: true });
    await mkdir(building, { recursive: true });
    log(`building the node image ${id} with debootstrap from ${mirror()} (a few minutes, once)`);
    const result = await hostRun(
      ["debootstrap", "--variant=minbase", `--include=${imagePackages.join(",")}`, suite, building, mirror()],
      { allowFailure: true, timeoutMs: 30 * 60_000 },
    );
    if (result.code !== 0) {
      await rm(building, { recursive: true, force: true });
      throw new OperationError(`debootstrap could not build the node image (exit ${result.code}).`, {
        details: (result.stdout + result.stderr).trim().split("\n").slice(-10),
        hint: "Check that the Debian mirror is reachable (set HASHISTACK_DEBIAN_MIRROR to use another one).",
      });
    }
    await prepare(building);
    await writeFile(join(building, "etc", "hashistack-image"), `${id}\n`);
    await rm(root, { recursive: true, force: true });
    await rename(building, root);
    return { root, built: true, seconds: Math.round((Date.now() - started) / 1000) };
  });
}

/** Strip per-machine identity and stop services that every node would otherwise run. */
async function prepare(root: string): Promise<void> {
  for (const file of await readdir(join(root, "etc", "ssh"))) {
    if (file.startsWith("ssh_host_")) await rm(join(root, "etc", "ssh", file));
  }
  await writeFile(join(root, "etc", "machine-id"), "");
  await rm(join(root, "var", "lib", "dbus", "machine-id"), { force: true });
  await hostRun(["systemctl", `--root=${root}`, "disable", ...disabledUnits], { allowFailure: true });
  await hostRun(["systemctl", `--root=${root}`, "mask", ...disabledUnits]);
  for (const [source, destination, mode] of nodeFiles) {
    await mkdir(join(root, destination, ".."), { recursive: true });
    await copyFile(join(nodeFilesDir, source), join(root, destination));
    await chmod(join(root, destination), mode);
  }
  await hostRun(["systemctl", `--root=${root}`, "enable", "ssh.service", "hashistack-cgroups-rw.service"]);
  await mkdir(join(root, "etc", "ssh", "sshd_config.d"), { recursive: true });
  await writeFile(join(root, "etc", "ssh", "sshd_config.d", "hashistack.conf"), sshdConfig);
  const quoted = shellQuote(root);
  await hostRun(["sh", "-c", `rm -rf ${quoted}/var/cache/apt/archives/*.deb ${quoted}/var/lib/apt/lists/*`]);
}
