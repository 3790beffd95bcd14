import { defineProject } from '@proxy/vitest-config';

export default defineProject('transform-gcp-auth');
