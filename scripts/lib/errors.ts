/**
 * Typed errors. `UserError` is something the user can fix (bad input, missing
 * package, unreachable host): it carries a hint and prints without a stack.
 * Anything else reaching the top level is a bug and says how to report it.
 */

export const ExitCode = {
  ok: 0,
  /** unexpected failure: a bug or an unhandled condition */
  bug: 1,
  /** bad usage or bad input (flags, config, inventory, job files) */
  usage: 2,
  /** an operation against hosts or the cluster failed */
  operation: 3,
  /** the command exists but is not implemented yet */
  notImplemented: 4,
  /** `--dry-run` found changes that would be applied */
  changesPending: 5,
  /** the run completed on every reachable host; some hosts were skipped (unreachable clients) */
  partial: 6,
  /** interrupted by SIGINT/SIGTERM */
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface UserErrorOptions {
  hint?: string;
  exitCode?: ExitCode;
  cause?: unknown;
  /** extra lines shown under the message (e.g. one per invalid field) */
  details?: string[];
}

export class UserError extends Error {
  readonly hint?: string;
  readonly exitCode: ExitCode;
  readonly details: string[];

  constructor(message: string, options: UserErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? ExitCode.usage;
    this.details = options.details ?? [];
  }
}

/** Invalid config, inventory, flags or other user-supplied input. */
export class InputError extends UserError {}

/** A failure talking to hosts or cluster APIs that the user can act on. */
export class OperationError extends UserError {
  constructor(message: string, options: UserErrorOptions = {}) {
    super(message, { exitCode: ExitCode.operation, ...options });
  }
}

export class NotImplementedError extends UserError {
  constructor(what: string, issue?: string) {
    super(`${what} is not implemented yet.`, {
      exitCode: ExitCode.notImplemented,
      hint: issue ? `It is tracked as: ${issue}.` : undefined,
    });
  }
}

export function isUserError(error: unknown): error is UserError {
  return error instanceof UserError;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
