/**
 * Scope headers (all optional): which org the caller acts in, which service calls, the environment it
 * expects, and the data class and policy of what it writes. Syntax is checked for every request; org
 * membership once the principal is known.
 */
import type { Environment } from "../config";
import { badRequest } from "./errors";

export const DATA_CLASSES = ["none", "pii", "phi", "secret"] as const;
export type DataClass = (typeof DATA_CLASSES)[number];
const ENVIRONMENTS = ["dev", "stage", "prod"] as const;

export interface Scope {
  orgId?: string;
  serviceId?: string;
  env?: Environment;
  dataClass?: DataClass;
  policyRef?: string;
}

const MAX_HEADER_VALUE = 255;

function header(headers: Headers, name: string): string | undefined {
  const value = headers.get(name)?.trim();
  if (!value) return undefined;
  if (value.length > MAX_HEADER_VALUE) throw badRequest(`${name} is longer than ${MAX_HEADER_VALUE} characters`, "invalid_header");
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
      throw badRequest(`X-Env must be one of ${ENVIRONMENTS.join(", ")}`, "invalid_header");
    }
    if (env !== serverEnv) {
      throw badRequest(`This server serves the ${serverEnv} environment, not ${env}`, "environment_mismatch");
    }
    scope.env = env as Environment;
  }
  const dataClass = header(headers, "x-data-class");
  if (dataClass !== undefined) {
    if (!(DATA_CLASSES as readonly string[]).includes(dataClass)) {
      throw badRequest(`X-Data-Class must be one of ${DATA_CLASSES.join(", ")}`, "invalid_header");
    }
    scope.dataClass = dataClass as DataClass;
  }
  return scope;
}

/** Content of these classes must never reach a log line. */
export function isSensitive(dataClass: string | null | undefined): boolean {
  return dataClass === "phi" || dataClass === "secret";
}
