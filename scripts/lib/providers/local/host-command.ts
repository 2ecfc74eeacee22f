/** Commands on this machine (ip, mount, debootstrap …) with errors that name the command and its stderr. */
import { $ } from "zx";
import { OperationError } from "../../errors.ts";

export async function hostRun(args: string[], options: { allowFailure?: boolean; input?: string; timeoutMs?: number } = {}) {
  const [command, ...rest] = args;
  if (!command) throw new Error("hostRun needs a command");
  const result = await $({
    quiet: true,
    nothrow: true,
    input: options.input,
    timeout: options.timeoutMs ?? 60_000,
  })`${command} ${rest}`;
  if (result.exitCode !== 0 && !options.allowFailure) {
    throw new OperationError(`'${args.join(" ")}' failed with exit code ${result.exitCode}.`, {
      details: result.stderr.trim().split("\n").slice(-8),
    });
  }
  return { stdout: result.stdout, stderr: result.stderr, code: result.exitCode ?? -1 };
}
