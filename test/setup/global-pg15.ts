import type { TestProject } from 'vitest/node';
import { startPg15 } from './servers.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startPg15();
  if (!server) {
    if (process.env.CI) throw new Error('PostgreSQL 15 is not installed (.ci/run installs it with apt)');
    project.provide('pgUrl', '');
    return async () => {};
  }
  project.provide('pgUrl', server.url);
  return () => server.stop();
}
