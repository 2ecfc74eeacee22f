/** Names and tags of a cluster's DigitalOcean resources, in one place so up, status and down agree. */
export function doNames(cluster: string) {
  const base = `hashistack-${cluster}`;
  return {
    /** every droplet and volume carries it; teardown finds resources by it */
    tag: base,
    droplet: (host: string) => `${cluster}-${host}`,
    sshKey: base,
    vpc: base,
    firewall: base,
    volume: `${base}-data`,
    project: base,
  };
}
