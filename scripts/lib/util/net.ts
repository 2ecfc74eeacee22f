/** Small IPv4 helpers for CIDR checks and address allocation. */

export interface Ipv4Cidr {
  network: number;
  prefix: number;
}

export function parseIpv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

export function parseCidr(text: string): Ipv4Cidr | undefined {
  const [address, prefixText] = text.split("/");
  if (address === undefined || prefixText === undefined || !/^\d{1,2}$/.test(prefixText)) return undefined;
  const ip = parseIpv4(address);
  const prefix = Number(prefixText);
  if (ip === undefined || prefix > 32) return undefined;
  const size = 2 ** (32 - prefix);
  return { network: ip - (ip % size), prefix };
}

export function cidrSize(cidr: Ipv4Cidr): number {
  return 2 ** (32 - cidr.prefix);
}

export function cidrsOverlap(a: Ipv4Cidr, b: Ipv4Cidr): boolean {
  return a.network < b.network + cidrSize(b) && b.network < a.network + cidrSize(a);
}

export function isIpv4(text: string): boolean {
  return parseIpv4(text) !== undefined;
}
