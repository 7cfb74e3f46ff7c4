export { daemonConfigSchema, type DaemonConfig, type DaemonConfigInput } from './schema.js';
export { loadConfig, parseConfig } from './load.js';
