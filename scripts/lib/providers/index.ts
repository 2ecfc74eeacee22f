import type { ProviderType } from "./registry.ts";
import { digitalOceanProvider } from "./digitalocean/provider.ts";
import { localProvider } from "./local/provider.ts";
import { staticProvider } from "./static.ts";
import { vagrantProvider } from "./vagrant/provider.ts";
import type { Provider } from "./types.ts";

/** One implementation per registered provider (a missing one is a type error). */
const implementations: Record<ProviderType, Provider> = {
  local: localProvider,
  vagrant: vagrantProvider,
  digitalocean: digitalOceanProvider,
  static: staticProvider,
};

export function providerFor(type: ProviderType): Provider {
  return implementations[type];
}
