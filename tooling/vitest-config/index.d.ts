import type { UserWorkspaceConfig } from 'vitest/config';
export declare function defineProject(name: string, test?: UserWorkspaceConfig['test']): UserWorkspaceConfig;
