/**
 * Handlebars set up for config files rather than HTML: no HTML escaping,
 * strict mode (a missing variable is an error, never an empty string) and
 * helpers that quote values for HCL so nothing can inject syntax.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import Handlebars from "handlebars";

export const templatesDir = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "templates");

/** An HCL/JSON-compatible quoted string with HCL's template sequences escaped. */
export function hclString(value: unknown): string {
  if (value === undefined || value === null) throw new Error("hcl helper got no value");
  // a replacer function, because "$$" in a replacement string means a single "$"
  return JSON.stringify(String(value))
    .replaceAll("${", () => "$${")
    .replaceAll("%{", () => "%%{");
}

export function createEngine(dir = templatesDir): { render(name: string, context: object): string } {
  const hb = Handlebars.create();
  hb.registerHelper("hcl", (value: unknown) => new hb.SafeString(hclString(value)));
  hb.registerHelper("hclList", (values: unknown) => {
    if (!Array.isArray(values)) throw new Error("hclList helper needs a list");
    return new hb.SafeString(`[${values.map(hclString).join(", ")}]`);
  });
  // a Go-template string literal (consul-template); JSON quoting is compatible
  hb.registerHelper("quote", (value: unknown) => new hb.SafeString(JSON.stringify(String(value))));
  hb.registerHelper("join", (...args: unknown[]) => {
    const [separator, ...parts] = args.slice(0, -1); // last argument is Handlebars' options
    return parts.map(String).join(String(separator));
  });
  hb.registerHelper("eq", (a: unknown, b: unknown) => a === b);
  hb.registerHelper("add", (a: number, b: number) => a + b);
  hb.registerHelper("dirname", (path: string) => dirname(path));
  hb.registerHelper("lookup", (map: Record<string, unknown>, key: string) => {
    if (!(key in map)) throw new Error(`lookup: no entry '${key}'`);
    return map[key];
  });

  const partialsDir = join(dir, "partials");
  for (const file of readdirSync(partialsDir)) {
    hb.registerPartial(file.replace(/\.hbs$/, ""), readFileSync(join(partialsDir, file), "utf8"));
  }
  const compiled = new Map<string, Handlebars.TemplateDelegate>();
  return {
    render(name, context) {
      let template = compiled.get(name);
      if (!template) {
        const source = readFileSync(join(dir, name), "utf8");
        template = hb.compile(source, { noEscape: true, strict: true, knownHelpersOnly: false });
        compiled.set(name, template);
      }
      try {
        return template(context);
      } catch (error) {
        throw new Error(`template ${relative(process.cwd(), join(dir, name))}: ${(error as Error).message}`);
      }
    },
  };
}

let shared: ReturnType<typeof createEngine> | undefined;

/** One engine per process: templates are compiled once and reused for every host. */
export function sharedEngine(): ReturnType<typeof createEngine> {
  shared ??= createEngine();
  return shared;
}
