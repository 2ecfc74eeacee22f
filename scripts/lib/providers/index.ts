import type { ProviderType } from "../config/schema.ts";
import { NotImplementedError } from "../errors.ts";
import { digitalOceanProvider } from "./digitalocean/provider.ts";
import { localProvider } from "./local/provider.ts";
import { staticProvider } from "./static.ts";
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
      throw new NotImplementedError(`The ${type} provider`, "issue 'DigitalOcean and Vagrant providers'");
  }
}
