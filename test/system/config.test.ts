/** The settings added for hardening are validated at start like the others. */
import { describe, expect, test } from "bun:test";
import { ConfigError, loadConfig } from "../../src/config";

describe("ALLOWED_ORIGINS and TRUST_PROXY", () => {
  test("read as lists, origins normalised", () => {
    const config = loadConfig({ ALLOWED_ORIGINS: "https://App.Example.com, http://localhost:3000", TRUST_PROXY: "10.0.0.0/8, ::1,192.168.1.10" });
    expect(config.allowedOrigins).toEqual(["https://app.example.com", "http://localhost:3000"]);
    expect(config.trustProxy).toEqual(["10.0.0.0/8", "::1", "192.168.1.10"]);
    expect(loadConfig({}).allowedOrigins).toEqual([]);
    expect(loadConfig({}).trustProxy).toEqual([]);
  });

  test.each([
    ["ALLOWED_ORIGINS", "app.example.com"],
    ["ALLOWED_ORIGINS", "https://app.example.com/path"],
    ["ALLOWED_ORIGINS", "ftp://app.example.com"],
    ["ALLOWED_ORIGINS", "*"],
    ["TRUST_PROXY", "10.0.0.0/33"],
    ["TRUST_PROXY", "proxy.internal"],
    ["TRUST_PROXY", "10.0.0.1/8/1"],
    ["TRUST_PROXY", "::1/129"],
  ])("%s=%s stops the start with a message", (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });
});
