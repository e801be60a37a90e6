/**
 * Every failure a user can cause (bad closure, bad base image, bad flags) is a StrataError:
 * the CLI prints its message alone, without a stack, and exits non-zero. Anything else that
 * escapes is a bug in strata and is printed with its stack.
 */
export class StrataError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StrataError';
  }
}

/** Throws a StrataError when `condition` is false. */
export function check(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new StrataError(typeof message === 'function' ? message() : message);
}
