// One base error with a stable `code`, one subclass per kind of failure a user can act on.
// Target failures are not errors (they are samples with `ok: false`); these are for bad usage,
// bad config and broken environments.
/** Base class: `code` is stable and documented, `message` says what, where and what to do. */
export class AnylatError extends Error {
    code;
    /** process exit code when this error ends a command */
    exitCode;
    constructor(code, message, options) {
        super(message, options?.cause === undefined ? undefined : { cause: options.cause });
        this.name = 'AnylatError';
        this.code = code;
        this.exitCode = options?.exitCode ?? 1;
    }
}
/** Bad command-line usage: exit 2. */
export class UsageError extends AnylatError {
    constructor(message) {
        super('ANYLAT_USAGE', message, { exitCode: 2 });
        this.name = 'UsageError';
    }
}
/** Bad configuration file: exit 2. Messages are `file:line: path: problem`. */
export class ConfigError extends AnylatError {
    problems;
    constructor(problems) {
        super('ANYLAT_CONFIG', problems.join('\n'), { exitCode: 2 });
        this.name = 'ConfigError';
        this.problems = problems;
    }
}
/** Something the host lacks (a binary, root, Linux): exit 2 with what to install or run instead. */
export class EnvironmentError extends AnylatError {
    constructor(code, message) {
        super(code, message, { exitCode: 2 });
        this.name = 'EnvironmentError';
    }
}
