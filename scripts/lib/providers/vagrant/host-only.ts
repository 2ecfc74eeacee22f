/**
 * VirtualBox's host-only address rule, as Vagrant applies it (Vagrant 2.3's
 * virtualbox provider, action/network.rb): every machine's address must lie in one
 * of the ranges listed on the `*` lines of /etc/vbox/networks.conf when that file
 * exists (none listed: no address is allowed), else in 192.168.56.0/21. Entries are
 * CIDRs or single addresses; IPv6 entries cannot hold an IPv4 machine and are skipped.
 */
import { existsSync, readFileSync } from "node:fs";
import { InputError } from "../../errors.ts";
import { cidrSize, type Ipv4Cidr, parseCidr, parseIpv4 } from "../../util/net.ts";

export const vboxNetworksConf = "/etc/vbox/networks.conf";
export const virtualBoxDefaultRange = "192.168.56.0/21";

export interface HostOnlyRanges {
  /** as written, e.g. 192.168.56.0/21 */
  ranges: string[];
  /** where they come from: the file, or VirtualBox's default */
  source: string;
}

/** the ranges of a networks.conf text: `* 10.0.0.0/8 192.168.0.0/16` lines */
export function parseNetworksConf(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.startsWith("*"))
    .flatMap((line) => line.slice(1).trim().split(/\s+/))
    .filter((entry) => entry !== "");
}

export function hostOnlyRanges(file = vboxNetworksConf): HostOnlyRanges {
  if (!existsSync(file)) return { ranges: [virtualBoxDefaultRange], source: "VirtualBox's default (no /etc/vbox/networks.conf)" };
  return { ranges: parseNetworksConf(readFileSync(file, "utf8")), source: file };
}

function asCidr(entry: string): Ipv4Cidr | undefined {
  return entry.includes("/") ? parseCidr(entry) : parseIpv4(entry) === undefined ? undefined : parseCidr(`${entry}/32`);
}

export function insideRanges(ip: string, ranges: string[]): boolean {
  const address = parseIpv4(ip);
  if (address === undefined) return false;
  return ranges.some((entry) => {
    const range = asCidr(entry);
    return range !== undefined && address >= range.network && address < range.network + cidrSize(range);
  });
}

/** Refuses the first machine whose address VirtualBox (through Vagrant) would refuse, before anything runs. */
export function checkHostOnlyAddresses(machines: { name: string; ip: string }[], allowed: HostOnlyRanges): void {
  const outside = machines.filter((m) => !insideRanges(m.ip, allowed.ranges));
  if (!outside.length) return;
  const listed = allowed.ranges.length ? allowed.ranges.join(", ") : "none";
  throw new InputError(
    `provider.vagrant.cidr gives ${outside.map((m) => `${m.name} ${m.ip}`).join(", ")}, outside VirtualBox's allowed host-only ranges (${listed}; from ${allowed.source}).`,
    {
      hint: `${allowed.ranges.length ? `Use a provider.vagrant.cidr inside ${listed}, or allow` : "Allow"} the range in ${vboxNetworksConf} with a line such as '* ${outside[0]?.ip.replace(/\.\d+$/, ".0")}/24' (VirtualBox and Vagrant read it), or set provider.vagrant.provider to libvirt.`,
    },
  );
}
