/**
 * The error taxonomy shared by the producer and the processor.
 *
 * Every error Fanda raises on purpose is a {@link FandaError}: it names the operation that
 * failed, says whether trying again can help (`retriable`), and keeps the underlying `cause`.
 * Retry loops read the flag; they never match on message text.
 */
export class FandaError extends Error {
  /** True when the same operation may succeed if tried again later. */
  readonly retriable: boolean;
  /** What was being done, e.g. `"webhook: POST http://…"`. */
  readonly operation: string;

  constructor(
    operation: string,
    message: string,
    options: { retriable?: boolean; cause?: unknown } = {},
  ) {
    super(`${operation}: ${message}`, options.cause === undefined ? {} : { cause: options.cause });
    this.name = new.target.name;
    this.operation = operation;
    this.retriable = options.retriable ?? false;
  }
}

/** A configuration value is missing or malformed; fixed by the operator, never retried. */
export class ConfigError extends FandaError {
  /** One line per problem, each naming the variable and what was expected. */
  readonly issues: readonly string[];

  constructor(scope: string, issues: readonly string[]) {
    super(scope, `invalid configuration:\n  - ${issues.join("\n  - ")}`, { retriable: false });
    this.issues = issues;
  }
}

/** Input (an S3 event, a Kafka message) does not have the expected shape; never retried. */
export class InvalidInputError extends FandaError {
  constructor(operation: string, message: string, options: { cause?: unknown } = {}) {
    super(operation, message, { ...options, retriable: false });
  }
}

/**
 * Normalises anything thrown into a {@link FandaError}, keeping the original as `cause`.
 * Programming errors (TypeError, RangeError, …) are final: retrying a bug does not fix it.
 * An error that carries its own boolean `retriable` (kafkajs does) keeps it.
 */
export function toFandaError(operation: string, error: unknown): FandaError {
  if (error instanceof FandaError) return error;
  const programming =
    error instanceof TypeError ||
    error instanceof RangeError ||
    error instanceof ReferenceError ||
    error instanceof SyntaxError;
  const message = error instanceof Error ? error.message : String(error);
  // Client libraries (kafkajs among them) mark their own errors; trust that mark when present.
  const flagged = (error as { retriable?: unknown } | null)?.retriable;
  const retriable = typeof flagged === "boolean" ? flagged : !programming;
  return new FandaError(operation, message, { retriable: retriable && !programming, cause: error });
}
