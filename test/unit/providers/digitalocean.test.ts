import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { $ } from "zx";
import { DoApiError } from "../../../scripts/lib/providers/digitalocean/client.ts";
import { md5Fingerprint } from "../../../scripts/lib/providers/digitalocean/fingerprint.ts";
import { isBusy } from "../../../scripts/lib/providers/digitalocean/timing.ts";
import { planDroplets } from "../../../scripts/lib/providers/digitalocean/reconcile.ts";
import { desiredDroplets, firewallBody, type Droplet } from "../../../scripts/lib/providers/digitalocean/resources.ts";
import { makeConfig, tempDir } from "../../helpers/fixtures.ts";

describe("DigitalOcean SSH key fingerprint", () => {
  it("matches ssh-keygen's MD5 fingerprint for ed25519 and RSA keys", async () => {
    const dir = await tempDir("fp");
    try {
      for (const type of ["ed25519", "rsa"]) {
        const file = join(dir.path, type);
        await $({ quiet: true })`ssh-keygen -q -t ${type} -N ${""} -C ${"a comment"} -f ${file}`;
        const line = (await $({ quiet: true })`ssh-keygen -l -E md5 -f ${file}.pub`).stdout;
        const expected = /MD5:([0-9a-f:]+)/.exec(line)?.[1];
        expect(md5Fingerprint(await readFile(`${file}.pub`, "utf8"))).toBe(expected);
      }
    } finally {
      await dir.remove();
    }
  });

  it("refuses text that is not a public key, naming the problem", () => {
    expect(() => md5Fingerprint("-----BEGIN OPENSSH PRIVATE KEY-----")).toThrow(/Not an OpenSSH public key/);
    expect(() => md5Fingerprint("ssh-ed25519 AAAAC3NzaC1yc2EAAAADAQABAAABAQ x")).toThrow(/damaged/);
  });
});

describe("DigitalOcean desired resources and reconcile", () => {
  const config = makeConfig({
    name: "demo",
    provider: { type: "digitalocean", digitalocean: { allowedCidrs: ["192.0.2.0/24"] } },
  });
  const desired = desiredDroplets(config, "aa:bb", "vpc-1");
  const droplet = (name: string, id: number): Droplet => ({
    id,
    name,
    status: "active",
    tags: ["hashistack-demo"],
    size_slug: "s-1vcpu-2gb",
    region: { slug: "lon1" },
    networks: { v4: [] },
    volume_ids: [],
  });

  it("tags droplets with the cluster and role tags and renders cloud-init", () => {
    expect(desired.map((d) => [d.body.name, d.body.tags])).toEqual([
      ["demo-server-1", ["hashistack-demo", "server", "vault"]],
      ["demo-server-2", ["hashistack-demo", "server", "vault"]],
      ["demo-server-3", ["hashistack-demo", "server", "vault"]],
      ["demo-client-1", ["hashistack-demo", "client"]],
      ["demo-client-2", ["hashistack-demo", "client"]],
    ]);
    expect(desired[0]?.body.user_data).toMatch(/^#cloud-config\n/);
    expect(desired[0]?.body.user_data).toContain('hostname: "demo-server-1"');
    expect(desired.every((d) => d.body.vpc_uuid === "vpc-1" && d.body.ssh_keys[0] === "aa:bb")).toBe(true);
  });

  it("opens SSH and the UIs only to allowed CIDRs and cluster ports only to the cluster tag", () => {
    const body = firewallBody(makeConfig({ name: "demo", provider: { digitalocean: { allowedCidrs: ["192.0.2.0/24"] } } }));
    for (const rule of body.inbound_rules) {
      expect(rule.sources).toEqual(
        rule.ports === "1-65535" || rule.protocol === "icmp" ? { tags: ["hashistack-demo"] } : { addresses: ["192.0.2.0/24"] },
      );
    }
  });

  it("creates only missing droplets, ignores other names, refuses duplicates", () => {
    const plan = planDroplets(desired, [droplet("demo-server-2", 1), droplet("demo-old", 2)]);
    expect(plan.existing.map((e) => e.droplet.id)).toEqual([1]);
    expect(plan.missing).toHaveLength(4);
    expect(plan.extra.map((d) => d.name)).toEqual(["demo-old"]);
    expect(() => planDroplets(desired, [droplet("demo-server-2", 1), droplet("demo-server-2", 3)])).toThrow(
      /2 droplets are named 'demo-server-2'.*ids 1, 3/,
    );
  });
});

describe("teardown: which refusals mean 'not yet'", () => {
  const refused = (status: number, message: string) =>
    new DoApiError("DELETE", "/v2/volumes/x", status, "some_id", message, "req-1");

  it("retries 409 and 412, a 403 for VPC members and a 422 that says something is in progress", () => {
    expect(isBusy(refused(409, "attached volume can not be deleted"))).toBe(true);
    expect(isBusy(refused(412, "cannot delete a project with resources"))).toBe(true);
    expect(isBusy(refused(403, "Can not delete VPC with members"))).toBe(true);
    expect(isBusy(refused(422, "Droplet already has a pending event."))).toBe(true);
  });

  it("reports any other 422 or 403 at once", () => {
    expect(isBusy(refused(422, "Volume is protected"))).toBe(false);
    expect(isBusy(refused(403, "You do not have access for the attempted action."))).toBe(false);
    expect(isBusy(refused(400, "bad request"))).toBe(false);
    expect(isBusy(new Error("not an API error"))).toBe(false);
  });
});
