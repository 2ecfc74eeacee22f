import { describe, expect, it } from "vitest";
import { validationProblems } from "../../helpers/validation.ts";
import { clusterConfigSchema, dockerInstallMethod, runtimeProfile } from "../../../scripts/lib/config/schema.ts";
import { parseYamlText } from "../../../scripts/lib/util/validated-yaml.ts";
import { readFileSync } from "node:fs";

const problems = (yaml: string) => validationProblems(yaml, "cluster.yaml", clusterConfigSchema, "Cluster config");

describe("cluster config", () => {
  it("accepts the committed example and fills defaults", () => {
    const config = parseYamlText(
      readFileSync("cluster.example.yaml", "utf8"),
      "cluster.example.yaml",
      clusterConfigSchema,
      "Cluster config",
    );
    expect(config.name).toBe("demo");
    expect(config.topology).toEqual({ servers: 3, clients: 2, vaultHa: true });
    expect(config.provider.type).toBe("local");
    expect(runtimeProfile(config)).toBe("exec");
    expect(config.versions.nomad).toMatch(/^1\.\d+\.\d+$/);
  });

  it("Vault HA is the default with three servers or three vaultNodes, and false keeps one Vault", () => {
    const topology = (yaml: string) =>
      parseYamlText(`name: lab\n${yaml}`, "c.yaml", clusterConfigSchema, "Cluster config").topology;
    expect(topology("topology:\n  servers: 1\n").vaultHa).toBe(false);
    expect(topology("topology:\n  servers: 3\n").vaultHa).toBe(true);
    expect(topology("topology:\n  servers: 5\n  vaultNodes: [server-1]\n").vaultHa).toBe(false);
    expect(topology("topology:\n  servers: 3\n  vaultHa: false\n").vaultHa).toBe(false);
  });

  it("tls.alertLifetimeLeft: 7 % by default, and only below the 10 % at which renewal happens", () => {
    const parse = (yaml: string) => parseYamlText(`name: lab\n${yaml}`, "c.yaml", clusterConfigSchema, "Cluster config");
    expect(parse("").tls.alertLifetimeLeft).toBe(0.07);
    expect(parse("tls:\n  alertLifetimeLeft: 0.05\n").tls.alertLifetimeLeft).toBe(0.05);
    expect(problems("name: lab\ntls:\n  alertLifetimeLeft: 0.2\n")[0]).toMatch(/tls\.alertLifetimeLeft: must stay below 0\.1/);
  });

  it("needs only a name", () => {
    const config = parseYamlText("name: lab\n", "c.yaml", clusterConfigSchema, "Cluster config");
    expect(config.tls).toEqual({ rootTtl: "87600h", intermediateTtl: "43800h", leafTtl: "72h", alertLifetimeLeft: 0.07 });
    expect(runtimeProfile({ ...config, provider: { ...config.provider, type: "digitalocean" } })).toBe("docker");
  });

  it("rejects an unknown field with its line, path and the misspelt key", () => {
    expect(problems("name: lab\ntopology:\n  servers: 3\n  clinets: 2\n")).toEqual([
      "cluster.yaml:4:12 topology: unknown field 'clinets' (check the spelling; allowed fields are listed in cluster.example.yaml)",
    ]);
  });

  it("names expected and found values", () => {
    expect(problems("name: lab\nprovider:\n  type: aws\n")).toEqual([
      'cluster.yaml:3:9 provider.type: expected one of "local", "vagrant", "digitalocean", "static", found "aws"',
    ]);
    expect(problems("name: lab\ntopology:\n  servers: three\n")).toEqual([
      'cluster.yaml:3:12 topology.servers: expected number, found "three"',
    ]);
  });

  it("rejects an even server count and explains why", () => {
    expect(problems("name: lab\ntopology:\n  servers: 2\n")).toEqual([
      "cluster.yaml:3:12 topology.servers: an odd number of servers is needed for a raft quorum (1, 3, 5 or 7), found number 2",
    ]);
  });

  it("keeps root ≥ intermediate ≥ leaf lifetimes", () => {
    expect(problems("name: lab\ntls:\n  rootTtl: 24h\n  leafTtl: 48h\n")).toEqual([
      "cluster.yaml:3:3 tls.intermediateTtl: 43800h must not exceed tls.rootTtl (24h): an intermediate cannot outlive its root",
    ]);
    expect(problems("name: lab\ntls:\n  intermediateTtl: 24h\n  leafTtl: 48h\n")).toEqual([
      "cluster.yaml:4:12 tls.leafTtl: 48h must not exceed tls.intermediateTtl (24h): a certificate cannot outlive its issuer",
    ]);
    expect(problems("name: lab\ntls:\n  leafTtl: 3 days\n")).toEqual([
      'cluster.yaml:3:12 tls.leafTtl: expected a duration such as 72h, 30m or 8760h, found "3 days"',
    ]);
  });

  it("rejects a bad cluster name and a bad CIDR", () => {
    expect(problems("name: Demo_1\nprovider:\n  local:\n    cidr: 10.99.0.0/33\n")).toEqual([
      "cluster.yaml:1:7 name: expected lower-case letters, digits and '-', 2–32 characters, starting with a letter and not ending with '-', found \"Demo_1\"",
      'cluster.yaml:4:11 provider.local.cidr: expected an IPv4 CIDR such as 10.99.0.0/24, found "10.99.0.0/33"',
    ]);
  });

  it("requires allowedCidrs with the DigitalOcean provider: no silent 0.0.0.0/0", () => {
    expect(problems("name: lab\nprovider:\n  type: digitalocean\n")).toEqual([
      'cluster.yaml:3:3 provider.digitalocean.allowedCidrs: provider.digitalocean.allowedCidrs is required: the address ranges that may reach SSH and the UIs, e.g. ["203.0.113.7/32"] for your own address (["0.0.0.0/0"] opens them to the whole internet)',
    ]);
    const given = clusterConfigSchema.parse({
      name: "lab",
      provider: { type: "digitalocean", digitalocean: { allowedCidrs: ["198.51.100.7/32"] } },
    });
    expect(given.provider.digitalocean.allowedCidrs).toEqual(["198.51.100.7/32"]);
  });

  it("requires the static inventory when the provider is static", () => {
    expect(problems("name: lab\nprovider:\n  type: static\n")).toEqual([
      "cluster.yaml:3:3 provider.static: provider.type is static but provider.static.inventory is not set",
    ]);
  });

  it("reports a missing name and broken YAML with positions", () => {
    expect(problems("topology: {}\n")).toEqual(["cluster.yaml:1:1 name: expected string, found nothing"]);
    expect(problems("name: x\n  bad: [\n")[0]).toBe("cluster.yaml:1:7: Nested mappings are not allowed in compact mappings");
  });

  it("rejects Vault HA without three nodes", () => {
    expect(problems("name: lab\ntopology:\n  servers: 1\n  vaultHa: true\n")).toEqual([
      "cluster.yaml:4:12 topology.vaultHa: Vault HA needs three nodes: raise topology.servers to 3 or list three topology.vaultNodes, found boolean true",
    ]);
  });
});

describe("jobs.registry and jobs.docker", () => {
  it("accepts a mirror address and a served build, and defaults to none", () => {
    expect(parseYamlText("name: lab\n", "c.yaml", clusterConfigSchema, "Cluster config").jobs.registry).toBeUndefined();
    const mirror = parseYamlText(
      "name: lab\nprovider:\n  type: vagrant\njobs:\n  registry:\n    address: registry.example.com\n",
      "c.yaml",
      clusterConfigSchema,
      "Cluster config",
    );
    expect(mirror.jobs.registry).toEqual({ address: "registry.example.com", build: false, insecure: false });
    const built = parseYamlText(
      "name: lab\njobs:\n  runtime: docker\n  registry:\n    address: 10.73.0.1:5000\n    build: true\n    insecure: true\n",
      "c.yaml",
      clusterConfigSchema,
      "Cluster config",
    );
    expect(built.jobs.registry?.build).toBe(true);
  });

  it("rejects a URL, a served build without a port or without insecure, and a registry for the exec profile", () => {
    expect(
      problems("name: lab\nprovider:\n  type: vagrant\njobs:\n  registry:\n    address: https://r.example.com/v2\n")[0],
    ).toMatch(/jobs\.registry\.address: expected host\[:port\] of a registry, without scheme or path/);
    expect(
      problems("name: lab\njobs:\n  runtime: docker\n  registry:\n    address: 10.73.0.1:5000\n    build: true\n")[0],
    ).toMatch(/jobs\.registry\.insecure: the registry that build serves speaks plain HTTP/);
    expect(
      problems(
        "name: lab\njobs:\n  runtime: docker\n  registry:\n    address: 10.73.0.1\n    build: true\n    insecure: true\n",
      )[0],
    ).toMatch(/jobs\.registry\.address: build serves the registry itself: give a port/);
    // local clusters default to exec
    expect(problems("name: lab\njobs:\n  registry:\n    address: 10.73.0.1:5000\n")[0]).toMatch(
      /jobs\.registry: the registry is for the docker profile, but this cluster runs jobs\.runtime: exec/,
    );
  });

  it("docker.io comes as uploaded .debs on local nodes and from apt elsewhere, unless set", () => {
    const local = parseYamlText("name: lab\n", "c.yaml", clusterConfigSchema, "Cluster config");
    expect(dockerInstallMethod(local)).toBe("upload");
    expect(dockerInstallMethod({ ...local, provider: { ...local.provider, type: "vagrant" } })).toBe("apt");
    const pinned = parseYamlText(
      "name: lab\njobs:\n  docker:\n    install: upload\n",
      "c.yaml",
      clusterConfigSchema,
      "Cluster config",
    );
    expect(dockerInstallMethod({ ...pinned, provider: { ...pinned.provider, type: "digitalocean" } })).toBe("upload");
    expect(problems("name: lab\njobs:\n  docker:\n    version: 'x y'\n")[0]).toMatch(
      /jobs\.docker\.version: expected a Debian package version/,
    );
  });
});
