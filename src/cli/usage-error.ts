/** A mistake on the command line: printed as one line on stderr, exit status 1, no stack trace. */
export class UsageError extends Error {}
