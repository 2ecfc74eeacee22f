import type { ProviderType } from "../config/schema.ts";
import { digitalOceanProvider } from "./digitalocean/provider.ts";
import { localProvider } from "./local/provider.ts";
import { staticProvider } from "./static.ts";
import { vagrantProvider } from "./vagrant/provider.ts";
import type { Provider } from "./types.ts";

export function providerFor(type: ProviderType): Provider {
  switch (type) {
    case "local":
      return localProvider;
    case "static":
      return staticProvider;
    case "digitalocean":
      return digitalOceanProvider;
    case "vagrant":
      return vagrantProvider;
  }
}
