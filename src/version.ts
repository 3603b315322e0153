import pkg from "../package.json";

export const SERVICE_NAME = "symbia-messaging";
export const VERSION: string = pkg.version;
