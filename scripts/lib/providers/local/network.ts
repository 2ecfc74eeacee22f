/**
 * The local cluster network: a host bridge holding the gateway address and one
 * network namespace per node, joined to the bridge by a veth pair, with a fixed
 * address. Every step checks before it acts, so it is safe to repeat.
 */
import { existsSync } from "node:fs";
import { InputError } from "../../errors.ts";
import { cidrsOverlap, parseCidr } from "../../util/net.ts";
import { hostRun } from "./host-command.ts";
import type { LocalNames } from "./names.ts";

interface RouteEntry {
  dst: string;
  dev?: string;
}

export async function linkExists(name: string, netns?: string): Promise<boolean> {
  const args = netns ? ["ip", "-n", netns, "link", "show", name] : ["ip", "link", "show", name];
  return (await hostRun(args, { allowFailure: true })).code === 0;
}

export function netnsExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`);
}

/** Refuse a CIDR that overlaps a route this machine already has (other than our own bridge). */
export async function checkCidrIsFree(cidrText: string, bridge: string): Promise<void> {
  const cidr = parseCidr(cidrText);
  if (!cidr) throw new InputError(`provider.local.cidr '${cidrText}' is not an IPv4 CIDR.`);
  const routes = JSON.parse((await hostRun(["ip", "-j", "-4", "route", "show"])).stdout || "[]") as RouteEntry[];
  for (const route of routes) {
    if (route.dev === bridge || route.dst === "default") continue;
    const dst = parseCidr(route.dst.includes("/") ? route.dst : `${route.dst}/32`);
    if (dst && cidrsOverlap(cidr, dst)) {
      throw new InputError(
        `provider.local.cidr ${cidrText} overlaps the existing route ${route.dst}${route.dev ? ` on ${route.dev}` : ""}.`,
        {
          hint: "Choose a free private range in cluster.yaml (provider.local.cidr), e.g. 10.99.0.0/24 or 10.123.0.0/24.",
        },
      );
    }
  }
}

export async function ensureBridge(names: LocalNames, gatewayCidr: string): Promise<string> {
  const { bridge } = names;
  if (!(await linkExists(bridge))) await hostRun(["ip", "link", "add", bridge, "type", "bridge"]);
  const addresses = (await hostRun(["ip", "-4", "-o", "addr", "show", "dev", bridge])).stdout;
  if (!addresses.includes(` ${gatewayCidr} `)) await hostRun(["ip", "addr", "add", gatewayCidr, "dev", bridge]);
  await hostRun(["ip", "link", "set", bridge, "up"]);
  return bridge;
}

export async function ensureNodeNetwork(names: LocalNames, node: string, addressCidr: string, gateway: string): Promise<string> {
  const netns = names.netns(node);
  const hostVeth = names.hostVeth(node);
  const peer = names.peerVeth(node);
  if (!netnsExists(netns)) await hostRun(["ip", "netns", "add", netns]);
  if (!(await linkExists("eth0", netns))) {
    if (await linkExists(hostVeth)) await hostRun(["ip", "link", "del", hostVeth]); // half-made pair from an interrupted run
    await hostRun(["ip", "link", "add", hostVeth, "type", "veth", "peer", "name", peer]);
    await hostRun(["ip", "link", "set", peer, "netns", netns]);
    await hostRun(["ip", "-n", netns, "link", "set", peer, "name", "eth0"]);
  }
  const inside = (await hostRun(["ip", "-n", netns, "-4", "-o", "addr", "show", "dev", "eth0"])).stdout;
  if (!inside.includes(` ${addressCidr} `)) await hostRun(["ip", "-n", netns, "addr", "add", addressCidr, "dev", "eth0"]);
  await hostRun(["ip", "-n", netns, "link", "set", "lo", "up"]);
  await hostRun(["ip", "-n", netns, "link", "set", "eth0", "up"]);
  await hostRun(["ip", "-n", netns, "route", "replace", "default", "via", gateway]);
  await hostRun(["ip", "link", "set", hostVeth, "master", names.bridge, "up"]);
  return netns;
}

export async function removeNodeNetwork(names: LocalNames, node: string): Promise<string[]> {
  const removed: string[] = [];
  if (await linkExists(names.hostVeth(node))) {
    await hostRun(["ip", "link", "del", names.hostVeth(node)]);
    removed.push(`veth ${names.hostVeth(node)}`);
  }
  if (netnsExists(names.netns(node))) {
    await hostRun(["ip", "netns", "del", names.netns(node)]);
    removed.push(`netns ${names.netns(node)}`);
  }
  return removed;
}

export async function removeBridge(names: LocalNames): Promise<string[]> {
  const { bridge } = names;
  if (!(await linkExists(bridge))) return [];
  await hostRun(["ip", "link", "del", bridge]);
  return [`bridge ${bridge}`];
}
