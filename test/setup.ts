// Preloaded by `bun test` (bunfig.toml): keep server logs out of test output unless asked for.
process.env.LOG_LEVEL ??= "silent";
