import { defineProject } from '@proxy/vitest-config';

export default defineProject('third-party-source');
