/**
 * Scope headers (all optional): which org the caller acts in, which service calls, the environment it
 * expects, and the data class and policy of what it writes. Syntax is checked for every request; org
 * membership once the principal is known.
 */
import type { Environment } from "../config";
import { fail } from "../core/errors";
import { DATA_CLASSES, type DataClass, type Scope } from "../core/scope";

const ENVIRONMENTS = ["dev", "stage", "prod"] as const;

const MAX_HEADER_VALUE = 255;

function header(headers: Headers, name: string): string | undefined {
  const value = headers.get(name)?.trim();
  if (!value) return undefined;
  if (value.length > MAX_HEADER_VALUE) throw fail.invalid_header(`${name} is longer than ${MAX_HEADER_VALUE} characters`);
  return value;
}

export function readScope(headers: Headers, serverEnv: Environment): Scope {
  const scope: Scope = {
    orgId: header(headers, "x-org-id"),
    serviceId: header(headers, "x-service-id"),
    policyRef: header(headers, "x-policy-ref"),
  };
  const env = header(headers, "x-env") ?? header(headers, "x-environment");
  if (env !== undefined) {
    if (!(ENVIRONMENTS as readonly string[]).includes(env)) {
      throw fail.invalid_header(`X-Env must be one of ${ENVIRONMENTS.join(", ")}`);
    }
    if (env !== serverEnv) {
      throw fail.environment_mismatch(`This server serves the ${serverEnv} environment, not ${env}`);
    }
    scope.env = env as Environment;
  }
  const dataClass = header(headers, "x-data-class");
  if (dataClass !== undefined) {
    if (!(DATA_CLASSES as readonly string[]).includes(dataClass)) {
      throw fail.invalid_header(`X-Data-Class must be one of ${DATA_CLASSES.join(", ")}`);
    }
    scope.dataClass = dataClass as DataClass;
  }
  return scope;
}
