/**
 * HashiCorp (and friends) binaries built from the Go module proxy for tests and
 * air-gapped installs. Pinned versions; see README "Binaries" for why Nomad is
 * the newest 1.x rather than 2.x.
 */
import { defaultVersions } from "../config/schema.ts";

export interface ToolSpec {
  name: string;
  module: string;
  version: string;
  /** package to build, relative to the module root */
  package: string;
}

export const tools = {
  consul: { name: "consul", module: "github.com/hashicorp/consul", version: defaultVersions.consul, package: "." },
  nomad: { name: "nomad", module: "github.com/hashicorp/nomad", version: defaultVersions.nomad, package: "." },
  vault: { name: "vault", module: "github.com/hashicorp/vault", version: defaultVersions.vault, package: "." },
  "consul-template": {
    name: "consul-template",
    module: "github.com/hashicorp/consul-template",
    version: defaultVersions.consulTemplate,
    package: ".",
  },
  fabio: { name: "fabio", module: "github.com/fabiolb/fabio", version: "1.6.3", package: "." },
} satisfies Record<string, ToolSpec>;

export type ToolName = keyof typeof tools;
export const toolNames = Object.keys(tools) as ToolName[];
/** what the integration tests need */
export const testTools: ToolName[] = ["consul", "nomad", "vault", "consul-template"];
