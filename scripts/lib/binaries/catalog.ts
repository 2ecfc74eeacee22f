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
} satisfies Record<string, ToolSpec>;

export type ToolName = keyof typeof tools;
export const toolNames = Object.keys(tools) as ToolName[];
/** what the integration tests need */
export const testTools: ToolName[] = ["consul", "nomad", "vault", "consul-template", "fabio"];
