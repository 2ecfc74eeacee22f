import { $ } from "zx";
import { OperationError } from "../../errors.ts";

const tools: [command: string, debianPackage: string][] = [
  ["systemd-nspawn", "systemd-container"],
  ["debootstrap", "debootstrap"],
  ["ip", "iproute2"],
  ["ssh-keygen", "openssh-client"],
  ["mountpoint", "util-linux"],
];

export const localProviderPackages = [...new Set(tools.map(([, pkg]) => pkg))];

/** The local provider needs root and a few Debian packages; say exactly which are missing. */
export async function checkLocalRequirements(): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new OperationError("The local provider needs root: it creates network namespaces, a bridge and overlay mounts.", {
      hint: "Run the command as root (e.g. sudo -E npm run bootstrap), or use --provider static/vagrant/digitalocean.",
    });
  }
  const missing: string[] = [];
  for (const [command, pkg] of tools) {
    if ((await $({ quiet: true, nothrow: true })`sh -c ${`command -v ${command}`}`).exitCode !== 0) missing.push(pkg);
  }
  if (missing.length) {
    throw new OperationError(
      `The local provider needs ${missing.join(", ")}, which ${missing.length === 1 ? "is" : "are"} not installed.`,
      {
        hint: `Install with: apt-get install -y ${missing.join(" ")}`,
      },
    );
  }
}
