/**
 * The console shows a run button only where the server would take it: its rules (src/console/
 * run-permissions.ts) agree with the server's (src/domain/run-rules.ts) on every state, owner,
 * entitlement and role.
 */
import { describe, expect, test } from "bun:test";
import type { Principal } from "../../src/auth/principal";
import { RUN_ACTIONS, RUN_EVENT, runActions } from "../../src/console/run-permissions";
import { mayControlRun, nextState, RUN_STATES } from "../../src/domain/run-rules";

const ROLES = ["owner", "admin", "member"] as const;
const GRANTS: Pick<Principal, "entitlements" | "isSuperAdmin">[] = [
  { entitlements: [], isSuperAdmin: false },
  { entitlements: ["cap:messaging.interrupt"], isSuperAdmin: false },
  { entitlements: ["cap:messaging.route", "messaging:admin"], isSuperAdmin: false },
  { entitlements: [], isSuperAdmin: true },
];

describe("run buttons in the console", () => {
  test("agree with the server's who-may and transition rules in every case", () => {
    let cases = 0;
    for (const grant of GRANTS) {
      const principal: Principal = { id: "me", type: "user", orgs: [], credential: { kind: "session", id: "s" }, ...grant };
      for (const owner of ["me", "agent:other"]) {
        for (const state of RUN_STATES) {
          for (const role of ROLES) {
            const shown = runActions(principal, { owner_id: owner, state }, role);
            const allowed = RUN_ACTIONS.filter((action) => {
              const event = RUN_EVENT[action];
              return nextState(event, state) !== undefined && mayControlRun(principal, event, { owner_id: owner }, role);
            });
            expect({ grant, owner, state, role, shown }).toEqual({ grant, owner, state, role, shown: allowed });
            cases++;
          }
        }
      }
    }
    expect(cases).toBe(GRANTS.length * 2 * RUN_STATES.length * ROLES.length);
  });

  test("a member without the entitlement sees nothing on an agent's run; one with it sees Pause, Preempt and Cancel", () => {
    const run = { owner_id: "agent:writer", state: "active" as const };
    expect(runActions({ id: "bob", entitlements: [], isSuperAdmin: false }, run, "member")).toEqual([]);
    expect(runActions({ id: "alice", entitlements: ["cap:messaging.interrupt"], isSuperAdmin: false }, run, "member")).toEqual(["pause", "preempt", "cancel"]);
    // The conversation's owner can always stop it, even without the entitlement.
    expect(runActions({ id: "carol", entitlements: [], isSuperAdmin: false }, run, "owner")).toEqual(["cancel"]);
  });

  test("someone who only watches (not a participant) sees no buttons", () => {
    expect(runActions({ id: "admin", entitlements: [], isSuperAdmin: true }, { owner_id: "agent:writer", state: "active" }, undefined)).toEqual([]);
  });
});
