/** `@proxy/source-file`: the `file` secret source (a file's exact content). */
export { fileSource, fileSource as default, MAX_SECRET_FILE_BYTES } from './file-source.js';
export type { FileSourceConfig } from './file-source.js';
