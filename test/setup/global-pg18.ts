import type { TestProject } from 'vitest/node';
import { startPg18 } from './servers.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startPg18();
  project.provide('pgUrl', server.url);
  return () => server.stop();
}
