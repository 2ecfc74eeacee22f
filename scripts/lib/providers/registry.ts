/**
 * The providers there are, named once: the config and inventory schemas, the
 * `--provider` help and its validation all derive from this list, and
 * providers/index.ts must give an implementation for each (its type says so).
 * Data only, so the schemas can import it without loading any provider.
 */
import { InputError } from "../errors.ts";

export const providerRegistry = {
  local: "systemd-nspawn nodes on this machine (needs root)",
  vagrant: "Vagrant VMs (VirtualBox or libvirt)",
  digitalocean: "DigitalOcean droplets in a VPC (needs DIGITALOCEAN_TOKEN)",
  static: "hosts you already have, listed in an inventory file",
} as const;

export type ProviderType = keyof typeof providerRegistry;

export const providerTypes = Object.keys(providerRegistry) as [ProviderType, ...ProviderType[]];

export const defaultProvider: ProviderType = "local";

/** The `--provider` option's help line. */
export function providerOptionHelp(suffix: string): string {
  return `${providerTypes.map((t) => (t === defaultProvider ? `${t} (default)` : t)).join(", ")}; ${suffix}`;
}

/** A `--provider` value checked against the registry. */
export function parseProviderType(value: string): ProviderType {
  if (!(providerTypes as string[]).includes(value)) {
    throw new InputError(`--provider must be one of ${providerTypes.join(", ")}, not '${value}'.`, {
      details: providerTypes.map((t) => `${t}: ${providerRegistry[t]}`),
    });
  }
  return value as ProviderType;
}
