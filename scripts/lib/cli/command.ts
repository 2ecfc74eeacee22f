/**
 * Thin command runner shared by every entry point under scripts/: parses the
 * common flags, prints `--help`, maps errors to exit codes and hides stacks
 * unless `--debug` is given.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { ExitCode, InputError, isUserError, UserError } from "../errors.ts";
import { createReporter, type Reporter } from "./output.ts";

type OptionSpec = NonNullable<ParseArgsConfig["options"]>[string] & { description: string; valueName?: string };

export interface CommonFlags {
  cluster?: string;
  config?: string;
  yes: boolean;
  dryRun: boolean;
  output: "text" | "json";
  debug: boolean;
}

export interface CommandContext<Flags> {
  flags: Flags & CommonFlags;
  positionals: string[];
  reporter: Reporter;
}

export interface CommandDefinition<Flags> {
  name: string;
  summary: string;
  usage?: string;
  /** which common flags apply; all others are rejected as unknown */
  common?: Partial<Record<"cluster" | "config" | "yes" | "dryRun" | "output", boolean>>;
  options?: Record<string, OptionSpec>;
  allowPositionals?: boolean;
  /** values accepted by --output (default text and json); anything but text sends messages to stderr */
  outputs?: readonly string[];
  examples?: string[];
  run(context: CommandContext<Flags>): Promise<ExitCode | undefined>;
}

const commonSpecs: Record<keyof Omit<CommonFlags, "debug">, [string, OptionSpec]> = {
  cluster: ["cluster", { type: "string", description: "cluster name (default: from the config file)", valueName: "NAME" }],
  config: [
    "config",
    { type: "string", description: "cluster config file (default: cluster.yaml, else cluster.example.yaml)", valueName: "FILE" },
  ],
  yes: ["yes", { type: "boolean", short: "y", description: "answer yes to confirmations" }],
  dryRun: ["dry-run", { type: "boolean", description: "show what would change without changing anything" }],
  output: ["output", { type: "string", short: "o", description: "output format: text or json", valueName: "FORMAT" }],
};

export function helpText<Flags>(definition: CommandDefinition<Flags>, options: Record<string, OptionSpec>): string {
  const lines = [
    `${definition.name} — ${definition.summary}`,
    "",
    `Usage: ${definition.usage ?? `npm run ${definition.name} -- [options]`}`,
    "",
    "Options:",
  ];
  for (const [name, spec] of Object.entries(options)) {
    const flag = `${spec.short ? `-${spec.short}, ` : "    "}--${name}${spec.type === "string" ? ` ${spec.valueName ?? "VALUE"}` : ""}`;
    lines.push(`  ${flag.padEnd(30)} ${spec.description}`);
  }
  if (definition.examples?.length) lines.push("", "Examples:", ...definition.examples.map((e) => `  ${e}`));
  lines.push(
    "",
    "Exit codes: 0 ok, 1 unexpected error (a bug), 2 bad input, 3 operation failed,",
    "            4 not implemented yet, 5 changes pending (--dry-run),",
    "            6 partial (done on every reachable host, unreachable clients skipped), 130 interrupted.",
  );
  return lines.join("\n");
}

export async function runCommand<Flags>(definition: CommandDefinition<Flags>, argv = process.argv.slice(2)): Promise<never> {
  const options: Record<string, OptionSpec> = {};
  for (const [key, enabled] of Object.entries(definition.common ?? {})) {
    if (!enabled) continue;
    const [name, spec] = commonSpecs[key as keyof typeof commonSpecs];
    options[name] = spec;
  }
  Object.assign(options, definition.options ?? {});
  options.debug = { type: "boolean", description: "show stack traces and debug messages" };
  options.help = { type: "boolean", short: "h", description: "show this help" };

  const debug = argv.includes("--debug") || process.env.HASHISTACK_DEBUG === "1";
  let reporter = createReporter({ debug });
  const exit = (code: number): never => process.exit(code);

  try {
    let parsed: ReturnType<typeof parseArgs>;
    try {
      parsed = parseArgs({
        args: argv,
        options: options as ParseArgsConfig["options"],
        allowPositionals: definition.allowPositionals ?? false,
        strict: true,
      });
    } catch (error) {
      throw new InputError((error as Error).message, { hint: `Run 'npm run ${definition.name} -- --help' for the options.` });
    }
    const values = parsed.values as Record<string, unknown>;
    if (values.help) {
      console.log(helpText(definition, options));
      return exit(ExitCode.ok);
    }
    const output = (values.output as string | undefined) ?? "text";
    const outputs = definition.outputs ?? ["text", "json"];
    if (!outputs.includes(output)) {
      throw new InputError(`--output must be ${outputs.map((o) => `'${o}'`).join(" or ")}, not '${output}'.`);
    }
    reporter = createReporter({ debug, json: output !== "text" });
    const flags = {
      ...camelCaseKeys(values),
      yes: Boolean(values.yes),
      dryRun: Boolean(values["dry-run"]),
      output,
      debug,
    } as Flags & CommonFlags;
    const code = await definition.run({ flags, positionals: parsed.positionals, reporter });
    return exit(code ?? ExitCode.ok);
  } catch (error) {
    return exit(reportError(error, { debug, write: (line) => process.stderr.write(`${line}\n`) }));
  }
}

export function reportError(error: unknown, options: { debug: boolean; write: (line: string) => void }): ExitCode {
  const { write } = options;
  if (isUserError(error)) {
    write(`✖ ${error.message}`);
    for (const detail of error.details) write(`    ${detail}`);
    if (error.hint) write(`  hint: ${error.hint}`);
    if (options.debug && error.stack) write(error.stack);
    else if (error.cause instanceof Error && !(error.cause instanceof UserError)) write(`  cause: ${error.cause.message}`);
    return error.exitCode;
  }
  write(`✖ Unexpected error: ${error instanceof Error ? error.message : String(error)}`);
  if (options.debug && error instanceof Error && error.stack) write(error.stack);
  else write("  This is a bug in hashistack-bootstrap. Re-run with --debug and report the output (check it for secrets first).");
  return ExitCode.bug;
}

function camelCaseKeys(values: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(values).map(([k, v]) => [k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()), v]),
  );
}
