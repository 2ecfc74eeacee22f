/**
 * Which version changes a re-run may apply: the products keep raft state that
 * an older binary may not read (no downgrades), and Nomad supports upgrades of
 * at most two minor versions at a time. Checked before any new binary reaches a
 * node, against the version installed on the first node that has it.
 */
import { InputError } from "../errors.ts";

const parse = (version: string) => {
  const [major = 0, minor = 0, patch = 0] = version.replace(/^v/, "").split(/[.+-]/).map(Number);
  return { major, minor, patch };
};

/** Why going from `installed` to `wanted` is refused, or undefined when it is allowed. */
export function upgradeRefusal(product: "consul" | "nomad" | "vault", installed: string, wanted: string): string | undefined {
  const from = parse(installed);
  const to = parse(wanted);
  const order = (v: typeof from) => v.major * 1e6 + v.minor * 1e3 + v.patch;
  if (order(to) < order(from)) return `${product} ${installed} → ${wanted} is a downgrade, which its raft data does not support`;
  if (product === "nomad" && (to.major !== from.major || to.minor - from.minor > 2))
    return `nomad ${installed} → ${wanted} jumps more than two minor versions, which Nomad does not support`;
  return undefined;
}

/** `nomad version`'s first line ("Nomad v1.11.3"), `consul version`'s ("Consul v1.22.5"), `vault version`'s ("Vault v1.21.0 (…)"). */
export function versionFromOutput(line: string): string | undefined {
  return /\bv(\d+\.\d+\.\d+)/.exec(line)?.[1];
}

/** Throws a bad-input error naming every refused change, with the way out. */
export function checkUpgradePaths(changes: { product: "consul" | "nomad" | "vault"; installed: string; wanted: string }[]): void {
  const refused = changes.flatMap((c) => upgradeRefusal(c.product, c.installed, c.wanted) ?? []);
  if (!refused.length) return;
  throw new InputError(`The versions in the config cannot be applied to this cluster: ${refused.join("; ")}.`, {
    hint: "Set versions.* back to the installed version, or upgrade in supported steps (Nomad: at most two minor versions per run), one run each.",
  });
}
