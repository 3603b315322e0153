/**
 * What a request or socket says about the context it acts in (scope headers, read at the edge by
 * src/http/scope.ts): which org, which service, the environment it expects, and the data class and
 * policy of what it writes. The domain records these on what it creates.
 */
import type { Environment } from "../config";

export const DATA_CLASSES = ["none", "pii", "phi", "secret"] as const;
export type DataClass = (typeof DATA_CLASSES)[number];

export interface Scope {
  orgId?: string;
  serviceId?: string;
  env?: Environment;
  dataClass?: DataClass;
  policyRef?: string;
}
