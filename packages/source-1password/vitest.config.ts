import { defineProject } from '@proxy/vitest-config';

export default defineProject('source-1password');
