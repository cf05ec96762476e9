/**
 * `sync-lookup/bench`: the benchmark and the demo as a library. `runBench` runs the seed's operations in
 * their original form and ours side by side and returns the report (the JSON contract of `bench --json`);
 * `runDemo` is the one-command tour; `renderMarkdown`, `renderHtml` and `writeReport` turn a report into
 * Markdown, HTML and SVG charts.
 *
 * @example
 * import { runBench, writeReport } from 'sync-lookup/bench';
 * const report = await runBench({ url, external: true, sizes: [500_000], scenarios: ['purge-type'] });
 * await writeReport(report, './bench-report');
 */
export { runBench, type BenchOptions, type BenchEvent } from './runner.js';
export { runDemo, DEMO_ROWS, type DemoOptions, type DemoResult } from './demo.js';
export type { BenchReport, ScenarioResult, MachineInfo, ExtraValue } from './types.js';
export { SCENARIO_NAMES, type ScenarioName } from './options.js';
export { renderMarkdown, renderHtml, writeReport } from './report.js';
