/**
 * HashiCorp (and friends) binaries built from the Go module proxy for tests and
 * air-gapped installs. Pinned versions; see docs/binaries.md for why Nomad is
 * the newest 1.x rather than 2.x.
 */
import { defaultVersions } from "../config/schema.ts";

export interface ToolSpec {
  name: string;
  module: string;
  version: string;
  /** package to build, relative to the module root */
  package: string;
  /**
   * Versions for submodules whose local `=> ./dir` replace is dropped, when the
   * version the main module's go.mod requires is too old to compile against.
   */
  submodules?: Record<string, string>;
  /**
   * The module's h1: hash, for releases the public checksum database does not
   * know: the download skips the database and must match this pin instead.
   */
  pinnedSum?: string;
  /** build with cgo (a C compiler is needed; the binary links the host's glibc) */
  cgo?: boolean;
  /**
   * Files written into the module before compiling, relative to its root: generated
   * assets the module zip lacks but a `//go:embed` needs (they are not built here).
   */
  placeholders?: Record<string, string>;
  /** extra linker flags, e.g. `-X` for a version the module's build leaves empty */
  ldflags?: string[];
  /**
   * Go build tags; they change what is compiled in, so they are part of the cache path
   * (a binary built with other tags is never taken for this one).
   */
  tags?: string[];
  /** the version the program reports, where the module's differs (Prometheus 3.16.0 is module v0.316.0) */
  programVersion?: string;
}

export const tools = {
  consul: { name: "consul", module: "github.com/hashicorp/consul", version: defaultVersions.consul, package: "." },
  nomad: {
    name: "nomad",
    module: "github.com/hashicorp/nomad",
    version: defaultVersions.nomad,
    package: ".",
    // Nomad registers its isolating `exec` driver only in cgo builds
    cgo: true,
    // nomad/api has no tags, and v1.11.3's go.mod requires a 2023 pseudo-version that
    // lacks types the agent uses; the proxy refuses the release commit (403), so we
    // pin the newest published pseudo-version, which compiles against 1.11.3.
    submodules: { "github.com/hashicorp/nomad/api": "v0.0.0-20260907080526-08ef8f3d26da" },
  },
  // Vault 1.21.1–1.21.4 do not compile against any published vault/sdk: their
  // release branch mixes the old two-argument ActivationFunc with newer sdk APIs
  // (observations, RestorePolicy) that only sdk tags with the new ActivationFunc
  // have. 1.21.0 builds with the sdk its go.mod requires (v0.20.0).
  vault: { name: "vault", module: "github.com/hashicorp/vault", version: defaultVersions.vault, package: "." },
  "consul-template": {
    name: "consul-template",
    module: "github.com/hashicorp/consul-template",
    version: defaultVersions.consulTemplate,
    package: ".",
  },
  // sum.golang.org answers 404 for every 1.6.x release (1.5.15 is the newest it knows,
  // and it has no Prometheus metrics); 1.6.3 is verified against this pinned hash instead
  fabio: {
    name: "fabio",
    module: "github.com/fabiolb/fabio",
    version: "1.6.3",
    package: ".",
    pinnedSum: "h1:ZLgQOjuLz66ABYI4qGVb2O6tHgu0ixNvsChTTtwg7Mo=",
  },
  // Prometheus 3.x is published as module versions v0.3xx.y (3.16.0 = v0.316.0); built
  // without the `builtinassets` tag, so the server, API and /-/ready work and the web UI
  // is not embedded. The platform's Prometheus job runs it (exec profile, local images).
  prometheus: {
    name: "prometheus",
    module: "github.com/prometheus/prometheus",
    version: "0.316.0",
    programVersion: "3.16.0",
    package: "./cmd/prometheus",
    // its Makefile stamps the version at link time; without it `--version` prints none
    ldflags: ["-X github.com/prometheus/common/version.Version=3.16.0"],
    // plugins/plugin_*.go: `remove_all_sd` leaves only file and http discovery, each
    // `enable_<name>_sd` adds one back; the platform uses Consul's (see docs/binaries.md
    // for the build time and size this saves)
    tags: ["remove_all_sd", "enable_consul_sd"],
  },
  alertmanager: {
    name: "alertmanager",
    module: "github.com/prometheus/alertmanager",
    version: "0.35.0",
    package: "./cmd/alertmanager",
    ldflags: ["-X github.com/prometheus/common/version.Version=0.35.0"],
    // the web UI is built with npm into ui/app/dist, which the module zip does not carry;
    // the API, /-/ready and notifications do not need it
    placeholders: {
      "ui/app/dist/elm/index.html": "Alertmanager's web UI is not part of this build; use the API (/api/v2).\n",
      "ui/app/dist/mantine/index.html": "Alertmanager's web UI is not part of this build; use the API (/api/v2).\n",
    },
  },
} satisfies Record<string, ToolSpec>;

export type ToolName = keyof typeof tools;
export const toolNames = Object.keys(tools) as ToolName[];
/** what the integration and e2e tests need (the platform jobs run Prometheus 3 and Alertmanager) */
export const testTools: ToolName[] = ["consul", "nomad", "vault", "consul-template", "fabio", "prometheus", "alertmanager"];
/**
 * Older builds the upgrade e2e (test/e2e/upgrade.test.ts) bootstraps before it
 * moves to the pinned versions; the test prerequisites build them too. consul-template
 * is the cheap one to build twice (seconds, where a Consul build takes minutes).
 */
export const upgradeTestFrom: { "consul-template": ToolSpec } = {
  "consul-template": { ...tools["consul-template"], version: "0.41.0" },
};

/** The version a tool reports and its images are tagged with. */
export function programVersion(tool: Pick<ToolSpec, "version" | "programVersion">): string {
  return tool.programVersion ?? tool.version;
}
