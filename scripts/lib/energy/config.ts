/**
 * Exporter configuration: a YAML file (optional), then environment variables,
 * then command-line flags, each overriding the one before. Every field is
 * checked; a mistake is reported with the file, line and field.
 */
import { z } from "zod";
import { InputError } from "../errors.ts";
import { parseYamlText } from "../util/validated-yaml.ts";
import { staticIntensities } from "./carbon.ts";

const positive = z.number().positive();

export const exporterConfigSchema = z
  .object({
    /** address:port to serve /metrics and /healthz on */
    listen: z
      .string()
      .regex(/^[^\s:]*:\d{1,5}$/, "expected HOST:PORT, e.g. 0.0.0.0:9875")
      .default("0.0.0.0:9875"),
    /** seconds between samples */
    interval: positive.max(3600).default(5),
    /** node name on every series (default: the host name) */
    node: z.string().min(1).optional(),
    source: z.enum(["auto", "rapl", "model"]).default("auto"),
    host: z
      .object({
        sysfs: z.string().default("/sys"),
        procfs: z.string().default("/proc"),
        cgroup: z.string().default("/sys/fs/cgroup"),
      })
      .strict()
      .default({ sysfs: "/sys", procfs: "/proc", cgroup: "/sys/fs/cgroup" }),
    rapl: z
      .object({
        /** average power above which a zone's delta is rejected as implausible */
        maxZoneWatts: positive.default(1000),
        /**
         * idle power of the node: watts measured on this machine at rest, or
         * `model` (default): measured energy split by the CPU family model's
         * idle:dynamic proportion at the interval's utilisation (docs/energy.md)
         */
        idle: z.union([z.literal("model"), z.number().nonnegative()]).default("model"),
        /** older name of a numeric `idle`; wins when set */
        idleWatts: z.number().nonnegative().optional(),
      })
      .strict()
      .default({ maxZoneWatts: 1000, idle: "model" }),
    model: z
      .object({
        /** a family name from the table in docs/energy.md, or auto (from /proc/cpuinfo) */
        cpuFamily: z.string().default("auto"),
        minWattsPerVcpu: z.number().nonnegative().optional(),
        maxWattsPerVcpu: z.number().nonnegative().optional(),
        memoryWattsPerGb: z.number().nonnegative().optional(),
      })
      .strict()
      .refine(
        (m) => m.minWattsPerVcpu === undefined || m.maxWattsPerVcpu === undefined || m.minWattsPerVcpu <= m.maxWattsPerVcpu,
        {
          message: "minWattsPerVcpu must not exceed maxWattsPerVcpu",
        },
      )
      .default({ cpuFamily: "auto" }),
    nomad: z
      .object({
        /** local agent; NOMAD_ADDR in the environment wins. Empty: no enrichment */
        address: z.string().optional(),
        caFile: z.string().optional(),
        certFile: z.string().optional(),
        keyFile: z.string().optional(),
        serverName: z.string().optional(),
        /** this node's ID (the job passes ${node.unique.id}); saves agent:read */
        nodeId: z.string().optional(),
        /** the Nomad client's `cgroup_parent` (default nomad.slice on cgroup v2, /nomad on v1) */
        cgroupParent: z.string().min(1).optional(),
      })
      .strict()
      .default({}),
    docker: z
      .object({
        /** the Docker Engine API socket that names containers' Nomad tasks; "" turns docker attribution off */
        socket: z.string().default("/var/run/docker.sock"),
        /** the daemon's cgroup parents: docker (cgroupfs driver) and system.slice (systemd driver), or its `cgroup-parent` */
        cgroupParents: z.array(z.string().min(1)).min(1).default(["docker", "system.slice"]),
      })
      .strict()
      .default({ socket: "/var/run/docker.sock", cgroupParents: ["docker", "system.slice"] }),
    tasks: z
      .object({
        /** seconds an ended task keeps being exported with its final values (several scrape intervals) */
        retentionSeconds: positive.max(86400).default(300),
        /** seconds a new task may wait for its Nomad labels before it is exported without them */
        labelGraceSeconds: z.number().nonnegative().max(3600).default(30),
        /** seconds between lookups of one still-unknown allocation or container */
        lookupRetrySeconds: positive.max(3600).default(10),
      })
      .strict()
      .default({ retentionSeconds: 300, labelGraceSeconds: 30, lookupRetrySeconds: 10 }),
    carbon: z
      .object({
        pue: z.number().min(1, "a PUE is 1.0 or more").max(5).default(1),
        /** a key of the static table (docs/energy.md) used for the default intensity */
        region: z.string().default("WORLD"),
        /** a fixed intensity in gCO2e/kWh, overriding the table */
        intensity: z.number().nonnegative().optional(),
        live: z
          .object({
            provider: z.literal("uk-carbon-intensity"),
            url: z.string().url().default("https://api.carbonintensity.org.uk"),
            regionId: z.number().int().min(1).max(17).optional(),
            ttlSeconds: positive.default(1800),
            timeoutSeconds: positive.default(5),
            /** how long a live value stays usable when refreshes fail */
            maxAgeSeconds: positive.default(7200),
          })
          .strict()
          .optional(),
      })
      .strict()
      .refine((c) => c.intensity !== undefined || c.region in staticIntensities, {
        message: `unknown region; use one of ${Object.keys(staticIntensities).join(", ")} or set carbon.intensity`,
        path: ["region"],
      })
      .default({ pue: 1, region: "WORLD" }),
  })
  .strict();

export type ExporterConfig = z.output<typeof exporterConfigSchema>;

const fileHint = "See docs/energy.md for the fields and their meaning.";

export function parseExporterConfig(text: string, file: string): ExporterConfig {
  try {
    return parseYamlText(text, file, exporterConfigSchema, "Exporter config", fileHint);
  } catch (error) {
    if (error instanceof InputError) {
      const details = error.details.map((d) => d.replace("listed in cluster.example.yaml", "listed in docs/energy.md"));
      throw new InputError(error.message, { details, hint: error.hint });
    }
    throw error;
  }
}

/** Environment overrides (HASHISTACK_ENERGY_*), applied as if written in the file. */
export function environmentOverrides(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  const num = (name: string): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === "") return undefined;
    const value = Number(raw);
    if (!Number.isFinite(value)) throw new InputError(`Environment variable ${name} must be a number, not '${raw}'.`);
    return value;
  };
  const set = (path: string[], value: unknown) => {
    if (value === undefined || value === "") return;
    let target = o;
    for (const key of path.slice(0, -1)) target = (target[key] ??= {}) as Record<string, unknown>;
    target[path[path.length - 1] as string] = value;
  };
  set(["listen"], env.HASHISTACK_ENERGY_LISTEN);
  set(["interval"], num("HASHISTACK_ENERGY_INTERVAL"));
  set(["node"], env.HASHISTACK_ENERGY_NODE);
  set(["source"], env.HASHISTACK_ENERGY_SOURCE);
  set(["host", "sysfs"], env.HASHISTACK_ENERGY_HOST_SYSFS);
  set(["host", "procfs"], env.HASHISTACK_ENERGY_HOST_PROCFS);
  set(["host", "cgroup"], env.HASHISTACK_ENERGY_HOST_CGROUP);
  set(["carbon", "pue"], num("HASHISTACK_ENERGY_PUE"));
  set(["carbon", "region"], env.HASHISTACK_ENERGY_REGION);
  set(["carbon", "intensity"], num("HASHISTACK_ENERGY_INTENSITY"));
  // the Nomad CLI's own variables, so the job can use the usual names
  set(["nomad", "address"], env.NOMAD_ADDR);
  set(["nomad", "caFile"], env.NOMAD_CACERT);
  set(["nomad", "certFile"], env.NOMAD_CLIENT_CERT);
  set(["nomad", "keyFile"], env.NOMAD_CLIENT_KEY);
  set(["nomad", "serverName"], env.NOMAD_TLS_SERVER_NAME);
  set(["nomad", "nodeId"], env.HASHISTACK_ENERGY_NOMAD_NODE_ID);
  set(["nomad", "cgroupParent"], env.HASHISTACK_ENERGY_NOMAD_CGROUP_PARENT);
  set(["docker", "socket"], env.HASHISTACK_ENERGY_DOCKER_SOCKET);
  return o;
}

export function mergeDeep(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const existing = out[key];
    out[key] =
      value && typeof value === "object" && !Array.isArray(value) && existing && typeof existing === "object"
        ? mergeDeep(existing as Record<string, unknown>, value as Record<string, unknown>)
        : value;
  }
  return out;
}

/**
 * The file's raw mapping merged with environment and flag overrides, validated
 * once so an override that breaks a rule is reported too.
 */
export function resolveExporterConfig(
  fileText: string | undefined,
  file: string,
  env: NodeJS.ProcessEnv,
  flags: Record<string, unknown>,
): ExporterConfig {
  // parse the file alone first so its errors carry line numbers
  const fromFile = fileText === undefined ? {} : (parseExporterConfig(fileText, file) as Record<string, unknown>);
  const merged = mergeDeep(mergeDeep(fromFile, environmentOverrides(env)), flags);
  const result = exporterConfigSchema.safeParse(merged);
  if (!result.success) {
    throw new InputError(`Exporter settings are invalid (${file}, HASHISTACK_ENERGY_* variables or flags).`, {
      details: result.error.issues.map((i) => `${i.path.join(".") || "(top level)"}: ${i.message}`),
      hint: fileHint,
    });
  }
  return result.data;
}
