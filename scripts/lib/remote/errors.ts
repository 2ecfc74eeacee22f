import { OperationError } from "../errors.ts";

const tail = (text: string, lines = 12) => text.trim().split("\n").slice(-lines);

/** A command that ran on a host and failed: host, command, exit code and stderr tail. */
export class RemoteCommandError extends OperationError {
  constructor(
    readonly host: string,
    readonly command: string,
    readonly remoteExitCode: number | null,
    readonly stderr: string,
    readonly signal?: string | null,
  ) {
    super(
      `${host}: '${command.length > 120 ? `${command.slice(0, 117)}...` : command}' ${
        remoteExitCode === null ? `was killed${signal ? ` by ${signal}` : ""}` : `exited with code ${remoteExitCode}`
      }.`,
      { details: stderr.trim() ? tail(stderr).map((l) => `${host} stderr: ${l}`) : [`${host}: (no output on stderr)`] },
    );
  }
}

/** A host that cannot be reached or logged into. */
export class HostUnreachableError extends OperationError {
  /**
   * Nothing answered at all (no SSH handshake before the deadline, or the host stopped
   * answering): a host that is down or cut off. A host that answers with a changed host
   * key or refuses the login is reachable but wrong, and never counts as down.
   */
  readonly noAnswer: boolean;

  constructor(
    readonly host: string,
    reason: string,
    hint: string,
    options: { noAnswer?: boolean } = {},
  ) {
    super(`${host}: ${reason}`, { hint });
    this.noAnswer = options.noAnswer ?? false;
  }
}

/** Whether this error says the host does not answer (down or cut off), as opposed to answering wrongly. */
export function isNoAnswer(error: unknown): boolean {
  return error instanceof HostUnreachableError && error.noAnswer;
}

/** Several hosts failed: each failure is listed, none hides another. */
export class HostsFailedError extends OperationError {
  constructor(
    what: string,
    readonly failures: { host: string; error: Error }[],
    total: number,
  ) {
    super(
      `${what} failed on ${failures.length} of ${total} host${total === 1 ? "" : "s"}: ${failures.map((f) => f.host).join(", ")}.`,
      {
        details: failures.flatMap(({ error }) => [error.message, ...("details" in error ? (error.details as string[]) : [])]),
        hint: failures.map((f) => ("hint" in f.error ? (f.error.hint as string | undefined) : undefined)).find(Boolean),
      },
    );
  }
}
