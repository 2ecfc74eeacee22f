/** Make sure Debian packages are installed, installing missing ones when we are root. */
import { $ } from "zx";
import { OperationError } from "../errors.ts";

export async function missingDebianPackages(packages: string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const name of packages) {
    const status = await $({ quiet: true, nothrow: true })`dpkg-query -W -f=${"${Status}"} ${name}`;
    if (!status.stdout.includes("install ok installed")) missing.push(name);
  }
  return missing;
}

export async function ensureDebianPackages(packages: string[], log: (line: string) => void): Promise<string[]> {
  const missing = await missingDebianPackages(packages);
  if (missing.length === 0) return [];
  if (process.getuid?.() !== 0) {
    throw new OperationError(`Missing Debian packages: ${missing.join(", ")}.`, {
      hint: `Install them with 'sudo apt-get install -y ${missing.join(" ")}' and run the command again.`,
    });
  }
  log(`installing Debian packages: ${missing.join(", ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const update = await $({ quiet: true, nothrow: true, env })`apt-get update`;
  const install = await $({ quiet: true, nothrow: true, env })`apt-get install -y --no-install-recommends ${missing}`;
  if (update.exitCode !== 0 || install.exitCode !== 0) {
    throw new OperationError(`apt-get could not install ${missing.join(", ")}.`, {
      details: (install.stderr || update.stderr).trim().split("\n").slice(-8),
      hint: "Check the Debian package sources (apt-get update) and try again.",
    });
  }
  return missing;
}
