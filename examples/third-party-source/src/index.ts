export { commandSource, commandSource as default } from './command-source.js';
export type { CommandSourceConfig } from './command-source.js';
