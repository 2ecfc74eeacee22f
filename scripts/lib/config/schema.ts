/**
 * The cluster config (`cluster.yaml`). Strict objects everywhere: an unknown
 * field is an error, so a misspelt option never silently falls back to a default.
 */
import { defaultProvider, providerTypes } from "../providers/registry.ts";
import { z } from "zod";
import {
  defaultReleasesUrl,
  defaultSigningKeyUrl,
  hashicorpSigningKeyFingerprint,
  normalizeFingerprint,
} from "../binaries/release-source.ts";
import { durationSeconds, isDuration } from "../util/duration.ts";
import { parseCidr } from "../util/net.ts";

/** A cluster name is a DNS label: it names paths, resources, tags and generated files' headers. */
export const clusterNamePattern = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$/;
export const clusterNameRule =
  "lower-case letters, digits and '-', 2–32 characters, starting with a letter and not ending with '-'";
const name = z.string().regex(clusterNamePattern, `expected ${clusterNameRule}`);
const cidr = z.string().refine((v) => parseCidr(v) !== undefined, "expected an IPv4 CIDR such as 10.99.0.0/24");
const duration = z.string().refine(isDuration, "expected a duration such as 72h, 30m or 8760h");
const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), "expected an http:// or https:// URL")
  .transform((u) => u.replace(/\/+$/, ""));
const semver = z.string().regex(/^\d+\.\d+\.\d+$/, "expected a version such as 1.22.5 (no leading 'v')");

const localProvider = z.strictObject({
  cidr: cidr.default("10.99.0.0/24"),
  bridge: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,14}$/, "expected an interface name of at most 15 characters")
    .optional(),
});

const vagrantProvider = z.strictObject({
  provider: z.enum(["virtualbox", "libvirt"]).default("virtualbox"),
  box: z
    .string()
    .regex(/^[A-Za-z0-9._-]+\/[A-Za-z0-9._-]+$/, "expected a Vagrant box name such as debian/bookworm64")
    .default("debian/bookworm64"),
  /** VirtualBox: inside its host-only ranges (/etc/vbox/networks.conf), checked by the provider on this host */
  cidr: cidr.default("192.168.56.0/24"),
  cpus: z.number().int().min(1).default(1),
  memoryMb: z.number().int().min(512).default(2048),
  /** clients often need more memory than servers; default: memoryMb */
  clientMemoryMb: z.number().int().min(512).optional(),
});

const digitalOceanProvider = z.strictObject({
  region: z.string().default("lon1"),
  vpcIpRange: cidr.default("10.10.10.0/24"),
  image: z.string().default("debian-12-x64"),
  serverSize: z.string().default("s-1vcpu-2gb"),
  clientSize: z.string().default("s-1vcpu-1gb"),
  volumeSizeGb: z.number().int().min(0).default(1),
  project: z.string().optional(),
  /** who may reach SSH and the UIs; required with this provider (no silent 0.0.0.0/0) */
  allowedCidrs: z.array(cidr).min(1).optional(),
});

const staticProvider = z.strictObject({
  inventory: z.string().min(1),
});

const provider = z
  .strictObject({
    type: z.enum(providerTypes).default(defaultProvider),
    local: localProvider.default(localProvider.parse({})),
    vagrant: vagrantProvider.default(vagrantProvider.parse({})),
    digitalocean: digitalOceanProvider.default(digitalOceanProvider.parse({})),
    static: staticProvider.optional(),
  })
  .refine((p) => p.type !== "static" || p.static !== undefined, {
    message: "provider.type is static but provider.static.inventory is not set",
    path: ["static"],
  })
  .refine((p) => p.type !== "digitalocean" || p.digitalocean.allowedCidrs !== undefined, {
    message:
      'provider.digitalocean.allowedCidrs is required: the address ranges that may reach SSH and the UIs, e.g. ["203.0.113.7/32"] for your own address (["0.0.0.0/0"] opens them to the whole internet)',
    path: ["digitalocean", "allowedCidrs"],
  });

const topology = z
  .strictObject({
    servers: z.number().int().min(1).max(7).default(3),
    clients: z.number().int().min(0).max(64).default(2),
    /** node names that host Vault; default: the first server (or the first three for HA) */
    vaultNodes: z.array(z.string()).optional(),
    /** default: HA (raft on three nodes) whenever there are three servers or three vaultNodes */
    vaultHa: z.boolean().optional(),
  })
  .refine((t) => t.servers % 2 === 1, {
    message: "an odd number of servers is needed for a raft quorum (1, 3, 5 or 7)",
    path: ["servers"],
  })
  .refine((t) => !t.vaultHa || t.servers >= 3 || (t.vaultNodes?.length ?? 0) >= 3, {
    message: "Vault HA needs three nodes: raise topology.servers to 3 or list three topology.vaultNodes",
    path: ["vaultHa"],
  })
  .transform((t) => ({ ...t, vaultHa: t.vaultHa ?? defaultVaultHa(t) }));

/** One Vault restarts sealed and stops every renewal: three servers are enough for raft, so HA is the default. */
export function defaultVaultHa(t: { servers: number; vaultNodes?: string[] }): boolean {
  return t.vaultNodes ? t.vaultNodes.length >= 3 : t.servers >= 3;
}

const versions = z.strictObject({
  consul: semver.default("1.22.5"),
  nomad: semver.default("1.11.3"),
  vault: semver.default("1.21.0"),
  consulTemplate: semver.default("0.41.1"),
});

const install = z.strictObject({
  /**
   * auto: HashiCorp's verified releases when the release server answers (a short probe),
   * the local build cache otherwise; upload: always the local build cache (air-gapped);
   * download: always releases.hashicorp.com with SHA256SUMS + GPG
   */
  method: z.enum(["auto", "upload", "download"]).default("auto"),
  artifactCache: z.string().optional(),
  /** download: base URL of the release tree (a mirror); HASHISTACK_RELEASES_URL overrides it */
  releasesUrl: httpUrl.default(defaultReleasesUrl),
  /** download: where HashiCorp's release signing key is fetched; HASHISTACK_SIGNING_KEY_URL overrides it */
  signingKeyUrl: httpUrl.default(defaultSigningKeyUrl),
  /** download: the only key whose signature on SHA256SUMS is accepted (primary key fingerprint) */
  signingKeyFingerprint: z
    .string()
    .transform(normalizeFingerprint)
    .pipe(z.string().regex(/^[0-9A-F]{40}$/, "expected a 40-hex-digit OpenPGP fingerprint (spaces allowed)"))
    .default(hashicorpSigningKeyFingerprint),
});

const tls = z
  .strictObject({
    rootTtl: duration.default("87600h"),
    intermediateTtl: duration.default("43800h"),
    /** consul-template's pkiCert renews a leaf at about 85–90 % of this */
    leafTtl: duration.default("72h"),
    /**
     * Alert (Prometheus, status, verify) when an agent certificate has less than this
     * share of its lifetime left: below the 10 % at which renewal happens at the latest,
     * so it means renewal is failing, and high enough to leave hours to fix it (72h leaves: 5 h).
     */
    alertLifetimeLeft: z
      .number()
      .gt(0.005, "must leave time to act: at least 0.005")
      .lt(
        0.1,
        "must stay below 0.1: consul-template renews with 10-15 % of the lifetime left, so a higher share fires on healthy nodes",
      )
      .default(0.07),
  })
  .superRefine((t, ctx) => {
    // a malformed duration is already reported by its own field
    if (![t.rootTtl, t.intermediateTtl, t.leafTtl].every(isDuration)) return;
    if (durationSeconds(t.intermediateTtl) > durationSeconds(t.rootTtl)) {
      ctx.addIssue({
        code: "custom",
        path: ["intermediateTtl"],
        message: `${t.intermediateTtl} must not exceed tls.rootTtl (${t.rootTtl}): an intermediate cannot outlive its root`,
      });
    }
    if (durationSeconds(t.leafTtl) > durationSeconds(t.intermediateTtl)) {
      ctx.addIssue({
        code: "custom",
        path: ["leafTtl"],
        message: `${t.leafTtl} must not exceed tls.intermediateTtl (${t.intermediateTtl}): a certificate cannot outlive its issuer`,
      });
    }
    if (durationSeconds(t.leafTtl) < 60) {
      ctx.addIssue({ code: "custom", path: ["leafTtl"], message: "must be at least 1m so renewal can keep up" });
    }
  });

const toggled = <Shape extends z.ZodRawShape>(shape: Shape, enabled = true) =>
  z.strictObject({ enabled: z.boolean().default(enabled), ...shape });

/** Docker Engine on the clients of a docker-profile cluster (scripts/lib/docker/engine.ts) */
const docker = z.strictObject({
  /** apt: from the node's own apt sources; upload: .debs fetched on this (Debian) machine and uploaded. Default: upload on local nodes, else apt */
  install: z.enum(["apt", "upload"]).optional(),
  /** the docker.io package version; default: the pin for the node's OS release */
  version: z
    .string()
    .regex(/^[A-Za-z0-9.+~:-]+$/, "expected a Debian package version such as 20.10.24+dfsg1-1+deb12u1+b6")
    .optional(),
});

/** host[:port] of a registry, no scheme and no path */
const registryAddress = z
  .string()
  .regex(
    /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::\d{1,5})?$/,
    "expected host[:port] of a registry, without scheme or path, e.g. 10.99.0.1:5000 or registry.example.com",
  );

/**
 * Where the docker profile's images come from. Without it: the pinned official
 * images. With an address: the same repositories and tags under that registry
 * (a mirror), or, with build, images this tool builds from cached Debian parts
 * and serves from this machine (scripts/lib/images/).
 */
const registry = z
  .strictObject({
    address: registryAddress,
    /** build the images here and serve them from this machine at address (local and Vagrant nodes can reach it) */
    build: z.boolean().default(false),
    /** plain HTTP: Docker on the clients gets an insecure-registries entry for exactly this address */
    insecure: z.boolean().default(false),
  })
  .superRefine((r, ctx) => {
    if (r.build && !r.insecure) {
      ctx.addIssue({
        code: "custom",
        path: ["insecure"],
        message:
          "the registry that build serves speaks plain HTTP (read-only, on the private address): set insecure: true to accept that for this one address",
      });
    }
    if (r.build && !/:\d+$/.test(r.address)) {
      ctx.addIssue({
        code: "custom",
        path: ["address"],
        message: "build serves the registry itself: give a port, e.g. 10.99.0.1:5000",
      });
    }
  });

const jobs = z
  .strictObject({
    runtime: z.enum(["docker", "exec"]).optional(),
    docker: docker.default({}),
    registry: registry.optional(),
    prometheus: toggled({ retention: duration.default("360h") }).default({ enabled: true, retention: "360h" }),
    // the Slack webhook URL is a secret: given once as SLACK_WEBHOOK_URL, kept 0600 in the state
    alertmanager: toggled({}).default({ enabled: true }),
    grafana: toggled({}).default({ enabled: true }),
    fabio: toggled({}).default({ enabled: true }),
    // the runner authentication token is a secret: given once as GITLAB_RUNNER_TOKEN, kept 0600 in the state
    gitlabRunner: toggled({ url: z.string().url().default("https://gitlab.com") }, false).default({
      enabled: false,
      url: "https://gitlab.com",
    }),
    energyExporter: toggled({
      carbonRegion: z.string().default("FR"),
      pue: z.number().min(1).max(3).default(1.4),
    }).default({ enabled: true, carbonRegion: "FR", pue: 1.4 }),
  })
  .superRefine((jobs, ctx) => {
    // Grafana's datasource is Prometheus behind the Fabio on its node
    if (jobs.grafana.enabled && (!jobs.fabio.enabled || !jobs.prometheus.enabled)) {
      ctx.addIssue({
        code: "custom",
        path: ["grafana", "enabled"],
        message:
          "Grafana needs jobs.prometheus and jobs.fabio enabled (it reads Prometheus through Fabio); disable Grafana or enable both",
      });
    }
  });

/**
 * Vault's initialisation: how many unseal key shares, how many unseal, and
 * optionally the OpenPGP public keys (file paths, relative to the config file)
 * the shares and the root token are encrypted to. Used once, at `init`.
 */
const vault = z
  .strictObject({
    keyShares: z.number().int().min(1).max(255).default(5),
    keyThreshold: z.number().int().min(1).max(255).default(3),
    /** one public key file per share, in share order */
    unsealPgpKeys: z.array(z.string().min(1, "expected a path to an OpenPGP public key file")).optional(),
    rootTokenPgpKey: z.string().min(1, "expected a path to an OpenPGP public key file").optional(),
  })
  .superRefine((v, ctx) => {
    if (v.keyThreshold > v.keyShares) {
      ctx.addIssue({
        code: "custom",
        path: ["keyThreshold"],
        message: `${v.keyThreshold} must not exceed vault.keyShares (${v.keyShares})`,
      });
    } else if (v.keyShares > 1 && v.keyThreshold < 2) {
      ctx.addIssue({
        code: "custom",
        path: ["keyThreshold"],
        message: `Vault needs a threshold of at least 2 when there are several shares (vault.keyShares: ${v.keyShares})`,
      });
    }
    if (v.unsealPgpKeys && v.unsealPgpKeys.length !== v.keyShares) {
      ctx.addIssue({
        code: "custom",
        path: ["unsealPgpKeys"],
        message: `expected ${v.keyShares} key files, one per unseal key share (vault.keyShares: ${v.keyShares}), found ${v.unsealPgpKeys.length}`,
      });
    }
  });

export const defaultVersions = versions.parse({});

/** The Consul and Nomad agents' log level (one line of their config: changing it is a rolling restart). */
const agents = z.strictObject({
  logLevel: z.enum(["trace", "debug", "info", "warn", "error"]).default("info"),
});

/** How a re-run applies changes to running agents: servers always one at a time, clients in batches. */
const rollout = z.strictObject({
  /** client agents restarted at once; the next batch waits until these rejoined */
  clientBatchSize: z.number().int().min(1).max(64).default(1),
  /** how long a Nomad client being removed (scale in) may take to drain before its allocations are stopped */
  drainDeadline: duration.default("5m"),
});

export const clusterConfigSchema = z
  .strictObject({
    name,
    datacenter: z
      .string()
      .regex(/^[a-z0-9-]+$/, "expected lower-case letters, digits and '-'")
      .default("dc1"),
    region: z
      .string()
      .regex(/^[a-z0-9-]+$/, "expected lower-case letters, digits and '-'")
      .default("global"),
    provider: provider.default(provider.parse({})),
    topology: topology.default(topology.parse({})),
    versions: versions.default(versions.parse({})),
    install: install.default(install.parse({})),
    tls: tls.default(tls.parse({})),
    jobs: jobs.default(jobs.parse({})),
    vault: vault.default(vault.parse({})),
    agents: agents.default(agents.parse({})),
    rollout: rollout.default(rollout.parse({})),
    /** how many hosts are worked on at once */
    concurrency: z.number().int().min(1).max(64).default(8),
  })
  .superRefine((c, ctx) => {
    if (c.jobs.registry && runtimeProfile(c) !== "docker") {
      ctx.addIssue({
        code: "custom",
        path: ["jobs", "registry"],
        message: `the registry is for the docker profile, but this cluster runs jobs.runtime: ${runtimeProfile(c)}: set jobs.runtime: docker or remove jobs.registry`,
      });
    }
  });

export type ClusterConfig = z.output<typeof clusterConfigSchema>;
export type { ProviderType } from "../providers/registry.ts";
export type RuntimeProfile = "docker" | "exec";

/** The job runtime profile: explicit, else exec on local nodes (no Docker engine) and docker elsewhere. */
export function runtimeProfile(config: Pick<ClusterConfig, "jobs" | "provider">): RuntimeProfile {
  return config.jobs.runtime ?? (config.provider.type === "local" ? "exec" : "docker");
}

/** How Docker Engine reaches the clients: explicit, else uploaded .debs on local nodes (no mirror there) and apt elsewhere. */
export function dockerInstallMethod(config: Pick<ClusterConfig, "jobs" | "provider">): "apt" | "upload" {
  return config.jobs.docker.install ?? (config.provider.type === "local" ? "upload" : "apt");
}

/** Seconds of remaining lifetime below which a leaf certificate's renewal counts as failed. */
export function certificateAlarmSeconds(config: Pick<ClusterConfig, "tls">): number {
  return Math.round(durationSeconds(config.tls.leafTtl) * config.tls.alertLifetimeLeft);
}
